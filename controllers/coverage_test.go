package controllers_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/test/metrictest"
	"github.com/authgate/authgate/test/wait"
)

// Two writers share an AuthPolicy's status: the AuthPolicy reconciler
// owns the conditions (and the rest), the coverage reconciler
// status.coverage alone. Neither wipes the other's field: the coverage
// written while the policy was refused survives the conditions' rewrite
// when it is accepted, and the conditions survive the coverage's rewrite
// when a pod appears. Ready keeps its meaning (rendered), whatever the
// coverage.
func TestCoverageAndConditionsCoexist(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"faas_function": "orders"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "fn", Image: "example.com/orders:1"}}},
		}
	}
	if err := k8s.Create(ctx, pod("orders-1")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, policyFromYAML(t, ns, apiKeyPolicy)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionAccepted, metav1.ConditionFalse, "SecretNotFound")
	waitCoverage(t, ns, "partners", "0/1 protected, 1 unprotected")

	// Accepted: the conditions are rewritten, the coverage stays.
	if err := k8s.Create(ctx, apiKeySecret(ns, "agk_coverage_test_key_0001")); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	if c := got.Status.Coverage; c == nil || c.Summary != "0/1 protected, 1 unprotected" {
		t.Fatalf("got coverage %+v after the conditions changed, want it kept", c)
	}

	// Another pod: the coverage is rewritten, the conditions stay.
	if err := k8s.Create(ctx, pod("orders-2")); err != nil {
		t.Fatal(err)
	}
	got = waitCoverage(t, ns, "partners", "0/2 protected, 2 unprotected")
	if c := condition(got, v1alpha1.ConditionReady); c.Status != metav1.ConditionTrue || c.Reason != controllers.ReasonRendered {
		t.Fatalf("got Ready %+v after the coverage changed, want it kept (True, Rendered)", c)
	}
	if v := metrictest.Sum(t, registry, "authgate_controller_policy_unprotected_pods", "namespace", ns, "policy", "partners"); v != 2 {
		t.Errorf("got authgate_controller_policy_unprotected_pods %v, want 2", v)
	}
}

func waitCoverage(t *testing.T, ns, name, summary string) *v1alpha1.AuthPolicy {
	t.Helper()
	var p *v1alpha1.AuthPolicy
	wait.ForNil(t, settle, func() error {
		p = get(t, ns, name)
		if c := p.Status.Coverage; c == nil || c.Summary != summary || c.ObservedGeneration != p.Generation {
			return fmt.Errorf("generation %d, coverage %+v", p.Generation, c)
		}
		return nil
	}, "coverage %q of %s/%s", summary, ns, name)
	return p
}
