package cluster

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/test/wait"
)

// TestCoverage: the plain example's AuthPolicy reports its injected pod
// as protected; a pod its selector matches that opted out of injection
// (authgate.dev/inject=false, in a namespace that opts in) is reported as
// unprotected, by name, with a Warning event on the policy, and stops
// being counted once it is deleted. The opted-out pod uses an image that
// is never pulled (imagePullPolicy Never, absent from the node), so it
// never runs, never becomes a Service endpoint and sends no traffic:
// coverage counts pods from their metadata, whatever their phase.
func TestCoverage(t *testing.T) {
	const ns, policy = "plain-demo", "hello"
	dumpOnFailure(t, ns)
	apply(t, filepath.Join(repoRoot, "examples", "plain-deployment.yaml"))
	readyPods(t, ns, map[string]string{"app": "hello"}, 1)

	coverage := func() *v1alpha1.CoverageStatus {
		var p v1alpha1.AuthPolicy
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: policy}, &p); err != nil {
			t.Logf("get AuthPolicy %s/%s: %v", ns, policy, err)
			return nil
		}
		if c := p.Status.Coverage; c != nil && c.ObservedGeneration == p.Generation {
			return c
		}
		return nil
	}
	// Other tests restart and scale this Deployment: wait for the one
	// injected pod the example runs to be counted alone.
	wait.For(t, podReadyTimeout, func() bool {
		c := coverage()
		return c != nil && c.SelectedPods == 1 && c.ProtectedPods == 1 && c.UnprotectedPods == 0
	}, "AuthPolicy %s/%s status.coverage 1/1 protected", ns, policy)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, GenerateName: "hello-opted-out-",
			Labels: map[string]string{"app": "hello", "authgate.dev/inject": "false"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "function", Image: "dev.local/authgate/never-pulled:none", ImagePullPolicy: corev1.PullNever,
			}},
			TerminationGracePeriodSeconds: ptrTo(int64(0)),
		},
	}
	start := time.Now()
	if err := k8s.Create(t.Context(), pod); err != nil {
		t.Fatalf("create opted-out pod: %v", err)
	}
	t.Cleanup(func() { _ = k8s.Delete(t.Context(), pod) })
	if hasContainer(pod, "authgate-proxy") {
		t.Fatalf("pod %s opted out but was injected", pod.Name)
	}
	wait.For(t, podReadyTimeout, func() bool {
		c := coverage()
		return c != nil && c.SelectedPods == 2 && c.ProtectedPods == 1 && c.UnprotectedPods == 1 && slices.Equal(c.Unprotected, []string{pod.Name})
	}, "status.coverage reporting opted-out pod %s as unprotected", pod.Name)
	figs.add("coverage_unprotected_pod_reported", time.Since(start).Seconds(), "s")
	c := coverage()
	t.Logf("status.coverage with the opted-out pod: %+v", *c)
	if want := "1/2 protected, 1 unprotected"; c.Summary != want {
		t.Errorf("summary %q, want %q", c.Summary, want)
	}
	wait.ForNil(t, podReadyTimeout, func() error {
		var list eventsv1.EventList
		if err := k8s.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "AuthPolicy" && e.Regarding.Name == policy && e.Reason == "UnprotectedPods" && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no Warning UnprotectedPods event on AuthPolicy %s among %d events", policy, len(list.Items))
	}, "Warning event UnprotectedPods on AuthPolicy %s/%s", ns, policy)

	if err := k8s.Delete(t.Context(), pod); err != nil {
		t.Fatalf("delete opted-out pod: %v", err)
	}
	wait.For(t, podReadyTimeout, func() bool {
		c := coverage()
		return c != nil && c.SelectedPods == 1 && c.ProtectedPods == 1 && c.UnprotectedPods == 0 && len(c.Unprotected) == 0
	}, "status.coverage back to 1/1 protected after deleting %s", pod.Name)
}
