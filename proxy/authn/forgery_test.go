package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/test/faultidp"
)

var b64 = base64.RawURLEncoding.EncodeToString

// craft builds a compact JWS from raw header and payload with sig as its
// third part.
func craft(t *testing.T, header, payload map[string]any, sig string) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(p) + "." + sig
}

// validPayload is a claim set the test issuer would accept.
func validPayload(is *issuerServer, clk *clock) map[string]any {
	now := clk.Now().Unix()
	return map[string]any{"iss": is.URL(), "sub": "mallory", "aud": testAudience, "iat": now, "exp": now + 3600}
}

// signAttacker signs payload with a key the issuer never published.
func signAttacker(t *testing.T, payload map[string]any, opts *jose.SignerOptions) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(payload)
	obj, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAuthenticateForgery(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	attacker := newDownIdP(t)
	payload := validPayload(is, clk)
	kid := is.KeyID(devissuer.RS256)

	// HS256 keyed with the issuer's RSA public key (the classic confusion).
	pubDER, err := x509.MarshalPKIXPublicKey(is.SigningKey(devissuer.RS256).Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hsInput := strings.TrimSuffix(craft(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}, payload, ""), ".")
	mac := hmac.New(sha256.New, pubPEM)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + b64(mac.Sum(nil))

	good := is.mint(t, map[string]any{"sub": "alice"})
	other := is.mint(t, map[string]any{"sub": "admin"})
	gp := strings.Split(good, ".")
	op := strings.Split(other, ".")

	jwkKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	embedded := func() string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jwkKey}, &jose.SignerOptions{EmbedJWK: true})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(payload)
		obj, err := s.Sign(p)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := obj.CompactSerialize()
		return tok
	}()
	withHeader := func(k string, v any) string {
		return signAttacker(t, payload, (&jose.SignerOptions{}).WithHeader(jose.HeaderKey(k), v).WithHeader("kid", "attacker"))
	}
	mintHeader := func(k string, v any, opts ...devissuer.MintOption) string {
		return is.mint(t, map[string]any{"sub": "mallory"}, append(opts, devissuer.WithHeader(k, v))...)
	}

	tests := []struct {
		name string
		tok  string
		want string
	}{
		{"alg none", craft(t, map[string]any{"alg": "none"}, payload, "x"), ReasonUnsupportedAlg},
		{"alg None", craft(t, map[string]any{"alg": "None"}, payload, "x"), ReasonUnsupportedAlg},
		{"alg NONE", craft(t, map[string]any{"alg": "NONE"}, payload, "x"), ReasonUnsupportedAlg},
		{"alg nOnE", craft(t, map[string]any{"alg": "nOnE", "kid": kid}, payload, "x"), ReasonUnsupportedAlg},
		{"alg none with empty signature", craft(t, map[string]any{"alg": "none"}, payload, ""), ReasonInvalidToken},
		{"alg rs256 lower case", craft(t, map[string]any{"alg": "rs256", "kid": kid}, payload, gp[2]), ReasonUnsupportedAlg},
		{"alg missing", craft(t, map[string]any{"kid": kid}, payload, gp[2]), ReasonInvalidToken},
		{"alg not a string", craft(t, map[string]any{"alg": []string{"RS256"}}, payload, gp[2]), ReasonInvalidToken},
		{"case-variant ALG header", craft(t, map[string]any{"alg": "RS256", "ALG": "none"}, payload, gp[2]), ReasonInvalidToken},
		{"HS256 keyed with the RSA public key", hs256, ReasonUnsupportedAlg},
		{"attacker key in jwk header", embedded, ReasonInvalidToken},
		{"jku to attacker", withHeader("jku", attacker.URL+"/jwks"), ReasonInvalidToken},
		{"x5u to attacker", withHeader("x5u", attacker.URL+"/cert.pem"), ReasonInvalidToken},
		{"x5c chain", withHeader("x5c", []string{"MIIBszCCAVmgAwIBAgIUQ"}), ReasonInvalidToken},
		{"jku on an issuer-signed token", mintHeader("jku", attacker.URL+"/jwks"), ReasonInvalidToken},
		{"unknown crit", mintHeader("crit", []string{"urn:example:x"}), ReasonInvalidToken},
		{"crit naming a registered header", mintHeader("crit", []string{"exp"}), ReasonInvalidToken},
		{"b64 false", mintHeader("b64", false), ReasonInvalidToken},
		{"kid path traversal", is.mint(t, nil, devissuer.WithKID("../../../../etc/passwd")), ReasonInvalidToken},
		{"kid SQL injection", is.mint(t, nil, devissuer.WithKID("' OR '1'='1' --")), ReasonInvalidToken},
		{"kid 10 KB", is.mint(t, nil, devissuer.WithKID(strings.Repeat("k", 10<<10))), ReasonInvalidToken},
		{"kid 300 bytes", is.mint(t, nil, devissuer.WithKID(strings.Repeat("k", 300))), ReasonInvalidToken},
		{"kid not a string", craft(t, map[string]any{"alg": "RS256", "kid": 1}, payload, gp[2]), ReasonInvalidToken},
		{"stripped signature", gp[0] + "." + gp[1] + ".", ReasonInvalidToken},
		{"stripped signature and dot", gp[0] + "." + gp[1], ReasonInvalidToken},
		{"spliced signature", op[0] + "." + op[1] + "." + gp[2], ReasonInvalidToken},
		{"payload swapped under a valid signature", gp[0] + "." + op[1] + "." + gp[2], ReasonInvalidToken},
		{"JWE-shaped five parts", gp[0] + ".aGVsbG8.aGVsbG8.aGVsbG8.aGVsbG8", ReasonInvalidToken},
		{"JSON serialization", `{"payload":"` + gp[1] + `","protected":"` + gp[0] + `","signature":"` + gp[2] + `"}`, ReasonInvalidToken},
		{"padded parts", gp[0] + "=." + gp[1] + "." + gp[2], ReasonInvalidToken},
		{"standard base64 characters", gp[0] + "." + gp[1] + "." + gp[2] + "+/", ReasonInvalidToken},
		{"header not JSON", b64([]byte("not json")) + "." + gp[1] + "." + gp[2], ReasonInvalidToken},
		{"header JSON array", b64([]byte(`["alg"]`)) + "." + gp[1] + "." + gp[2], ReasonInvalidToken},
		{"payload not JSON", gp[0] + "." + b64([]byte("hello")) + "." + gp[2], ReasonInvalidToken},
		{"a million dots", strings.Repeat(".", 1_000_000), ReasonOversizedCredential},
		{"many dots", strings.Repeat("a.", 2000), ReasonInvalidToken},
	}
	ic := is.issuerConfig("dev")
	cfg := baseConfig(clk, ic)
	cfg.Limits.MaxTokenBytes = 16 << 10
	a := newAuthn(t, cfg, clk)
	// Load keys once so later refetches are governed by the refetch limit.
	if _, err := authenticate(a, bearer(good)); err != nil {
		t.Fatalf("valid token: got %v, want success", err)
	}
	fetches := is.JWKSRequests()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := authenticate(a, bearer(tt.tok))
			wantReason(t, id, err, tt.want)
			if strings.Contains(err.Error(), tt.tok) {
				t.Fatalf("got error %q quoting the token, want it redacted", err)
			}
		})
	}
	if got := attacker.Hits(faultidp.All); got != 0 {
		t.Errorf("got %d requests to URLs taken from tokens, want 0", got)
	}
	if got := is.JWKSRequests() - fetches; got > 3 {
		t.Errorf("got %d JWKS refetches for forged tokens within one cooldown, want at most the burst of 3", got)
	}
}

