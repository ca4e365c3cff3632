package injector

import (
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of the two webhooks in WebhookConfiguration.
const (
	WebhookNamespaceOptIn = "namespace.inject.authgate.dev"
	WebhookPodOptIn       = "pod.inject.authgate.dev"
)

// WebhookConfiguration is the recommended MutatingWebhookConfiguration for
// the injector (the Helm chart renders the same). clientConfig points at the
// webhook server (a Service with Path, or a URL) and carries the CA bundle.
//
// The opt-in rules are split over two webhooks whose selectors partition the
// pods, so that the API server calls the injector only for pods that opted
// in (never twice for one pod) and a webhook outage blocks only those pods,
// never the rest of the cluster:
//   - namespace opt-in: namespace authgate.dev/inject=enabled and pod label
//     not "false";
//   - pod opt-in: pod authgate.dev/inject=true in a namespace labelled
//     neither enabled nor disabled.
//
// Both exclude kube-system and cfg.ExcludeNamespaces by name. The handler
// applies the same rules again, so broader selectors stay correct.
func WebhookConfiguration(name string, clientConfig admissionregistrationv1.WebhookClientConfig, cfg Config) *admissionregistrationv1.MutatingWebhookConfiguration {
	excluded := []string{kubeSystem}
	for _, ns := range cfg.ExcludeNamespaces {
		if !slices.Contains(excluded, ns) {
			excluded = append(excluded, ns)
		}
	}
	notExcluded := metav1.LabelSelectorRequirement{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: excluded}
	hook := func(name string, nsSel, podSel metav1.LabelSelectorRequirement) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name,
			ClientConfig:            *clientConfig.DeepCopy(),
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptrTo(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptrTo(admissionregistrationv1.Fail),
			MatchPolicy:             ptrTo(admissionregistrationv1.Equivalent),
			ReinvocationPolicy:      ptrTo(admissionregistrationv1.IfNeededReinvocationPolicy), // idempotent: a re-run after later mutators is a no-op
			TimeoutSeconds:          ptrTo(int32(10)),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptrTo(admissionregistrationv1.NamespacedScope),
				},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{nsSel, notExcluded}},
			ObjectSelector:    &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{podSel}},
		}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook(WebhookNamespaceOptIn,
				metav1.LabelSelectorRequirement{Key: LabelInject, Operator: metav1.LabelSelectorOpIn, Values: []string{NamespaceEnabled}},
				metav1.LabelSelectorRequirement{Key: LabelInject, Operator: metav1.LabelSelectorOpNotIn, Values: []string{PodDisabled}}),
			hook(WebhookPodOptIn,
				metav1.LabelSelectorRequirement{Key: LabelInject, Operator: metav1.LabelSelectorOpNotIn, Values: []string{NamespaceEnabled, NamespaceDisabled}},
				metav1.LabelSelectorRequirement{Key: LabelInject, Operator: metav1.LabelSelectorOpIn, Values: []string{PodEnabled}}),
		},
	}
}
