package authn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkAuthenticate(b *testing.B) {
	clk := newClock()
	is := newIssuer(b, clk)
	cfg := baseConfig(clk, is.issuerConfig("dev"))
	a := newAuthn(b, cfg, clk)
	tok, err := is.Mint(map[string]any{"sub": "alice", "aud": testAudience, "scope": "orders:read orders:write"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, bearer(tok)); err != nil {
		b.Fatal(err)
	}
	uncachedCfg := baseConfig(clk, is.issuerConfig("dev"))
	uncachedCfg.TokenCache.MaxEntries = -1
	uncached := newAuthn(b, uncachedCfg, clk)

	cases := []struct {
		name string
		a    *Authenticator
		cred Credential
	}{
		{"cached_jwt", a, bearer(tok)},
		{"api_key", a, Credential{Value: keyCI, Source: srcAPIKey}},
		{"fresh_rs256", uncached, bearer(tok)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.a.Authenticate(ctx, c.cred); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkExtract(b *testing.B) {
	a := extractAuthn(b, 8192, false)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Extract(r); err != nil {
			b.Fatal(err)
		}
	}
}
