package issuers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

// changes records OnChange calls.
type changes struct {
	mu   sync.Mutex
	keys []string
	ch   chan string
}

func newChanges() *changes { return &changes{ch: make(chan string, 1024)} }

func (c *changes) record(_ context.Context, s Spec) {
	c.mu.Lock()
	c.keys = append(c.keys, s.Key())
	c.mu.Unlock()
	select {
	case c.ch <- s.Key():
	default: // nobody listens any more
	}
}

func (c *changes) count(s Spec) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.keys {
		if k == s.Key() {
			n++
		}
	}
	return n
}

func onChange(c *changes) func(*Options) { return func(o *Options) { o.OnChange = c.record } }

// realClock makes the fixture's manager use time.Now, for tests that run
// the refresher's own timer; refreshes are due every 50ms.
func realClock(o *Options) {
	o.Now = nil
	o.MinRefresh, o.DefaultRefresh = 50*time.Millisecond, 50*time.Millisecond
}

// startRefresher runs Start until the test ends and checks it returns nil.
func startRefresher(t *testing.T, m *Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("got Start error %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Start did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// tick runs one pass of the refresher's schedule and waits for the
// refreshes it started; it returns the wait the refresher would sleep.
func tick(t *testing.T, m *Manager) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	wait := m.refreshDue(t.Context(), &wg)
	wg.Wait()
	return wait
}

func TestCurrentNeverTouchesTheNetwork(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Hang)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL}
	st := f.m.Current(spec)
	if !st.Pending || st.KeyCount != 0 || st.Keys.Keys == nil || st.LastError != "" || !st.LastSuccess.IsZero() {
		t.Fatalf("got state %s, want pending with an empty key set and no error", summary(st))
	}
	if want := f.clk.Now().Add(2 * time.Second); !st.NextRefresh.Equal(want) {
		t.Fatalf("got next refresh %v, want the end of the first fetch at the latest, %v", st.NextRefresh, want)
	}
	// Current starts nothing: without a refresher nobody has fetched.
	if n := idp.Hits(faultidp.Discovery | faultidp.JWKS); n != 0 {
		t.Fatalf("got %d requests to the issuer from Current, want 0", n)
	}
	if n := len(f.m.entries); n != 1 {
		t.Fatalf("got %d entries, want the issuer registered", n)
	}
}

