package issuers

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

// users maps issuer keys to the namespaces using them, for
// Options.Namespaces.
type users struct {
	mu sync.Mutex
	by map[string][]string
}

func (u *users) set(s Spec, namespaces ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.by == nil {
		u.by = map[string][]string{}
	}
	u.by[s.Key()] = namespaces
}

func (u *users) of(s Spec) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.by[s.Key()]
}

func perNamespace(u *users, limit int) func(*Options) {
	return func(o *Options) { o.Namespaces, o.MaxConcurrentFetchesPerNamespace = u.of, limit }
}

// hangingIssuers returns n distinct specs of one identity provider whose
// key set never answers (the fetch ends at FetchTimeout).
func hangingIssuers(idp *faultidp.Server, n int) []Spec {
	specs := make([]Spec, n)
	for i := range specs {
		specs[i] = Spec{IssuerURL: idp.URL, JWKSURL: fmt.Sprintf("%s/jwks?n=%d", idp.URL, i)}
	}
	return specs
}

// A namespace whose issuers all hang holds at most its own slots; another
// namespace's issuer, registered after them, is fetched at once, and so is
// an issuer the noisy namespace shares with it. An issuer only the noisy
// namespace uses waits (Queued) for one of its slots.
func TestNoisyNamespaceDoesNotDelayAnother(t *testing.T) {
	t.Parallel()
	const limit = 2
	hanging := faultidp.New(t)
	hanging.Set(faultidp.JWKS, faultidp.Hang)
	good := faultidp.New(t)
	shared := faultidp.New(t)
	u := &users{}
	f := newManager(t, fetchTimeout(time.Minute), perNamespace(u, limit))
	startRefresher(t, f.m)

	noisy := hangingIssuers(hanging, 10)
	for _, s := range noisy {
		u.set(s, "noisy")
		f.m.Current(s)
	}
	wait.For(t, 0, func() bool { return hanging.Hits(faultidp.JWKS) == limit }, "the noisy namespace's %d fetches to hang", limit)

	quiet := Spec{IssuerURL: good.URL}
	u.set(quiet, "quiet")
	both := Spec{IssuerURL: shared.URL}
	u.set(both, "noisy", "quiet")
	onlyNoisy := Spec{IssuerURL: good.URL, JWKSURL: good.URL + "/jwks"}
	u.set(onlyNoisy, "noisy")
	start := time.Now()
	f.m.Current(quiet)
	f.m.Current(both)
	f.m.Current(onlyNoisy)
	wait.For(t, 10*time.Second, func() bool { return f.m.Current(quiet).KeyCount == 2 && f.m.Current(both).KeyCount == 2 },
		"the quiet namespace's issuers to have keys")
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("got the quiet namespace's issuers ready after %v, want them not to wait for the noisy one's fetches (1m timeout)", elapsed)
	}

	if got := hanging.Hits(faultidp.JWKS); got != limit {
		t.Fatalf("got %d fetches of the noisy namespace's hanging issuers, want at most %d at once", got, limit)
	}
	st := f.m.Current(onlyNoisy)
	if !st.Pending || !st.Queued || good.Hits(faultidp.JWKS) != 1 {
		t.Fatalf("got state %s (queued %v) after %d key set requests, want the noisy namespace's own issuer queued, not fetched",
			summary(st), st.Queued, good.Hits(faultidp.JWKS))
	}
	if got := testutil.ToFloat64(f.m.metrics.inFlightG.WithLabelValues("noisy")); got != limit {
		t.Fatalf("got %v fetches in flight for the noisy namespace, want %d", got, limit)
	}
	if got := testutil.ToFloat64(f.m.metrics.throttled.WithLabelValues("noisy")); got != float64(len(noisy)-limit+1) {
		t.Fatalf("got %v throttled fetches in the noisy namespace, want %d (each queued issuer once)", got, len(noisy)-limit+1)
	}
	if got := testutil.CollectAndCount(f.m.metrics.throttled); got != 1 {
		t.Fatalf("got %d throttled series, want only the noisy namespace's", got)
	}
}

// A queued refresh starts when a slot frees: the bound delays a
// namespace's own issuers, it loses none.
func TestQueuedFetchStartsWhenASlotFrees(t *testing.T) {
	t.Parallel()
	hanging := faultidp.New(t)
	hanging.Set(faultidp.JWKS, faultidp.Hang)
	good := faultidp.New(t)
	u := &users{}
	f := newManager(t, fetchTimeout(300*time.Millisecond), perNamespace(u, 1))
	startRefresher(t, f.m)
	slow := hangingIssuers(hanging, 1)[0]
	u.set(slow, "ns")
	f.m.Current(slow)
	wait.For(t, 0, func() bool { return hanging.Hits(faultidp.JWKS) == 1 }, "the hanging fetch")
	next := Spec{IssuerURL: good.URL}
	u.set(next, "ns")
	f.m.Current(next)
	wait.For(t, 0, func() bool { return f.m.Current(next).Queued }, "the second issuer to be queued behind the hanging fetch")
	wait.For(t, 10*time.Second, func() bool { return f.m.Current(next).KeyCount == 2 }, "the queued issuer's keys once the hanging fetch timed out")
	if st := f.m.Current(slow); st.LastError == "" {
		t.Fatalf("got state %s, want the hanging fetch's timeout", summary(st))
	}
	if got := testutil.CollectAndCount(f.m.metrics.inFlightG); got != 0 {
		t.Fatalf("got %d in-flight series with nothing running, want none", got)
	}
	f.m.ForgetNamespace("ns")
	if got := testutil.CollectAndCount(f.m.metrics.throttled); got != 0 {
		t.Fatalf("got %d throttled series after ForgetNamespace, want none", got)
	}
}

func TestSlotsChargeTheLeastBusyNamespace(t *testing.T) {
	t.Parallel()
	s := newSlots(2)
	steps := []struct {
		namespaces []string
		want       string
		ok         bool
	}{
		{[]string{"a"}, "a", true},
		{[]string{"a", "b"}, "b", true}, // b is idler
		{[]string{"a", "b"}, "a", true}, // a tie: the first
		{[]string{"a"}, "", false},      // a is full
		{[]string{"a", "b"}, "b", true}, // b still has one
		{[]string{"a", "b"}, "", false}, // both full
		{nil, "", true},                 // the unowned pool
	}
	for i, st := range steps {
		got, ok := s.acquire(st.namespaces)
		if got != st.want || ok != st.ok {
			t.Fatalf("step %d: got %q %v, want %q %v", i, got, ok, st.want, st.ok)
		}
	}
	if n := s.release("a"); n != 1 {
		t.Fatalf("got %d running in a after a release, want 1", n)
	}
	if got, ok := s.acquire([]string{"a", "b"}); got != "a" || !ok {
		t.Fatalf("got %q %v after a's release, want a", got, ok)
	}
}