func TestUnknownIssuerCausesNoTraffic(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	stranger := newIssuer(t, clk)
	keys := newDownIdP(t)
	ic := is.issuerConfig("dev")
	ic.JWKSURL = keys.URL + "/jwks"
	a := newAuthn(t, baseConfig(clk, ic), clk)
	for _, tok := range []string{
		stranger.mint(t, nil),
		stranger.mint(t, nil, devissuer.WithKID("random-kid")),
		is.mint(t, map[string]any{"iss": "https://accounts.example.com"}),
	} {
		id, err := authenticate(a, bearer(tok))
		wantReason(t, id, err, ReasonUnknownIssuer)
	}
	if got := keys.Hits(faultidp.All) + is.JWKSRequests() + stranger.JWKSRequests(); got != 0 {
		t.Fatalf("got %d key fetches for unknown issuers, want 0", got)
	}
}

func TestKeysUnavailable(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	keys := newDownIdP(t)
	ic := is.issuerConfig("dev")
	ic.JWKSURL = keys.URL + "/jwks"
	a := newAuthn(t, baseConfig(clk, ic), clk)
	id, err := authenticate(a, bearer(is.mint(t, nil)))
	wantReason(t, id, err, ReasonKeysUnavailable)
	if got := keys.Hits(faultidp.All); got != 1 {
		t.Fatalf("got %d fetches, want 1", got)
	}
	// At the same instant (no keys: one fetch per 250 ms) no further fetch
	// happens and the answer stays.
	id, err = authenticate(a, bearer(is.mint(t, nil)))
	wantReason(t, id, err, ReasonKeysUnavailable)
	if got := keys.Hits(faultidp.All); got != 1 {
		t.Fatalf("got %d fetches within the cooldown, want 1", got)
	}
	st := a.IssuerStatus()["dev"]
	if st.Keys != 0 || st.LastError == "" || !st.Remote {
		t.Fatalf("got status %+v, want no keys, an error and remote", st)
	}
}
