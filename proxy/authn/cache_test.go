package authn

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCacheHitAvoidsVerification(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	a, m := newAuthnWithMetrics(t, baseConfig(clk, is.issuerConfig("dev")), clk)
	tok := is.mint(t, nil)
	first, err := authenticate(a, bearer(tok))
	if err != nil {
		t.Fatalf("got %v, want success", err)
	}
	for range 3 {
		id, err := authenticate(a, bearer(tok))
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		if id != first {
			t.Fatalf("got a new identity %p, want the cached %p", id, first)
		}
	}
	if got := a.verifications("dev"); got != 1 {
		t.Fatalf("got %d verifications, want 1", got)
	}
	if got := testutil.ToFloat64(m.TokenCache.WithLabelValues("hit")); got != 3 {
		t.Fatalf("got %v cache hits, want 3", got)
	}
}

func TestCacheNeverPastExpiry(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	a := newAuthn(t, baseConfig(clk, is.issuerConfig("dev")), clk) // skew 30s
	tok := is.mint(t, map[string]any{"exp": clk.Now().Add(time.Minute).Unix()})
	if _, err := authenticate(a, bearer(tok)); err != nil {
		t.Fatalf("got %v, want success", err)
	}
	clk.Advance(time.Minute) // at exp: the entry is gone, verification (with skew) accepts
	if _, err := authenticate(a, bearer(tok)); err != nil {
		t.Fatalf("at exp: got %v, want success within the skew", err)
	}
	if got := a.verifications("dev"); got != 2 {
		t.Fatalf("got %d verifications, want 2 (no cache hit at exp)", got)
	}
	clk.Advance(30 * time.Second)
	id, err := authenticate(a, bearer(tok))
	wantReason(t, id, err, ReasonExpired)
}

func TestCacheBoundedByMaxTokenAge(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	ic := is.issuerConfig("dev")
	ic.MaxTokenAge.Duration = 2 * time.Minute
	ic.ClockSkew.Duration = time.Second
	a := newAuthn(t, baseConfig(clk, ic), clk)
	tok := is.mint(t, nil) // exp in 1h, iat now
	if _, err := authenticate(a, bearer(tok)); err != nil {
		t.Fatalf("got %v, want success", err)
	}
	clk.Advance(3 * time.Minute)
	id, err := authenticate(a, bearer(tok))
	wantReason(t, id, err, ReasonTokenTooOld)
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	cfg := baseConfig(clk, is.issuerConfig("dev"))
	cfg.TokenCache.TTL.Duration = time.Minute
	a := newAuthn(t, cfg, clk)
	tok := is.mint(t, nil)
	for range 2 {
		if _, err := authenticate(a, bearer(tok)); err != nil {
			t.Fatalf("got %v, want success", err)
		}
	}
	clk.Advance(time.Minute)
	if _, err := authenticate(a, bearer(tok)); err != nil {
		t.Fatalf("got %v, want success", err)
	}
	if got := a.verifications("dev"); got != 2 {
		t.Fatalf("got %d verifications, want 2 (one per TTL)", got)
	}
}

func TestCacheDisabled(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	cfg := baseConfig(clk, is.issuerConfig("dev"))
	cfg.TokenCache.MaxEntries = -1
	a := newAuthn(t, cfg, clk)
	tok := is.mint(t, nil)
	for range 3 {
		if _, err := authenticate(a, bearer(tok)); err != nil {
			t.Fatalf("got %v, want success", err)
		}
	}
	if got := a.verifications("dev"); got != 3 {
		t.Fatalf("got %d verifications, want 3", got)
	}
}

// Two issuer entries share an issuer URL but differ in audience: each keeps
// its own cache entries, so a token one of them accepts is never served from
// the cache as accepted by the other.
func TestCacheKeyedByVerifier(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	strict := is.issuerConfig("strict")
	strict.Audiences = []string{"billing-api"}
	loose := is.issuerConfig("loose")
	a := newAuthn(t, baseConfig(clk, strict, loose), clk)
	tok := is.mint(t, nil) // aud orders-api: only "loose" accepts
	for i := range 3 {
		id, err := authenticate(a, bearer(tok))
		if err != nil {
			t.Fatalf("call %d: got %v, want success", i, err)
		}
		if id.Source != "loose" {
			t.Fatalf("call %d: got source %q, want loose", i, id.Source)
		}
	}
	if got := a.verifications("loose"); got != 1 {
		t.Fatalf("got %d verifications by loose, want 1", got)
	}
	// strict refuses the audience from the claims, before any signature
	// work; loose verifies once and answers from the cache after.
	if got := a.verifications("strict"); got != 0 {
		t.Fatalf("got %d verifications by strict, want 0 (its audience fails before any signature work)", got)
	}
}
