package jwks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

// A key published right after a fetch is picked up at once: the refetch
// limit is a burst per cooldown, not one fetch per cooldown.
func TestRotationRightAfterFetchIsAccepted(t *testing.T) {
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
	// Same instant as the fetch: well inside the cooldown.
	mustVerify(t, f.ks, mint(t, idp.Issuer))
	if n := idp.Hits(faultidp.JWKS); n != 2 {
		t.Fatalf("got %d jwks requests, want 2 (one refetch for the new kid)", n)
	}
	mustVerify(t, f.ks, mint(t, idp.Issuer)) // now known: no fetch
	if n := idp.Hits(faultidp.JWKS); n != 2 {
		t.Fatalf("got %d jwks requests for a known kid, want still 2", n)
	}
	if got := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test")); got != 0 {
		t.Fatalf("got %v suppressed refetches, want 0", got)
	}
}

// floodKIDs verifies n tokens with distinct unknown kids, concurrently when
// parallel, and requires each to fail.
func floodKIDs(t *testing.T, f *fixture, iss *devissuer.Issuer, prefix string, n int, parallel bool, want error) {
	t.Helper()
	toks := make([]string, n)
	for i := range toks {
		toks[i] = mint(t, iss, devissuer.WithAlg("ES256"), devissuer.WithKID(fmt.Sprintf("%s-%d", prefix, i)))
	}
	check := func(tok string) {
		if _, err := f.ks.VerifySignature(t.Context(), tok); !errors.Is(err, want) {
			t.Errorf("got %v, want %v", err, want)
		}
	}
	if !parallel {
		for _, tok := range toks {
			check(tok)
		}
		return
	}
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Go(func() { check(tok) })
	}
	wg.Wait()
}

// A flood of random kids with keys loaded starts at most refetchBurst
// fetches in any cooldown window, and every skipped one is counted.
func TestRandomKIDFloodFetchesAtMostBurstPerCooldown(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	floodKIDs(t, f, idp.Issuer, "seq", 1000, false, ErrUnknownKey)
	if n := idp.Hits(faultidp.JWKS) - 1; n != 3 {
		t.Fatalf("got %d fetches for 1000 random kids in one cooldown, want exactly the burst of 3", n)
	}
	if got := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test")); got != 997 {
		t.Fatalf("got %v suppressed refetches, want 997", got)
	}
	f.clk.Advance(29 * time.Second)
	floodKIDs(t, f, idp.Issuer, "late", 1000, true, ErrUnknownKey)
	if n := idp.Hits(faultidp.JWKS) - 1; n != 3 {
		t.Fatalf("got %d fetches before the cooldown ended, want still 3", n)
	}
	f.clk.Advance(2 * time.Second) // the first burst left the window
	floodKIDs(t, f, idp.Issuer, "next", 1000, true, ErrUnknownKey)
	if n := idp.Hits(faultidp.JWKS) - 4; n < 1 || n > 3 {
		t.Fatalf("got %d fetches in the next cooldown, want 1 to 3", n)
	}
}

// Only an unknown key id (or a kid-less token) may refetch: a bad signature
// under a known kid never does, whatever the budget left.
func TestKnownKIDBadSignatureNeverFetches(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	attacker, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	attacker.SetURL(idp.URL)
	good := mint(t, idp.Issuer)
	parts := strings.Split(good, ".")
	tests := []struct {
		name string
		tok  string
	}{
		{"tampered payload", parts[0] + "." + b64(`{"sub":"admin","aud":"api"}`) + "." + parts[2]},
		{"attacker key under the RS256 kid", mint(t, attacker, devissuer.WithKID(idp.Issuer.KeyID("RS256")))},
		{"attacker key under the ES256 kid", mint(t, attacker, devissuer.WithAlg("ES256"), devissuer.WithKID(idp.Issuer.KeyID("ES256")))},
		{"RS256 token under the ES256 kid", mint(t, idp.Issuer, devissuer.WithKID(idp.Issuer.KeyID("ES256")))},
	}
	for _, tc := range tests { // sequential: the subtests share idp's counters
		t.Run(tc.name, func(t *testing.T) {
			f := newKeySet(t, issuerConfig(idp.URL))
			if err := f.ks.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			before := idp.Hits(faultidp.JWKS)
			for range 100 {
				mustFail(t, f.ks, tc.tok, ErrSignature)
			}
			if n := idp.Hits(faultidp.JWKS) - before; n != 0 {
				t.Fatalf("got %d fetches for a bad signature under a known kid, want 0", n)
			}
			if got := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test")); got != 0 {
				t.Fatalf("got %v suppressed refetches, want 0 (none attempted)", got)
			}
		})
	}
}

