package gateway_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/test/faultidp"
)

func b64(v any) string {
	var raw []byte
	switch t := v.(type) {
	case string:
		raw = []byte(t)
	default:
		raw, _ = json.Marshal(t)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func parts(tok string) []string { return strings.Split(tok, ".") }

// Class 1: token forgery. Every forged token is a 401 and the function is
// never called.
func TestForgedTokensAreRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := e.mint(nil)
	other := e.mint(map[string]any{"sub": "mallory"})
	claims := map[string]any{"iss": e.issuer.URL(), "sub": "mallory", "aud": "api", "scope": "orders:read", "exp": time.Now().Add(time.Hour).Unix()}

	jku := faultidp.New(t) // the attacker's key server, never to be contacted

	hmacWithPublicKey := func() string {
		pub := e.issuer.SigningKey("RS256").Public().(*rsa.PublicKey)
		der, _ := x509.MarshalPKIXPublicKey(pub)
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pemBytes}, nil)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(claims)
		obj, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}

	tests := map[string]string{
		"alg none":              b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(claims) + ".",
		"alg None":              b64(map[string]any{"alg": "None"}) + "." + b64(claims) + ".",
		"alg NONE with sig":     b64(map[string]any{"alg": "NONE"}) + "." + b64(claims) + "." + parts(good)[2],
		"hs256 with rsa pubkey": hmacWithPublicKey(),
		"stripped signature":    parts(good)[0] + "." + parts(good)[1] + ".",
		"spliced signature":     parts(good)[0] + "." + parts(other)[1] + "." + parts(good)[2],
		"payload swapped":       parts(good)[0] + "." + b64(claims) + "." + parts(good)[2],
		"jwe five parts":        b64(map[string]any{"alg": "RSA-OAEP", "enc": "A256GCM"}) + ".a.b.c.d",
		"json serialization":    `{"payload":"` + parts(good)[1] + `","signatures":[]}`,
		"two dots only":         "..",
		"garbage":               "not-a-token",
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			e.get("/orders/1", bearer(tok)...).mustDeny(t, http.StatusUnauthorized, "")
		})
	}
	headerTests := map[string]devissuer.MintOption{
		"embedded jwk":  devissuer.WithHeader("jwk", map[string]any{"kty": "oct", "k": "c2VjcmV0"}),
		"jku":           devissuer.WithHeader("jku", jku.URL+"/keys"),
		"x5u":           devissuer.WithHeader("x5u", jku.URL+"/cert"),
		"unknown crit":  devissuer.WithHeader("crit", []string{"exp-custom"}),
		"kid traversal": devissuer.WithKID("../../../../etc/passwd"),
		"kid sql":       devissuer.WithKID("' OR 1=1 --"),
		"kid huge":      devissuer.WithKID(strings.Repeat("k", 10000)),
	}
	for name, opt := range headerTests {
		t.Run(name, func(t *testing.T) {
			tok := e.mint(map[string]any{"sub": "mallory"}, opt)
			e.get("/orders/1", bearer(tok)...).mustDeny(t, http.StatusUnauthorized, "")
		})
	}
	if n := jku.Hits(faultidp.All); n != 0 {
		t.Fatalf("got %d requests to a URL named by a token, want 0", n)
	}
}

// Class 2: claims.
func TestInvalidClaimsAreRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	tests := []struct {
		name   string
		claims map[string]any
		opts   []devissuer.MintOption
		reason string
	}{
		{"expired", map[string]any{"exp": now.Add(-time.Hour).Unix()}, nil, "expired"},
		{"not yet valid", map[string]any{"nbf": now.Add(time.Hour).Unix()}, nil, "not_yet_valid"},
		{"missing exp", map[string]any{"exp": nil}, nil, ""},
		{"issued in the future", map[string]any{"iat": now.Add(time.Hour).Unix()}, nil, "issued_in_future"},
		{"wrong issuer", map[string]any{"iss": "https://evil.example.com"}, nil, "unknown_issuer"},
		{"issuer with trailing slash", map[string]any{"iss": e.issuer.URL() + "/"}, nil, "unknown_issuer"},
		{"wrong audience", map[string]any{"aud": "other-api"}, nil, "invalid_audience"},
		{"empty audience", map[string]any{"aud": ""}, nil, "invalid_audience"},
		{"audience list without ours", map[string]any{"aud": []string{"a", "b"}}, nil, "invalid_audience"},
		{"no subject", map[string]any{"sub": nil}, nil, ""},
		{"crlf in subject", map[string]any{"sub": "alice\r\nX-Authgate-Subject: root"}, nil, ""},
		{"crlf in injected claim", map[string]any{"email": "a@b.c\r\nX-Evil: 1"}, nil, ""},
		{"nul in injected claim", map[string]any{"email": "a@b.c\x00"}, nil, ""},
		{"case-variant registered claim", map[string]any{"SUB": "root"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := e.mint(tt.claims, tt.opts...)
			r := e.get("/orders/1", bearer(tok)...)
			r.mustDeny(t, http.StatusUnauthorized, tt.reason)
		})
	}
	t.Run("audience list with ours", func(t *testing.T) {
		rec := e.get("/orders/1", bearer(e.mint(map[string]any{"aud": []string{"other", "api"}}))...).mustForward(t)
		if got := header(rec, "X-Authgate-Subject"); len(got) != 1 || got[0] != "alice" {
			t.Fatalf("got subject %v, want [alice]", got)
		}
	})
	t.Run("es256", func(t *testing.T) {
		e.get("/orders/1", bearer(e.mint(nil, devissuer.WithAlg("ES256")))...).mustForward(t)
	})
}

