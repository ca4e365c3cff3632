package jwks

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// JWKS endpoint behaviours.
const (
	modeOK int32 = iota
	modeDown
	modeHang
	modeTrickle
	modeHugeLength
	modeHugeChunked
	modeGarbage
	modeBlock // signal arrival, wait for unblock, then serve normally
	modeRedirectPlainHTTP
)

// idpServer is a devissuer behind an httptest server whose /jwks can
// misbehave, counting requests per endpoint.
type idpServer struct {
	*httptest.Server
	iss        *devissuer.Issuer
	mode       atomic.Int32
	jwksHits   atomic.Int64
	discoHits  atomic.Int64
	discoIss   atomic.Pointer[string] // overrides the discovery issuer
	arrived    chan struct{}
	unblock    chan struct{}
	release    chan struct{} // closed at cleanup: every handler returns
	issHandler http.Handler
}

func newIDP(t *testing.T) *idpServer {
	t.Helper()
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &idpServer{
		iss: iss, issHandler: iss.Handler(),
		arrived: make(chan struct{}, 16), unblock: make(chan struct{}), release: make(chan struct{}),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.release) }) // runs before Close
	iss.SetURL(s.URL)
	return s
}

func (s *idpServer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		s.discoHits.Add(1)
		if p := s.discoIss.Load(); p != nil {
			doc := s.iss.DiscoveryDocument()
			doc.Issuer = *p
			_ = json.NewEncoder(w).Encode(doc)
			return
		}
		s.issHandler.ServeHTTP(w, r)
	case "/jwks":
		s.jwksHits.Add(1)
		s.serveJWKS(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *idpServer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	flusher, _ := w.(http.Flusher)
	switch s.mode.Load() {
	case modeDown:
		http.Error(w, "down", http.StatusServiceUnavailable)
	case modeHang:
		s.wait(r, nil)
	case modeTrickle:
		_, _ = w.Write([]byte(`{"keys":[`))
		for {
			_, _ = w.Write([]byte(" "))
			flusher.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-s.release:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	case modeHugeLength, modeHugeChunked:
		body, _ := json.Marshal(s.iss.PublicJWKS())
		body = append(body, bytes.Repeat([]byte(" "), 8192)...)
		if s.mode.Load() == modeHugeChunked {
			_, _ = w.Write(body[:10])
			flusher.Flush()
			body = body[10:]
		}
		_, _ = w.Write(body)
	case modeGarbage:
		_, _ = w.Write([]byte("<html>\x00\xff not json"))
	case modeRedirectPlainHTTP:
		http.Redirect(w, r, "http://authgate-test.invalid/jwks", http.StatusFound)
	case modeBlock:
		s.arrived <- struct{}{}
		s.wait(r, s.unblock)
		s.issHandler.ServeHTTP(w, r)
	default:
		s.issHandler.ServeHTTP(w, r)
	}
}

func (s *idpServer) wait(r *http.Request, ch chan struct{}) {
	select {
	case <-r.Context().Done():
	case <-s.release:
	case <-ch:
	}
}

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