// With the endpoint down at cold start, a token flood is bounded to a few
// fetches per second, and once the endpoint answers again a valid token
// is accepted within 2 s (fake clock: the bound is exact, not timed).
func TestColdStartOutageRecoversWithinTwoSeconds(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Down)
	f := newKeySet(t, issuerConfig(idp.URL))
	// One simulated second of tokens every 10 ms while the endpoint is down.
	for range 100 {
		mustFail(t, f.ks, mint(t, idp.Issuer), ErrNoKeys)
		f.clk.Advance(10 * time.Millisecond)
	}
	if n := idp.Hits(faultidp.JWKS); n < 1 || n > 5 {
		t.Fatalf("got %d fetches in one second of tokens without keys, want 1 to 5", n)
	}
	floodKIDs(t, f, idp.Issuer, "cold", 1000, true, ErrNoKeys)
	if n := idp.Hits(faultidp.JWKS); n > 6 {
		t.Fatalf("got %d fetches after a flood at one instant, want at most one more", n)
	}
	idp.Set(faultidp.JWKS, faultidp.None)
	back := f.clk.Now()
	tok := mint(t, idp.Issuer)
	for {
		if _, err := f.ks.VerifySignature(t.Context(), tok); err == nil {
			break
		} else if !errors.Is(err, ErrNoKeys) {
			t.Fatalf("got %v while recovering, want ErrNoKeys until the keys load", err)
		}
		if f.clk.Now().Sub(back) > 2*time.Second {
			t.Fatalf("token still refused %v after the endpoint answered again, want accepted within 2s", f.clk.Now().Sub(back))
		}
		f.clk.Advance(50 * time.Millisecond)
	}
	// Keys loaded: the normal burst limit applies again.
	hits := idp.Hits(faultidp.JWKS)
	suppressed := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test"))
	floodKIDs(t, f, idp.Issuer, "warm", 100, false, ErrUnknownKey)
	if n := idp.Hits(faultidp.JWKS) - hits; n != 3 {
		t.Fatalf("got %d fetches for a flood once keys loaded, want the burst of 3", n)
	}
	if got := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test")) - suppressed; got != 97 {
		t.Fatalf("got %v suppressed refetches once keys loaded, want 97", got)
	}
}

// Run retries quickly while no usable key is loaded and loads the keys soon
// after the endpoint answers again, with no token needed.
func TestRunRetriesWhileNoKeys(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.Set(faultidp.JWKS, faultidp.Down)
	f := newKeySet(t, issuerConfig(idp.URL))
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { f.ks.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	wait.For(t, 10*time.Second, func() bool { return idp.Hits(faultidp.JWKS) >= 3 }, "3 retries of the down endpoint")
	idp.Set(faultidp.JWKS, faultidp.None)
	wait.For(t, 10*time.Second, func() bool { return f.ks.Status().Keys == 2 }, "the 2 keys once the endpoint is back")
	mustVerify(t, f.ks, mint(t, idp.Issuer))
}

func TestColdBackoff(t *testing.T) {
	t.Parallel()
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 100 * time.Millisecond, 200 * time.Millisecond},
		{1, 200 * time.Millisecond, 400 * time.Millisecond},
		{2, 400 * time.Millisecond, 800 * time.Millisecond},
		{3, 500 * time.Millisecond, time.Second},
		{10, 500 * time.Millisecond, time.Second},
		{1 << 30, 500 * time.Millisecond, time.Second},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.attempt), func(t *testing.T) {
			t.Parallel()
			if got := coldBackoff(tc.attempt, lowest); got != tc.min {
				t.Fatalf("got %v with the lowest jitter, want %v", got, tc.min)
			}
			if got := coldBackoff(tc.attempt, highest); got != tc.max {
				t.Fatalf("got %v with the highest jitter, want %v", got, tc.max)
			}
		})
	}
}

func TestHasKey(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	rsKID, esKID := idp.Issuer.KeyID("RS256"), idp.Issuer.KeyID("ES256")
	inlineOnly := newKeySet(t, issuerConfig(idp.URL, noRemote, inline(idp.Issuer.PublicJWKS())))
	remote := newKeySet(t, issuerConfig(idp.URL))
	empty := newKeySet(t, issuerConfig(idp.URL))
	stale := newKeySet(t, issuerConfig(idp.URL))
	for _, f := range []*fixture{remote, stale} {
		if err := f.ks.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	stale.clk.Advance(24*time.Hour + time.Second)
	hits := idp.Hits(faultidp.JWKS)

	tests := []struct {
		name string
		f    *fixture
		kid  string
		want bool
	}{
		{"inline known RS256", inlineOnly, rsKID, true},
		{"inline known ES256", inlineOnly, esKID, true},
		{"inline any", inlineOnly, "", true},
		{"inline unknown", inlineOnly, "nope", false},
		{"remote known", remote, rsKID, true},
		{"remote any", remote, "", true},
		{"remote unknown", remote, "nope", false},
		{"remote kid prefix", remote, rsKID[:len(rsKID)-1], false},
		{"nothing loaded any", empty, "", false},
		{"nothing loaded kid", empty, rsKID, false},
		{"stale known", stale, rsKID, false},
		{"stale any", stale, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.ks.HasKey(tc.kid); got != tc.want {
				t.Fatalf("HasKey(%q) = %v, want %v", tc.kid, got, tc.want)
			}
		})
	}
	if n := idp.Hits(faultidp.JWKS); n != hits {
		t.Fatalf("got %d jwks requests from HasKey, want none", n-hits)
	}
}

// Not parallel: AllocsPerRun needs the process to itself.
func TestHasKeyDoesNotAllocate(t *testing.T) {
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL, inline(idp.Issuer.PublicJWKS())))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	kid := idp.Issuer.KeyID("ES256")
	for _, k := range []string{kid, "", "nope"} {
		if allocs := testing.AllocsPerRun(100, func() { f.ks.HasKey(k) }); allocs != 0 {
			t.Fatalf("got %v allocations per HasKey(%q), want 0", allocs, k)
		}
	}
}
