package gateway_test

import (
	"context"
	"crypto"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/assertionkey"
	"github.com/authgate/authgate/proxy/assertion"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
)

func withAssertion(c *config.ProxyConfig) {
	c.Policies[0].IdentityAssertion = &config.IdentityAssertion{Issuer: "authgate://team-a", Audience: "fn", Claims: []string{"email"}}
}

// assertionKeys writes a ring with one key signing now to a temp file and
// loads it; without a key only the path is returned (nothing there).
func assertionKeys(t testing.TB, withKey bool) *assertion.Keys {
	t.Helper()
	path := filepath.Join(t.TempDir(), assertionkey.SecretKey)
	if withKey {
		k, err := assertionkey.NewKey(time.Now().Add(-time.Minute), time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		r := assertionkey.Ring{Keys: []assertionkey.Key{k}}
		b, _ := r.Marshal()
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keys := assertion.NewKeys(path, nil, slog.New(slog.DiscardHandler))
	_ = keys.Load()
	return keys
}

// useAssertions makes a runtime with keys (nil: none given) and opts the
// active one.
func (e *env) useAssertions(t testing.TB, keys *assertion.Keys, opts ...envOption) {
	t.Helper()
	e.sw.Store(e.assertRuntime(t, keys, nil, opts...))
}

func (e *env) assertRuntime(t testing.TB, keys *assertion.Keys, transport http.RoundTripper, opts ...envOption) *gateway.Runtime {
	t.Helper()
	cfg := baseConfig(e.idp.URL, e.issuer.PublicJWKS(), e.fnTS.URL)
	for _, o := range opts {
		o(cfg)
	}
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	rt, err := gateway.Build(context.Background(), cfg, "assert", map[string]string{"app": "fn"}, gateway.Deps{
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Metrics: e.metrics, Assertions: keys, Transport: transport,
	})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return rt
}

func verifyAssertion(t *testing.T, keys *assertion.Keys, tok string) (*assertion.Claims, error) {
	t.Helper()
	b, err := keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	var pubs []crypto.PublicKey
	for _, k := range set.Keys {
		pubs = append(pubs, k.Key)
	}
	idt, err := oidc.NewVerifier("authgate://team-a", &oidc.StaticKeySet{PublicKeys: pubs},
		&oidc.Config{ClientID: "fn", SupportedSigningAlgs: []string{oidc.ES256}}).Verify(context.Background(), tok)
	if err != nil {
		return nil, err
	}
	var c assertion.Claims
	return &c, idt.Claims(&c)
}

// Security class 4 for the assertion: whatever a client sends under the
// assertion header (any spelling, with or without a credential, on public
// routes too) never reaches the function; a verified request carries the
// gateway's assertion, exactly one.
func TestAssertionReplacesSpoofedHeader(t *testing.T) {
	e := newEnv(t)
	keys := assertionKeys(t, true)
	e.useAssertions(t, keys, withAssertion)
	forged := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0."
	spoof := []string{"X-Authgate-Assertion", forged, "x_authgate_assertion", forged, "X-AUTHGATE-ASSERTION", forged}

	got := e.get("/orders/1", append(bearer(e.mint(nil)), spoof...)...).mustForward(t)
	var vals []string
	for name, v := range got.Headers {
		if http.CanonicalHeaderKey(name) == "X-Authgate-Assertion" || name == "x_authgate_assertion" {
			vals = append(vals, v...)
		}
	}
	if len(vals) != 1 || vals[0] == forged {
		t.Fatalf("function got assertion headers %q, want exactly the gateway's", vals)
	}
	c, err := verifyAssertion(t, keys, vals[0])
	if err != nil {
		t.Fatalf("the function cannot verify the assertion: %v", err)
	}
	if c.Subject != "alice" || c.Audience != "fn" || c.Kind != "jwt" || c.TokenIssuer != e.idp.URL || c.Claims["email"] != "alice@example.com" {
		t.Fatalf("got claims %+v", c)
	}
	if n := testutil.ToFloat64(e.metrics.AssertionsSigned.WithLabelValues("fn")); n != 1 {
		t.Fatalf("got authgate_assertions_signed_total %v, want 1", n)
	}

	pub := e.get("/healthz", spoof...).mustForward(t)
	for name := range pub.Headers {
		if http.CanonicalHeaderKey(name) == "X-Authgate-Assertion" || name == "x_authgate_assertion" {
			t.Fatalf("a public route forwarded %s: the client's copy must be stripped and no assertion signed", name)
		}
	}
}

// With the assertion on and no key, the request is refused (503, a
// gateway fault) and never forwarded without it.
func TestAssertionWithoutKeyFailsClosed(t *testing.T) {
	for name, keys := range map[string]*assertion.Keys{"no ring file": assertionKeys(t, false), "no key store": nil} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.useAssertions(t, keys, withAssertion)
			r := e.get("/orders/1", bearer(e.mint(nil))...)
			r.mustDeny(t, http.StatusServiceUnavailable, gateway.ReasonAssertionFailed)
			if r.header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if n := testutil.ToFloat64(e.metrics.AssertionFailures.WithLabelValues("fn", "no_key")); n != 1 {
				t.Fatalf("got authgate_assertion_signing_failures_total %v, want 1", n)
			}
			if !strings.Contains(e.logs.String(), "identity assertion not signed") {
				t.Fatal("no log line says why the request was refused")
			}
			// Public routes sign nothing, so they still work.
			e.get("/healthz").mustForward(t)
		})
	}
}

// A policy without the assertion sends none (and still strips the
// client's).
func TestNoAssertionUnlessEnabled(t *testing.T) {
	e := newEnv(t)
	e.useAssertions(t, assertionKeys(t, true))
	got := e.get("/orders/1", append(bearer(e.mint(nil)), "X-Authgate-Assertion", "forged")...).mustForward(t)
	if v, ok := got.Headers["X-Authgate-Assertion"]; ok {
		t.Fatalf("function got %q without identityAssertion", v)
	}
}

// BenchmarkCachedJWTWithAssertion is BenchmarkCachedJWT with the
// assertion signed per request: the difference is its cost.
func BenchmarkCachedJWTWithAssertion(b *testing.B) {
	e := newEnvWith(b, staticUpstream{}, quietLogs)
	rt := e.assertRuntime(b, assertionKeys(b, true), staticUpstream{}, quietLogs, withAssertion)
	benchServe(b, rt, "/orders/1", bearer(e.mint(nil))...)
}
