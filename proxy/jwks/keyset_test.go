package jwks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

func TestNewRequiresDependenciesAndSource(t *testing.T) {
	t.Parallel()
	m := metrics.New(prometheus.NewRegistry())
	log := slog.New(slog.DiscardHandler)
	good := issuerConfig("https://idp.example.com")
	tests := []struct {
		name string
		opts Options
	}{
		{"no metrics", Options{Issuer: good, Logger: log}},
		{"no logger", Options{Issuer: good, Metrics: m}},
		{"no source", Options{Issuer: issuerConfig("https://idp.example.com", noRemote), Metrics: m, Logger: log}},
		{"not defaulted", Options{Issuer: config.Issuer{Name: "x", JWKSURL: "https://idp.example.com/jwks"}, Metrics: m, Logger: log}},
		{"inline without usable keys", Options{Issuer: issuerConfig("https://idp.example.com", noRemote,
			inline(config.JSONWebKeySet{Keys: []config.RawJSON{[]byte(`{"kty":"oct","k":"c2VjcmV0"}`)}})), Metrics: m, Logger: log}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if ks, err := New(tc.opts); err == nil {
				t.Fatalf("got key set %v, want an error", ks)
			}
		})
	}
}

func TestInlineKeysVerifyWithoutNetwork(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL, noRemote, inline(idp.Issuer.PublicJWKS())))

	mustVerify(t, f.ks, mint(t, idp.Issuer))
	mustVerify(t, f.ks, mint(t, idp.Issuer, devissuer.WithAlg("ES256")))
	mustVerify(t, f.ks, mint(t, idp.Issuer, devissuer.WithoutKID()))
	mustFail(t, f.ks, mint(t, idp.Issuer, devissuer.WithKID("unknown")), ErrUnknownKey)
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatalf("got refresh error %v without a remote source, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.ks.Run(ctx); close(done) }()
	cancel()
	<-done

	if n := idp.Hits(faultidp.Discovery | faultidp.JWKS); n != 0 {
		t.Fatalf("got %d requests to the issuer, want 0", n)
	}
	st := f.ks.Status()
	if st.Keys != 2 || st.Remote || st.Stale || st.LastSuccess.IsZero() {
		t.Fatalf("got status %+v, want 2 fresh inline keys and no remote", st)
	}
	// Inline keys never go stale.
	f.clk.Advance(10 * 365 * 24 * time.Hour)
	mustVerify(t, f.ks, mint(t, idp.Issuer))
}

func TestGoOIDCVerifierUsesKeySet(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	v := oidc.NewVerifier(idp.URL, f.ks, &oidc.Config{ClientID: "api", SupportedSigningAlgs: []string{"RS256", "ES256"}})
	tok, err := v.Verify(t.Context(), mint(t, idp.Issuer, devissuer.WithAlg("ES256")))
	if err != nil {
		t.Fatalf("got %v, want the token verified through go-oidc", err)
	}
	if tok.Subject != "alice" {
		t.Fatalf("got subject %q, want alice", tok.Subject)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL, useDiscovery))
	mustVerify(t, f.ks, mint(t, idp.Issuer)) // cold start: the token triggers the first fetch
	if d, j := idp.Hits(faultidp.Discovery), idp.Hits(faultidp.JWKS); d != 1 || j != 1 {
		t.Fatalf("got %d discovery and %d jwks requests, want 1 and 1", d, j)
	}
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d, j := idp.Hits(faultidp.Discovery), idp.Hits(faultidp.JWKS); d != 1 || j != 2 {
		t.Fatalf("got %d discovery and %d jwks requests, want the jwks_uri reused (1 and 2)", d, j)
	}
	if st := f.ks.Status(); st.Keys != 2 || !st.Remote || st.LastError != "" {
		t.Fatalf("got status %+v, want 2 remote keys and no error", st)
	}
}

func TestDiscoveryRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		issuer  func(base string) string
		wantErr string
	}{
		{"other issuer", func(string) string { return "https://evil.example.com" }, "does not equal"},
		{"trailing slash", func(b string) string { return b + "/" }, "does not equal"},
		{"case", func(b string) string { return strings.ToUpper(b) }, "does not equal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := faultidp.New(t)
			other := tc.issuer(idp.URL)
			idp.EditDiscovery(func(d *devissuer.Discovery) { d.Issuer = other })
			f := newKeySet(t, issuerConfig(idp.URL, useDiscovery))
			err := f.ks.Refresh(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if n := idp.Hits(faultidp.JWKS); n != 0 {
				t.Fatalf("got %d jwks requests, want 0 after a refused discovery", n)
			}
			f.clk.Advance(time.Hour)
			mustFail(t, f.ks, mint(t, idp.Issuer), ErrNoKeys)
		})
	}
}

func TestDiscoveryRefusesPlainHTTPJWKSURI(t *testing.T) {
	t.Parallel()
	srv := faultidp.New(t)
	srv.EditDiscovery(func(d *devissuer.Discovery) { d.JWKSURI = "http://idp.example.com/jwks" })
	f := newKeySet(t, issuerConfig(srv.URL, useDiscovery))
	if err := f.ks.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("got %v, want the http jwks_uri refused", err)
	}
}

func TestColdStartEndpointDown(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Down)
	f := newKeySet(t, issuerConfig(idp.URL))
	mustFail(t, f.ks, mint(t, idp.Issuer), ErrNoKeys)
	if err := f.ks.Refresh(t.Context()); err == nil {
		t.Fatal("got no refresh error from a down endpoint, want one")
	}
	st := f.ks.Status()
	if st.Keys != 0 || !strings.Contains(st.LastError, "503") {
		t.Fatalf("got status %+v, want no keys and the 503 as last error", st)
	}
	if got := testutil.ToFloat64(f.m.JWKSFetches.WithLabelValues("test", "error")); got != 2 {
		t.Fatalf("got %v failed fetches, want 2", got)
	}
}

func TestFetchFaultsKeepLastGoodKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    faultidp.Fault
		wantErr string
	}{
		{"down", faultidp.Down, "unexpected status 503"},
		{"hanging", faultidp.Hang, "deadline exceeded|timeout"},
		{"trickling", faultidp.Trickle, "deadline exceeded|timeout"},
		{"huge with length", faultidp.HugeLength, "limit"},
		{"huge chunked", faultidp.HugeChunked, "limit"},
		{"garbage", faultidp.Garbage, "parse key set"},
		{"redirect to plain http", faultidp.RedirectPlainHTTP, "https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := faultidp.New(t)
			f := newKeySet(t, issuerConfig(idp.URL, func(i *config.Issuer) {
				i.Fetch.Timeout = config.D(300 * time.Millisecond)
				i.Fetch.MaxBytes = 4096
			}))
			if err := f.ks.Refresh(t.Context()); err != nil {
				t.Fatalf("initial refresh: %v", err)
			}
			idp.Set(faultidp.JWKS, tc.mode)
			err := f.ks.Refresh(t.Context())
			if err == nil || !regexp.MustCompile(tc.wantErr).MatchString(err.Error()) {
				t.Fatalf("got %v, want an error matching %q", err, tc.wantErr)
			}
			mustVerify(t, f.ks, mint(t, idp.Issuer))
			if st := f.ks.Status(); st.Keys != 2 || st.LastError == "" {
				t.Fatalf("got status %+v, want the 2 cached keys and the last error", st)
			}
		})
	}
}

