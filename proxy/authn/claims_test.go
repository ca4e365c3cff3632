package authn

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
)

func TestAuthenticateClaims(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	other := newIssuer(t, clk)
	now := clk.Now().Unix()
	tests := []struct {
		name   string
		claims map[string]any
		opts   []devissuer.MintOption
		issuer func(*config.Issuer)
		want   string
	}{
		{name: "valid RS256"},
		{name: "valid ES256", opts: []devissuer.MintOption{devissuer.WithAlg(devissuer.ES256)}},
		{name: "expired", claims: map[string]any{"exp": now - 3600}, want: ReasonExpired},
		{name: "expired within skew", claims: map[string]any{"exp": now - 10}},
		{name: "expired just past skew", claims: map[string]any{"exp": now - 30}, want: ReasonExpired},
		{name: "fractional exp", claims: map[string]any{"exp": float64(now) + 3600.5}},
		{name: "missing exp", claims: map[string]any{"exp": nil}, want: ReasonMissingClaim},
		{name: "exp not a number", claims: map[string]any{"exp": "tomorrow"}, want: ReasonInvalidClaims},
		{name: "exp numeric string", claims: map[string]any{"exp": "1999999999"}, want: ReasonInvalidClaims},
		{name: "nbf in future", claims: map[string]any{"nbf": now + 3600}, want: ReasonNotYetValid},
		{name: "nbf within skew", claims: map[string]any{"nbf": now + 10}},
		{name: "nbf past skew", claims: map[string]any{"nbf": now + 31}, want: ReasonNotYetValid},
		{name: "iat in future", claims: map[string]any{"iat": now + 3600}, want: ReasonIssuedInFuture},
		{name: "iat missing allowed by default", claims: map[string]any{"iat": nil}},
		{name: "iat required", claims: map[string]any{"iat": nil}, issuer: func(i *config.Issuer) { i.RequireIAT = true }, want: ReasonMissingClaim},
		{name: "token too old", claims: map[string]any{"iat": now - 3600}, issuer: func(i *config.Issuer) { i.MaxTokenAge.Duration = 10 * time.Minute }, want: ReasonTokenTooOld},
		{name: "token young enough", claims: map[string]any{"iat": now - 300}, issuer: func(i *config.Issuer) { i.MaxTokenAge.Duration = 10 * time.Minute }},
		{name: "max age needs iat", claims: map[string]any{"iat": nil}, issuer: func(i *config.Issuer) { i.MaxTokenAge.Duration = 10 * time.Minute }, want: ReasonMissingClaim},
		{name: "wrong issuer", claims: map[string]any{"iss": "https://evil.example"}, want: ReasonUnknownIssuer},
		{name: "issuer with trailing slash", claims: map[string]any{"iss": is.URL() + "/"}, want: ReasonUnknownIssuer},
		{name: "issuer differing in case", claims: map[string]any{"iss": "HTTP" + is.URL()[4:]}, want: ReasonUnknownIssuer},
		{name: "missing issuer", claims: map[string]any{"iss": nil}, want: ReasonMissingClaim},
		{name: "issuer not a string", claims: map[string]any{"iss": 42}, want: ReasonInvalidToken},
		{name: "wrong audience", claims: map[string]any{"aud": "billing-api"}, want: ReasonInvalidAudience},
		{name: "empty audience", claims: map[string]any{"aud": ""}, want: ReasonInvalidAudience},
		{name: "empty audience array", claims: map[string]any{"aud": []string{}}, want: ReasonInvalidAudience},
		{name: "missing audience", claims: map[string]any{"aud": nil}, want: ReasonInvalidAudience},
		{name: "audience array containing ours", claims: map[string]any{"aud": []string{"billing-api", testAudience}}},
		{name: "audience array without ours", claims: map[string]any{"aud": []string{"billing-api", "x"}}, want: ReasonInvalidAudience},
		{name: "audience array of numbers", claims: map[string]any{"aud": []int{1, 2}}, want: ReasonInvalidClaims}, // go-oidc cannot decode it
		{name: "audience array mixing types", claims: map[string]any{"aud": []any{1, testAudience}}, want: ReasonInvalidClaims},
		{name: "NUL in scope", claims: map[string]any{"scope": "a\x00b"}, want: ReasonInvalidClaims},
		{name: "LF in scp list", claims: map[string]any{"scp": []string{"a\nb"}}, want: ReasonInvalidClaims},
		{name: "audience differing in case", claims: map[string]any{"aud": "Orders-API"}, want: ReasonInvalidAudience},
		{
			name: "cognito client_id without aud", claims: map[string]any{"aud": nil, "client_id": "client-1"},
			issuer: func(i *config.Issuer) { i.Audiences, i.ClientIDs = nil, []string{"client-1"} },
		},
		{
			name: "cognito wrong client_id", claims: map[string]any{"aud": nil, "client_id": "client-2"},
			issuer: func(i *config.Issuer) { i.Audiences, i.ClientIDs = nil, []string{"client-1"} }, want: ReasonInvalidClientID,
		},
		{
			name: "cognito missing client_id", claims: map[string]any{"aud": nil},
			issuer: func(i *config.Issuer) { i.Audiences, i.ClientIDs = nil, []string{"client-1"} }, want: ReasonInvalidClientID,
		},
		{
			name: "audience and client_id both required", claims: map[string]any{"client_id": "client-2"},
			issuer: func(i *config.Issuer) { i.ClientIDs = []string{"client-1"} }, want: ReasonInvalidClientID,
		},
		{name: "typ matches", opts: []devissuer.MintOption{devissuer.WithHeader("typ", "at+jwt")}, issuer: func(i *config.Issuer) { i.Type = "at+jwt" }},
		{name: "typ with application prefix and case", opts: []devissuer.MintOption{devissuer.WithHeader("typ", "application/AT+JWT")}, issuer: func(i *config.Issuer) { i.Type = "at+jwt" }},
		{name: "typ mismatch (ID token)", opts: []devissuer.MintOption{devissuer.WithHeader("typ", "JWT")}, issuer: func(i *config.Issuer) { i.Type = "at+jwt" }, want: ReasonInvalidType},
		{name: "typ missing", issuer: func(i *config.Issuer) { i.Type = "at+jwt" }, want: ReasonInvalidType},
		{name: "missing sub", claims: map[string]any{"sub": nil}, want: ReasonMissingClaim},
		{name: "empty sub", claims: map[string]any{"sub": ""}, want: ReasonMissingClaim},
		{name: "sub not a string", claims: map[string]any{"sub": 7}, want: ReasonInvalidClaims}, // go-oidc cannot decode it
		{name: "CRLF in sub", claims: map[string]any{"sub": "alice\r\nX-Authgate-Subject: admin"}, want: ReasonInvalidClaims},
		{name: "LF in sub", claims: map[string]any{"sub": "alice\nadmin"}, want: ReasonInvalidClaims},
		{name: "NUL in sub", claims: map[string]any{"sub": "alice\x00"}, want: ReasonInvalidClaims},
		{name: "CR in scope", claims: map[string]any{"scope": "a\rb"}, want: ReasonInvalidClaims},
		{name: "LF in role", claims: map[string]any{"roles": []string{"admin\nx"}}, want: ReasonInvalidClaims},
		{name: "case-variant ISS", claims: map[string]any{"ISS": "https://evil.example"}, want: ReasonInvalidClaims},
		{name: "case-variant Sub", claims: map[string]any{"Sub": "admin"}, want: ReasonInvalidClaims},
		{name: "case-variant EXP", claims: map[string]any{"EXP": now + 99999}, want: ReasonInvalidClaims},
		{name: "unicode-folded sub (long s)", claims: map[string]any{"\u017fub": "admin"}, want: ReasonInvalidClaims},
		{name: "custom claims in any case are fine", claims: map[string]any{"Department": "x", "department": "y"}},
		{
			name: "required claim present", claims: map[string]any{"org": map[string]any{"tier": "gold"}},
			issuer: func(i *config.Issuer) {
				i.RequiredClaims = []config.ClaimRequirement{{Claim: "org.tier", Values: []string{"gold"}}}
			},
		},
		{
			name: "required claim wrong value", claims: map[string]any{"org": map[string]any{"tier": "silver"}},
			issuer: func(i *config.Issuer) {
				i.RequiredClaims = []config.ClaimRequirement{{Claim: "org.tier", Values: []string{"gold"}}}
			}, want: ReasonInvalidClaims,
		},
		{
			name:   "required claim missing",
			issuer: func(i *config.Issuer) { i.RequiredClaims = []config.ClaimRequirement{{Claim: "org.tier"}} }, want: ReasonMissingClaim,
		},
		{
			name: "algorithm outside the issuer's list", opts: []devissuer.MintOption{devissuer.WithAlg(devissuer.ES256)},
			issuer: func(i *config.Issuer) { i.Algorithms = []string{"RS256"} }, want: ReasonUnsupportedAlg,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ic := is.issuerConfig("dev")
			if tt.issuer != nil {
				tt.issuer(&ic)
			}
			a := newAuthn(t, baseConfig(clk, ic), clk)
			id, err := authenticate(a, bearer(is.mint(t, tt.claims, tt.opts...)))
			wantReason(t, id, err, tt.want)
		})
	}
	t.Run("signed by another issuer's key", func(t *testing.T) {
		t.Parallel()
		other.SetURL(is.URL()) // same iss, different keys
		tok := other.mint(t, nil)
		other.SetURL(other.srv.URL)
		a := newAuthn(t, baseConfig(clk, is.issuerConfig("dev")), clk)
		id, err := authenticate(a, bearer(tok))
		wantReason(t, id, err, ReasonInvalidToken)
	})
}