// Class 3: how the credential is transported.
func TestCredentialTransport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.mint(nil)
	t.Run("lower-case scheme accepted", func(t *testing.T) {
		e.get("/orders/1", "Authorization", "bearer "+tok).mustForward(t)
	})
	t.Run("upper-case scheme accepted", func(t *testing.T) {
		e.get("/orders/1", "Authorization", "BEARER "+tok).mustForward(t)
	})
	denials := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"missing", nil, 401},
		{"empty bearer", []string{"Authorization", "Bearer "}, 401},
		{"scheme only", []string{"Authorization", "Bearer"}, 401},
		{"extra spaces", []string{"Authorization", "Bearer  " + tok}, 401},
		{"basic scheme", []string{"Authorization", "Basic YWxpY2U6cGFzcw=="}, 401},
		{"two authorization headers", []string{"Authorization", "Bearer " + tok, "Authorization", "Bearer " + tok}, 400},
		{"token and api key at once", []string{"Authorization", "Bearer " + tok, "X-API-Key", partnerKey}, 400},
		{"two api keys", []string{"X-API-Key", partnerKey, "X-API-Key", partnerKey}, 400},
		{"unknown api key", []string{"X-API-Key", "agk_wrong"}, 401},
	}
	for _, tt := range denials {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get("/orders/1", tt.hdr...)
			r.mustDeny(t, tt.status, "")
			if tt.status == 400 && !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_request") {
				t.Fatalf("got WWW-Authenticate %q, want invalid_request", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("query token disabled by default", func(t *testing.T) {
		e.get("/orders/1?access_token="+tok).mustDeny(t, 401, "missing_credential")
	})
	t.Run("api key accepted", func(t *testing.T) {
		rec := e.get("/orders/1", "X-API-Key", partnerKey).mustForward(t)
		if got := header(rec, "X-Authgate-Subject"); len(got) != 1 || got[0] != "partner" {
			t.Fatalf("got subject %v, want [partner]", got)
		}
		if got := header(rec, "X-Authgate-Credential-Kind"); len(got) != 1 || got[0] != "apikey" {
			t.Fatalf("got kind %v, want [apikey]", got)
		}
		if got := header(rec, "X-API-Key"); got != nil {
			t.Fatalf("function received the API key header, want it stripped")
		}
	})
	t.Run("authorization stripped before forwarding", func(t *testing.T) {
		rec := e.get("/orders/1", bearer(tok)...).mustForward(t)
		if got := header(rec, "Authorization"); got != nil {
			t.Fatalf("function received Authorization, want it stripped by default")
		}
	})
}

func TestQueryTokenWhenEnabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *configT) {
		c.Issuers[0].Sources = []sourceT{{Type: "bearer"}, {Type: "query", Name: "access_token"}}
	})
	tok := e.mint(nil)
	rec := e.get("/orders/1?a=1&access_token=" + tok + "&b=2").mustForward(t)
	if strings.Contains(rec.Query, "access_token") || strings.Contains(rec.Query, tok) {
		t.Fatalf("got upstream query %q, want the token removed", rec.Query)
	}
	if rec.Query != "a=1&b=2" {
		t.Fatalf("got upstream query %q, want a=1&b=2", rec.Query)
	}
	if strings.Contains(e.logs.String(), tok) {
		t.Fatal("the token appears in the logs")
	}
	e.get("/orders/1?access_token="+tok, bearer(tok)...).mustDeny(t, 400, "")
}

