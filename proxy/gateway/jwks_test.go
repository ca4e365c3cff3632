package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/devissuer"
)

// Class 6 through the proxy: keys only from a JWKS URL.
func TestJWKSFaultsThroughTheProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	down.Store(true)
	issTS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		iss.Handler().ServeHTTP(w, r)
	}))
	defer issTS.Close()
	iss.SetURL(issTS.URL)
	cfg := baseConfig(issTS.URL, config.JSONWebKeySet{}, e.fnTS.URL)
	cfg.Issuers[0].JWKS = nil
	cfg.Issuers[0].JWKSURL = issTS.URL + "/jwks"
	cfg.Issuers[0].Fetch.RefreshCooldown = config.D(1e9)
	ts, m, _ := proxyTo(t, cfg, nil)

	call := func(tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/orders/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	mint := func() string {
		tok, err := iss.Mint(map[string]any{"sub": "alice", "aud": "api", "scope": "orders:read"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	before := e.fn.Count()
	if got, _ := call(mint()); got != http.StatusUnauthorized {
		t.Fatalf("JWKS down at cold start: got %d, want 401 (fail closed)", got)
	}
	if e.fn.Count() != before {
		t.Fatal("the function was called while no keys were available")
	}
	// Flood with the endpoint down: the cooldown bounds fetches.
	for i := 0; i < 20; i++ {
		call(mint())
	}
	down.Store(false)
	// Within the cooldown nothing is fetched; eventually the keys arrive.
	ok := false
	for i := 0; i < 200 && !ok; i++ {
		code, _ := call(mint())
		ok = code == http.StatusOK
		if !ok {
			waitABit()
		}
	}
	if !ok {
		t.Fatal("keys never loaded after the JWKS endpoint recovered")
	}
	// Endpoint down again after keys are cached: cached keys keep working.
	down.Store(true)
	if got, _ := call(mint()); got != http.StatusOK {
		t.Fatalf("JWKS down with cached keys: got %d, want 200", got)
	}
	// Rotation: a token signed by a brand-new key triggers one refetch (after the cooldown).
	down.Store(false)
	if _, err := iss.RotateKey(devissuer.RS256); err != nil {
		t.Fatal(err)
	}
	ok = false
	for i := 0; i < 200 && !ok; i++ {
		code, _ := call(mint())
		ok = code == http.StatusOK
		if !ok {
			waitABit()
		}
	}
	if !ok {
		t.Fatal("a rotated key was never picked up")
	}
	if got := testutil.ToFloat64(m.JWKSFetches.WithLabelValues("dev", "error")); got < 1 || got > 2 {
		t.Fatalf("got %v failed JWKS fetches for a flood of 20 requests, want 1 or 2 (cooldown)", got)
	}
	if got := testutil.ToFloat64(m.JWKSRefetchSuppressed.WithLabelValues("dev")); got < 10 {
		t.Fatalf("got %v suppressed refetches, want the flood suppressed by the cooldown", got)
	}
}