func TestUnusableKeysAreDropped(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	good := idp.Issuer.PublicJWKS().Keys[0] // RS256
	bad := []string{
		`{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0","kid":"sym"}`,
		`{"kty":"RSA","kid":"enc","use":"enc","n":"` + jsonField(t, good, "n") + `","e":"AQAB"}`,
		`{"kty":"RSA","kid":"hs","alg":"HS256","n":"` + jsonField(t, good, "n") + `","e":"AQAB"}`,
		`{"kty":"RSA","kid":"ps","alg":"PS512","n":"` + jsonField(t, good, "n") + `","e":"AQAB"}`,
		`{"kty":"OKP","kid":"ed"}`,
		`"not a key"`,
		privateJWK(t),
		weakRSAJWK(t),
	}
	srv := faultidp.New(t)
	srv.SetKeySet(fmt.Sprintf(`{"keys":[%s,%s]}`, strings.Join(bad, ","), good))
	f := newKeySet(t, issuerConfig(srv.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := f.ks.Status(); st.Keys != 1 {
		t.Fatalf("got %d usable keys, want only the 1 public signing key", st.Keys)
	}
	if !strings.Contains(f.logs.String(), `"dropped":8`) {
		t.Fatalf("got logs %s, want 8 dropped keys reported", f.logs.String())
	}
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(`
# HELP authgate_jwks_keys Usable verification keys per issuer: inline keys and remote keys not past their maximum staleness. 0: tokens of the issuer are refused.
# TYPE authgate_jwks_keys gauge
authgate_jwks_keys{issuer="test"} 1
`), "authgate_jwks_keys"); err != nil {
		t.Fatal(err)
	}

	// A set with no usable key is a failed fetch.
	onlyBad := faultidp.New(t)
	onlyBad.SetKeySet(fmt.Sprintf(`{"keys":[%s]}`, strings.Join(bad, ",")))
	f2 := newKeySet(t, issuerConfig(onlyBad.URL))
	if err := f2.ks.Refresh(t.Context()); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("got %v, want ErrNoKeys", err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	oldTok := mint(t, idp.Issuer)
	mustVerify(t, f.ks, oldTok)
	if _, err := idp.Issuer.RotateKey("RS256"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(31 * time.Second)
	mustVerify(t, f.ks, mint(t, idp.Issuer))
	if n := idp.Hits(faultidp.JWKS); n != 2 {
		t.Fatalf("got %d jwks requests, want 2 (one refetch for the new kid)", n)
	}
	// The old kid is gone after the refresh; its token is refused, and
	// repeating it spends the rest of the burst, then fetches no more
	// within the cooldown.
	for range 5 {
		mustFail(t, f.ks, oldTok, ErrUnknownKey)
	}
	if n := idp.Hits(faultidp.JWKS); n != 4 {
		t.Fatalf("got %d jwks requests, want 4 (the burst of 3 refetches)", n)
	}
	if got := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test")); got != 3 {
		t.Fatalf("got %v suppressed refetches, want 3", got)
	}
}

func TestInlineBaseWithRemoteRefresh(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL, inline(idp.Issuer.PublicJWKS())))
	mustVerify(t, f.ks, mint(t, idp.Issuer))
	if n := idp.Hits(faultidp.JWKS); n != 0 {
		t.Fatalf("got %d jwks requests for a known inline key, want 0", n)
	}
	if _, err := idp.Issuer.RotateKey("ES256"); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, f.ks, mint(t, idp.Issuer, devissuer.WithAlg("ES256")))
	if n := idp.Hits(faultidp.JWKS); n != 1 {
		t.Fatalf("got %d jwks requests, want 1 refetch for the rotated kid", n)
	}
	// The remote goes down and stale; the inline base set still verifies.
	idp.Set(faultidp.JWKS, faultidp.Down)
	f.clk.Advance(25 * time.Hour)
	mustVerify(t, f.ks, mint(t, idp.Issuer))
	mustFail(t, f.ks, mint(t, idp.Issuer, devissuer.WithAlg("ES256")), ErrUnknownKey)
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Block)
	f := newKeySet(t, issuerConfig(idp.URL))
	tok := mint(t, idp.Issuer)
	errs := make(chan error, 3)
	verify := func(ctx context.Context) {
		_, err := f.ks.VerifySignature(ctx, tok)
		errs <- err
	}
	go verify(t.Context())
	<-idp.Arrived() // the first caller's fetch reached the server and is held
	cancelCtx, cancel := context.WithCancel(t.Context())
	go verify(t.Context())
	go verify(cancelCtx)
	wait.For(t, 10*time.Second, func() bool { return f.ks.waiting() == 3 }, "3 callers waiting on the fetch")
	cancel() // one caller gives up; the shared fetch goes on
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v from the cancelled caller, want context.Canceled", err)
	}
	idp.Unblock()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("got %v, want the shared fetch to verify the token", err)
		}
	}
	if n := idp.Hits(faultidp.JWKS); n != 1 {
		t.Fatalf("got %d jwks requests, want 1 shared fetch", n)
	}
}

