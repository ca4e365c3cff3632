package issuers

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

func TestEnsureFirstFetch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		spec      func(base string) Spec
		wantDisco int64
	}{
		{"discovery", func(b string) Spec { return Spec{IssuerURL: b} }, 1},
		{"jwksURL", func(b string) Spec { return Spec{IssuerURL: b, JWKSURL: b + "/jwks"} }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := faultidp.New(t)
			f := newManager(t)
			spec := tc.spec(idp.URL)
			if _, ok := f.m.Lookup(spec); ok {
				t.Fatal("got keys from Lookup before Ensure, want none")
			}
			t0 := f.clk.Now()
			st := f.m.Ensure(t.Context(), spec)
			if got, want := kidsOf(t, st.Keys), idp.KIDs(); !slices.Equal(got, want) {
				t.Fatalf("got kids %v, want %v", got, want)
			}
			if st.KeyCount != 2 || st.LastError != "" || !st.LastSuccess.Equal(t0) {
				t.Fatalf("got state %s, want 2 keys fetched at %v without error", summary(st), t0)
			}
			// devissuer serves its JWKS with no-store: refresh after MinRefresh.
			if want := t0.Add(DefaultMinRefresh); !st.NextRefresh.Equal(want) {
				t.Fatalf("got next refresh %v, want %v", st.NextRefresh, want)
			}
			if d, j := idp.Hits(faultidp.Discovery), idp.Hits(faultidp.JWKS); d != tc.wantDisco || j != 1 {
				t.Fatalf("got %d discovery and %d jwks requests, want %d and 1", d, j, tc.wantDisco)
			}
			keys, ok := f.m.Lookup(spec)
			a, _ := json.Marshal(keys)
			b, _ := json.Marshal(st.Keys)
			if !ok || string(a) != string(b) {
				t.Fatalf("got Lookup %s (%v), want the state's keys %s", a, ok, b)
			}
			// Cached: no network until NextRefresh.
			f.m.Ensure(t.Context(), spec)
			if n := idp.Hits(faultidp.Discovery | faultidp.JWKS); n != tc.wantDisco+1 {
				t.Fatalf("got %d requests after a cached Ensure, want %d", n, tc.wantDisco+1)
			}
			verifyWith(t, st.Keys.Keys, idp.Issuer, devissuer.RS256)
			verifyWith(t, st.Keys.Keys, idp.Issuer, devissuer.ES256)
		})
	}
}

// verifyWith checks that the exported keys verify a token the issuer signs
// with alg.
func verifyWith(t *testing.T, raws []json.RawMessage, iss *devissuer.Issuer, alg string) {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, raw := range raws {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, k)
	}
	tok, err := iss.Mint(map[string]any{"sub": "alice"}, devissuer.WithAlg(alg))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(iss.KeyID(alg))
	if len(keys) != 1 {
		t.Fatalf("got %d keys with the %s kid, want 1", len(keys), alg)
	}
	if _, err := jws.Verify(keys[0]); err != nil {
		t.Fatalf("got %v, want the %s token verified by the exported key", err, alg)
	}
}

func TestRefreshIntervalFromCacheHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		cacheControl *string // nil: devissuer's no-store
		want         time.Duration
	}{
		{"no-store", nil, time.Minute},
		{"absent", ptr(""), 10 * time.Minute},
		{"max-age within bounds", ptr("public, max-age=300"), 5 * time.Minute},
		{"max-age below MinRefresh", ptr("max-age=5"), time.Minute},
		{"max-age above MaxRefresh", ptr("max-age=86400"), time.Hour},
		{"no-cache", ptr("no-cache"), time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := faultidp.New(t)
			if tc.cacheControl != nil {
				idp.SetCacheControl(*tc.cacheControl)
			}
			f := newManager(t)
			spec := Spec{IssuerURL: idp.URL, JWKSURL: idp.URL + "/jwks"}
			t0 := f.clk.Now()
			if st := f.m.Ensure(t.Context(), spec); !st.NextRefresh.Equal(t0.Add(tc.want)) {
				t.Fatalf("got next refresh %v, want %v", st.NextRefresh, t0.Add(tc.want))
			}
			f.clk.Advance(tc.want - time.Second)
			f.m.Ensure(t.Context(), spec)
			if n := idp.Hits(faultidp.JWKS); n != 1 {
				t.Fatalf("got %d jwks requests before NextRefresh, want 1", n)
			}
			f.clk.Advance(time.Second)
			st := f.m.Ensure(t.Context(), spec)
			if n := idp.Hits(faultidp.JWKS); n != 2 {
				t.Fatalf("got %d jwks requests at NextRefresh, want 2", n)
			}
			if want := t0.Add(2 * tc.want); !st.NextRefresh.Equal(want) || !st.LastSuccess.Equal(t0.Add(tc.want)) {
				t.Fatalf("got state %s, want refreshed at %v and next at %v", summary(st), t0.Add(tc.want), want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestCustomRefreshBounds(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.SetCacheControl("max-age=7200")
	f := newManager(t, func(o *Options) { o.MinRefresh, o.MaxRefresh = 30*time.Second, 3*time.Hour })
	t0 := f.clk.Now()
	if st := f.m.Ensure(t.Context(), Spec{IssuerURL: idp.URL}); !st.NextRefresh.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("got next refresh %v, want max-age honoured at %v", st.NextRefresh, t0.Add(2*time.Hour))
	}
}

func TestRotationPickedUpAtNextRefresh(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.SetCacheControl("max-age=300")
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL}
	before := idp.KIDs()
	f.m.Ensure(t.Context(), spec)
	oldRS := idp.Issuer.KeyID(devissuer.RS256)
	newRS, err := idp.Issuer.RotateKey(devissuer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(4 * time.Minute)
	if got := kidsOf(t, f.m.Ensure(t.Context(), spec).Keys); !slices.Equal(got, before) {
		t.Fatalf("got kids %v before the next refresh, want the cached %v", got, before)
	}
	f.clk.Advance(time.Minute)
	got := kidsOf(t, f.m.Ensure(t.Context(), spec).Keys)
	if !slices.Equal(got, idp.KIDs()) || !slices.Contains(got, newRS) || slices.Contains(got, oldRS) {
		t.Fatalf("got kids %v, want %v with %s and without %s", got, idp.KIDs(), newRS, oldRS)
	}
	if keys, _ := f.m.Lookup(spec); !slices.Equal(kidsOf(t, keys), got) {
		t.Fatalf("got Lookup kids %v, want %v", kidsOf(t, keys), got)
	}
}

func TestConcurrentEnsureShareOneFetch(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Block)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL}
	const callers = 20
	states := make(chan State, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			// Equivalent specs (algorithm order, explicit defaults) share the entry.
			s := spec
			if i%2 == 1 {
				s.Algorithms = []string{"ES256", "RS256", "ES256"}
			}
			states <- f.m.Ensure(t.Context(), s)
		})
	}
	<-idp.Arrived()
	wait.For(t, 0, func() bool { return f.m.flightWaiters(spec) == callers }, "%d callers waiting on the refresh", callers)
	idp.Unblock()
	wg.Wait()
	close(states)
	for st := range states {
		if st.KeyCount != 2 || st.LastError != "" {
			t.Fatalf("got state %s, want every caller to see the shared fetch's 2 keys", summary(st))
		}
	}
	if d, j := idp.Hits(faultidp.Discovery), idp.Hits(faultidp.JWKS); d != 1 || j != 1 {
		t.Fatalf("got %d discovery and %d jwks requests, want 1 shared fetch", d, j)
	}
	// Another algorithm set is another entry with its own filtered keys.
	es := f.m.Ensure(t.Context(), Spec{IssuerURL: idp.URL, Algorithms: []string{"ES256"}})
	if got, want := kidsOf(t, es.Keys), []string{idp.Issuer.KeyID(devissuer.ES256)}; !slices.Equal(got, want) {
		t.Fatalf("got kids %v for ES256 only, want %v", got, want)
	}
	if j := idp.Hits(faultidp.JWKS); j != 2 {
		t.Fatalf("got %d jwks requests, want a second fetch for the other spec", j)
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	idp1, idp2 := faultidp.New(t), faultidp.New(t)
	f := newManager(t)
	a := Spec{IssuerURL: idp1.URL}
	b := Spec{IssuerURL: idp2.URL}
	c := Spec{IssuerURL: idp2.URL, JWKSURL: idp2.URL + "/jwks", Algorithms: []string{"ES256"}}
	for _, s := range []Spec{a, b, c} {
		if st := f.m.Ensure(t.Context(), s); st.KeyCount == 0 {
			t.Fatalf("got state %s for %+v, want keys", summary(st), s)
		}
	}
	var seen []Spec
	keep := func(keys ...Spec) func(Spec) bool {
		return func(s Spec) bool {
			seen = append(seen, s)
			return slices.ContainsFunc(keys, func(k Spec) bool { return k.Key() == s.Key() })
		}
	}
	f.m.Forget(keep(a, c))
	if !slices.ContainsFunc(seen, func(s Spec) bool {
		return s.IssuerURL == idp1.URL && slices.Equal(s.Algorithms, []string{"ES256", "RS256"})
	}) {
		t.Fatalf("got keep called with %+v, want normalized specs", seen)
	}
	for _, tc := range []struct {
		spec Spec
		want bool
	}{{a, true}, {b, false}, {c, true}} {
		if _, ok := f.m.Lookup(tc.spec); ok != tc.want {
			t.Fatalf("got Lookup(%+v) %v, want %v", tc.spec, ok, tc.want)
		}
	}
	// c still uses idp2's URL: its series stay.
	if got := seriesCount(t, f, "authgate_controller_jwks_keys"); got != 2 {
		t.Fatalf("got %d key gauges, want 2 issuer URLs", got)
	}
	f.m.Forget(keep(a))
	if got := seriesCount(t, f, "authgate_controller_jwks_keys"); got != 1 {
		t.Fatalf("got %d key gauges after forgetting idp2, want 1", got)
	}
	if got := seriesCount(t, f, "authgate_controller_jwks_refresh_total"); got != 1 {
		t.Fatalf("got %d refresh counters after forgetting idp2, want 1", got)
	}
	// A forgotten issuer is fetched again when a policy uses it again.
	before := idp2.Hits(faultidp.JWKS)
	if st := f.m.Ensure(t.Context(), b); st.KeyCount != 2 || idp2.Hits(faultidp.JWKS) != before+1 {
		t.Fatalf("got state %s after %d requests, want a new fetch", summary(st), idp2.Hits(faultidp.JWKS)-before)
	}
	f.m.Forget(func(Spec) bool { return false })
	if n := len(f.m.entries); n != 0 {
		t.Fatalf("got %d entries, want none", n)
	}
}

