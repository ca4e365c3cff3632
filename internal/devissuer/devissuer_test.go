package devissuer_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/devissuer"
)

var fixed = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newServer(t *testing.T) (*devissuer.Issuer, *httptest.Server) {
	t.Helper()
	iss, err := devissuer.New(devissuer.Options{Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	t.Cleanup(srv.Close)
	iss.SetURL(srv.URL)
	return iss, srv
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got status %d, want 200", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// servedKeys fetches /jwks and parses it with go-jose.
func servedKeys(t *testing.T, srv *httptest.Server) *jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	getJSON(t, srv.URL+"/jwks", &set)
	return &set
}

// verify checks tok against the served JWKS and returns its claims.
func verify(t *testing.T, srv *httptest.Server, tok string) (map[string]any, jose.Header) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	h := jws.Signatures[0].Protected
	keys := servedKeys(t, srv).Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("got %d served keys for kid %q, want 1", len(keys), h.KeyID)
	}
	if !keys[0].IsPublic() {
		t.Fatal("got a private key in /jwks, want public keys only")
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("verify against served key: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims, h
}

func TestDiscoveryDocument(t *testing.T) {
	t.Parallel()
	iss, srv := newServer(t)
	var doc map[string]any
	getJSON(t, srv.URL+"/.well-known/openid-configuration", &doc)
	if got := doc["issuer"]; got != iss.URL() || got != srv.URL {
		t.Fatalf("got issuer %v, want %s", got, srv.URL)
	}
	if got, want := doc["jwks_uri"], srv.URL+"/jwks"; got != want {
		t.Fatalf("got jwks_uri %v, want %s", got, want)
	}
	if got, want := doc["token_endpoint"], srv.URL+"/token"; got != want {
		t.Fatalf("got token_endpoint %v, want %s", got, want)
	}
	set := servedKeys(t, srv)
	if len(set.Keys) != 2 {
		t.Fatalf("got %d keys, want 2", len(set.Keys))
	}
	if set.Keys[0].KeyID == set.Keys[1].KeyID {
		t.Fatalf("got duplicate kid %q, want distinct", set.Keys[0].KeyID)
	}
	if got := iss.JWKSRequests(); got != 1 {
		t.Fatalf("got %d JWKS requests, want 1", got)
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	iss, srv := newServer(t)
	tests := []struct {
		name     string
		claims   map[string]any
		opts     []devissuer.MintOption
		wantAlg  string
		check    func(t *testing.T, c map[string]any)
		wantHead map[string]any
	}{
		{name: "defaults", claims: map[string]any{"sub": "alice"}, wantAlg: "RS256", check: func(t *testing.T, c map[string]any) {
			if c["iss"] != srv.URL || c["sub"] != "alice" {
				t.Fatalf("got iss %v sub %v, want %s alice", c["iss"], c["sub"], srv.URL)
			}
			if c["iat"] != float64(fixed.Unix()) || c["exp"] != float64(fixed.Add(time.Hour).Unix()) {
				t.Fatalf("got iat %v exp %v, want %d %d", c["iat"], c["exp"], fixed.Unix(), fixed.Add(time.Hour).Unix())
			}
		}},
		{name: "es256", opts: []devissuer.MintOption{devissuer.WithAlg("ES256")}, wantAlg: "ES256"},
		{name: "override and remove", claims: map[string]any{"iss": "https://other", "exp": nil}, wantAlg: "RS256",
			check: func(t *testing.T, c map[string]any) {
				if _, ok := c["exp"]; ok {
					t.Fatalf("got exp %v, want none", c["exp"])
				}
				if c["iss"] != "https://other" {
					t.Fatalf("got iss %v, want https://other", c["iss"])
				}
			}},
		{name: "header", opts: []devissuer.MintOption{devissuer.WithHeader("typ", "at+jwt")}, wantAlg: "RS256",
			wantHead: map[string]any{"typ": "at+jwt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok, err := iss.Mint(tc.claims, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			c, h := verify(t, srv, tok)
			if h.Algorithm != tc.wantAlg {
				t.Fatalf("got alg %s, want %s", h.Algorithm, tc.wantAlg)
			}
			if want := iss.KeyID(tc.wantAlg); h.KeyID != want {
				t.Fatalf("got kid %q, want %q", h.KeyID, want)
			}
			for k, v := range tc.wantHead {
				if got := h.ExtraHeaders[jose.HeaderKey(k)]; got != v {
					t.Fatalf("got header %s=%v, want %v", k, got, v)
				}
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestMintKIDOptions(t *testing.T) {
	t.Parallel()
	iss, _ := newServer(t)
	parse := func(tok string) jose.Header {
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Protected
	}
	tok, err := iss.Mint(nil, devissuer.WithKID("other"))
	if err != nil {
		t.Fatal(err)
	}
	if got := parse(tok).KeyID; got != "other" {
		t.Fatalf("got kid %q, want other", got)
	}
	tok, err = iss.Mint(nil, devissuer.WithoutKID())
	if err != nil {
		t.Fatal(err)
	}
	if got := parse(tok).KeyID; got != "" {
		t.Fatalf("got kid %q, want none", got)
	}
	if _, err := iss.Mint(nil, devissuer.WithAlg("HS256")); err == nil {
		t.Fatal("got no error minting HS256, want an error")
	}
}

func TestRotateKey(t *testing.T) {
	t.Parallel()
	iss, srv := newServer(t)
	old := iss.KeyID("RS256")
	oldTok, err := iss.Mint(nil)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := iss.RotateKey("RS256")
	if err != nil {
		t.Fatal(err)
	}
	if kid == old || kid != iss.KeyID("RS256") {
		t.Fatalf("got new kid %q (current %q), want a fresh kid different from %q", kid, iss.KeyID("RS256"), old)
	}
	set := servedKeys(t, srv)
	if len(set.Key(old)) != 0 {
		t.Fatalf("got old kid %q still served, want it dropped", old)
	}
	if len(set.Key(kid)) != 1 {
		t.Fatalf("got new kid %q not served, want it served", kid)
	}
	newTok, err := iss.Mint(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, h := verify(t, srv, newTok); h.KeyID != kid {
		t.Fatalf("got kid %q, want %q", h.KeyID, kid)
	}
	jws, err := jose.ParseSignedCompact(oldTok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(set.Key(kid)[0].Key); err == nil {
		t.Fatal("got old token verified by the new key, want failure")
	}
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t)
	tests := []struct {
		name   string
		method string
		params url.Values
		status int
		check  func(t *testing.T, c map[string]any)
	}{
		{name: "get", method: http.MethodGet, status: 200,
			params: url.Values{"sub": {"alice"}, "aud": {"api"}, "scope": {"a b"}, "claim.roles": {`["admin"]`}, "claim.tier": {"gold"}},
			check: func(t *testing.T, c map[string]any) {
				if c["sub"] != "alice" || c["aud"] != "api" || c["scope"] != "a b" || c["tier"] != "gold" {
					t.Fatalf("got claims %v, want sub alice aud api scope 'a b' tier gold", c)
				}
				if r, _ := c["roles"].([]any); len(r) != 1 || r[0] != "admin" {
					t.Fatalf("got roles %v, want [admin]", c["roles"])
				}
			}},
		{name: "post ttl es256", method: http.MethodPost, status: 200,
			params: url.Values{"sub": {"bob"}, "ttl": {"10m"}, "alg": {"ES256"}},
			check: func(t *testing.T, c map[string]any) {
				if want := float64(fixed.Add(10 * time.Minute).Unix()); c["exp"] != want {
					t.Fatalf("got exp %v, want %v", c["exp"], want)
				}
			}},
		{name: "bad ttl", method: http.MethodGet, status: 400, params: url.Values{"ttl": {"forever"}}},
		{name: "ttl too long", method: http.MethodGet, status: 400, params: url.Values{"ttl": {"48h"}}},
		{name: "bad alg", method: http.MethodPost, status: 400, params: url.Values{"alg": {"none"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var resp *http.Response
			var err error
			if tc.method == http.MethodPost {
				resp, err = http.Post(srv.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader(tc.params.Encode()))
			} else {
				resp, err = http.Get(srv.URL + "/token?" + tc.params.Encode())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			var body struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.TokenType != "Bearer" {
				t.Fatalf("got token_type %q, want Bearer", body.TokenType)
			}
			c, _ := verify(t, srv, body.AccessToken)
			tc.check(t, c)
		})
	}
}

func TestPublicJWKSHasNoPrivateParts(t *testing.T) {
	t.Parallel()
	iss, _ := newServer(t)
	set := iss.PublicJWKS()
	if len(set.Keys) != 2 {
		t.Fatalf("got %d keys, want 2", len(set.Keys))
	}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		if !k.IsPublic() || k.KeyID == "" || k.Algorithm == "" {
			t.Fatalf("got key public=%v kid=%q alg=%q, want a public key with kid and alg", k.IsPublic(), k.KeyID, k.Algorithm)
		}
	}
}

// FuzzTokenEndpoint sends arbitrary query strings to /token: the handler
// must never panic and must answer 200 with a verifiable token or 400.
func FuzzTokenEndpoint(f *testing.F) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		f.Fatal(err)
	}
	iss.SetURL("http://127.0.0.1:9000")
	h := iss.Handler()
	for _, s := range []string{"sub=alice&aud=api", "ttl=10m&alg=ES256", "ttl=-1", "claim.x=%7B%22a%22%3A1%7D", "claim.=1&claim.exp=null", "alg=none", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/token", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var body struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || strings.Count(body.AccessToken, ".") != 2 {
				t.Fatalf("got body %q, want a compact token", rec.Body.String())
			}
		case http.StatusBadRequest:
		default:
			t.Fatalf("got status %d, want 200 or 400", rec.Code)
		}
	})
}
