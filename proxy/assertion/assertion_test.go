package assertion_test

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/assertionkey"
	"github.com/authgate/authgate/proxy/assertion"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/test/fakeclock"
)

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func writeRing(t testing.TB, path string, keys ...assertionkey.Key) {
	t.Helper()
	r := assertionkey.Ring{Keys: keys}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB, created, from time.Time) assertionkey.Key {
	t.Helper()
	k, err := assertionkey.NewKey(created, from)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var policy = &config.IdentityAssertion{Header: config.DefaultAssertionHeader, TTL: config.D(time.Minute),
	Issuer: "authgate://team-a", Audience: "orders", Claims: []string{"email", "org.tier", "missing"}}

func alice(exp time.Time) *identity.Identity {
	return &identity.Identity{Kind: identity.KindJWT, Subject: "alice", Issuer: "https://idp.example.com/",
		Scopes: []string{"orders:read", "orders:write"}, ExpiresAt: exp,
		Claims: map[string]any{"sub": "alice", "email": "alice@example.com", "org": map[string]any{"tier": "gold"}}}
}

// verify checks tok as a function would, with go-oidc and the keys' JWKS.
func verify(t *testing.T, k *assertion.Keys, tok string, now time.Time) (*assertion.Claims, error) {
	t.Helper()
	jwks, err := k.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	var pubs []crypto.PublicKey
	for _, key := range set.Keys {
		if !key.IsPublic() {
			t.Fatal("the JWKS holds a private key")
		}
		pubs = append(pubs, key.Key)
	}
	v := oidc.NewVerifier("authgate://team-a", &oidc.StaticKeySet{PublicKeys: pubs},
		&oidc.Config{ClientID: "orders", SupportedSigningAlgs: []string{oidc.ES256}, Now: func() time.Time { return now }})
	idt, err := v.Verify(context.Background(), tok)
	if err != nil {
		return nil, err
	}
	var c assertion.Claims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return &c, nil
}

func TestAssertVerifiesWithGoOIDC(t *testing.T) {
	clk := fakeclock.New(t0)
	path := filepath.Join(t.TempDir(), "ring.json")
	writeRing(t, path, newKey(t, t0.Add(-time.Hour), t0.Add(-time.Hour)))
	k := assertion.NewKeys(path, clk.Now, nil)
	if err := k.Load(); err != nil {
		t.Fatal(err)
	}
	tok, err := k.Assert(policy, alice(t0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := verify(t, k, tok, t0)
	if err != nil {
		t.Fatalf("go-oidc refused the assertion: %v", err)
	}
	if c.Subject != "alice" || c.Kind != "jwt" || c.TokenIssuer != "https://idp.example.com/" || c.Scope != "orders:read orders:write" {
		t.Fatalf("got claims %+v", c)
	}
	if c.IssuedAt != t0.Unix() || c.NotBefore != t0.Unix() || c.Expiry != t0.Add(time.Minute).Unix() || len(c.ID) != 22 {
		t.Fatalf("got iat %d nbf %d exp %d jti %q, want %d, %d, %d and 128 random bits", c.IssuedAt, c.NotBefore, c.Expiry, c.ID,
			t0.Unix(), t0.Unix(), t0.Add(time.Minute).Unix())
	}
	if len(c.Claims) != 2 || c.Claims["email"] != "alice@example.com" || c.Claims["org.tier"] != "gold" {
		t.Fatalf("got claims object %v, want email and org.tier only", c.Claims)
	}
	tok2, _ := k.Assert(policy, alice(t0.Add(time.Hour)))
	c2, _ := verify(t, k, tok2, t0)
	if c2.ID == c.ID {
		t.Fatal("two assertions share a jti")
	}
	if _, err := verify(t, k, tok, t0.Add(2*time.Minute)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("got %v after the ttl, want an expired assertion", err)
	}
}

// The assertion never outlives the credential it stands for.
func TestAssertExpiryCappedByCredential(t *testing.T) {
	clk := fakeclock.New(t0)
	path := filepath.Join(t.TempDir(), "ring.json")
	writeRing(t, path, newKey(t, t0, t0))
	k := assertion.NewKeys(path, clk.Now, nil)
	if err := k.Load(); err != nil {
		t.Fatal(err)
	}
	tok, err := k.Assert(policy, alice(t0.Add(20*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := verify(t, k, tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Expiry != t0.Add(20*time.Second).Unix() {
		t.Fatalf("got exp %d, want the credential's %d", c.Expiry, t0.Add(20*time.Second).Unix())
	}
}

// The proxy switches to a pending key exactly at its SignFrom, with no
// reload, and both keys verify meanwhile.
func TestAssertSwitchesKeyAtSignFrom(t *testing.T) {
	clk := fakeclock.New(t0)
	path := filepath.Join(t.TempDir(), "ring.json")
	old, next := newKey(t, t0.Add(-time.Hour), t0.Add(-time.Hour)), newKey(t, t0, t0.Add(10*time.Minute))
	writeRing(t, path, old, next)
	k := assertion.NewKeys(path, clk.Now, nil)
	if err := k.Load(); err != nil {
		t.Fatal(err)
	}
	kidOf := func() string {
		tok, err := k.Assert(policy, alice(time.Time{}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify(t, k, tok, clk.Now()); err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Protected.KeyID
	}
	if got := kidOf(); got != old.KID() {
		t.Fatalf("got kid %s before the switch, want the old key %s", got, old.KID())
	}
	clk.Advance(10 * time.Minute)
	if got := kidOf(); got != next.KID() {
		t.Fatalf("got kid %s at the switch, want the new key %s", got, next.KID())
	}
}

func TestKeysFailClosedAndKeepLastGood(t *testing.T) {
	clk := fakeclock.New(t0)
	path := filepath.Join(t.TempDir(), "ring.json")
	k := assertion.NewKeys(path, clk.Now, nil)
	if err := k.Load(); !errors.Is(err, assertion.ErrNoKey) {
		t.Fatalf("got %v for a missing file, want ErrNoKey", err)
	}
	if _, err := k.Assert(policy, alice(time.Time{})); !errors.Is(err, assertion.ErrNoKey) {
		t.Fatalf("got %v signing without keys, want ErrNoKey", err)
	}
	if _, ok := k.SignerAge(); ok {
		t.Fatal("a key age without keys")
	}
	// Only a key that signs later: still nothing signs now.
	writeRing(t, path, newKey(t, t0, t0.Add(time.Minute)))
	if err := k.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Assert(policy, alice(time.Time{})); !errors.Is(err, assertion.ErrNoKey) {
		t.Fatalf("got %v before the only key's SignFrom, want ErrNoKey", err)
	}
	clk.Advance(2 * time.Minute)
	if age, ok := k.SignerAge(); !ok || age != 2*time.Minute {
		t.Fatalf("got key age %s, %v, want 2m", age, ok)
	}
	if err := os.WriteFile(path, []byte(`{"keys":[{"jwk":{"kty":"oct","k":"c2VjcmV0"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.Load(); err == nil {
		t.Fatal("a symmetric key was loaded")
	}
	if _, err := k.Assert(policy, alice(time.Time{})); err != nil {
		t.Fatalf("got %v after a bad file, want the last good keys in force", err)
	}
}

// BenchmarkAssert is the cost a request pays for its assertion.
func BenchmarkAssert(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ring.json")
	writeRing(b, path, newKey(b, time.Now(), time.Now().Add(-time.Second)))
	k := assertion.NewKeys(path, nil, nil)
	if err := k.Load(); err != nil {
		b.Fatal(err)
	}
	id := alice(time.Time{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Assert(policy, id); err != nil {
			b.Fatal(err)
		}
	}
}
