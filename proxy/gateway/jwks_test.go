package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/faultidp"
)

// Class 6 through the proxy: keys only from a JWKS URL, on a manual clock
// (the key set's refetch limit and the auth-failure throttle both use it).
func TestJWKSFaultsThroughTheProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, remoteKeys, func(c *config.ProxyConfig) { c.Issuers[0].Fetch.RefreshCooldown = config.D(time.Second) })
	clk := e.manualClock()
	e.idp.Set(faultidp.All, faultidp.Down)
	call := func() result { return e.get("/orders/1", bearer(e.mint(nil))...) }
	// untilOK advances the clock until a valid token is accepted.
	untilOK := func(what string) {
		t.Helper()
		for range 200 {
			if r := call(); r.status == http.StatusOK {
				r.mustForwardAlice(t)
				return
			}
			clk.Advance(250 * time.Millisecond)
		}
		t.Fatal(what)
	}
	r := call()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("JWKS down at cold start: got %d, want 503 (fail closed, a server fault)", r.status)
	}
	r.mustNotForward(t, "keys_unavailable")
	// Flood at one instant with the endpoint down: the refetch limit bounds
	// fetches (an outage never counts against the client, so nothing else
	// does).
	for range 20 {
		call()
	}
	e.idp.Set(faultidp.All, faultidp.None)
	untilOK("keys never loaded after the JWKS endpoint recovered")
	// Endpoint down again after keys are cached: cached keys keep working.
	e.idp.Set(faultidp.All, faultidp.Down)
	if r := call(); r.status != http.StatusOK {
		t.Fatalf("JWKS down with cached keys: got %d, want 200", r.status)
	}
	// Rotation: a token signed by a brand-new key triggers one refetch.
	e.idp.Set(faultidp.All, faultidp.None)
	if _, err := e.issuer.RotateKey(devissuer.RS256); err != nil {
		t.Fatal(err)
	}
	untilOK("a rotated key was never picked up")
	if got := testutil.ToFloat64(e.metrics.JWKSFetches.WithLabelValues("dev", "error")); got != 1 {
		t.Fatalf("got %v failed JWKS fetches for a flood of 21 requests at one instant, want 1", got)
	}
	if got := testutil.ToFloat64(e.metrics.JWKSRefetchSuppressed.WithLabelValues("dev")); got < 10 {
		t.Fatalf("got %v suppressed refetches, want the flood suppressed by the refetch limit", got)
	}
	if n := e.issuer.JWKSRequests(); n != 2 {
		t.Fatalf("got %d JWKS responses, want 2 (recovery and rotation)", n)
	}
}
