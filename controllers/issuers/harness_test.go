package issuers

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
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
	modeGarbage
	modeUnusable // only a symmetric key
	modeBlock    // signal arrival, wait for unblock, then serve normally
)

// idpServer is a devissuer behind an httptest server whose endpoints can
// misbehave, counting requests per endpoint.
type idpServer struct {
	*httptest.Server
	iss          *devissuer.Issuer
	handler      http.Handler
	mode         atomic.Int32
	cacheControl atomic.Pointer[string] // nil: devissuer's own headers (no-store)
	discoDelay   atomic.Int64           // nanoseconds
	jwksDelay    atomic.Int64           // nanoseconds
	jwksHits     atomic.Int64
	discoHits    atomic.Int64
	arrived      chan struct{}
	unblock      chan struct{}
	release      chan struct{} // closed at cleanup: every handler returns
}

func newIDP(t *testing.T) *idpServer {
	t.Helper()
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &idpServer{
		iss: iss, handler: iss.Handler(),
		arrived: make(chan struct{}, 64), unblock: make(chan struct{}), release: make(chan struct{}),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.release) }) // runs before Close
	iss.SetURL(s.URL)
	return s
}

func (s *idpServer) setCacheControl(v string) { s.cacheControl.Store(&v) }

func (s *idpServer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		s.discoHits.Add(1)
		s.sleep(r, time.Duration(s.discoDelay.Load()))
		s.handler.ServeHTTP(w, r)
	case "/jwks":
		s.jwksHits.Add(1)
		s.sleep(r, time.Duration(s.jwksDelay.Load()))
		s.serveJWKS(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *idpServer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	switch s.mode.Load() {
	case modeDown:
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	case modeHang:
		s.wait(r, nil)
		return
	case modeGarbage:
		_, _ = w.Write([]byte("<html>\x00\xff not json"))
		return
	case modeUnusable:
		_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0","kid":"sym"}]}`))
		return
	case modeBlock:
		s.arrived <- struct{}{}
		s.wait(r, s.unblock)
	}
	cc := s.cacheControl.Load()
	if cc == nil {
		s.handler.ServeHTTP(w, r)
		return
	}
	if *cc != "" {
		w.Header().Set("Cache-Control", *cc)
	}
	_ = json.NewEncoder(w).Encode(s.iss.PublicJWKS())
}

func (s *idpServer) sleep(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-r.Context().Done():
	case <-s.release:
	case <-time.After(d):
	}
}

func (s *idpServer) wait(r *http.Request, ch chan struct{}) {
	select {
	case <-r.Context().Done():
	case <-s.release:
	case <-ch:
	}
}

// kids returns the issuer's current key ids, sorted as Export sorts them.
func (s *idpServer) kids() []string {
	return slices.Sorted(slices.Values([]string{s.iss.KeyID(devissuer.RS256), s.iss.KeyID(devissuer.ES256)}))
}

type fixture struct {
	m    *Manager
	reg  *prometheus.Registry
	clk  *clock
	logs *syncBuffer
}

func newManager(t *testing.T, mut ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), clk: newClock(), logs: &syncBuffer{}}
	opts := Options{
		Now:          f.clk.Now,
		Logger:       slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:   f.reg,
		FetchTimeout: 2 * time.Second,
	}
	for _, m := range mut {
		m(&opts)
	}
	f.m = New(opts)
	return f
}

func fetchTimeout(d time.Duration) func(*Options) {
	return func(o *Options) { o.FetchTimeout = d }
}

// kidsOf parses a key set, checks every key is public, and returns the key
// ids in order.
func kidsOf(t *testing.T, set config.JSONWebKeySet) []string {
	t.Helper()
	kids := make([]string, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			t.Fatalf("got unparsable key %s: %v", raw, err)
		}
		if msg := config.CheckPublicSigningKey(&k); msg != "" {
			t.Fatalf("got key %s refused: %s", k.KeyID, msg)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

// flightWaiters reports how many callers wait on the spec's refresh.
func (m *Manager) flightWaiters(s Spec) int32 {
	m.mu.Lock()
	e := m.entries[s.Key()]
	m.mu.Unlock()
	if e == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.flight == nil {
		return 0
	}
	return e.flight.waiters.Load()
}

// waitFor polls cond until it holds; the test deadline bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatal("condition never held")
		case <-time.After(time.Millisecond):
		}
	}
}

// keySetError is the spec's key set's own last error.
func (m *Manager) keySetError(s Spec) string {
	m.mu.Lock()
	e := m.entries[s.Key()]
	m.mu.Unlock()
	return e.ks.Status().LastError
}

// summary prints a state with key ids instead of key bytes.
func summary(st State) string {
	var kids []string
	for _, raw := range st.Keys.Keys {
		var k struct {
			KID string `json:"kid"`
		}
		_ = json.Unmarshal(raw, &k)
		kids = append(kids, k.KID)
	}
	return fmt.Sprintf("{kids:%v count:%d lastSuccess:%v lastError:%q pending:%v nextRefresh:%v}",
		kids, st.KeyCount, st.LastSuccess, st.LastError, st.Pending, st.NextRefresh)
}
