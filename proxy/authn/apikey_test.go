package authn

import (
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

func TestAuthenticateAPIKey(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newAuthn(t, baseConfig(clk), clk)
	tests := []struct {
		name string
		key  string
		want string
	}{
		{"valid key", keyCI, ""},
		{"unknown key", "sk_test_nope", ReasonUnknownAPIKey},
		{"key differing in case", "SK_TEST_CI_0123456789ABCDEF", ReasonUnknownAPIKey},
		{"key with suffix", keyCI + "x", ReasonUnknownAPIKey},
		{"the hash itself", hashKey(keyCI), ReasonUnknownAPIKey},
		{"expired key", keyExpired, ReasonExpiredAPIKey},
		{"JWT-shaped value on an API key source", "a.b.c", ReasonUnknownAPIKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := authenticate(a, apiKeyCred(tt.key))
			wantReason(t, id, err, tt.want)
		})
	}
	id, _ := authenticate(a, apiKeyCred(keyCI))
	want := &identity.Identity{Kind: identity.KindAPIKey, Subject: "ci", Source: "apikey", KeyName: "ci", Scopes: []string{"orders:read"}}
	if id.Kind != want.Kind || id.Subject != want.Subject || id.Source != want.Source || id.KeyName != want.KeyName ||
		!slices.Equal(id.Scopes, want.Scopes) || id.Issuer != "" || !id.ExpiresAt.IsZero() {
		t.Fatalf("got identity %+v, want %+v", id, want)
	}
	if id.Claims["sub"] != "ci" || id.Claims["scope"] != "orders:read" {
		t.Fatalf("got claims %v, want sub=ci scope=orders:read", id.Claims)
	}
	if string(id.RawClaims) != `{"scope":"orders:read","sub":"ci"}` {
		t.Fatalf("got raw claims %s, want the JSON of the claims", id.RawClaims)
	}
}

func TestAPIKeyExpiresWithClock(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := baseConfig(clk)
	exp := clk.Now().Add(10 * time.Minute)
	cfg.APIKeys.Keys[0].ExpiresAt = &exp
	a := newAuthn(t, cfg, clk)
	id, err := authenticate(a, apiKeyCred(keyCI))
	wantReason(t, id, err, "")
	clk.Advance(10 * time.Minute)
	id, err = authenticate(a, apiKeyCred(keyCI))
	wantReason(t, id, err, ReasonExpiredAPIKey)
}

// A source shared by an issuer and API keys sends values with exactly two
// dots to JWT verification and everything else to the key index.
func TestSharedSourceClassification(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	shared := config.CredentialSource{Type: config.SourceHeader, Name: "X-Token"}
	ic := is.issuerConfig("dev")
	ic.Sources = []config.CredentialSource{shared}
	cfg := baseConfig(clk, ic)
	cfg.APIKeys.Sources = []config.CredentialSource{shared}
	a := newAuthn(t, cfg, clk)
	cred := func(v string) Credential { return Credential{Value: v, Source: shared} }

	id, err := authenticate(a, cred(is.mint(t, nil)))
	wantReason(t, id, err, "")
	if id.Kind != identity.KindJWT {
		t.Fatalf("got kind %q, want jwt", id.Kind)
	}
	id, err = authenticate(a, cred(keyCI))
	wantReason(t, id, err, "")
	if id.Kind != identity.KindAPIKey {
		t.Fatalf("got kind %q, want apikey", id.Kind)
	}
	id, err = authenticate(a, cred("a.b.c"))
	wantReason(t, id, err, ReasonInvalidToken)
	id, err = authenticate(a, cred("a.b.c.d"))
	wantReason(t, id, err, ReasonUnknownAPIKey)
	// The bearer source is not configured here.
	id, err = authenticate(a, bearer(is.mint(t, nil)))
	wantReason(t, id, err, ReasonNotAccepted)
}