func TestStaleRemoteKeysAreRefused(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	idp.Set(faultidp.JWKS, faultidp.Down)
	f.clk.Advance(24 * time.Hour)
	mustVerify(t, f.ks, mint(t, idp.Issuer)) // exactly at MaxStaleness: still used
	f.clk.Advance(time.Second)
	mustFail(t, f.ks, mint(t, idp.Issuer), ErrNoKeys)
	st := f.ks.Status()
	if !st.Stale || st.Keys != 0 {
		t.Fatalf("got status %+v, want stale with 0 usable keys", st)
	}
	idp.Set(faultidp.JWKS, faultidp.None)
	f.clk.Advance(time.Minute)
	mustVerify(t, f.ks, mint(t, idp.Issuer)) // recovery refetch
	if st := f.ks.Status(); st.Stale || st.Keys != 2 {
		t.Fatalf("got status %+v, want fresh keys after recovery", st)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	t0 := f.clk.Now()
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	idp.Set(faultidp.JWKS, faultidp.Down)
	f.clk.Advance(90 * time.Second)
	_ = f.ks.Refresh(t.Context())
	for range refetchBurst + 1 { // the burst fetches (and fails), the next is suppressed
		mustFail(t, f.ks, mint(t, idp.Issuer, devissuer.WithKID("nope")), ErrUnknownKey)
	}

	want := fmt.Sprintf(`
# HELP authgate_jwks_fetches_total JWKS and discovery fetches, by issuer and result (success, error).
# TYPE authgate_jwks_fetches_total counter
authgate_jwks_fetches_total{issuer="test",result="error"} 4
authgate_jwks_fetches_total{issuer="test",result="success"} 1
# HELP authgate_jwks_keys Usable verification keys per issuer: inline keys and remote keys not past their maximum staleness. 0: tokens of the issuer are refused.
# TYPE authgate_jwks_keys gauge
authgate_jwks_keys{issuer="test"} 2
# HELP authgate_jwks_inline_keys Usable keys the configuration carries inline per issuer (the controller renders them); they never go stale and need no network.
# TYPE authgate_jwks_inline_keys gauge
authgate_jwks_inline_keys{issuer="test"} 0
# HELP authgate_jwks_last_success_timestamp_seconds Unix time the issuer's key set was last loaded successfully.
# TYPE authgate_jwks_last_success_timestamp_seconds gauge
authgate_jwks_last_success_timestamp_seconds{issuer="test"} %d
# HELP authgate_jwks_key_age_seconds Seconds since the issuer's key set was last loaded successfully.
# TYPE authgate_jwks_key_age_seconds gauge
authgate_jwks_key_age_seconds{issuer="test"} 90
# HELP authgate_jwks_refetch_suppressed_total Token-triggered key refetches (unknown key id) skipped by the issuer's refetch limit: at most 3 per refresh cooldown with keys loaded, one per 250ms without.
# TYPE authgate_jwks_refetch_suppressed_total counter
authgate_jwks_refetch_suppressed_total{issuer="test"} 1
`, t0.Unix())
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want),
		"authgate_jwks_fetches_total", "authgate_jwks_keys", "authgate_jwks_inline_keys", "authgate_jwks_last_success_timestamp_seconds",
		"authgate_jwks_key_age_seconds", "authgate_jwks_refetch_suppressed_total"); err != nil {
		t.Fatal(err)
	}
}

