package injector

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/translate"
)

// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies,verbs=get;list;watch

// PolicySelects says whether a policy of policies (not being deleted, with
// a valid selector) selects a pod labelled l: the rule the bundle and the
// sidecars apply (translate.PodSelector).
func PolicySelects(policies []v1alpha1.AuthPolicy, l map[string]string) bool {
	for i := range policies {
		p := &policies[i]
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		ls, err := translate.PodSelector(&p.Spec)
		if err != nil {
			continue
		}
		if sel, err := metav1.LabelSelectorAsSelector(ls); err == nil && sel.Matches(labels.Set(l)) {
			return true
		}
	}
	return false
}

// requirePolicy refuses pod (injected, in namespace ns) when no AuthPolicy
// of ns selects it (Config.RequirePolicy); refused is false when one does.
func (h *Handler) requirePolicy(ctx context.Context, pod *corev1.Pod, ns string) (resp admission.Response, result string, refused bool) {
	var list v1alpha1.AuthPolicyList
	if err := h.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		log.FromContext(ctx).Error(err, "listing the namespace's AuthPolicies failed", "namespace", ns)
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("authgate injection: list the AuthPolicies of namespace %s: %w", ns, err)), ResultError, true
	}
	if PolicySelects(list.Items, pod.Labels) {
		return admission.Response{}, "", false
	}
	msg := NoPolicyMessage(ns, pod.Labels)
	log.FromContext(ctx).Info("pod denied", "reason", msg)
	return admission.Denied(msg), ResultDenied, true
}

// NoPolicyMessage is the refusal of a pod labelled l that no AuthPolicy of
// namespace ns selects.
func NoPolicyMessage(ns string, l map[string]string) string {
	var shown []string
	for k, v := range l {
		if k != LabelInjected {
			shown = append(shown, k+"="+v)
		}
	}
	sort.Strings(shown)
	return fmt.Sprintf("the pod opted in to authgate, but no AuthPolicy in namespace %s selects it (pod labels: %s), so its sidecar would deny every request "+
		"and the injector refuses it (--injector-require-policy): create an AuthPolicy in %s whose selector or targets match these labels "+
		"(kubectl get authpolicies -n %s shows the existing ones), or opt the pod out with the label %s=%s",
		ns, orNone(strings.Join(shown, ",")), ns, ns, LabelInject, PodDisabled)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
