package push_test

// The tests run the real client (its own transport, built from the CA file,
// so TLS verification is exercised) against a fake controller: an
// httptest HTTP/2 TLS server speaking internal/pushapi. The Applier is a
// fake that records its calls; that is enough here because this package's
// contract with the proxy is the Applier interface, and proxy/reload tests
// its own implementation of it.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/push"
	"github.com/authgate/authgate/test/logbuf"
	"github.com/authgate/authgate/test/metrictest"
	"github.com/authgate/authgate/test/testca"
	"github.com/authgate/authgate/test/wait"
)

// watchSeen is one watch request as the fake controller saw it.
type watchSeen struct {
	auth  string
	query url.Values
	proto string
	at    time.Time
}

// ackSeen is one acknowledgement the fake controller received.
type ackSeen struct {
	auth   string
	ack    pushapi.Ack
	status int
}

// stream is one watch answered 200, driven by the test.
type stream struct {
	send chan []byte   // written to the body and flushed
	end  chan struct{} // closed: the server ends the stream
	gone chan struct{} // closed when the handler returned
}

// controller is a fake push server.
type controller struct {
	srv     *httptest.Server
	streams chan *stream

	mu          sync.Mutex
	watches     []watchSeen
	acks        []ackSeen
	status      int    // non-zero: every watch is answered this
	body        string // with this body
	retryAfter  string // and this Retry-After
	greeting    []byte // written at once on every 200 watch
	closeAtOnce bool   // end every stream after the greeting
	ackFailures int    // answer the next n acks ackStatus
	ackStatus   int    // default 500
}

func newController(t *testing.T, http1 bool) *controller {
	t.Helper()
	fc := &controller{streams: make(chan *stream, 100)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pushapi.WatchPath, fc.serveWatch)
	mux.HandleFunc("POST "+pushapi.AckPath, fc.serveAck)
	fc.srv = httptest.NewUnstartedServer(mux)
	fc.srv.EnableHTTP2 = !http1
	fc.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests provoke
	fc.srv.StartTLS()
	t.Cleanup(fc.srv.Close)
	return fc
}

// caPEM is the server certificate (self-signed, a CA) as PEM.
func (fc *controller) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fc.srv.Certificate().Raw})
}

func (fc *controller) serveWatch(w http.ResponseWriter, r *http.Request) {
	fc.mu.Lock()
	fc.watches = append(fc.watches, watchSeen{auth: r.Header.Get("Authorization"), query: r.URL.Query(), proto: r.Proto, at: time.Now()})
	status, body, greeting, closeAtOnce, retryAfter := fc.status, fc.body, fc.greeting, fc.closeAtOnce, fc.retryAfter
	fc.mu.Unlock()
	if status != 0 {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(greeting)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if closeAtOnce {
		return
	}
	s := &stream{send: make(chan []byte, 10), end: make(chan struct{}), gone: make(chan struct{})}
	defer close(s.gone)
	fc.streams <- s
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.end:
			return
		case b := <-s.send:
			_, _ = w.Write(b)
			_ = rc.Flush()
		}
	}
}

func (fc *controller) serveAck(w http.ResponseWriter, r *http.Request) {
	var ack pushapi.Ack
	if err := json.NewDecoder(io.LimitReader(r.Body, pushapi.MaxAckBytes)).Decode(&ack); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fc.mu.Lock()
	status := http.StatusNoContent
	if fc.ackFailures > 0 {
		fc.ackFailures--
		status = cmp.Or(fc.ackStatus, http.StatusInternalServerError)
	}
	fc.acks = append(fc.acks, ackSeen{auth: r.Header.Get("Authorization"), ack: ack, status: status})
	fc.mu.Unlock()
	w.WriteHeader(status)
}

// configure changes the controller's behaviour.
func (fc *controller) configure(f func(fc *controller)) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	f(fc)
}

func (fc *controller) watchList() []watchSeen {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]watchSeen(nil), fc.watches...)
}

func (fc *controller) ackList() []ackSeen {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]ackSeen(nil), fc.acks...)
}

// nextStream returns the next watch answered 200.
func (fc *controller) nextStream(t *testing.T) *stream {
	t.Helper()
	select {
	case s := <-fc.streams:
		return s
	case <-time.After(wait.DefaultTimeout):
		t.Fatalf("timed out waiting for a watch stream; watches seen: %d", len(fc.watchList()))
		return nil
	}
}