// authgate_jwks_keys is what the key set can verify with at scrape time:
// remote keys past their maximum staleness no longer count (the alert on
// a sidecar without usable keys depends on it), and a sidecar whose inline
// keys verify tokens reports them while every fetch fails (a sidecar
// without IdP egress by design must not look like one that cannot verify).
func TestKeyMetricsAtScrape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		inline  bool
		advance time.Duration // after the first refresh, with the IdP down
		// The gauges wanted: usable keys, inline keys, key age in seconds.
		keys, inlineKeys, age int
	}{
		{name: "remote keys fresh", advance: time.Hour, keys: 2, age: 3600},
		{name: "remote keys at their maximum staleness", advance: 24 * time.Hour, keys: 2, age: 86400},
		{name: "remote keys past their maximum staleness", advance: 24*time.Hour + time.Second, age: 86401},
		{name: "inline keys, IdP never reachable", inline: true, advance: 48 * time.Hour, keys: 2, inlineKeys: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := faultidp.New(t)
			var opts []func(*config.Issuer)
			if tc.inline {
				opts = append(opts, inline(idp.Issuer.PublicJWKS()))
				idp.Set(faultidp.JWKS, faultidp.Down)
			}
			f := newKeySet(t, issuerConfig(idp.URL, opts...))
			refreshed := f.ks.Refresh(t.Context())
			if (refreshed != nil) != tc.inline {
				t.Fatalf("got refresh error %v, want one only with the IdP down", refreshed)
			}
			idp.Set(faultidp.JWKS, faultidp.Down)
			f.clk.Advance(tc.advance)
			_ = f.ks.Refresh(t.Context())
			want := fmt.Sprintf(`
# HELP authgate_jwks_keys Usable verification keys per issuer: inline keys and remote keys not past their maximum staleness. 0: tokens of the issuer are refused.
# TYPE authgate_jwks_keys gauge
authgate_jwks_keys{issuer="test"} %d
# HELP authgate_jwks_inline_keys Usable keys the configuration carries inline per issuer (the controller renders them); they never go stale and need no network.
# TYPE authgate_jwks_inline_keys gauge
authgate_jwks_inline_keys{issuer="test"} %d
# HELP authgate_jwks_key_age_seconds Seconds since the issuer's key set was last loaded successfully.
# TYPE authgate_jwks_key_age_seconds gauge
authgate_jwks_key_age_seconds{issuer="test"} %d
`, tc.keys, tc.inlineKeys, tc.age)
			if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want),
				"authgate_jwks_keys", "authgate_jwks_inline_keys", "authgate_jwks_key_age_seconds"); err != nil {
				t.Fatal(err)
			}
			if tc.inline {
				if got := testutil.ToFloat64(f.m.JWKSFetches.WithLabelValues("test", "error")); got != 2 {
					t.Fatalf("got %v failed fetches, want 2 (the metric counts them; the alerts look at the keys)", got)
				}
			}
		})
	}
}

func TestFetchErrorsDoNotLeakURLSecrets(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // connection refused from now on
	f := newKeySet(t, issuerConfig(base, func(i *config.Issuer) { i.JWKSURL = base + "/jwks?access_token=sekrit" }))
	err := f.ks.Refresh(t.Context())
	if err == nil {
		t.Fatal("got no error from a closed server, want one")
	}
	if strings.Contains(err.Error(), "sekrit") || strings.Contains(f.logs.String(), "sekrit") {
		t.Fatalf("got the URL's secret in error %q or logs %q, want it absent", err, f.logs.String())
	}
}

func TestRunFetchesAtStartWithoutInlineKeys(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	ctx, cancel := context.WithCancel(t.Context())
	var done atomic.Bool
	stopped := make(chan struct{})
	go func() { f.ks.Run(ctx); done.Store(true); close(stopped) }()
	wait.For(t, 10*time.Second, func() bool { return f.ks.Status().Keys == 2 }, "Run to load the 2 keys")
	cancel()
	<-stopped
	if !done.Load() {
		t.Fatal("got Run still running after cancel, want it stopped")
	}
	if n := idp.Hits(faultidp.JWKS); n != 1 {
		t.Fatalf("got %d jwks requests, want 1 initial fetch", n)
	}
}
