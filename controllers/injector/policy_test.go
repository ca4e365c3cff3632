package injector_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/test/wait"
)

// --injector-require-policy is tested through a second webhook with the
// option on, at requirePolicyPath, called only in namespaces labelled
// labelRequirePolicy. Its configuration's name sorts first, so the API
// server calls it before the plain injector (which then finds the pod
// already injected).
const (
	requirePolicyPath  = "/inject-authgate-require-policy"
	labelRequirePolicy = "authgate.test/require-policy"
)

func requirePolicyWebhook(cc admissionregistrationv1.WebhookClientConfig, cfg injector.Config) *admissionregistrationv1.MutatingWebhookConfiguration {
	wc := injector.WebhookConfiguration("a-authgate-injector-require-policy", cc, cfg)
	for i := range wc.Webhooks {
		wc.Webhooks[i].NamespaceSelector.MatchLabels = map[string]string{labelRequirePolicy: "true"}
	}
	return wc
}

func registerRequirePolicy(mgr ctrl.Manager, cfg injector.Config) error {
	cfg.RequirePolicy = true
	h, err := injector.NewHandler(cfg, mgr.GetClient(), admission.NewDecoder(mgr.GetScheme()), injector.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		return err
	}
	mgr.GetWebhookServer().Register(requirePolicyPath, &admission.Webhook{Handler: h})
	return nil
}

func TestPolicySelects(t *testing.T) {
	t.Parallel()
	orders := v1alpha1.AuthPolicy{Spec: v1alpha1.AuthPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders"}}}}
	fn := v1alpha1.AuthPolicy{Spec: v1alpha1.AuthPolicySpec{Targets: &v1alpha1.Targets{OpenFaaSFunction: "env"}}}
	bad := v1alpha1.AuthPolicy{Spec: v1alpha1.AuthPolicySpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "a"}},
		Targets:  &v1alpha1.Targets{KnativeService: "b"},
	}}
	deleting := *orders.DeepCopy()
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	tests := []struct {
		name     string
		policies []v1alpha1.AuthPolicy
		labels   map[string]string
		want     bool
	}{
		{"no policy", nil, map[string]string{"app": "orders"}, false},
		{"selector matches", []v1alpha1.AuthPolicy{bad, orders}, map[string]string{"app": "orders"}, true},
		{"targets match", []v1alpha1.AuthPolicy{fn}, map[string]string{"faas_function": "env"}, true},
		{"none matches", []v1alpha1.AuthPolicy{orders, fn}, map[string]string{"app": "cart"}, false},
		{"invalid selector selects nothing", []v1alpha1.AuthPolicy{bad}, map[string]string{"serving.knative.dev/service": "a"}, false},
		{"a policy being deleted selects nothing", []v1alpha1.AuthPolicy{deleting}, map[string]string{"app": "orders"}, false},
		{"empty selector selects every pod", []v1alpha1.AuthPolicy{{}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := injector.PolicySelects(tt.policies, tt.labels); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// Through a real API server: with --injector-require-policy an opted-in
// pod no policy selects is refused with a message naming the namespace
// and the fix; once a policy selects it, it is injected; a pod that did
// not opt in is never refused.
func TestAdmissionRequirePolicy(t *testing.T) {
	t.Parallel()
	ctx := requireEnvtest(t)
	ns := newNamespace(t, ctx, injector.NamespaceEnabled)
	var n corev1.Namespace
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
		t.Fatal(err)
	}
	n.Labels[labelRequirePolicy] = "true"
	if err := k8s.Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	_, err := create(t, ctx, ns, plainPod(withLabel("app", "orders")))
	if err == nil {
		t.Fatal("got the pod created, want it refused: no AuthPolicy selects it")
	}
	for _, want := range []string{"no AuthPolicy in namespace " + ns + " selects it", "app=orders", "kubectl get authpolicies -n " + ns, "authgate.dev/inject=false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
	// Not opted in: never refused.
	if _, err := create(t, ctx, ns, plainPod(withLabel("app", "orders"), withLabel(injector.LabelInject, injector.PodDisabled))); err != nil {
		t.Fatalf("an opted-out pod was refused: %v", err)
	}
	p := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders"},
		Spec: v1alpha1.AuthPolicySpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders"}},
			Routes:   []v1alpha1.Route{{Name: "all", Paths: []string{"/**"}, Public: true}},
		},
	}
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	// The handler reads policies from its cache: a workload controller
	// retries a refused pod, and so does this test.
	var got *corev1.Pod
	wait.ForNil(t, 0, func() error {
		var err error
		got, err = create(t, ctx, ns, plainPod(withLabel("app", "orders")))
		return err
	}, "the pod the new policy selects to be admitted")
	if !injected(got) {
		t.Fatalf("got containers %v, want the sidecar", names(got))
	}
}
