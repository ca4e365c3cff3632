package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/issuers"
	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

func jwtPolicy(t *testing.T, ns, name, issuerURL string) *v1alpha1.AuthPolicy {
	t.Helper()
	return policyFromYAML(t, ns, fmt.Sprintf(`
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: %s}
spec:
  selector: {matchLabels: {app: fn}}
  authentication: {jwt: [{issuerURL: %q, audiences: [fn]}]}
  routes: [{name: all}]
`, name, issuerURL))
}

// bundleKids returns the key ids shipped inline for the first issuer of the
// namespace's bundle; nil when there is no bundle or no inline key set.
func bundleKids(t *testing.T, ns string) []string {
	t.Helper()
	c, _ := bundleConfig(t, ns)
	if c == nil || len(c.Issuers) == 0 || c.Issuers[0].JWKS == nil {
		return nil
	}
	kids := []string{}
	for _, raw := range c.Issuers[0].JWKS.Keys {
		var k struct {
			KID string `json:"kid"`
		}
		if err := json.Unmarshal(raw, &k); err != nil {
			t.Fatalf("inline key does not parse: %v", err)
		}
		kids = append(kids, k.KID)
	}
	slices.Sort(kids)
	return kids
}

// readyWithKeys returns nil once the policy is Ready and IssuersReady for
// its generation and the bundle ships the issuer's current keys, else what
// it is instead.
func readyWithKeys(t *testing.T, ns, name string, idp *faultidp.Server) error {
	t.Helper()
	p := get(t, ns, name)
	ready, keys := condition(p, v1alpha1.ConditionReady), condition(p, v1alpha1.ConditionIssuersReady)
	kids := bundleKids(t, ns)
	if ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != p.Generation ||
		keys.Status != metav1.ConditionTrue || keys.Reason != controllers.ReasonKeysFetched || keys.ObservedGeneration != p.Generation ||
		!slices.Equal(kids, idp.KIDs()) {
		return fmt.Errorf("Ready %s/%s, IssuersReady %s/%s, bundle kids %v", ready.Status, ready.Reason, keys.Status, keys.Reason, kids)
	}
	return nil
}

// Issue 9: a namespace whose issuer hangs must not delay another
// namespace. B's policy is rendered with its keys while A's first fetch
// is provably still in flight (the tarpit holds its first request: it
// never answers, or trickles a response header that never ends).
func TestHungIssuerDoesNotDelayOtherNamespaces(t *testing.T) {
	for _, fault := range []faultidp.Fault{faultidp.Hang, faultidp.TrickleHeaders} {
		t.Run(fmt.Sprintf("trickle=%v", fault == faultidp.TrickleHeaders), func(t *testing.T) {
			ctx := context.Background()
			tp := faultidp.New(t)
			tp.Set(faultidp.All, fault)
			nsA := newNamespace(t)
			if err := k8s.Create(ctx, jwtPolicy(t, nsA, "hung", tp.URL)); err != nil {
				t.Fatal(err)
			}
			wait.For(t, 30*time.Second, func() bool { return tp.Hits(faultidp.All) >= 1 }, "A's key fetch to reach the tarpit")
			idp := faultidp.New(t)
			nsB := newNamespace(t)
			start := time.Now()
			if err := k8s.Create(ctx, jwtPolicy(t, nsB, "healthy", idp.URL)); err != nil {
				t.Fatal(err)
			}
			wait.ForNil(t, 30*time.Second, func() error { return readyWithKeys(t, nsB, "healthy", idp) }, "B rendered with its keys")
			elapsed := time.Since(start)
			inFlight := tp.InFlight(1)
			t.Logf("namespace B was Ready with its keys %v after creation; A's first fetch still in flight: %v", elapsed, inFlight)
			if !inFlight {
				t.Fatalf("got A's first key fetch finished before B was ready (B took %v), want B ready while A's fetch hangs", elapsed)
			}
			// The figure (tens of ms here) is reported, not asserted: the
			// ordering above is what proves B never waits on A's IdP.
			// A meanwhile: rendered without keys, its issuer reported pending.
			a := get(t, nsA, "hung")
			if c := condition(a, v1alpha1.ConditionIssuersReady); c.Status != metav1.ConditionFalse || c.Reason != controllers.ReasonKeysPending {
				t.Fatalf("got A's IssuersReady %s/%s while its fetch hangs, want False/%s", c.Status, c.Reason, controllers.ReasonKeysPending)
			}
			// Once the fetch gives up, A reports the failure; still rendered.
			waitCondition(t, nsA, "hung", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonFetchFailed)
			waitCondition(t, nsA, "hung", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
		})
	}
}

// An issuer that is down when the policy is created is picked up when it
// comes back, with no other event (no policy edit, nothing in the
// namespace changes).
func TestIssuerComingUpLaterIsPickedUp(t *testing.T) {
	ctx := context.Background()
	idp := faultidp.New(t)
	idp.Set(faultidp.All, faultidp.Down)
	ns := newNamespace(t)
	if err := k8s.Create(ctx, jwtPolicy(t, ns, "later", idp.URL)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "later", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonFetchFailed)
	waitCondition(t, ns, "later", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	if kids := bundleKids(t, ns); kids != nil {
		t.Fatalf("got inline keys %v while the issuer is down, want none", kids)
	}
	idp.Set(faultidp.All, faultidp.None)
	wait.ForNil(t, settle, func() error { return readyWithKeys(t, ns, "later", idp) }, "the keys of the issuer that came up")
}

// A key rotation at the identity provider reaches the bundle without a
// policy edit.
func TestIssuerKeyRotationReachesTheBundle(t *testing.T) {
	ctx := context.Background()
	idp := faultidp.New(t)
	ns := newNamespace(t)
	if err := k8s.Create(ctx, jwtPolicy(t, ns, "rotating", idp.URL)); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error { return readyWithKeys(t, ns, "rotating", idp) }, "the first keys")
	oldKid := idp.Issuer.KeyID(devissuer.RS256)
	newKid, err := idp.Issuer.RotateKey(devissuer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		if kids := bundleKids(t, ns); !slices.Contains(kids, newKid) || slices.Contains(kids, oldKid) {
			return fmt.Errorf("kids %v", kids)
		}
		return nil
	}, "the rotated key in the bundle")
	wait.ForNil(t, settle, func() error { return readyWithKeys(t, ns, "rotating", idp) }, "the status after the rotation")
}

