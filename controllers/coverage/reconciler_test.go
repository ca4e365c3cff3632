package coverage_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/coverage"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/test/k8senv"
	"github.com/authgate/authgate/test/metrictest"
	"github.com/authgate/authgate/test/wait"
)

// k8s is a client of a real kube-apiserver and etcd (envtest, no kubelet:
// pods are stored, never run) with a manager running the coverage
// reconciler alone, its metrics on registry. Pods are "injected" here by
// the labels and annotations the injector writes.
var (
	k8s      client.Client
	registry = prometheus.NewRegistry()
)

// settle bounds a wait for the reconciler, generous for a shared machine.
const settle = 30 * time.Second

func TestMain(m *testing.M) {
	// The counting tests need no API server: without the envtest binaries
	// they run, and those needing one skip.
	os.Exit(k8senv.Main(k8senv.Options{CRDs: true, Optional: true}, func(env *k8senv.Env) int {
		if env == nil {
			return m.Run()
		}
		k8s = env.Client
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		r := &coverage.Reconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("authgate-controller"),
			Metrics: coverage.NewMetrics(registry), ReadNamespaces: true, Workers: 2,
		}
		if err := r.SetupWithManager(mgr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), logf.Log))
		done := make(chan error, 1)
		go func() { done <- mgr.Start(ctx) }()
		code := m.Run()
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
			return 1
		}
		return code
	}))
}

// newNamespace creates a namespace, labelled inject when not empty, with
// the default ServiceAccount pods need (envtest runs no
// controller-manager).
func newNamespace(t *testing.T, inject string) string {
	t.Helper()
	if k8s == nil {
		t.Skip("needs envtest (a real API server): run `make envtest`")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "cov-" + hex.EncodeToString(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if inject != "" {
		ns.Labels = map[string]string{injector.LabelInject: inject}
	}
	if err := k8s.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

type podOpt func(*corev1.Pod)

func labelled(k, v string) podOpt { return func(p *corev1.Pod) { p.Labels[k] = v } }

// injectedPod marks the pod as the injector does, capture on or off.
func injectedPod(capture bool) podOpt {
	return func(p *corev1.Pod) {
		p.Labels[injector.LabelInjected] = "true"
		p.Annotations[injector.AnnotationInjected] = "true"
		p.Annotations[injector.AnnotationInboundCapture] = fmt.Sprint(capture)
	}
}

func createPod(t *testing.T, ns, name string, opts ...podOpt) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}, Annotations: map[string]string{}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "fn", Image: "example.com/fn:1"}}},
	}
	for _, o := range opts {
		o(p)
	}
	if err := k8s.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func deletePod(t *testing.T, ns, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Delete(t.Context(), p, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
}

func createPolicy(t *testing.T, ns, name string, sel *metav1.LabelSelector, targets *v1alpha1.Targets) {
	t.Helper()
	p := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AuthPolicySpec{
			Selector: sel, Targets: targets,
			Routes: []v1alpha1.Route{{Name: "all", Paths: []string{"/**"}, Public: true}},
		},
	}
	if err := k8s.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func app(v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": v}}
}

// waitSummary waits for the policy's coverage summary and returns it.
func waitSummary(t *testing.T, ns, name, want string) *v1alpha1.CoverageStatus {
	t.Helper()
	var c *v1alpha1.CoverageStatus
	wait.ForNil(t, settle, func() error {
		var p v1alpha1.AuthPolicy
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
			return err
		}
		c = p.Status.Coverage
		if c == nil || c.Summary != want || c.ObservedGeneration != p.Generation {
			return fmt.Errorf("generation %d, coverage %+v", p.Generation, c)
		}
		return nil
	}, "coverage %q of %s/%s", want, ns, name)
	return c
}

