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
	idp := newIDP(t)
	f := newKeySet(t, issuerConfig(idp.URL, noRemote, inline(idp.iss.PublicJWKS())))

	mustVerify(t, f.ks, mint(t, idp.iss))
	mustVerify(t, f.ks, mint(t, idp.iss, devissuer.WithAlg("ES256")))
	mustVerify(t, f.ks, mint(t, idp.iss, devissuer.WithoutKID()))
	mustFail(t, f.ks, mint(t, idp.iss, devissuer.WithKID("unknown")), ErrUnknownKey)
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatalf("got refresh error %v without a remote source, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.ks.Run(ctx); close(done) }()
	cancel()
	<-done

	if n := idp.jwksHits.Load() + idp.discoHits.Load(); n != 0 {
		t.Fatalf("got %d requests to the issuer, want 0", n)
	}
	st := f.ks.Status()
	if st.Keys != 2 || st.Remote || st.Stale || st.LastSuccess.IsZero() {
		t.Fatalf("got status %+v, want 2 fresh inline keys and no remote", st)
	}
	// Inline keys never go stale.
	f.clk.Advance(10 * 365 * 24 * time.Hour)
	mustVerify(t, f.ks, mint(t, idp.iss))
}

func TestGoOIDCVerifierUsesKeySet(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	v := oidc.NewVerifier(idp.URL, f.ks, &oidc.Config{ClientID: "api", SupportedSigningAlgs: []string{"RS256", "ES256"}})
	tok, err := v.Verify(t.Context(), mint(t, idp.iss, devissuer.WithAlg("ES256")))
	if err != nil {
		t.Fatalf("got %v, want the token verified through go-oidc", err)
	}
	if tok.Subject != "alice" {
		t.Fatalf("got subject %q, want alice", tok.Subject)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	f := newKeySet(t, issuerConfig(idp.URL, useDiscovery))
	mustVerify(t, f.ks, mint(t, idp.iss)) // cold start: the token triggers the first fetch
	if d, j := idp.discoHits.Load(), idp.jwksHits.Load(); d != 1 || j != 1 {
		t.Fatalf("got %d discovery and %d jwks requests, want 1 and 1", d, j)
	}
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d, j := idp.discoHits.Load(), idp.jwksHits.Load(); d != 1 || j != 2 {
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
			idp := newIDP(t)
			other := tc.issuer(idp.URL)
			idp.discoIss.Store(&other)
			f := newKeySet(t, issuerConfig(idp.URL, useDiscovery))
			err := f.ks.Refresh(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if n := idp.jwksHits.Load(); n != 0 {
				t.Fatalf("got %d jwks requests, want 0 after a refused discovery", n)
			}
			f.clk.Advance(time.Hour)
			mustFail(t, f.ks, mint(t, idp.iss), ErrNoKeys)
		})
	}
}

func TestDiscoveryRefusesPlainHTTPJWKSURI(t *testing.T) {
	t.Parallel()
	doc := `{"issuer":%q,"jwks_uri":"http://idp.example.com/jwks"}`
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, doc, srv.URL)
	}))
	t.Cleanup(srv.Close)
	f := newKeySet(t, issuerConfig(srv.URL, useDiscovery))
	if err := f.ks.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("got %v, want the http jwks_uri refused", err)
	}
}

func TestColdStartEndpointDown(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	idp.mode.Store(modeDown)
	f := newKeySet(t, issuerConfig(idp.URL))
	mustFail(t, f.ks, mint(t, idp.iss), ErrNoKeys)
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
		mode    int32
		wantErr string
	}{
		{"down", modeDown, "unexpected status 503"},
		{"hanging", modeHang, "deadline exceeded|timeout"},
		{"trickling", modeTrickle, "deadline exceeded|timeout"},
		{"huge with length", modeHugeLength, "limit"},
		{"huge chunked", modeHugeChunked, "limit"},
		{"garbage", modeGarbage, "parse key set"},
		{"redirect to plain http", modeRedirectPlainHTTP, "https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := newIDP(t)
			f := newKeySet(t, issuerConfig(idp.URL, func(i *config.Issuer) {
				i.Fetch.Timeout = config.D(300 * time.Millisecond)
				i.Fetch.MaxBytes = 4096
			}))
			if err := f.ks.Refresh(t.Context()); err != nil {
				t.Fatalf("initial refresh: %v", err)
			}
			idp.mode.Store(tc.mode)
			err := f.ks.Refresh(t.Context())
			if err == nil || !regexp.MustCompile(tc.wantErr).MatchString(err.Error()) {
				t.Fatalf("got %v, want an error matching %q", err, tc.wantErr)
			}
			mustVerify(t, f.ks, mint(t, idp.iss))
			if st := f.ks.Status(); st.Keys != 2 || st.LastError == "" {
				t.Fatalf("got status %+v, want the 2 cached keys and the last error", st)
			}
		})
	}
}

