package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/fakeclock"
	"github.com/authgate/authgate/test/faultidp"
)

// testAudience is the audience every test issuer expects.
const testAudience = "orders-api"

// clock is the shared manual test clock.
type clock = fakeclock.Clock

func newClock() *clock { return fakeclock.New(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)) }

// newDownIdP is an identity provider that is down (503) and counts the
// requests it gets (Hits).
func newDownIdP(t *testing.T) *faultidp.Server {
	t.Helper()
	s := faultidp.New(t)
	s.Set(faultidp.All, faultidp.Down)
	return s
}

// issuerServer is a devissuer served over loopback.
type issuerServer struct {
	*devissuer.Issuer
	srv *faultidp.Server
}

func newIssuer(t testing.TB, clk *clock) *issuerServer {
	t.Helper()
	srv := faultidp.New(t, faultidp.WithNow(clk.Now))
	return &issuerServer{Issuer: srv.Issuer, srv: srv}
}

// issuerConfig trusts is with keys fetched from its JWKS URL.
func (is *issuerServer) issuerConfig(name string) config.Issuer {
	return config.Issuer{
		Name:      name,
		IssuerURL: is.URL(),
		JWKSURL:   is.URL() + "/jwks",
		Audiences: []string{testAudience},
	}
}

// mint signs claims with the defaults sub=alice, aud=testAudience.
func (is *issuerServer) mint(t *testing.T, claims map[string]any, opts ...devissuer.MintOption) string {
	t.Helper()
	all := map[string]any{"sub": "alice", "aud": testAudience, "scope": "orders:read orders:write"}
	for k, v := range claims {
		all[k] = v
	}
	tok, err := is.Mint(all, opts...)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

// Plaintext API keys of the test config.
const (
	keyCI      = "sk_test_ci_0123456789abcdef"
	keyExpired = "sk_test_old_0123456789abcdef"
)

func hashKey(k string) string {
	s := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(s[:])
}

// baseConfig is a valid config around the given issuers, with two API keys.
func baseConfig(clk *clock, issuers ...config.Issuer) *config.ProxyConfig {
	past := clk.Now().Add(-time.Hour)
	return &config.ProxyConfig{
		APIVersion: config.APIVersion,
		Kind:       config.Kind,
		Upstream:   config.Upstream{URL: "http://127.0.0.1:8080"},
		Issuers:    issuers,
		APIKeys: config.APIKeys{Keys: []config.APIKey{
			{Name: "ci", Hash: hashKey(keyCI), Scopes: []string{"orders:read"}},
			{Name: "old", Hash: hashKey(keyExpired), ExpiresAt: &past},
		}},
	}
}

// newAuthn defaults and validates cfg, then builds an Authenticator.
func newAuthn(t testing.TB, cfg *config.ProxyConfig, clk *clock) *Authenticator {
	t.Helper()
	a, _ := newAuthnWithMetrics(t, cfg, clk)
	return a
}

// newAuthnWithMetrics is newAuthn, returning the metrics it counts in too.
func newAuthnWithMetrics(t testing.TB, cfg *config.ProxyConfig, clk *clock) (*Authenticator, *metrics.Metrics) {
	t.Helper()
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config invalid: %v", errs)
	}
	m := metrics.New(prometheus.NewRegistry())
	a, err := New(cfg, Options{Now: clk.Now, Metrics: m})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, m
}

// verifications counts signature verifications of the named issuer.
func (a *Authenticator) verifications(name string) int64 {
	if iv, ok := a.byName[name]; ok {
		return iv.counted.verifications.Load()
	}
	return -1
}

func bearer(tok string) Credential {
	return Credential{Value: tok, Source: config.CredentialSource{Type: config.SourceBearer}}
}

func apiKeyCred(v string) Credential {
	return Credential{Value: v, Source: config.CredentialSource{Type: config.SourceHeader, Name: config.DefaultAPIKeyHeader}}
}

// wantReason fails unless err is an *Error with reason (and its status)
// and id is nil, or, for reason "", err is nil and id is set.
func wantReason(t *testing.T, id *identity.Identity, err error, reason string) {
	t.Helper()
	wantErr(t, err, reason)
	switch {
	case reason == "" && id == nil:
		t.Fatal("got nil identity, want one")
	case reason != "" && id != nil:
		t.Fatalf("got identity %+v with an error, want nil", id)
	}
}

// wantErr fails unless err is an *Error with reason and its status, or nil
// for reason "".
func wantErr(t *testing.T, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v, want *Error with reason %q", err, reason)
	}
	if ae.Reason != reason {
		t.Fatalf("got reason %q (%v), want %q", ae.Reason, err, reason)
	}
	wantStatus := http.StatusUnauthorized
	switch reason {
	case ReasonAmbiguousCredential:
		wantStatus = http.StatusBadRequest
	case ReasonKeysUnavailable:
		wantStatus = http.StatusServiceUnavailable
	}
	if ae.Status != wantStatus {
		t.Fatalf("got status %d, want %d", ae.Status, wantStatus)
	}
}

func authenticate(a *Authenticator, c Credential) (*identity.Identity, error) {
	return a.Authenticate(context.Background(), c)
}
