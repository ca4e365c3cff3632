package netpol_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/netpol"
	"github.com/authgate/authgate/test/k8senv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(k8senv.Main(k8senv.Options{CRDs: true}, func(env *k8senv.Env) int {
		k8s = env.Client
		return m.Run()
	}))
}

func policy(ns, name string, sel *metav1.LabelSelector, targets *v1alpha1.Targets) *v1alpha1.AuthPolicy {
	return &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AuthPolicySpec{
			Selector: sel, Targets: targets,
			Routes: []v1alpha1.Route{{Name: "all", Paths: []string{"/**"}, Public: true}},
		},
	}
}

func TestDesiredGolden(t *testing.T) {
	p := policy("shop", "orders", &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "orders"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"api"}}},
	}, &v1alpha1.Targets{KnativeService: "orders"})
	got, err := yaml.Marshal(netpol.Desired(p))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "orders.golden.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update):\n%s", path, got)
	}
}

func TestDesired(t *testing.T) {
	// A contradiction between selector and targets selects nothing: no
	// NetworkPolicy (the AuthPolicy's status reports the invalid spec).
	bad := policy("shop", "bad", &metav1.LabelSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "a"}}, &v1alpha1.Targets{KnativeService: "b"})
	if np := netpol.Desired(bad); np != nil {
		t.Errorf("contradicting selector: got %v, want none", np.Spec.PodSelector)
	}
	// An empty selector still only selects injected pods.
	all := netpol.Desired(policy("shop", "all", &metav1.LabelSelector{}, nil))
	if got := all.Spec.PodSelector.MatchLabels; len(got) != 1 || got[netpol.LabelInjected] != "true" {
		t.Errorf("empty selector: got %v, want exactly the injected label", got)
	}
	long := string(bytes.Repeat([]byte("a"), 253))
	if n := netpol.Name(long); len(n) > 253 || n == netpol.Name(long[:252]+"b") {
		t.Errorf("Name of a 253-character policy = %q (%d)", n, len(n))
	}
}

func newNamespace(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "np-" + hex.EncodeToString(b)
	if err := k8s.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestReconcile runs the reconciler against a real API server: created
// with the owner reference, restored after an edit and after a deletion,
// removed when the feature is off and when the policy is gone (envtest has
// no garbage collector, so the owner reference is checked and the
// controller's own cleanup is what removes it here), and someone else's
// NetworkPolicy of the same name is never deleted.
func TestReconcile(t *testing.T) {
	ctx := t.Context()
	scheme, err := controllers.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	p := policy(ns, "orders", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders"}}, nil)
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	on := &netpol.Reconciler{Client: k8s, Scheme: scheme, Enabled: true}
	off := &netpol.Reconciler{Client: k8s, Scheme: scheme, Enabled: false}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "orders"}}
	key := types.NamespacedName{Namespace: ns, Name: netpol.Name("orders")}
	run := func(r *netpol.Reconciler) {
		t.Helper()
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) *networkingv1.NetworkPolicy {
		t.Helper()
		var np networkingv1.NetworkPolicy
		if err := k8s.Get(ctx, key, &np); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := np.Spec.PodSelector.MatchLabels; got["app"] != "orders" || got[netpol.LabelInjected] != "true" {
			t.Errorf("%s: pod selector %v", what, got)
		}
		if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != len(netpol.Ports) || len(np.Spec.Ingress[0].From) != 0 {
			t.Errorf("%s: ingress %+v, want one rule with the named ports from anywhere", what, np.Spec.Ingress)
		}
		if refs := np.OwnerReferences; len(refs) != 1 || refs[0].UID != p.UID || refs[0].Controller == nil || !*refs[0].Controller {
			t.Errorf("%s: owner references %+v, want the AuthPolicy as controller", what, refs)
		}
		return &np
	}
	gone := func(what string) {
		t.Helper()
		var np networkingv1.NetworkPolicy
		if err := k8s.Get(ctx, key, &np); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: got %v, want no NetworkPolicy", what, err)
		}
	}

	run(on)
	np := check("created")

	// Someone opens the function's port: restored.
	admin := intstr.FromInt32(8080)
	np.Spec.Ingress[0].Ports = append(np.Spec.Ingress[0].Ports, networkingv1.NetworkPolicyPort{Port: &admin})
	np.Spec.PodSelector.MatchLabels = map[string]string{"app": "nothing"}
	if err := k8s.Update(ctx, np); err != nil {
		t.Fatal(err)
	}
	run(on)
	check("restored after an edit")

	if err := k8s.Delete(ctx, np); err != nil {
		t.Fatal(err)
	}
	run(on)
	check("restored after a deletion")

	run(off)
	gone("feature off")
	run(on)
	check("feature on again")

	// The policy goes: the controller removes what it wrote.
	if err := k8s.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	run(on)
	gone("policy deleted")

	// A NetworkPolicy of the same name without the managed-by label is
	// not ours: left alone.
	foreign := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}}}
	if err := k8s.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	run(off)
	var still networkingv1.NetworkPolicy
	if err := k8s.Get(ctx, key, &still); err != nil {
		t.Fatalf("someone else's NetworkPolicy was deleted: %v", err)
	}

}