// waitAck waits for a successful ack matching match and returns it.
func (fc *controller) waitAck(t *testing.T, what string, match func(ackSeen) bool) ackSeen {
	t.Helper()
	var found ackSeen
	wait.ForNil(t, 0, func() error {
		acks := fc.ackList()
		for _, a := range acks {
			if a.status == http.StatusNoContent && match(a) {
				found = a
				return nil
			}
		}
		return fmt.Errorf("acks seen: %+v", acks)
	}, "an ack %s", what)
	return found
}

// applier is a fake Applier: it reads the bundle's revision and applies it
// when it is higher; a bundle holding "invalid" is rejected.
type applier struct {
	mu       sync.Mutex
	enforced pushapi.Ack
	loaded   bool
	calls    int
	applied  []int64
	block    bool // Apply waits for its context to end
}

func (a *applier) Apply(ctx context.Context, data []byte) (push.Outcome, error) {
	a.mu.Lock()
	a.calls++
	block := a.block
	a.mu.Unlock()
	if block {
		<-ctx.Done()
		return push.Rejected, ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var head struct {
		Revision int64 `json:"revision"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return push.Rejected, err
	}
	hash := config.Hash(data)
	switch {
	case bytes.Contains(data, []byte("invalid")):
		return push.Rejected, errors.New("policy team-a/orders: rego_parse_error: unexpected eof")
	case a.loaded && hash == a.enforced.Hash:
		return push.Unchanged, nil
	case a.loaded && head.Revision <= a.enforced.Revision:
		return push.Stale, nil
	}
	a.set(head.Revision, hash)
	a.applied = append(a.applied, head.Revision)
	return push.Applied, nil
}

func (a *applier) setBlock() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.block = true
}

func (a *applier) Enforced() (pushapi.Ack, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.enforced, a.loaded
}

// loadFile is the file loader activating revision rev.
func (a *applier) loadFile(rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.set(rev, config.Hash(bundle(rev, "from the file")))
}

func (a *applier) set(rev int64, hash string) {
	a.enforced = pushapi.Ack{Revision: rev, Hash: hash, Policies: map[string]string{"team-a/orders": strconv.FormatInt(rev, 10)}}
	a.loaded = true
}

func (a *applier) state() (calls int, applied []int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, append([]int64(nil), a.applied...)
}

// bundle is a bundle's bytes; note makes two bundles of one revision differ.
func bundle(rev int64, note string) []byte {
	return fmt.Appendf(nil, "revision: %d\napiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\npolicies: []\n# %s\n", rev, note)
}

// update is the Update of bundle(rev, note), encoded as the server sends it.
func update(rev int64, note string) []byte {
	data := bundle(rev, note)
	return encode(pushapi.Update{Revision: rev, Hash: config.Hash(data), Data: data})
}

func encode(u pushapi.Update) []byte {
	b, err := json.Marshal(u)
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// setup changes a harness before it starts.
type setup struct {
	http1      bool
	wrongCA    bool
	minBackoff time.Duration
	maxBackoff time.Duration
	// pingTimeout is Options.PingTimeout.
	pingTimeout time.Duration
	// blackhole puts a relay between client and server that can stop
	// forwarding while keeping the connections open.
	blackhole bool
}

// harness is a client wired to a fake controller, with its logs, metrics
// and token file.
type harness struct {
	t         *testing.T
	fc        *controller
	app       *applier
	client    *push.Client
	reg       *prometheus.Registry
	logs      *logbuf.Buffer
	caFile    string
	tokenFile string
	tokens    []string // every token written, none of which may be logged
	hole      *blackhole
	cancel    context.CancelFunc
	done      chan struct{}
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	if s.minBackoff == 0 {
		s.minBackoff = time.Millisecond
	}
	if s.maxBackoff == 0 {
		s.maxBackoff = 20 * time.Millisecond
	}
	dir := t.TempDir()
	h := &harness{
		t: t, fc: newController(t, s.http1), app: &applier{}, reg: prometheus.NewRegistry(), logs: &logbuf.Buffer{},
		caFile: filepath.Join(dir, "ca.crt"), tokenFile: filepath.Join(dir, "token"), done: make(chan struct{}),
	}
	ca := h.fc.caPEM()
	if s.wrongCA {
		ca = []byte(testca.New(t).PEM)
	}
	writeFile(t, h.caFile, ca)
	h.rotateToken()
	serverURL := h.fc.srv.URL
	if s.blackhole {
		h.hole = newBlackhole(t, h.fc.srv.Listener.Addr().String())
		serverURL = "https://" + h.hole.ln.Addr().String()
	}
	c, err := push.New(push.Options{
		URL: serverURL, PingTimeout: s.pingTimeout, CAFile: h.caFile, TokenFile: h.tokenFile, Applier: h.app,
		Metrics:    push.NewMetrics(h.reg),
		Logger:     slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: s.minBackoff, MaxBackoff: s.maxBackoff,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.client = c
	return h
}

// run starts Client.Run; the test's end stops it and checks that no token
// was logged.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		h.client.Run(ctx)
	}()
	h.t.Cleanup(func() {
		h.stop()
		h.assertNoTokenLogged()
		if h.t.Failed() || os.Getenv("PUSH_TEST_LOGS") != "" {
			h.t.Logf("client logs:\n%s", h.logs.String())
		}
	})
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(wait.DefaultTimeout):
		h.t.Fatalf("Run did not return %s after its context was cancelled", wait.DefaultTimeout)
	}
}

func (h *harness) assertNoTokenLogged() {
	h.t.Helper()
	logs := h.logs.String()
	for _, tok := range h.tokens {
		if strings.Contains(logs, tok) {
			h.t.Errorf("the token %q appears in the logs:\n%s", tok, logs)
		}
	}
}

// rotateToken writes a new token into the token file, as the kubelet
// does (a new file renamed over the old), and returns it.
func (h *harness) rotateToken() string {
	h.t.Helper()
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := "sa-token-" + hex.EncodeToString(b)
	h.tokens = append(h.tokens, tok)
	writeFile(h.t, h.tokenFile, []byte(tok+"\n"))
	return tok
}

func (h *harness) metric(name string, labels ...string) float64 {
	h.t.Helper()
	return metrictest.Sum(h.t, h.reg, name, labels...)
}

// waitMetric waits for the metric to reach at least want.
func (h *harness) waitMetric(want float64, name string, labels ...string) {
	h.t.Helper()
	wait.ForNil(h.t, 0, func() error {
		if got := h.metric(name, labels...); got < want {
			return fmt.Errorf("got %v", got)
		}
		return nil
	}, "%s%v >= %v", name, labels, want)
}

// logRecords are the JSON log records.
func (h *harness) logRecords() []map[string]any {
	h.t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(h.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			h.t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// waitLog waits for a log record at level whose text holds every part.
func (h *harness) waitLog(level string, parts ...string) {
	h.t.Helper()
	wait.For(h.t, 0, func() bool {
		for _, rec := range h.logRecords() {
			if rec["level"] != level {
				continue
			}
			b, _ := json.Marshal(rec)
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(string(b), p)
			}
			if ok {
				return true
			}
		}
		return false
	}, "a %s log holding %q", level, parts)
}

// blackhole relays TCP connections to a target until it is told to drop
// everything on the connections open then, which it keeps open: a dead
// peer as a partition or a frozen node makes it.
type blackhole struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []*holeConn
}

type holeConn struct {
	frozen atomic.Bool
	a, b   net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bh := &blackhole{ln: ln, target: target}
	go bh.serve()
	t.Cleanup(bh.close)
	return bh
}

func (bh *blackhole) serve() {
	for {
		a, err := bh.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", bh.target)
		if err != nil {
			a.Close()
			continue
		}
		hc := &holeConn{a: a, b: b}
		bh.mu.Lock()
		bh.conns = append(bh.conns, hc)
		bh.mu.Unlock()
		go hc.pipe(a, b)
		go hc.pipe(b, a)
	}
}

// pipe copies src to dst, dropping what it reads once frozen.
func (hc *holeConn) pipe(dst, src net.Conn) {
	defer hc.a.Close()
	defer hc.b.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if hc.frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// freeze black-holes every connection open now; new ones relay.
func (bh *blackhole) freeze() {
	bh.mu.Lock()
	defer bh.mu.Unlock()
	for _, hc := range bh.conns {
		hc.frozen.Store(true)
	}
}

func (bh *blackhole) close() {
	bh.ln.Close()
	bh.mu.Lock()
	defer bh.mu.Unlock()
	for _, hc := range bh.conns {
		hc.a.Close()
		hc.b.Close()
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