// waitMetric waits for the gauge's value of the series with labels.
func waitMetric(t *testing.T, name string, want float64, labels ...string) {
	t.Helper()
	wait.ForNil(t, settle, func() error {
		if got := metrictest.Sum(t, registry, name, labels...); got != want {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	}, "%s%v = %v", name, labels, want)
}

// waitEvents waits until the events regarding name with reason number want.
func waitEvents(t *testing.T, ns, name, reason string, want int) []eventsv1.Event {
	t.Helper()
	var found []eventsv1.Event
	wait.ForNil(t, settle, func() error {
		found = events(t, ns, name, reason)
		if len(found) != want {
			return fmt.Errorf("got %d", len(found))
		}
		return nil
	}, "%d %s events on %s/%s", want, reason, ns, name)
	return found
}

func events(t *testing.T, ns, name, reason string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(list.Items, func(e eventsv1.Event) bool { return e.Regarding.Name != name || e.Reason != reason })
}

// Several policies in one opted-in namespace; pods selected by none, one
// and two of them, injected or not, capture opted out, opted out of
// injection; pods created and deleted: the counts, the gauges and the
// events follow.
func TestCoverageConverges(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, injector.NamespaceEnabled)
	createPolicy(t, ns, "orders", app("orders"), nil)
	createPolicy(t, ns, "api", &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "api"}}, nil)
	createPolicy(t, ns, "nothing", app("nothing"), nil)
	createPolicy(t, ns, "bad", &metav1.LabelSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "a"}}, &v1alpha1.Targets{KnativeService: "b"})

	createPod(t, ns, "o1", labelled("app", "orders"), labelled("tier", "api"), injectedPod(true)) // two policies
	createPod(t, ns, "o2", labelled("app", "orders"))                                             // not injected
	createPod(t, ns, "o3", labelled("app", "orders"), injectedPod(false))                         // capture off
	createPod(t, ns, "a1", labelled("tier", "api"), injectedPod(true))
	createPod(t, ns, "lone", injectedPod(true)) // no policy selects it
	createPod(t, ns, "out", labelled(injector.LabelInject, injector.PodDisabled))

	c := waitSummary(t, ns, "orders", "1/3 protected, 1 unprotected, 1 bypassable")
	if !slices.Equal(c.Unprotected, []string{"o2"}) || c.SelectedPods != 3 {
		t.Errorf("got %+v, want 3 selected and o2 listed unprotected", c)
	}
	waitSummary(t, ns, "api", "2/2 protected")
	waitSummary(t, ns, "nothing", "0/0 protected")
	waitSummary(t, ns, "bad", "invalid selector (see Accepted)")

	waitMetric(t, "authgate_controller_policy_selected_pods", 3, "namespace", ns, "policy", "orders")
	waitMetric(t, "authgate_controller_policy_unprotected_pods", 1, "namespace", ns, "policy", "orders")
	waitMetric(t, "authgate_controller_policy_bypassable_pods", 1, "namespace", ns, "policy", "orders")
	waitMetric(t, "authgate_controller_policy_selected_pods", 2, "namespace", ns, "policy", "api")
	waitMetric(t, "authgate_controller_injected_unselected_pods", 1, "namespace", ns)
	waitMetric(t, "authgate_controller_opted_out_pods", 1, "namespace", ns)

	waitEvents(t, ns, "orders", coverage.ReasonUnprotectedPods, 1)
	waitEvents(t, ns, "orders", coverage.ReasonBypassablePods, 1)
	if e := waitEvents(t, ns, "out", coverage.ReasonOptedOut, 1)[0]; e.Regarding.Kind != "Pod" || e.Type != corev1.EventTypeNormal {
		t.Errorf("got event regarding %s of type %s, want a Normal one on the Pod", e.Regarding.Kind, e.Type)
	}
	if got := events(t, ns, "api", coverage.ReasonUnprotectedPods); len(got) != 0 {
		t.Errorf("got %d UnprotectedPods events on a fully protected policy, want none", len(got))
	}

	// Unrelated churn (a pod of no policy) changes no count: no new event.
	createPod(t, ns, "other", labelled("app", "other"))
	deletePod(t, ns, "lone")
	waitMetric(t, "authgate_controller_injected_unselected_pods", 0, "namespace", ns)
	if got := events(t, ns, "orders", coverage.ReasonUnprotectedPods); len(got) != 1 {
		t.Errorf("got %d UnprotectedPods events after unrelated churn, want still 1", len(got))
	}

	// The unprotected and the bypassable pods go: every pod protected.
	deletePod(t, ns, "o2")
	waitSummary(t, ns, "orders", "1/2 protected, 1 bypassable")
	waitMetric(t, "authgate_controller_policy_unprotected_pods", 0, "namespace", ns, "policy", "orders")
	deletePod(t, ns, "o3")
	c = waitSummary(t, ns, "orders", "1/1 protected")
	if c.Unprotected != nil || c.UnprotectedPods != 0 || c.BypassablePods != 0 {
		t.Errorf("got %+v, want the unprotected list and counts cleared", c)
	}
	waitEvents(t, ns, "orders", coverage.ReasonPodsProtected, 1)

	// An unprotected pod comes back: a new warning.
	createPod(t, ns, "o4", labelled("app", "orders"))
	waitSummary(t, ns, "orders", "1/2 protected, 1 unprotected")
	waitEvents(t, ns, "orders", coverage.ReasonUnprotectedPods, 2)

	// A policy deleted takes its series along.
	if err := k8s.Delete(t.Context(), &v1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nothing"}}); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		if got := metrictest.Labelled(t, registry, "policy", "nothing"); len(got) != 0 {
			return fmt.Errorf("series %v", got)
		}
		return nil
	}, "the series of the deleted policy to go")
}

// A selector edit is counted against the new generation.
func TestCoverageFollowsTheSelector(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, injector.NamespaceEnabled)
	createPolicy(t, ns, "fn", app("a"), nil)
	createPod(t, ns, "a", labelled("app", "a"), injectedPod(true))
	createPod(t, ns, "b", labelled("app", "b"))
	waitSummary(t, ns, "fn", "1/1 protected")
	var p v1alpha1.AuthPolicy
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "fn"}, &p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Selector = app("b")
	if err := k8s.Update(t.Context(), &p); err != nil {
		t.Fatal(err)
	}
	if c := waitSummary(t, ns, "fn", "0/1 protected, 1 unprotected"); c.ObservedGeneration != 2 {
		t.Errorf("got observedGeneration %d, want 2", c.ObservedGeneration)
	}
}

// Outside an opted-in namespace an opt-out label means nothing: no
// opted-out count, no event; and a namespace with nothing of authgate in
// it has no series at all.
func TestOptOutOutsideOptedInNamespaces(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	createPod(t, ns, "out", labelled(injector.LabelInject, injector.PodDisabled))
	createPod(t, ns, "marker", labelled("app", "x"))
	// A policy created after the pods: its coverage proves the namespace
	// was reconciled with both pods in the cache.
	createPolicy(t, ns, "x", app("x"), nil)
	waitSummary(t, ns, "x", "0/1 protected, 1 unprotected")
	waitMetric(t, "authgate_controller_opted_out_pods", 0, "namespace", ns)
	if got := events(t, ns, "out", coverage.ReasonOptedOut); len(got) != 0 {
		t.Errorf("got %d opted-out events outside an opted-in namespace, want none", len(got))
	}
	if err := k8s.Delete(t.Context(), &v1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}}); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		if got := metrictest.Labelled(t, registry, "namespace", ns); len(got) != 0 {
			return fmt.Errorf("series %v", got)
		}
		return nil
	}, "every series of namespace %s to go", ns)
}
