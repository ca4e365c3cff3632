package gateway_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/fakeclock"
	"github.com/authgate/authgate/test/faultidp"
)

// Class 6 and 10 through the proxy with keys only from the JWKS URL and a
// manual clock: rotation right after a fetch, a random-kid flood, and a
// cold-start outage.

// remoteKeys makes the issuer's keys come only from its JWKS URL.
func remoteKeys(c *config.ProxyConfig) {
	c.Issuers[0].JWKS = nil
	c.Issuers[0].JWKSURL = c.Issuers[0].IssuerURL + "/jwks"
}

// noAuthFailureThrottle lets every failed token reach the key set.
func noAuthFailureThrottle(c *config.ProxyConfig) { c.Limits.AuthFailures.PerMinute = -1 }

// manualClock sets the proxy's clock to a fake one starting now (tokens
// are minted with the real time, so they stay valid).
func (e *env) manualClock() *fakeclock.Clock {
	clk := fakeclock.New(time.Now())
	e.now = clk.Now
	return clk
}

func (r result) mustForwardAlice(t *testing.T) {
	t.Helper()
	rec := r.mustForward(t)
	if got := header(rec, "X-Authgate-Subject"); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("got X-Authgate-Subject %v upstream, want [alice]", got)
	}
	if got := header(rec, "X-Authgate-Credential-Kind"); len(got) != 1 || got[0] != "jwt" {
		t.Fatalf("got X-Authgate-Credential-Kind %v upstream, want [jwt]", got)
	}
}

func (r result) mustNotForward(t *testing.T, reason string) {
	t.Helper()
	if r.status == http.StatusOK || r.received != nil {
		t.Fatalf("got status %d with upstream call %v, want a denial and no upstream call", r.status, r.received)
	}
	if r.body.Reason != reason {
		t.Fatalf("got reason %q (%s), want %q", r.body.Reason, r.raw, reason)
	}
}

func TestJWKSRotationRightAfterFetchThroughTheProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, remoteKeys)
	e.manualClock() // never advanced: everything happens inside one cooldown
	e.get("/orders/1", bearer(e.mint(nil))...).mustForwardAlice(t)
	if n := e.issuer.JWKSRequests(); n != 1 {
		t.Fatalf("got %d JWKS requests at cold start, want 1", n)
	}
	if _, err := e.issuer.RotateKey(devissuer.RS256); err != nil {
		t.Fatal(err)
	}
	e.get("/orders/1", bearer(e.mint(nil))...).mustForwardAlice(t)
	e.get("/orders/1", bearer(e.mint(nil))...).mustForwardAlice(t)
	if n := e.issuer.JWKSRequests(); n != 2 {
		t.Fatalf("got %d JWKS requests, want 2 (one refetch for the new kid)", n)
	}
	// The other, unrotated key still verifies without a fetch.
	e.get("/orders/1", bearer(e.mint(nil, devissuer.WithAlg(devissuer.ES256)))...).mustForwardAlice(t)
	if n := e.issuer.JWKSRequests(); n != 2 {
		t.Fatalf("got %d JWKS requests, want still 2", n)
	}
}

func TestJWKSRandomKIDFloodThroughTheProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, remoteKeys, noAuthFailureThrottle)
	clk := e.manualClock()
	e.get("/orders/1", bearer(e.mint(nil))...).mustForwardAlice(t)
	for i := range 1000 {
		tok := e.mint(nil, devissuer.WithAlg(devissuer.ES256), devissuer.WithKID(fmt.Sprintf("flood-%d", i)))
		e.get("/orders/1", bearer(tok)...).mustNotForward(t, "invalid_token")
	}
	if n := e.issuer.JWKSRequests() - 1; n != 3 {
		t.Fatalf("got %d JWKS fetches for 1000 random kids in one cooldown, want the burst of 3", n)
	}
	if got := testutil.ToFloat64(e.metrics.JWKSRefetchSuppressed.WithLabelValues("dev")); got != 997 {
		t.Fatalf("got %v suppressed refetches, want 997", got)
	}
	// Valid tokens are unaffected by the flood.
	e.get("/orders/1", bearer(e.mint(nil))...).mustForwardAlice(t)
	clk.Advance(29 * time.Second)
	e.get("/orders/1", bearer(e.mint(nil, devissuer.WithKID("flood-late")))...).mustNotForward(t, "invalid_token")
	if n := e.issuer.JWKSRequests() - 1; n != 3 {
		t.Fatalf("got %d JWKS fetches inside the cooldown, want still 3", n)
	}
}

func TestJWKSColdStartOutageThroughTheProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, remoteKeys, noAuthFailureThrottle)
	clk := e.manualClock()
	e.idp.Set(faultidp.All, faultidp.Down)
	for range 5 {
		e.get("/orders/1", bearer(e.mint(nil))...).mustNotForward(t, "keys_unavailable")
		clk.Advance(200 * time.Millisecond)
	}
	if got := testutil.ToFloat64(e.metrics.JWKSFetches.WithLabelValues("dev", "error")); got < 1 || got > 5 {
		t.Fatalf("got %v failed fetches for 5 tokens in one second, want 1 to 5", got)
	}
	e.idp.Set(faultidp.All, faultidp.None)
	back := clk.Now()
	for {
		r := e.get("/orders/1", bearer(e.mint(nil))...)
		if r.status == http.StatusOK {
			r.mustForwardAlice(t)
			break
		}
		r.mustNotForward(t, "keys_unavailable")
		if waited := clk.Now().Sub(back); waited > 2*time.Second {
			t.Fatalf("valid tokens still refused %v after the IdP answered again, want accepted within 2s", waited)
		}
		clk.Advance(100 * time.Millisecond)
	}
	if got := testutil.ToFloat64(e.metrics.JWKSFetches.WithLabelValues("dev", "success")); got != 1 {
		t.Fatalf("got %v successful fetches, want 1", got)
	}
}