// hangingTransport never answers; it returns when the request is cancelled.
type hangingTransport struct{}

func (hangingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// A controller that starts cold (restart, new leader) knows no keys yet. It
// must neither block on the network nor replace a bundle that ships keys by
// one without them: the namespace waits for the first fetch.
func TestColdControllerKeepsTheBundleUntilKeysArrive(t *testing.T) {
	ctx := context.Background()
	idp := faultidp.New(t)
	ns := newNamespace(t)
	if err := k8s.Create(ctx, jwtPolicy(t, ns, "warm", idp.URL)); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error { return readyWithKeys(t, ns, "warm", idp) }, "the keys in the bundle")
	_, before := bundleConfig(t, ns)

	// Far longer than any reconcile may take: a reconcile that waited on
	// the hanging fetch could not return within half of it.
	const coldFetchTimeout = 2 * time.Minute
	cold := &controllers.Reconciler{
		Client: k8s, APIReader: k8s,
		Issuers: issuers.New(issuers.Options{
			HTTPClient:   &http.Client{Transport: hangingTransport{}},
			MinRefresh:   time.Second,
			FetchTimeout: coldFetchTimeout,
		}),
		Recorder: events.NewFakeRecorder(100), Metrics: controllers.NewMetrics(prometheus.NewRegistry()),
		Now: time.Now, MaxRequeue: time.Minute,
	}
	startRefresher(t, cold.Issuers)
	start := time.Now()
	res, err := cold.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: ns}})
	if elapsed := time.Since(start); elapsed > coldFetchTimeout/2 {
		t.Fatalf("got a cold reconcile taking %v, want it not to wait for the %v fetch", elapsed, coldFetchTimeout)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > coldFetchTimeout+time.Second {
		t.Fatalf("got requeue after %v, want a safety net around the %v fetch timeout", res.RequeueAfter, coldFetchTimeout)
	}
	_, after := bundleConfig(t, ns)
	if after.ResourceVersion != before.ResourceVersion || string(after.Data[config.BundleKey]) != string(before.Data[config.BundleKey]) {
		t.Fatalf("got the bundle rewritten by a cold controller (kids now %v), want it kept until the first fetch ends", bundleKids(t, ns))
	}
}

// startRefresher runs a manager's refresher for the test's lifetime.
func startRefresher(t *testing.T, m *issuers.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("refresher: %v", err)
		}
	})
}
