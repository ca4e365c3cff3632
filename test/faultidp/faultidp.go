// Package faultidp is an OpenID Connect identity provider for tests that
// misbehaves on demand. It is a devissuer (a discovery document and a JWKS
// of real keys, minting real tokens) behind an httptest server on loopback,
// whose endpoints can be switched, each on its own, to fail the ways real
// identity providers fail: down, hanging, trickling, oversized, garbage,
// unusable keys, a redirect off https, or blocked until the test lets the
// request go. It counts the requests each endpoint gets and knows which are
// still being served.
//
// Every handler returns when the test ends, so a hanging request never
// outlives its test.
package faultidp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/test/testca"
)

// Endpoint is a set of the server's endpoints, which faults, delays and
// request counts apply to.
type Endpoint uint8

// The endpoints.
const (
	// Discovery is GET /.well-known/openid-configuration.
	Discovery Endpoint = 1 << iota
	// JWKS is GET /jwks, the key set the discovery document names.
	JWKS
	// Other is every other path: the devissuer's /token, and 404s.
	Other
	// All is every path.
	All = Discovery | JWKS | Other
)

var endpoints = [...]Endpoint{Discovery, JWKS, Other}

// index is e's position in the per-endpoint arrays; e is one endpoint.
func (e Endpoint) index() int {
	switch e {
	case Discovery:
		return 0
	case JWKS:
		return 1
	default:
		return 2
	}
}

func endpointOf(path string) Endpoint {
	switch path {
	case "/.well-known/openid-configuration":
		return Discovery
	case "/jwks":
		return JWKS
	default:
		return Other
	}
}

// Fault is how an endpoint misbehaves.
type Fault int32

// The faults. A fault that shapes a body (Trickle, HugeLength, HugeChunked)
// uses the body the endpoint serves normally.
const (
	// None serves normally.
	None Fault = iota
	// Down answers 503 Service Unavailable.
	Down
	// Hang never answers: the handler returns once the client gives up.
	Hang
	// Trickle answers 200 and the start of the body, then a space every
	// 10ms, never finishing.
	Trickle
	// TrickleHeaders writes a status line and the start of a header on the
	// raw connection, then one byte every 100ms, never finishing the
	// response header.
	TrickleHeaders
	// HugeLength answers the body followed by 8 KiB of spaces, with a
	// Content-Length announcing it.
	HugeLength
	// HugeChunked answers the same body chunked, without a Content-Length.
	HugeChunked
	// Garbage answers 200 with a body that is not JSON.
	Garbage
	// SymmetricKey answers a key set holding only a symmetric (oct) key,
	// which no verifier may use.
	SymmetricKey
	// RedirectPlainHTTP redirects (302) to a plain-http URL off loopback.
	RedirectPlainHTTP
	// Block announces the request on Arrived, waits for Unblock, then
	// serves normally.
	Block
)

var faultNames = [...]string{"none", "down", "hang", "trickle", "trickle headers", "huge length",
	"huge chunked", "garbage", "symmetric key", "redirect to plain http", "block"}

// String names the fault, for test names and messages.
func (f Fault) String() string {
	if f < 0 || int(f) >= len(faultNames) {
		return "fault " + strconv.Itoa(int(f))
	}
	return faultNames[f]
}

// Padding is how many bytes HugeLength and HugeChunked add to a body.
const Padding = 8192

// symmetricKeySet is what SymmetricKey serves.
const symmetricKeySet = `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0","kid":"sym"}]}`

// Server is the identity provider; URL is its issuer URL. It is safe for
// concurrent use.
type Server struct {
	*httptest.Server
	// Issuer signs the tokens and holds the keys the server publishes;
	// Issuer.RotateKey rotates them.
	Issuer *devissuer.Issuer

	handler http.Handler // the devissuer's
	faults  [len(endpoints)]atomic.Int32
	delays  [len(endpoints)]atomic.Int64 // nanoseconds
	hits    [len(endpoints)]atomic.Int64

	cacheControl atomic.Pointer[string] // the JWKS's; nil: the devissuer's (no-store)
	keySet       atomic.Pointer[[]byte] // served as the JWKS instead of the keys
	discoEdit    atomic.Pointer[func(*devissuer.Discovery)]

	arrived     chan struct{}
	unblock     chan struct{}
	unblockOnce sync.Once
	release     chan struct{} // closed when the test ends: every handler returns
	handlers    sync.WaitGroup

	mu       sync.Mutex
	finished []bool // by request number - 1
}

