package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/controllers/push"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/wait"
)

// fakeAuth is an Authenticator for the server's tests: a fixed table of
// tokens. Tokens it does not know are invalid; tokenDown is a review that
// could not be made.
type fakeAuth map[string]push.Identity

const tokenDown = "token-review-down"

func (f fakeAuth) Authenticate(_ context.Context, token string) (push.Identity, error) {
	if token == tokenDown {
		return push.Identity{}, fmt.Errorf("%w: api server down", push.ErrReviewFailed)
	}
	id, ok := f[token]
	if !ok {
		return push.Identity{}, fmt.Errorf("%w: unknown token", push.ErrInvalidCredential)
	}
	return id, nil
}

// The sidecars of the server tests: two pods in namespace a, one in b.
var sidecars = fakeAuth{
	"token-a1": {Namespace: "a", ServiceAccount: "fn", Pod: "a1", PodUID: "uid-a1"},
	"token-a2": {Namespace: "a", ServiceAccount: "fn", Pod: "a2", PodUID: "uid-a2"},
	"token-b1": {Namespace: "b", ServiceAccount: "fn", Pod: "b1", PodUID: "uid-b1"},
}

// bundle is a namespace's bundle at a revision; only the revision field
// matters to the server.
func bundle(ns string, rev int64) []byte {
	return fmt.Appendf(nil, "revision: %d\napiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\n# namespace %s\n", rev, ns)
}

// bundles is a BundleReader over a map the test changes.
type bundles struct {
	mu   sync.Mutex
	data map[string][]byte
}

func newBundles(initial map[string][]byte) *bundles {
	return &bundles{data: initial}
}

func (b *bundles) read(_ context.Context, ns string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.data[ns], nil
}

// harness is a Server behind an httptest server speaking HTTP/2 over TLS.
type harness struct {
	srv  *push.Server
	ts   *httptest.Server
	acks *push.Acks
}

// start runs a Server with o (Auth, Read and Acks filled in when unset).
func start(t *testing.T, o push.Options) *harness {
	t.Helper()
	if o.Auth == nil {
		o.Auth = sidecars
	}
	if o.Read == nil {
		o.Read = newBundles(nil).read
	}
	if o.Acks == nil {
		o.Acks = push.NewAcks()
	}
	srv := push.NewServer(o)
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close) // first: ends the streams so ts.Close returns
	t.Cleanup(o.Acks.Close)
	return &harness{srv: srv, ts: ts, acks: o.Acks}
}

// client is a sidecar's own HTTP/2 client: its own connection, as in a
// cluster.
func (h *harness) client(t *testing.T) *http.Client {
	t.Helper()
	tr := h.ts.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// slowClient is a sidecar's client with a small HTTP/2 receive window
// (64 KiB): one that does not read blocks the server's write of an
// update bigger than that (bigBundle).
func (h *harness) slowClient(t *testing.T) *http.Client {
	t.Helper()
	c := h.client(t)
	c.Transport.(*http.Transport).HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10}
	return c
}

// bigBundle is much bigger than slowClient's receive window.
func bigBundle(ns string, rev int64) []byte {
	return fmt.Appendf(bundle(ns, rev), "# %s\n", strings.Repeat("x", 512<<10))
}

// watcher is an open watch stream read by a json.Decoder in a goroutine.
type watcher struct {
	resp    *http.Response
	updates chan pushapi.Update
	err     chan error // the decoder's last error, once the stream ends
}

// request sends method on path with an Authorization header (none when
// auth is empty).
func (h *harness) request(t *testing.T, c *http.Client, method, path, auth string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("%s %s: got %s, want HTTP/2", method, path, resp.Proto)
	}
	return resp
}

// watch opens a stream with token, saying the client holds have
// (revision, hash; "" for none), and fails unless it is answered 200.
func (h *harness) watch(t *testing.T, c *http.Client, token string, have ...string) *watcher {
	t.Helper()
	path := pushapi.WatchPath
	if len(have) == 2 {
		path += "?" + url.Values{pushapi.QueryRevision: {have[0]}, pushapi.QueryHash: {have[1]}}.Encode()
	}
	resp := h.request(t, c, http.MethodGet, path, "Bearer "+token, nil)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("watch: got %s %s, want 200", resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("watch: Content-Type %q, want application/json", ct)
	}
	return newWatcher(t, resp)
}

func newWatcher(t *testing.T, resp *http.Response) *watcher {
	w := &watcher{resp: resp, updates: make(chan pushapi.Update, 16), err: make(chan error, 1)}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		dec := json.NewDecoder(resp.Body)
		for {
			var u pushapi.Update
			if err := dec.Decode(&u); err != nil {
				w.err <- err
				close(w.updates)
				return
			}
			w.updates <- u
		}
	}()
	return w
}

// next is the stream's next Update.
func (w *watcher) next(t *testing.T) pushapi.Update {
	t.Helper()
	select {
	case u, ok := <-w.updates:
		if !ok {
			t.Fatalf("stream ended: %v", <-w.err)
		}
		return u
	case <-time.After(wait.DefaultTimeout):
		t.Fatalf("no update within %s", wait.DefaultTimeout)
	}
	return pushapi.Update{}
}

// expect checks that the stream's next Update is exactly data at rev.
func (w *watcher) expect(t *testing.T, data []byte, rev int64) {
	t.Helper()
	u := w.next(t)
	if u.Revision != rev || string(u.Data) != string(data) || u.Hash != config.Hash(data) {
		t.Fatalf("got update revision %d %q (hash %s), want revision %d %q", u.Revision, u.Data, u.Hash, rev, data)
	}
}

// ended waits for the stream to end and returns the decoder's error.
func (w *watcher) ended(t *testing.T) error {
	t.Helper()
	for {
		select {
		case _, ok := <-w.updates:
			if !ok {
				return <-w.err
			}
		case <-time.After(wait.DefaultTimeout):
			t.Fatalf("stream still open after %s", wait.DefaultTimeout)
		}
	}
}

// status sends a request and returns its status and body.
func (h *harness) status(t *testing.T, c *http.Client, method, path, auth string, body string) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	resp := h.request(t, c, method, path, auth, r)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// ackJSON is a valid Ack body of namespace ns at rev.
func ackJSON(ns string, rev int64, source string) string {
	a := pushapi.Ack{Revision: rev, Hash: config.Hash(bundle(ns, rev)), Source: source,
		Policies: map[string]string{ns + "/fn": strconv.FormatInt(rev, 10)}}
	b, _ := json.Marshal(a)
	return string(b)
}
