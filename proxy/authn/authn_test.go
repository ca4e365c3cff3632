package authn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/authgate/authgate/proxy/config"
)

func TestAuthenticateConcurrent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	a := newAuthn(t, baseConfig(clk, is.issuerConfig("dev")), clk)
	toks := make([]string, 4)
	for i := range toks {
		toks[i] = is.mint(t, map[string]any{"sub": fmt.Sprint("user-", i)})
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				n := (g + i) % len(toks)
				id, err := authenticate(a, bearer(toks[n]))
				if err != nil || id.Subject != fmt.Sprint("user-", n) {
					t.Errorf("got %v, %v; want subject user-%d", id, err, n)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := a.verifications("dev"); got < int64(len(toks)) || got > int64(8*len(toks)) {
		t.Fatalf("got %d verifications, want between %d and %d", got, len(toks), 8*len(toks))
	}
}

func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	inline := is.issuerConfig("inline")
	jwks := is.PublicJWKS()
	inline.JWKS, inline.JWKSURL = &jwks, ""
	a := newAuthn(t, baseConfig(clk, is.issuerConfig("remote"), inline), clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		a.Run(ctx)
		close(done)
	}()
	cancel()
	<-done
	st := a.IssuerStatus()
	if len(st) != 2 || st["inline"].Keys != 2 || st["inline"].Remote {
		t.Fatalf("got status %+v, want two issuers, inline with 2 local keys", st)
	}
}

func TestInlineKeysNeedNoNetwork(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	ic := is.issuerConfig("dev")
	jwks := is.PublicJWKS()
	ic.JWKS, ic.JWKSURL = &jwks, ""
	disc := false
	ic.Discovery = &disc
	a := newAuthn(t, baseConfig(clk, ic), clk)
	id, err := authenticate(a, bearer(is.mint(t, nil)))
	wantReason(t, id, err, "")
	if got := is.JWKSRequests(); got != 0 {
		t.Fatalf("got %d JWKS requests, want 0 with inline keys", got)
	}
}

func TestNewRejectsConflictingPrefixes(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	ic := is.issuerConfig("dev")
	ic.Sources = []config.CredentialSource{{Type: config.SourceHeader, Name: "X-Token", Prefix: "Token "}}
	cfg := baseConfig(clk, ic)
	cfg.APIKeys.Sources = []config.CredentialSource{{Type: config.SourceHeader, Name: "x-token"}}
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config invalid: %v", errs)
	}
	if _, err := New(cfg, Options{Now: clk.Now}); err == nil {
		t.Fatal("got nil error, want one for a header source with two prefixes")
	}
}

func TestErrorUnwrap(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf("boom")
	e := failErr(ReasonInvalidToken, "bad", cause)
	var err error = e
	if ae, ok := AsError(fmt.Errorf("wrapped: %w", err)); !ok || ae != e {
		t.Fatalf("got %v, %v; want the *Error back", ae, ok)
	}
	if got, want := e.Error(), "authn: invalid_token: bad: boom"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !errors.Is(e, cause) {
		t.Fatalf("got %v, want the cause", e.Unwrap())
	}
}