// Option configures New.
type Option func(*devissuer.Options)

// WithNow makes the issuer mint iat and exp from now.
func WithNow(now func() time.Time) Option {
	return func(o *devissuer.Options) { o.Now = now }
}

// New starts a server that serves normally until told otherwise, and
// stops it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return newServer(t, nil, opts)
}

// NewTLS is New on https, with a certificate for 127.0.0.1 that ca issued:
// only clients trusting ca (ca.PEM as their CA bundle) accept it.
func NewTLS(t testing.TB, ca *testca.CA, opts ...Option) *Server {
	t.Helper()
	return newServer(t, ca, opts)
}

func newServer(t testing.TB, ca *testca.CA, opts []Option) *Server {
	t.Helper()
	var o devissuer.Options
	for _, opt := range opts {
		opt(&o)
	}
	iss, err := devissuer.New(o)
	if err != nil {
		t.Fatalf("faultidp: %v", err)
	}
	s := &Server{
		Issuer: iss, handler: iss.Handler(),
		arrived: make(chan struct{}, 64), unblock: make(chan struct{}), release: make(chan struct{}),
	}
	s.Server = newServerOnFreshPort(t, http.HandlerFunc(s.serve), ca)
	iss.SetURL(s.URL)
	t.Cleanup(func() {
		close(s.release)
		s.Close()
		s.handlers.Wait() // hijacked connections, which Close does not wait for
	})
	return s
}

// Set makes the endpoints in e misbehave as f (None: serve normally).
func (s *Server) Set(e Endpoint, f Fault) {
	for _, ep := range endpoints {
		if e&ep != 0 {
			s.faults[ep.index()].Store(int32(f))
		}
	}
}

// SetDelay makes the endpoints in e wait d before they answer (or
// misbehave); the wait ends early when the client gives up.
func (s *Server) SetDelay(e Endpoint, d time.Duration) {
	for _, ep := range endpoints {
		if e&ep != 0 {
			s.delays[ep.index()].Store(int64(d))
		}
	}
}

// Hits is the number of requests the endpoints in e got, counted when
// they arrive.
func (s *Server) Hits(e Endpoint) int64 {
	var n int64
	for _, ep := range endpoints {
		if e&ep != 0 {
			n += s.hits[ep.index()].Load()
		}
	}
	return n
}

// InFlight reports whether the n-th request (counting from 1, every
// endpoint) has arrived and is still being served: it hangs or trickles
// and its client has not given up.
func (s *Server) InFlight(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return n >= 1 && n <= len(s.finished) && !s.finished[n-1]
}

// SetCacheControl makes the JWKS carry this Cache-Control header instead
// of the devissuer's no-store; "" sends none.
func (s *Server) SetCacheControl(v string) { s.cacheControl.Store(&v) }

// SetKeySet makes the JWKS endpoint serve raw instead of the issuer's
// keys, for key sets no issuer would publish.
func (s *Server) SetKeySet(raw string) {
	b := []byte(raw)
	s.keySet.Store(&b)
}

// EditDiscovery makes the discovery endpoint serve the issuer's document
// as edit changes it: another issuer, a jwks_uri off https.
func (s *Server) EditDiscovery(edit func(*devissuer.Discovery)) { s.discoEdit.Store(&edit) }

// Arrived receives once for every request held by Block.
func (s *Server) Arrived() <-chan struct{} { return s.arrived }

// Unblock lets every request held by Block, now and later, go on.
func (s *Server) Unblock() { s.unblockOnce.Do(func() { close(s.unblock) }) }

