package jwks

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/faultidp"
)

// selfSignedX5C returns a base64 DER certificate for key.
func selfSignedX5C(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestTokenNamedKeysAreNeverTrustedOrFetched(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	evil := faultidp.New(t) // the attacker's own identity provider
	attacker := evil.Issuer
	attackerKey := attacker.SigningKey("RS256").(*rsa.PrivateKey)
	attackerJWK := json.RawMessage(attacker.PublicJWKS().Keys[0])

	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		iss  *devissuer.Issuer
		opt  devissuer.MintOption
	}{
		{"jku attacker", attacker, devissuer.WithHeader("jku", evil.URL+"/jwks")},
		{"jku legit key", idp.Issuer, devissuer.WithHeader("jku", evil.URL+"/jwks")},
		{"x5u", attacker, devissuer.WithHeader("x5u", evil.URL+"/cert.pem")},
		{"embedded jwk", attacker, devissuer.WithHeader("jwk", attackerJWK)},
		{"x5c", attacker, devissuer.WithHeader("x5c", []string{selfSignedX5C(t, attackerKey)})},
		{"crit", idp.Issuer, devissuer.WithHeader("crit", []string{"exp"})},
		{"b64", idp.Issuer, devissuer.WithHeader("b64", true)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustFail(t, f.ks, mint(t, tc.iss, tc.opt), ErrMalformed)
		})
	}
	if n := evil.Hits(faultidp.All); n != 0 {
		t.Fatalf("got %d requests to the URL named in the token, want 0", n)
	}
	if n := idp.Hits(faultidp.JWKS); n != 1 {
		t.Fatalf("got %d jwks requests, want only the initial 1", n)
	}
}

// signRaw signs claims with key under alg, with kid.
func signRaw(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(`{"sub":"alice","aud":"api"}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestAlgorithmRestrictions(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	rsaKey := idp.Issuer.SigningKey("RS256").(*rsa.PrivateKey)
	kid := idp.Issuer.KeyID("RS256")
	f := newKeySet(t, issuerConfig(idp.URL, inline(idp.Issuer.PublicJWKS()), func(i *config.Issuer) {
		i.Algorithms = []string{"RS256", "RS384"}
	}))
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	payload := b64(`{"sub":"alice","aud":"api"}`)

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"es256 not allowed", mint(t, idp.Issuer, devissuer.WithAlg("ES256")), ErrMalformed},
		{"hs256 with the public key", signRaw(t, jose.HS256, pemKey, kid), ErrMalformed},
		{"alg none", b64(`{"alg":"none","kid":"`+kid+`"}`) + "." + payload + ".", ErrMalformed},
		{"alg None", b64(`{"alg":"None"}`) + "." + payload + ".", ErrMalformed},
		{"alg lower case", b64(`{"alg":"rs256","kid":"`+kid+`"}`) + "." + payload + ".AAAA", ErrMalformed},
		// The key says RS256: an RS384 token under its kid must not verify.
		{"key alg differs", signRaw(t, jose.RS384, rsaKey, kid), ErrSignature},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				mustFail(t, f.ks, tc.tok, tc.want)
			})
		}
	})
	if n := idp.Hits(faultidp.JWKS); n != 0 {
		t.Fatalf("got %d jwks requests caused by refused tokens, want 0", n)
	}
}

func TestMalformedAndTamperedTokens(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour) // past the cooldown: any refetch would reach the server
	good := mint(t, idp.Issuer)
	other := mint(t, idp.Issuer, devissuer.WithHeader("typ", "JWT"))
	parts := strings.Split(good, ".")
	otherParts := strings.Split(other, ".")
	jsonSerialized := `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"many dots", strings.Repeat(".", 100000), ErrMalformed},
		{"jwe five parts", good + ".a.b", ErrMalformed},
		{"json serialization", jsonSerialized, ErrMalformed},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"kid too long", mint(t, idp.Issuer, devissuer.WithKID(strings.Repeat("k", MaxKIDBytes+1))), ErrMalformed},
		{"stripped signature", parts[0] + "." + parts[1] + ".", ErrSignature},
		{"spliced signature", parts[0] + "." + parts[1] + "." + otherParts[2], ErrSignature},
		{"tampered payload", parts[0] + "." + b64(`{"sub":"admin"}`) + "." + parts[2], ErrSignature},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				mustFail(t, f.ks, tc.tok, tc.want)
			})
		}
	})
	// None of these may cause a fetch: known kid or refused before lookup.
	if n := idp.Hits(faultidp.JWKS); n != 1 {
		t.Fatalf("got %d jwks requests, want only the initial 1", n)
	}
	if got := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test")); got != 0 {
		t.Fatalf("got %v suppressed refetches, want 0 (no refetch attempted)", got)
	}
}

func TestHostileKIDValuesAreUnknown(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL, noRemote, inline(idp.Issuer.PublicJWKS())))
	for _, kid := range []string{"../../../../etc/passwd", "' OR 1=1 --", "a\r\nX-Injected: 1", strings.Repeat("k", MaxKIDBytes), "\x00"} {
		mustFail(t, f.ks, mint(t, idp.Issuer, devissuer.WithKID(kid)), ErrUnknownKey)
	}
}

func TestKIDLessTokenTriesEveryFittingKey(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, f.ks, mint(t, idp.Issuer, devissuer.WithoutKID()))
	mustVerify(t, f.ks, mint(t, idp.Issuer, devissuer.WithoutKID(), devissuer.WithAlg("ES256")))
	// A kid-less token no key verifies may refetch, within the refetch
	// limit: the burst, then suppressed.
	attacker, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	attacker.SetURL(idp.URL)
	for range refetchBurst + 1 {
		mustFail(t, f.ks, mint(t, attacker, devissuer.WithoutKID()), ErrSignature)
	}
	if n := idp.Hits(faultidp.JWKS); n != 1+refetchBurst {
		t.Fatalf("got %d jwks requests, want the initial one and the burst of %d", n, refetchBurst)
	}
	if got := testutil.ToFloat64(f.m.JWKSRefetchSuppressed.WithLabelValues("test")); got != 1 {
		t.Fatalf("got %v suppressed refetches, want 1", got)
	}
}
