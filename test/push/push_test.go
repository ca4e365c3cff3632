package push_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/coverage"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/wait"
)

// ordersPolicy selects the orders function: /healthz public, /orders/**
// for the partner's API key.
const ordersPolicy = `
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: orders}
spec:
  selector: {matchLabels: {app: orders}}
  authentication:
    apiKeys: {secretNames: [partner]}
  routes:
    - {name: health, paths: [/healthz], public: true}
    - {name: orders, methods: [GET], paths: ["/orders/**"]}
`

const partnerKey = "agk_push_partner_key_00000001"

// withOrdersPolicy creates the partner's API key and ordersPolicy in ns.
func withOrdersPolicy(t *testing.T, ns string) {
	t.Helper()
	if err := k8s.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "partner", Labels: map[string]string{translate.LabelAPIKey: "true"}},
		StringData: map[string]string{"key": partnerKey, "subject": "partner"},
	}); err != nil {
		t.Fatal(err)
	}
	createPolicy(t, ns, ordersPolicy)
}

// protectHealth makes ordersPolicy's public /healthz need the API key.
func protectHealth(p *v1alpha1.AuthPolicy) { p.Spec.Routes[0].Public = false }

// expectGeneration1 checks that a sidecar enforces ordersPolicy as created.
func expectGeneration1(t *testing.T, s *sidecar) {
	t.Helper()
	s.expect(t, http.StatusOK, "/healthz")
	s.expect(t, http.StatusUnauthorized, "/orders/1")
	s.expect(t, http.StatusOK, "/orders/1", "X-API-Key", partnerKey)
	s.expect(t, http.StatusForbidden, "/admin", "X-API-Key", partnerKey)
}

// Three sidecars whose bundle file is never written enforce a policy and
// its update: what they enforce came over the push channel alone, and
// their acknowledgements make the policy's status say 3/3 at generation 2
// and Enforced=True.
func TestEnforcedOverPush(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "push-enforced")
	sidecars := withSidecars(t, ns, 3)
	// Connected before the namespace has a bundle: the policy arrives as
	// a Publish on open streams, not as the first message of a stream.
	for _, s := range sidecars {
		s.waitConnected(t, 1)
	}
	created := time.Now()
	withOrdersPolicy(t, ns)
	for _, s := range sidecars {
		s.waitReady(t)
	}
	took := waitStatus(t, sidecars, created, http.StatusOK, "/orders/1", "X-API-Key", partnerKey)
	t.Logf("figure: policy created → generation 1 enforced by the last of 3 sidecars: %s", took.Round(time.Millisecond))
	for _, s := range sidecars {
		expectGeneration1(t, s)
		if s.bundleFileExists() {
			t.Fatalf("sidecar %s: a bundle file exists; the test never writes one", s.pod.Name)
		}
		if got := s.metric(t, "authgate_proxy_push_updates_total", "outcome", "applied"); got < 1 {
			t.Fatalf("sidecar %s: %v bundles applied over push, want at least 1", s.pod.Name, got)
		}
	}
	waitEnforced(t, ns, "orders", "3/3 at generation 1", metav1.ConditionTrue, coverage.ReasonAllPodsEnforce, 1)

	updated := time.Now()
	updatePolicy(t, ns, "orders", protectHealth)
	took = waitStatus(t, sidecars, updated, http.StatusUnauthorized, "/healthz")
	t.Logf("figure: policy update → generation 2 enforced by the last of 3 sidecars: %s", took.Round(time.Millisecond))
	for _, s := range sidecars {
		s.expect(t, http.StatusOK, "/healthz", "X-API-Key", partnerKey)
	}
	p := waitEnforced(t, ns, "orders", "3/3 at generation 2", metav1.ConditionTrue, coverage.ReasonAllPodsEnforce, 2)
	if c := p.Status.Coverage; c.EnforcingPods != 3 || c.SelectedPods != 3 {
		t.Fatalf("coverage %+v, want 3 of 3 selected pods enforcing", c)
	}
	t.Logf("figure: policy update → status 3/3 at generation 2: %s", time.Since(updated).Round(time.Millisecond))
	for _, s := range sidecars {
		if s.bundleFileExists() {
			t.Fatalf("sidecar %s: a bundle file exists; the test never writes one", s.pod.Name)
		}
	}
}

// Of two selected pods only one runs its sidecar: the status reports the
// other as lagging.
func TestLaggingPodReported(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "push-lagging")
	running := startSidecar(t, newPod(t, ns, "orders-0"))
	newPod(t, ns, "orders-1") // its sidecar never starts
	withOrdersPolicy(t, ns)
	running.waitReady(t)
	waitStatus(t, []*sidecar{running}, time.Now(), http.StatusOK, "/orders/1", "X-API-Key", partnerKey)
	expectGeneration1(t, running)
	p := waitEnforced(t, ns, "orders", "1/2 at generation 1", metav1.ConditionFalse, coverage.ReasonPodsLagging, 1)
	if c := p.Status.Coverage; c.SelectedPods != 2 || c.ProtectedPods != 2 || c.EnforcingPods != 1 {
		t.Fatalf("coverage %+v, want 2 selected and protected, 1 enforcing", c)
	}
}

// A bundle file older than what the push channel delivered (the kubelet
// projecting the Secret late) does not replace it.
func TestStaleFileIgnored(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "push-stale")
	s := startSidecar(t, newPod(t, ns, "orders-0"))
	withOrdersPolicy(t, ns)
	s.waitReady(t)
	waitStatus(t, []*sidecar{s}, time.Now(), http.StatusOK, "/orders/1", "X-API-Key", partnerKey)
	expectGeneration1(t, s)
	waitEnforced(t, ns, "orders", "1/1 at generation 1", metav1.ConditionTrue, coverage.ReasonAllPodsEnforce, 1)
	older := bundleData(t, ns)

	updatePolicy(t, ns, "orders", protectHealth)
	waitStatus(t, []*sidecar{s}, time.Now(), http.StatusUnauthorized, "/healthz")
	waitEnforced(t, ns, "orders", "1/1 at generation 2", metav1.ConditionTrue, coverage.ReasonAllPodsEnforce, 2)
	newer := bundleData(t, ns)
	if r, rOld := config.HeadRevision(newer), config.HeadRevision(older); r <= rOld {
		t.Fatalf("revision of generation 2's bundle %d, want above generation 1's %d", r, rOld)
	}

	stale := s.metric(t, "authgate_config_reloads_total", "result", "stale")
	s.writeBundle(t, older)
	wait.ForNil(t, settle, func() error {
		if got := s.metric(t, "authgate_config_reloads_total", "result", "stale"); got <= stale {
			return fmt.Errorf("authgate_config_reloads_total{result=stale} %v", got)
		}
		return nil
	}, "the sidecar to find the older bundle file stale")
	s.expect(t, http.StatusUnauthorized, "/healthz")
	s.expect(t, http.StatusOK, "/healthz", "X-API-Key", partnerKey)
	waitEnforced(t, ns, "orders", "1/1 at generation 2", metav1.ConditionTrue, coverage.ReasonAllPodsEnforce, 2)
}