// KIDs returns the key ids of the issuer's current keys, sorted.
func (s *Server) KIDs() []string {
	return slices.Sorted(slices.Values([]string{s.Issuer.KeyID(devissuer.RS256), s.Issuer.KeyID(devissuer.ES256)}))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.handlers.Add(1)
	defer s.handlers.Done()
	ep := endpointOf(r.URL.Path)
	s.hits[ep.index()].Add(1)
	n := s.begin()
	defer s.end(n)
	if d := time.Duration(s.delays[ep.index()].Load()); d > 0 {
		timer := time.NewTimer(d)
		hold(s, r, timer.C)
		timer.Stop()
	}
	switch Fault(s.faults[ep.index()].Load()) {
	case Down:
		http.Error(w, "faultidp: down", http.StatusServiceUnavailable)
	case Hang:
		hold[struct{}](s, r, nil)
	case Trickle:
		s.trickle(w, r, ep)
	case TrickleHeaders:
		s.trickleHeaders(w)
	case HugeLength:
		body := append(s.body(ep), bytes.Repeat([]byte(" "), Padding)...)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	case HugeChunked:
		body := append(s.body(ep), bytes.Repeat([]byte(" "), Padding)...)
		_, _ = w.Write(body[:10])
		_ = http.NewResponseController(w).Flush()
		_, _ = w.Write(body[10:])
	case Garbage:
		_, _ = w.Write([]byte("<html>\x00\xff not json"))
	case SymmetricKey:
		_, _ = w.Write([]byte(symmetricKeySet))
	case RedirectPlainHTTP:
		http.Redirect(w, r, "http://authgate-test.invalid"+r.URL.Path, http.StatusFound)
	case Block:
		select {
		case s.arrived <- struct{}{}:
		case <-s.release:
			return
		}
		hold(s, r, s.unblock)
		s.serveNormally(w, r, ep)
	default:
		s.serveNormally(w, r, ep)
	}
}

// begin records a new request and returns its number.
func (s *Server) begin() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = append(s.finished, false)
	return len(s.finished)
}

func (s *Server) end(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished[n-1] = true
}

// hold waits for ch, the client giving up, or the end of the test.
func hold[T any](s *Server, r *http.Request, ch <-chan T) {
	select {
	case <-ch:
	case <-r.Context().Done():
	case <-s.release:
	}
}

func (s *Server) serveNormally(w http.ResponseWriter, r *http.Request, ep Endpoint) {
	switch {
	case ep == Discovery && s.discoEdit.Load() != nil,
		ep == JWKS && (s.keySet.Load() != nil || s.cacheControl.Load() != nil):
		if cc := s.cacheControl.Load(); ep == JWKS && cc != nil && *cc != "" {
			w.Header().Set("Cache-Control", *cc)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.body(ep))
	default:
		s.handler.ServeHTTP(w, r)
	}
}

// body is what ep serves normally.
func (s *Server) body(ep Endpoint) []byte {
	var v any
	switch ep {
	case Discovery:
		doc := s.Issuer.DiscoveryDocument()
		if edit := s.discoEdit.Load(); edit != nil {
			(*edit)(&doc)
		}
		v = doc
	case JWKS:
		if raw := s.keySet.Load(); raw != nil {
			return slices.Clone(*raw)
		}
		v = s.Issuer.PublicJWKS()
	default:
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("faultidp: encode %T: %v", v, err))
	}
	return append(b, '\n')
}

// usedPorts are the ports this process's fault IdPs have listened on.
var (
	usedPortsMu sync.Mutex
	usedPorts   = map[string]bool{}
)

// newServerOnFreshPort starts an httptest server on a loopback port no
// earlier fault IdP of this process used. The issuer URL is the server's
// URL, and the controller keeps an issuer's state by URL across tests: a
// new IdP on a port the kernel handed out again would inherit the state
// (a failed fetch, cached keys) of a previous test's IdP.
func newServerOnFreshPort(t testing.TB, h http.Handler, ca *testca.CA) *httptest.Server {
	usedPortsMu.Lock()
	defer usedPortsMu.Unlock()
	var rejected []*httptest.Server
	defer func() {
		for _, r := range rejected {
			_ = r.Listener.Close()
		}
	}()
	for {
		srv := httptest.NewUnstartedServer(h)
		addr := srv.Listener.Addr().String()
		if !usedPorts[addr] {
			usedPorts[addr] = true
			if ca != nil {
				ca.StartTLS(t, srv)
			} else {
				srv.Start()
			}
			return srv
		}
		rejected = append(rejected, srv)
	}
}