func TestRefresherFetchesRegisteredIssuersAndTellsOnChange(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	c := newChanges()
	f := newManager(t, realClock, onChange(c))
	spec := Spec{IssuerURL: idp.URL}
	startRefresher(t, f.m)
	if st := f.m.Current(spec); !st.Pending {
		t.Fatalf("got state %s, want pending", summary(st))
	}
	if got := <-c.ch; got != spec.Key() {
		t.Fatalf("got OnChange for %q, want %q", got, spec.Key())
	}
	st := f.m.Current(spec)
	if st.Pending || st.KeyCount != 2 || st.LastError != "" || !slices.Equal(kidsOf(t, st.Keys), idp.KIDs()) {
		t.Fatalf("got state %s after OnChange, want the issuer's 2 keys", summary(st))
	}
	// A rotation is picked up on the schedule, with no caller asking.
	newRS, err := idp.Issuer.RotateKey(devissuer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	for range c.ch {
		if kids := kidsOf(t, f.m.Current(spec).Keys); slices.Contains(kids, newRS) {
			break
		}
	}
}

func TestRefresherSchedule(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.SetCacheControl("max-age=300")
	c := newChanges()
	f := newManager(t, onChange(c))
	spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
	f.m.Current(spec)
	tick(t, f.m) // the first fetch
	if st := f.m.Current(spec); st.KeyCount != 2 || c.count(spec) != 1 {
		t.Fatalf("got state %s and %d changes, want 2 keys and 1 change", summary(st), c.count(spec))
	}
	if wait := tick(t, f.m); wait != 5*time.Minute || idp.Hits(faultidp.JWKS) != 1 {
		t.Fatalf("got a wait of %v after %d requests, want max-age 5m and no refetch", wait, idp.Hits(faultidp.JWKS))
	}
	// Failures: retried after MinRefresh; a repeated failure is no change.
	idp.Set(faultidp.JWKS, faultidp.Down)
	f.clk.Advance(5 * time.Minute)
	tick(t, f.m)
	if wait := tick(t, f.m); wait != DefaultMinRefresh || idp.Hits(faultidp.JWKS) != 2 || c.count(spec) != 2 {
		t.Fatalf("got a wait of %v, %d requests, %d changes; want a retry in %v, 2 requests, 2 changes",
			wait, idp.Hits(faultidp.JWKS), c.count(spec), DefaultMinRefresh)
	}
	f.clk.Advance(DefaultMinRefresh)
	tick(t, f.m)
	if st := f.m.Current(spec); st.KeyCount != 2 || st.LastError == "" || idp.Hits(faultidp.JWKS) != 3 || c.count(spec) != 2 {
		t.Fatalf("got state %s, %d requests, %d changes; want the last good keys, 3 requests, still 2 changes",
			summary(st), idp.Hits(faultidp.JWKS), c.count(spec))
	}
	// Keys past MaxStaleness are dropped: a change, though the error is the same.
	f.clk.Advance(DefaultMaxStaleness)
	tick(t, f.m)
	if st := f.m.Current(spec); st.KeyCount != 0 || c.count(spec) != 3 {
		t.Fatalf("got state %s and %d changes past MaxStaleness, want no keys and a third change", summary(st), c.count(spec))
	}
	idp.Set(faultidp.JWKS, faultidp.None)
	f.clk.Advance(DefaultMinRefresh)
	tick(t, f.m)
	if st := f.m.Current(spec); st.KeyCount != 2 || st.LastError != "" || c.count(spec) != 4 {
		t.Fatalf("got state %s and %d changes after recovery, want 2 keys and a fourth change", summary(st), c.count(spec))
	}
}

// The controller-side half of issue 9: one issuer that never answers does
// not delay another issuer's keys.
func TestRefresherHangingIssuerHoldsUpNoOther(t *testing.T) {
	t.Parallel()
	hung, ok := faultidp.New(t), faultidp.New(t)
	hung.Set(faultidp.JWKS, faultidp.Block)
	c := newChanges()
	f := newManager(t, realClock, onChange(c), fetchTimeout(time.Minute))
	hungSpec, okSpec := Spec{IssuerURL: hung.URL, JWKSURL: hung.URL + "/jwks"}, Spec{IssuerURL: ok.URL}
	startRefresher(t, f.m)
	f.m.Current(hungSpec)
	<-hung.Arrived()
	f.m.Current(okSpec)
	for key := range c.ch {
		if key == okSpec.Key() {
			break
		}
	}
	if st := f.m.Current(okSpec); st.KeyCount != 2 {
		t.Fatalf("got state %s for the healthy issuer, want its 2 keys", summary(st))
	}
	if st := f.m.Current(hungSpec); !st.Pending {
		t.Fatalf("got state %s for the hanging issuer, want its first fetch still running", summary(st))
	}
	if n := c.count(hungSpec); n != 0 {
		t.Fatalf("got %d changes for the hanging issuer, want none yet", n)
	}
}

func TestStartEndsRunningFetches(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Block)
	c := newChanges()
	f := newManager(t, realClock, onChange(c), fetchTimeout(time.Minute))
	spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
	stop := startRefresher(t, f.m)
	f.m.Current(spec)
	<-idp.Arrived()
	start := time.Now()
	stop() // fails the test if Start does not return
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("got Start returning after %v, want the running fetch cancelled at once", elapsed)
	}
	// A fetch cut short by shutdown is not a failure of the issuer.
	if st := f.m.Current(spec); !st.Pending || st.LastError != "" || c.count(spec) != 0 {
		t.Fatalf("got state %s and %d changes, want the issuer left pending and nobody told", summary(st), c.count(spec))
	}
	if got := testutil.ToFloat64(f.m.metrics.refreshes.WithLabelValues(idp.URL, resultError)); got != 0 {
		t.Fatalf("got %v failed refreshes counted, want 0", got)
	}
}

func TestEnsureAndRefresherShareOneFetch(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Block)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
	f.m.Current(spec)
	var wg sync.WaitGroup
	f.m.refreshDue(t.Context(), &wg)
	<-idp.Arrived()
	done := make(chan State, 1)
	go func() { done <- f.m.Ensure(t.Context(), spec) }()
	wait.For(t, 0, func() bool { return f.m.flightWaiters(spec) == 1 }, "Ensure to join the refresher's fetch")
	idp.Unblock()
	wg.Wait()
	if st := <-done; st.KeyCount != 2 || idp.Hits(faultidp.JWKS) != 1 {
		t.Fatalf("got state %s after %d requests, want Ensure to join the refresher's fetch", summary(st), idp.Hits(faultidp.JWKS))
	}
}

func TestForgottenIssuersAreNotRefreshed(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Block)
	c := newChanges()
	f := newManager(t, onChange(c))
	spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
	f.m.Current(spec)
	var wg sync.WaitGroup
	f.m.refreshDue(t.Context(), &wg)
	<-idp.Arrived()
	f.m.Forget(func(Spec) bool { return false }) // while its fetch runs
	idp.Unblock()
	wg.Wait()
	f.clk.Advance(DefaultMaxRefresh)
	if wait := tick(t, f.m); wait != DefaultMaxRefresh {
		t.Fatalf("got a wait of %v with no issuer, want the %v default", wait, DefaultMaxRefresh)
	}
	if n, changes := idp.Hits(faultidp.JWKS), c.count(spec); n != 1 || changes != 0 {
		t.Fatalf("got %d requests and %d changes for a forgotten issuer, want 1 and none", n, changes)
	}
}

func TestRefresherNeedsLeaderElection(t *testing.T) {
	t.Parallel()
	if !New(Options{}).NeedLeaderElection() {
		t.Fatal("got NeedLeaderElection false, want true: only the leader registers and renders issuers")
	}
}