// Class 4: spoofed identity and forwarding headers.
func TestSpoofedHeadersNeverReachTheFunction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.mint(map[string]any{"groups": []string{"eng", "ops"}})
	spoofs := []string{
		"X-Authgate-Subject", "root",
		"x-authgate-subject", "root2",
		"X-AUTHGATE-SCOPES", "admin",
		"X-Authgate-Email", "root@example.com",
		"X-Authgate-Anything-New", "x",
		"X_Authgate_Subject", "underscore",
		"x_authgate_email", "underscore@example.com",
		"X-Forwarded-For", "10.0.0.1",
		"X-Forwarded-Host", "admin.internal",
		"X-Forwarded-Proto", "https",
		"Forwarded", "for=10.0.0.1;proto=https",
		"X-Real-Ip", "10.0.0.1",
		"X-Request-Id", "attacker-chosen",
	}
	check := func(t *testing.T, rec map[string][]string, wantSubject string) {
		t.Helper()
		for name, vals := range rec {
			low := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
			if !strings.HasPrefix(low, "x-authgate-") {
				continue
			}
			for _, v := range vals {
				switch v {
				case "root", "root2", "admin", "root@example.com", "x", "underscore", "underscore@example.com":
					t.Fatalf("function received spoofed %s: %q", name, v)
				}
			}
		}
		subj := rec["X-Authgate-Subject"]
		if wantSubject == "" && subj != nil {
			t.Fatalf("got subject %v on an anonymous request, want none", subj)
		}
		if wantSubject != "" && (len(subj) != 1 || subj[0] != wantSubject) {
			t.Fatalf("got subject %v, want [%s]", subj, wantSubject)
		}
		if got := rec["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
			t.Fatalf("got X-Forwarded-For %v, want [127.0.0.1] rebuilt from the connection", got)
		}
		if rec["Forwarded"] != nil || rec["X-Real-Ip"] != nil {
			t.Fatalf("untrusted Forwarded/X-Real-Ip reached the function: %v %v", rec["Forwarded"], rec["X-Real-Ip"])
		}
		if got := rec["X-Forwarded-Proto"]; len(got) != 1 || got[0] != "http" {
			t.Fatalf("got X-Forwarded-Proto %v, want [http]", got)
		}
		if got := rec["X-Request-Id"]; len(got) != 1 || got[0] == "attacker-chosen" {
			t.Fatalf("got X-Request-Id %v, want a generated id", got)
		}
	}
	t.Run("with a valid token", func(t *testing.T) {
		rec := e.get("/orders/1", append(bearer(tok), spoofs...)...).mustForward(t)
		check(t, rec.Headers, "alice")
		if got := header(rec, "X-Authgate-Groups"); len(got) != 1 || got[0] != "eng,ops" {
			t.Fatalf("got groups %v, want [eng,ops]", got)
		}
		if got := header(rec, "X-Authgate-Email"); len(got) != 1 || got[0] != "alice@example.com" {
			t.Fatalf("got email %v, want [alice@example.com]", got)
		}
	})
	t.Run("on a public route without a token", func(t *testing.T) {
		check(t, e.get("/healthz", spoofs...).mustForward(t).Headers, "")
	})
	t.Run("with an invalid token the request is refused", func(t *testing.T) {
		e.get("/orders/1", append(bearer("x.y.z"), spoofs...)...).mustDeny(t, 401, "")
	})
	t.Run("connection header naming injected headers", func(t *testing.T) {
		rec := e.get("/orders/1", append(bearer(tok), "Connection", "X-Authgate-Subject, X-Authgate-Email, X-Forwarded-For, Authorization")...).mustForward(t)
		if got := header(rec, "X-Authgate-Subject"); len(got) != 1 || got[0] != "alice" {
			t.Fatalf("got subject %v, want [alice] despite the hostile Connection header", got)
		}
		if got := header(rec, "X-Forwarded-For"); len(got) != 1 {
			t.Fatalf("got X-Forwarded-For %v, want it rebuilt", got)
		}
	})
}

// Class 5: path normalisation. The policy sees exactly the forwarded path.
func TestPathTricks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.mint(nil) // orders:read, no MFA
	mfa := e.mint(map[string]any{"amr": []string{"pwd", "otp"}})
	tests := []struct {
		name, path string
		tok        string
		status     int
		wantPath   string
	}{
		{"dot segments into admin", "/orders/../admin/users", tok, 403, ""},
		{"encoded dot segments into admin", "/orders/%2e%2e/admin/users", tok, 403, ""},
		{"upper encoded dots", "/orders/%2E%2E/admin/users", tok, 403, ""},
		{"double slash admin", "//admin/users", tok, 403, ""},
		{"double slash inside", "/orders//1", tok, 200, "/orders/1"},
		{"dot segment resolved", "/orders/./1", tok, 200, "/orders/1"},
		{"traversal to orders forwarded canonical", "/admin/../orders/1", tok, 200, "/orders/1"},
		{"admin with mfa via dots", "/orders/../admin/users", mfa, 200, "/admin/users"},
		{"encoded slash", "/orders%2F..%2Fadmin/users", tok, 400, ""},
		{"encoded backslash", "/orders/..%5Cadmin", tok, 400, ""},
		{"raw backslash", "/orders/..\\admin", tok, 400, ""},
		{"matrix params", "/admin;x=1/users", tok, 400, ""},
		{"double encoding", "/orders/%252e%252e/admin", tok, 400, ""},
		{"climb above root", "/../../admin", tok, 400, ""},
		{"encoded nul", "/orders/%00", tok, 400, ""},
		{"case is significant", "/ADMIN/users", tok, 403, ""},
		{"query never matched", "/healthz?next=/admin/users", "", 200, "/healthz"},
		{"encoded unreserved decoded", "/%6frders/1", tok, 200, "/orders/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.tok != "" {
				hdr = bearer(tt.tok)
			}
			r := e.rawGet(tt.path, hdr...)
			if tt.status != 200 {
				r.mustDeny(t, tt.status, "")
				return
			}
			rec := r.mustForward(t)
			if rec.Path != tt.wantPath {
				t.Fatalf("function got path %q, want %q", rec.Path, tt.wantPath)
			}
		})
	}
}
