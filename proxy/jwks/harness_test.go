package jwks

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/fakeclock"
	"github.com/authgate/authgate/test/logbuf"
)

// clock is the shared manual test clock.
type clock = fakeclock.Clock

func newClock() *clock { return fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) }

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer = logbuf.Buffer

// issuerConfig is a defaulted issuer fetching from base+"/jwks".
func issuerConfig(base string, mut ...func(*config.Issuer)) config.Issuer {
	i := config.Issuer{Name: "test", IssuerURL: base, JWKSURL: base + "/jwks", Audiences: []string{"api"}}
	for _, m := range mut {
		m(&i)
	}
	i.Default()
	return i
}

func noRemote(i *config.Issuer) { i.JWKSURL = ""; f := false; i.Discovery = &f }

func useDiscovery(i *config.Issuer) { i.JWKSURL = ""; i.Discovery = nil }

func inline(set config.JSONWebKeySet) func(*config.Issuer) {
	return func(i *config.Issuer) { i.JWKS = &set }
}

type fixture struct {
	ks   *KeySet
	m    *metrics.Metrics
	reg  *prometheus.Registry
	clk  *clock
	logs *syncBuffer
}

func newKeySet(t *testing.T, iss config.Issuer) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), clk: newClock(), logs: &syncBuffer{}}
	f.m = metrics.New(f.reg)
	ks, err := New(Options{
		Issuer: iss, Now: f.clk.Now, Metrics: f.m,
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("new key set: %v", err)
	}
	f.ks = ks
	return f
}

func mint(t *testing.T, iss *devissuer.Issuer, opts ...devissuer.MintOption) string {
	t.Helper()
	tok, err := iss.Mint(map[string]any{"sub": "alice", "aud": "api"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustVerify(t *testing.T, ks *KeySet, tok string) {
	t.Helper()
	payload, err := ks.VerifySignature(t.Context(), tok)
	if err != nil {
		t.Fatalf("got error %v, want the token verified", err)
	}
	if !strings.Contains(string(payload), `"sub":"alice"`) {
		t.Fatalf("got payload %s, want the minted claims", payload)
	}
}

func mustFail(t *testing.T, ks *KeySet, tok string, want error) {
	t.Helper()
	payload, err := ks.VerifySignature(t.Context(), tok)
	if !errors.Is(err, want) {
		t.Fatalf("got error %v (payload %q), want %v", err, payload, want)
	}
	if payload != nil {
		t.Fatalf("got payload %q with an error, want none", payload)
	}
}

// waiting reports how many callers wait on the in-flight fetch.
func (k *KeySet) waiting() int32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inflight == nil {
		return 0
	}
	return k.inflight.waiters.Load()
}

// jsonField reads a string member of a raw JSON object.
func jsonField(t *testing.T, raw []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	return s
}

// privateJWK is an RSA private key as a JWK, which a key set must refuse.
func privateJWK(t *testing.T) string {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&jose.JSONWebKey{Key: priv, KeyID: "private", Algorithm: "RS256", Use: "sig"}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// weakRSAJWK is a 1024-bit RSA public key, too small to be trusted.
func weakRSAJWK(t *testing.T) string {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "weak", Algorithm: "RS256", Use: "sig"}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