func TestAuthenticateIdentity(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	a := newAuthn(t, baseConfig(clk, is.issuerConfig("dev")), clk)
	exp := clk.Now().Add(30 * time.Minute).Unix()
	tok := is.mint(t, map[string]any{
		"exp": exp, "scope": "orders:read orders:write", "scp": []string{"extra", "orders:read"},
		"roles": []string{"admin", "ops"}, "big": json.RawMessage("12345678901234567890"),
	})
	id, err := authenticate(a, bearer(tok))
	if err != nil {
		t.Fatalf("got error %v, want success", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"kind", string(id.Kind), "jwt"},
		{"subject", id.Subject, "alice"},
		{"issuer", id.Issuer, is.URL()},
		{"source", id.Source, "dev"},
		{"key name", id.KeyName, ""},
		{"scopes", id.Scopes, []string{"orders:read", "orders:write", "extra"}},
		{"roles", id.Roles, []string{"admin", "ops"}},
		{"expires", id.ExpiresAt.Unix(), exp},
		{"exp claim type", id.Claims["exp"], json.Number(jsonInt(exp))},
		{"big number kept exactly", id.Claims["big"], json.Number("12345678901234567890")},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal(id.RawClaims, &raw); err != nil || raw["sub"] != "alice" {
		t.Errorf("got raw claims %s (%v), want the verified payload", id.RawClaims, err)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func equal(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok && bok {
		return slices.Equal(as, bs)
	}
	return a == b
}
