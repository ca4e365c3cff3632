package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
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
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/devissuer"
)

// tarpit is an identity provider that accepts connections and never
// answers, or answers one byte at a time. It reports whether the first
// connection is still open, which proves the first key fetch is in flight.
type tarpit struct {
	ln          net.Listener
	trickle     bool
	accepted    chan struct{} // closed when the first connection is accepted
	firstClosed chan struct{} // closed when the client hung up the first one
	done        chan struct{}
	n           atomic.Int32
	wg          sync.WaitGroup
}

func newTarpit(t *testing.T, trickle bool) *tarpit {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tarpit{ln: ln, trickle: trickle, accepted: make(chan struct{}), firstClosed: make(chan struct{}), done: make(chan struct{})}
	tp.wg.Go(tp.accept)
	t.Cleanup(func() {
		close(tp.done)
		_ = ln.Close()
		tp.wg.Wait()
	})
	return tp
}

func (tp *tarpit) URL() string { return "http://" + tp.ln.Addr().String() }

func (tp *tarpit) accept() {
	for {
		conn, err := tp.ln.Accept()
		if err != nil {
			return
		}
		first := tp.n.Add(1) == 1
		if first {
			close(tp.accepted)
		}
		tp.wg.Go(func() { tp.hold(conn, first) })
	}
}

// hold keeps a connection open until the client closes it (or the test
// ends), trickling a never-ending response header if asked to.
func (tp *tarpit) hold(conn net.Conn, first bool) {
	defer func() { _ = conn.Close() }()
	hungUp := make(chan struct{})
	go func() {
		_, _ = conn.Read(make([]byte, 64<<10)) // the request
		for {
			if _, err := conn.Read(make([]byte, 1024)); err != nil {
				close(hungUp)
				return
			}
		}
	}()
	if tp.trickle {
		_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nX-Trickle: "))
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tp.done:
			return
		case <-hungUp:
			if first {
				close(tp.firstClosed)
			}
			return
		case <-tick.C:
			if tp.trickle {
				_, _ = conn.Write([]byte("a"))
			}
		}
	}
}

func (tp *tarpit) firstStillOpen() bool {
	select {
	case <-tp.firstClosed:
		return false
	default:
		return true
	}
}

// newIssuerServer serves a devissuer; mode "down" answers 503.
func newIssuerServer(t *testing.T) (*devissuer.Issuer, *httptest.Server, *atomic.Value) {
	t.Helper()
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Value
	mode.Store("up")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode.Load().(string) == "down" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		iss.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	iss.SetURL(ts.URL)
	return iss, ts, &mode
}

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

func issuerKids(iss *devissuer.Issuer) []string {
	return slices.Sorted(slices.Values([]string{iss.KeyID(devissuer.RS256), iss.KeyID(devissuer.ES256)}))
}

// readyWithKeys reports whether the policy is Ready and IssuersReady for its
// generation and the bundle ships the issuer's current keys.
func readyWithKeys(t *testing.T, ns, name string, iss *devissuer.Issuer) (bool, string) {
	t.Helper()
	p := get(t, ns, name)
	ready, keys := condition(p, v1alpha1.ConditionReady), condition(p, v1alpha1.ConditionIssuersReady)
	kids := bundleKids(t, ns)
	ok := ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == p.Generation &&
		keys.Status == metav1.ConditionTrue && keys.Reason == controllers.ReasonKeysFetched && keys.ObservedGeneration == p.Generation &&
		slices.Equal(kids, issuerKids(iss))
	return ok, fmt.Sprintf("Ready %s/%s, IssuersReady %s/%s, bundle kids %v", ready.Status, ready.Reason, keys.Status, keys.Reason, kids)
}

// Issue 9: a namespace whose issuer hangs must not delay another
// namespace. B's policy is rendered with its keys while A's first fetch
// is provably still in flight (the tarpit holds its first connection).
func TestHungIssuerDoesNotDelayOtherNamespaces(t *testing.T) {
	for _, trickle := range []bool{false, true} {
		t.Run(fmt.Sprintf("trickle=%v", trickle), func(t *testing.T) {
			ctx := context.Background()
			tp := newTarpit(t, trickle)
			nsA := newNamespace(t)
			if err := k8s.Create(ctx, jwtPolicy(t, nsA, "hung", tp.URL())); err != nil {
				t.Fatal(err)
			}
			eventuallyWithin(t, 30*time.Second, 10*time.Millisecond, "A's key fetch to reach the tarpit", func() (bool, string) {
				select {
				case <-tp.accepted:
					return true, ""
				default:
					return false, "no connection yet"
				}
			})
			iss, ts, _ := newIssuerServer(t)
			nsB := newNamespace(t)
			start := time.Now()
			if err := k8s.Create(ctx, jwtPolicy(t, nsB, "healthy", ts.URL)); err != nil {
				t.Fatal(err)
			}
			eventuallyWithin(t, 30*time.Second, 10*time.Millisecond, "B rendered with its keys", func() (bool, string) {
				return readyWithKeys(t, nsB, "healthy", iss)
			})
			elapsed := time.Since(start)
			inFlight := tp.firstStillOpen()
			t.Logf("namespace B was Ready with its keys %v after creation; A's first fetch still in flight: %v", elapsed, inFlight)
			if !inFlight {
				t.Fatalf("got A's first key fetch finished before B was ready (B took %v), want B ready while A's fetch hangs", elapsed)
			}
			// The acceptance: B within 1s (measured: tens of ms).
			if elapsed > time.Second {
				t.Fatalf("got B ready after %v, want within 1s", elapsed)
			}
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
	iss, ts, mode := newIssuerServer(t)
	mode.Store("down")
	ns := newNamespace(t)
	if err := k8s.Create(ctx, jwtPolicy(t, ns, "later", ts.URL)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "later", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonFetchFailed)
	waitCondition(t, ns, "later", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	if kids := bundleKids(t, ns); kids != nil {
		t.Fatalf("got inline keys %v while the issuer is down, want none", kids)
	}
	mode.Store("up")
	eventually(t, "the keys of the issuer that came up", func() (bool, string) {
		return readyWithKeys(t, ns, "later", iss)
	})
}

// A key rotation at the identity provider reaches the bundle without a
// policy edit.
func TestIssuerKeyRotationReachesTheBundle(t *testing.T) {
	ctx := context.Background()
	iss, ts, _ := newIssuerServer(t)
	ns := newNamespace(t)
	if err := k8s.Create(ctx, jwtPolicy(t, ns, "rotating", ts.URL)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first keys", func() (bool, string) { return readyWithKeys(t, ns, "rotating", iss) })
	oldKid := iss.KeyID(devissuer.RS256)
	newKid, err := iss.RotateKey(devissuer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rotated key in the bundle", func() (bool, string) {
		kids := bundleKids(t, ns)
		return slices.Contains(kids, newKid) && !slices.Contains(kids, oldKid), fmt.Sprintf("kids %v", kids)
	})
	eventually(t, "the status after the rotation", func() (bool, string) { return readyWithKeys(t, ns, "rotating", iss) })
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
	iss, ts, _ := newIssuerServer(t)
	ns := newNamespace(t)
	if err := k8s.Create(ctx, jwtPolicy(t, ns, "warm", ts.URL)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the keys in the bundle", func() (bool, string) { return readyWithKeys(t, ns, "warm", iss) })
	_, before := bundleConfig(t, ns)

	const coldFetchTimeout = 5 * time.Second
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
	if after.ResourceVersion != before.ResourceVersion || after.Data[config.BundleKey] != before.Data[config.BundleKey] {
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
