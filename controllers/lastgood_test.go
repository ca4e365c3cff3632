package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/bundle"
	"github.com/authgate/authgate/controllers/issuers"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/wait"
)

// rejectedAfterGoodGeneration creates the API-key policy, waits for
// generation 1 to be rendered, then breaks its Rego and waits until the
// sidecars keep enforcing generation 1.
func rejectedAfterGoodGeneration(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Create(ctx, apiKeySecret(ns, "agk_last_good_test_key_0001")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, policyFromYAML(t, ns, apiKeyPolicy)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	updateSpec(t, ns, "partners", func(p *v1alpha1.AuthPolicy) {
		p.Spec.Rego.Inline = "package authgate.authz\n\ndecision := \n"
	})
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonLastGoodGeneration)
	if c, _ := bundleConfig(t, ns); policyVersion(c, ns+"/partners") != "1" {
		t.Fatalf("got version %q in the bundle, want the last good generation 1", policyVersion(c, ns+"/partners"))
	}
}

// The controller keeps the last good generation in memory, not in the
// bundle it wrote: a bundle emptied by hand while the policy is rejected
// gets the last good generation back.
func TestLastGoodGenerationIsKeptInMemory(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	rejectedAfterGoodGeneration(t, ns)

	empty, err := bundle.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: config.BundleSecret}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data[config.BundleKey] = empty
	if err := k8s.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		c, _ := bundleConfig(t, ns)
		if v := policyVersion(c, ns+"/partners"); v != "1" {
			return fmt.Errorf("version %q in the bundle", v)
		}
		return nil
	}, "the last good generation written back over the hand edit")
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonLastGoodGeneration)
}

// A controller that starts while a policy is rejected (a restart, a new
// leader) has nothing in memory: it seeds it from the bundle, so the last
// good generation stays in force and the bundle is not rewritten.
func TestRestartWhileRejectedKeepsTheLastGoodGeneration(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	rejectedAfterGoodGeneration(t, ns)
	_, before := bundleConfig(t, ns)

	restarted := &controllers.Reconciler{
		Client: k8s, APIReader: k8s,
		Issuers: issuers.New(issuers.Options{
			HTTPClient: &http.Client{Transport: hangingTransport{}}, MinRefresh: time.Second, FetchTimeout: time.Second,
		}),
		Recorder: events.NewFakeRecorder(100), Metrics: controllers.NewMetrics(prometheus.NewRegistry()),
		Now: time.Now, MaxRequeue: time.Minute,
	}
	if _, err := restarted.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	c, after := bundleConfig(t, ns)
	if v := policyVersion(c, ns+"/partners"); v != "1" {
		t.Fatalf("got version %q in the bundle after the restart, want the last good generation 1", v)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("got the bundle rewritten by the restarted controller:\n%s\nwant it unchanged:\n%s", after.Data[config.BundleKey], before.Data[config.BundleKey])
	}
	p := get(t, ns, "partners")
	if r := condition(p, v1alpha1.ConditionReady); r.Reason != controllers.ReasonLastGoodGeneration || r.ObservedGeneration != p.Generation {
		t.Fatalf("got Ready %s/%s for generation %d, want %s for %d", r.Status, r.Reason, r.ObservedGeneration, controllers.ReasonLastGoodGeneration, p.Generation)
	}
}