func TestUnusableKeysAreDropped(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	good := idp.iss.PublicJWKS().Keys[0] // RS256
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"keys":[%s,%s]}`, strings.Join(bad, ","), good)
	}))
	t.Cleanup(srv.Close)
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
	if got := testutil.ToFloat64(f.m.JWKSKeys.WithLabelValues("test")); got != 1 {
		t.Fatalf("got jwks_keys %v, want 1", got)
	}

	// A set with no usable key is a failed fetch.
	onlyBad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"keys":[%s]}`, strings.Join(bad, ","))
	}))
	t.Cleanup(onlyBad.Close)
	f2 := newKeySet(t, issuerConfig(onlyBad.URL))
	if err := f2.ks.Refresh(t.Context()); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("got %v, want ErrNoKeys", err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	oldTok := mint(t, idp.iss)
	mustVerify(t, f.ks, oldTok)
	if _, err := idp.iss.RotateKey("RS256"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(31 * time.Second)
	mustVerify(t, f.ks, mint(t, idp.iss))
	if n := idp.jwksHits.Load(); n != 2 {
		t.Fatalf("got %d jwks requests, want 2 (one refetch for the new kid)", n)
	}
	// The old kid is gone after the refresh; its token is refused, and
	// repeating it spends the rest of the burst, then fetches no more
	// within the cooldown.
	for range 5 {
		mustFail(t, f.ks, oldTok, ErrUnknownKey)
	}
	if n := idp.jwksHits.Load(); n != 4 {
		t.Fatalf("got %d jwks requests, want 4 (the burst of 3 refetches)", n)
	}
	if got := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test")); got != 3 {
		t.Fatalf("got %v suppressed refetches, want 3", got)
	}
}

func TestInlineBaseWithRemoteRefresh(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	f := newKeySet(t, issuerConfig(idp.URL, inline(idp.iss.PublicJWKS())))
	mustVerify(t, f.ks, mint(t, idp.iss))
	if n := idp.jwksHits.Load(); n != 0 {
		t.Fatalf("got %d jwks requests for a known inline key, want 0", n)
	}
	if _, err := idp.iss.RotateKey("ES256"); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, f.ks, mint(t, idp.iss, devissuer.WithAlg("ES256")))
	if n := idp.jwksHits.Load(); n != 1 {
		t.Fatalf("got %d jwks requests, want 1 refetch for the rotated kid", n)
	}
	// The remote goes down and stale; the inline base set still verifies.
	idp.mode.Store(modeDown)
	f.clk.Advance(25 * time.Hour)
	mustVerify(t, f.ks, mint(t, idp.iss))
	mustFail(t, f.ks, mint(t, idp.iss, devissuer.WithAlg("ES256")), ErrUnknownKey)
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	idp.mode.Store(modeBlock)
	f := newKeySet(t, issuerConfig(idp.URL))
	tok := mint(t, idp.iss)
	errs := make(chan error, 3)
	verify := func(ctx context.Context) {
		_, err := f.ks.VerifySignature(ctx, tok)
		errs <- err
	}
	go verify(t.Context())
	<-idp.arrived // the first caller's fetch reached the server and is held
	cancelCtx, cancel := context.WithCancel(t.Context())
	go verify(t.Context())
	go verify(cancelCtx)
	waitFor(t, func() bool { return f.ks.waiting() == 3 })
	cancel() // one caller gives up; the shared fetch goes on
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v from the cancelled caller, want context.Canceled", err)
	}
	close(idp.unblock)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("got %v, want the shared fetch to verify the token", err)
		}
	}
	if n := idp.jwksHits.Load(); n != 1 {
		t.Fatalf("got %d jwks requests, want 1 shared fetch", n)
	}
}

func TestStaleRemoteKeysAreRefused(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	idp.mode.Store(modeDown)
	f.clk.Advance(24 * time.Hour)
	mustVerify(t, f.ks, mint(t, idp.iss)) // exactly at MaxStaleness: still used
	f.clk.Advance(time.Second)
	mustFail(t, f.ks, mint(t, idp.iss), ErrNoKeys)
	st := f.ks.Status()
	if !st.Stale || st.Keys != 0 {
		t.Fatalf("got status %+v, want stale with 0 usable keys", st)
	}
	idp.mode.Store(modeOK)
	f.clk.Advance(time.Minute)
	mustVerify(t, f.ks, mint(t, idp.iss)) // recovery refetch
	if st := f.ks.Status(); st.Stale || st.Keys != 2 {
		t.Fatalf("got status %+v, want fresh keys after recovery", st)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	t0 := f.clk.Now()
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	idp.mode.Store(modeDown)
	f.clk.Advance(90 * time.Second)
	_ = f.ks.Refresh(t.Context())
	for range refetchBurst + 1 { // the burst fetches (and fails), the next is suppressed
		mustFail(t, f.ks, mint(t, idp.iss, devissuer.WithKID("nope")), ErrUnknownKey)
	}

	want := fmt.Sprintf(`
# HELP authgate_jwks_fetches_total JWKS and discovery fetches, by issuer and result (success, error).
# TYPE authgate_jwks_fetches_total counter
authgate_jwks_fetches_total{issuer="test",result="error"} 4
authgate_jwks_fetches_total{issuer="test",result="success"} 1
# HELP authgate_jwks_keys Usable verification keys per issuer.
# TYPE authgate_jwks_keys gauge
authgate_jwks_keys{issuer="test"} 2
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
		"authgate_jwks_fetches_total", "authgate_jwks_keys", "authgate_jwks_last_success_timestamp_seconds",
		"authgate_jwks_key_age_seconds", "authgate_jwks_refetch_suppressed_total"); err != nil {
		t.Fatal(err)
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
	idp := newIDP(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	ctx, cancel := context.WithCancel(t.Context())
	var done atomic.Bool
	stopped := make(chan struct{})
	go func() { f.ks.Run(ctx); done.Store(true); close(stopped) }()
	waitFor(t, func() bool { return f.ks.Status().Keys == 2 })
	cancel()
	<-stopped
	if !done.Load() {
		t.Fatal("got Run still running after cancel, want it stopped")
	}
	if n := idp.jwksHits.Load(); n != 1 {
		t.Fatalf("got %d jwks requests, want 1 initial fetch", n)
	}
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatal("test ended before the condition held")
		case <-deadline:
			t.Fatal("condition did not hold within 10s")
		case <-time.After(time.Millisecond):
		}
	}
}
