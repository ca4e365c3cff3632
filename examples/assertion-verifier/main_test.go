package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/assertionkey"
	"github.com/authgate/authgate/proxy/admin"
	"github.com/authgate/authgate/proxy/app"
	"github.com/authgate/authgate/proxy/assertion"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// partnerKey is an API key whose SHA-256 the config holds.
const partnerKey = "agk_test_partner_key_0123456789abcdef"

const configDoc = `apiVersion: authgate.dev/v1alpha1
kind: ProxyConfig
upstream: {url: %q}
apiKeys:
  keys: [{name: partner, hash: "sha256:f0992dacd3492d57ea3de793332ac43c28d7b65ac787eb85ae67a8f1b50d4616", scopes: [orders:read]}]
policies:
  - name: team-a/orders
    authentication: {apiKeys: {}}
    routes: [{name: all}]
    identityAssertion: {issuer: "authgate://team-a", audience: orders, ttl: 30s}
`

type stack struct {
	proxyURL, fnURL string
	ringPath        string
}

// start runs the example behind a real authgate-proxy on loopback: the
// proxy signs with a ring in a temp dir and serves its JWKS on its admin
// listener, where the example's RemoteKeySet fetches it.
func start(t *testing.T) *stack {
	t.Helper()
	dir := t.TempDir()
	ringPath := filepath.Join(dir, assertionkey.SecretKey)
	k, err := assertionkey.NewKey(time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r := assertionkey.Ring{Keys: []assertionkey.Key{k}}
	b, _ := r.Marshal()
	if err := os.WriteFile(ringPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var fn atomic.Pointer[http.Handler]
	fnTS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*fn.Load()).ServeHTTP(w, r) }))
	t.Cleanup(fnTS.Close)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, configDoc, fnTS.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{ConfigPath: cfgPath, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", AssertionKeysPath: ringPath,
		PollInterval: time.Second, ShutdownTimeout: time.Second, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-a.Started():
	case err := <-done:
		t.Fatalf("proxy: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not start")
	}
	h := Handler(ctx, Options{Issuer: "authgate://team-a", Audience: "orders", Header: config.DefaultAssertionHeader,
		JWKSURL: "http://" + a.AdminAddr() + admin.JWKSPath})
	fn.Store(&h)
	return &stack{proxyURL: "http://" + a.Addr(), fnURL: fnTS.URL, ringPath: ringPath}
}

func call(t *testing.T, url string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/orders/1", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// mint signs an assertion with the stack's ring at a given clock, as a
// sidecar would have then.
func mint(t *testing.T, s *stack, at time.Time) string {
	t.Helper()
	k := assertion.NewKeys(s.ringPath, func() time.Time { return at }, slog.New(slog.DiscardHandler))
	if err := k.Load(); err != nil {
		t.Fatal(err)
	}
	tok, err := k.Assert(&config.IdentityAssertion{TTL: config.D(30 * time.Second), Issuer: "authgate://team-a", Audience: "orders"},
		&identity.Identity{Kind: identity.KindAPIKey, Subject: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestExampleBehindRealProxy(t *testing.T) {
	s := start(t)
	t.Run("valid assertion verified", func(t *testing.T) {
		code, body := call(t, s.proxyURL, "X-API-Key", partnerKey)
		if code != 200 || body["subject"] != "partner" || body["kind"] != "apikey" || body["scope"] != "orders:read" {
			t.Fatalf("got %d %v, want 200 and the verified subject partner", code, body)
		}
	})
	t.Run("spoofed inbound assertion stripped and replaced", func(t *testing.T) {
		forged := mint(t, s, time.Now()) // even a validly signed one for another subject
		code, body := call(t, s.proxyURL, "X-API-Key", partnerKey, "X-Authgate-Assertion", forged, "x_authgate_assertion", forged)
		if code != 200 || body["subject"] != "partner" {
			t.Fatalf("got %d %v, want the gateway's assertion for partner, not the client's", code, body)
		}
	})
	t.Run("around the proxy without an assertion", func(t *testing.T) {
		if code, _ := call(t, s.fnURL); code != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", code)
		}
	})
	t.Run("expired assertion refused", func(t *testing.T) {
		if code, _ := call(t, s.fnURL, "X-Authgate-Assertion", mint(t, s, time.Now().Add(-time.Hour))); code != http.StatusUnauthorized {
			t.Fatalf("got %d for an assertion expired an hour ago, want 401", code)
		}
	})
	t.Run("tampered assertion refused", func(t *testing.T) {
		tok := mint(t, s, time.Now())
		parts := strings.Split(tok, ".")
		claims := `{"iss":"authgate://team-a","sub":"admin","aud":"orders","iat":1,"nbf":1,"exp":9999999999,"jti":"x","kind":"jwt"}`
		parts[1] = b64(claims)
		if code, _ := call(t, s.fnURL, "X-Authgate-Assertion", strings.Join(parts, ".")); code != http.StatusUnauthorized {
			t.Fatalf("got %d for a tampered payload, want 401", code)
		}
		// Sanity: the untampered one passes, so the refusal above is the tampering's.
		if code, body := call(t, s.fnURL, "X-Authgate-Assertion", tok); code != 200 || body["subject"] != "mallory" {
			t.Fatalf("got %d %v for the untampered assertion, want 200", code, body)
		}
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