// seriesCount is how many series of the metric f's registry holds.
func seriesCount(t *testing.T, f *fixture, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(f.reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHTTPClientOption(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	var mu sync.Mutex
	var paths []string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	f := newManager(t, func(o *Options) { o.HTTPClient = client })
	if st := f.m.Ensure(t.Context(), Spec{IssuerURL: idp.URL}); st.KeyCount != 2 {
		t.Fatalf("got state %s, want 2 keys", summary(st))
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"/.well-known/openid-configuration", "/jwks"}; !slices.Equal(paths, want) {
		t.Fatalf("got requests %v through the client, want %v", paths, want)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestLogsCarryNoKeys(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL}
	f.m.Ensure(t.Context(), spec)
	// A fetch that outlives Ensure on a loaded machine still completes.
	wait.For(t, 0, func() bool { _, ok := f.m.Lookup(spec); return ok }, "the first keys")
	keys, _ := f.m.Lookup(spec)
	idp.Set(faultidp.JWKS, faultidp.Down)
	f.clk.Advance(time.Hour)
	f.m.Ensure(t.Context(), spec)
	wait.For(t, 0, func() bool { return strings.Contains(f.logs.String(), "key refresh failed") }, "the failed refresh logged")
	var k map[string]any
	if err := json.Unmarshal(keys.Keys[0], &k); err != nil {
		t.Fatal(err)
	}
	for _, member := range []string{"n", "x"} {
		if v, ok := k[member].(string); ok && strings.Contains(f.logs.String(), v[:16]) {
			t.Fatalf("got key material in the logs %s", f.logs.String())
		}
	}
	if !strings.Contains(f.logs.String(), "key refresh failed") {
		t.Fatalf("got logs %s, want the failure logged", f.logs.String())
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Options
		want [5]time.Duration // min, max, default, fetch timeout, max staleness
	}{
		{"zero", Options{}, [5]time.Duration{time.Minute, time.Hour, 10 * time.Minute, 10 * time.Second, 24 * time.Hour}},
		{"max below min", Options{MinRefresh: 2 * time.Hour}, [5]time.Duration{2 * time.Hour, 2 * time.Hour, 2 * time.Hour, 10 * time.Second, 24 * time.Hour}},
		{"default below min", Options{MinRefresh: 20 * time.Minute}, [5]time.Duration{20 * time.Minute, time.Hour, 20 * time.Minute, 10 * time.Second, 24 * time.Hour}},
		{"default above max", Options{MaxRefresh: 5 * time.Minute}, [5]time.Duration{time.Minute, 5 * time.Minute, 5 * time.Minute, 10 * time.Second, 24 * time.Hour}},
		{"staleness below max", Options{MaxRefresh: 48 * time.Hour, MaxStaleness: time.Hour}, [5]time.Duration{time.Minute, 48 * time.Hour, 10 * time.Minute, 10 * time.Second, 48 * time.Hour}},
		{"negative", Options{MinRefresh: -1, FetchTimeout: -1}, [5]time.Duration{time.Minute, time.Hour, 10 * time.Minute, 10 * time.Second, 24 * time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.in.withDefaults()
			got := [5]time.Duration{o.MinRefresh, o.MaxRefresh, o.DefaultRefresh, o.FetchTimeout, o.MaxStaleness}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if o.Now == nil || o.Logger == nil {
				t.Fatal("got a nil clock or logger, want defaults")
			}
		})
	}
}

func TestSpecKey(t *testing.T) {
	t.Parallel()
	base := Spec{IssuerURL: "https://idp.example.com"}
	tests := []struct {
		name string
		a, b Spec
		same bool
	}{
		{"defaults explicit", base, Spec{IssuerURL: base.IssuerURL, Algorithms: []string{"RS256", "ES256"}}, true},
		{"order and duplicates", Spec{IssuerURL: base.IssuerURL, Algorithms: []string{"PS256", "ES256"}},
			Spec{IssuerURL: base.IssuerURL, Algorithms: []string{"ES256", "PS256", "ES256"}}, true},
		{"other algorithms", base, Spec{IssuerURL: base.IssuerURL, Algorithms: []string{"ES256"}}, false},
		{"jwks URL", base, Spec{IssuerURL: base.IssuerURL, JWKSURL: base.IssuerURL + "/keys"}, false},
		{"trailing slash", base, Spec{IssuerURL: base.IssuerURL + "/"}, false},
		{"field boundary", Spec{IssuerURL: "https://a", JWKSURL: "https://b"}, Spec{IssuerURL: "https://a\x00https://b"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.a.Key() == tc.b.Key(); got != tc.same {
				t.Fatalf("got equal keys %v for %+v and %+v, want %v", got, tc.a, tc.b, tc.same)
			}
		})
	}
	in := []string{"RS256", "ES256"}
	_ = Spec{IssuerURL: base.IssuerURL, Algorithms: in}.Key()
	if !slices.Equal(in, []string{"RS256", "ES256"}) {
		t.Fatalf("got the caller's algorithms reordered to %v, want them untouched", in)
	}
}
