package push_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/controllers/push"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/metrictest"
	"github.com/authgate/authgate/test/wait"
)

// TestNamespaceIsolation: a Publish reaches its namespace's streams only,
// and a stream is given its own namespace's bundle at once.
func TestNamespaceIsolation(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{Read: newBundles(map[string][]byte{"a": bundle("a", 1), "b": bundle("b", 1)}).read})
	a1 := h.watch(t, h.client(t), "token-a1")
	a2 := h.watch(t, h.client(t), "token-a2")
	b1 := h.watch(t, h.client(t), "token-b1")
	a1.expect(t, bundle("a", 1), 1)
	a2.expect(t, bundle("a", 1), 1)
	b1.expect(t, bundle("b", 1), 1)

	// A's bundle at a revision far above b's: had it reached b's stream,
	// b's own (lower) update after it would be dropped or come second.
	h.srv.Publish("a", bundle("a", 100))
	h.srv.Publish("b", bundle("b", 2))
	a1.expect(t, bundle("a", 100), 100)
	a2.expect(t, bundle("a", 100), 100)
	b1.expect(t, bundle("b", 2), 2)

	// A namespace without streams: nothing to do, nothing panics.
	h.srv.Publish("c", bundle("c", 1))
	if n := h.srv.Streams("a"); n != 2 {
		t.Errorf("Streams(a) = %d, want 2", n)
	}
}

// TestOrdering: a stream is sent only revisions above what it was given.
func TestOrdering(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{})
	w := h.watch(t, h.client(t), "token-a1") // no bundle yet: nothing sent
	h.srv.Publish("a", bundle("a", 5))
	h.srv.Publish("a", bundle("a", 4))
	h.srv.Publish("a", bundle("a", 5))
	h.srv.Publish("a", bundle("a", 6))
	// 5 may have been superseded by 6 before it was written; 4 and the
	// repeated 5 never come.
	u := w.next(t)
	if u.Revision == 5 {
		u = w.next(t)
	}
	if u.Revision != 6 || string(u.Data) != string(bundle("a", 6)) {
		t.Fatalf("got revision %d, want 6 (after 5 at most)", u.Revision)
	}
	h.srv.Publish("a", bundle("a", 3))
	h.srv.Publish("a", bundle("a", 7))
	w.expect(t, bundle("a", 7), 7)
}

// TestInitialSend: the current bundle is sent at once unless the query
// says the client holds exactly it (prime_internal_test.go shows that
// nothing is pending then; here, end to end, nothing comes before the
// next Publish).
func TestInitialSend(t *testing.T) {
	t.Parallel()
	cur := bundle("a", 3)
	for _, tc := range []struct {
		name    string
		have    []string
		initial bool
	}{
		{"no query", nil, true},
		{"holds it", []string{"3", config.Hash(cur)}, false},
		{"older revision", []string{"2", config.Hash(bundle("a", 2))}, true},
		{"same revision, other bytes", []string{"3", config.Hash([]byte("other"))}, true},
		{"right hash, other revision", []string{"2", config.Hash(cur)}, true},
		{"newer revision", []string{"4", config.Hash(bundle("a", 4))}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, push.Options{Read: newBundles(map[string][]byte{"a": cur}).read})
			w := h.watch(t, h.client(t), "token-a1", tc.have...)
			if tc.initial {
				w.expect(t, cur, 3)
			}
			h.srv.Publish("a", bundle("a", 3)) // never sent (again)
			h.srv.Publish("a", bundle("a", 5))
			w.expect(t, bundle("a", 5), 5)
		})
	}
}

// TestPublishDuringRead: the stream is registered before the bundle is
// read, so a Publish racing with the read is not lost, and the stale read
// does not send the client backwards.
func TestPublishDuringRead(t *testing.T) {
	t.Parallel()
	reading, release := make(chan struct{}), make(chan struct{})
	read := func(ctx context.Context, ns string) ([]byte, error) {
		close(reading)
		<-release
		return bundle(ns, 6), nil // read before the write of 7
	}
	h := start(t, push.Options{Read: read})
	opened := make(chan *watcher, 1)
	go func() {
		resp, err := h.client(t).Do(mustRequest(t, h.ts.URL+pushapi.WatchPath, "Bearer token-a1"))
		if err != nil {
			t.Error(err)
			close(opened)
			return
		}
		opened <- newWatcher(t, resp)
	}()
	<-reading
	h.srv.Publish("a", bundle("a", 7))
	close(release)
	w := <-opened
	if w == nil {
		t.FailNow()
	}
	w.expect(t, bundle("a", 7), 7)
	h.srv.Publish("a", bundle("a", 8))
	w.expect(t, bundle("a", 8), 8)
}

func mustRequest(t *testing.T, url, auth string) *http.Request {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	return req
}

// TestSlowConsumer: a stream whose client never reads blocks neither
// Publish nor the other streams.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{WriteTimeout: time.Hour})
	slow := h.request(t, h.slowClient(t), http.MethodGet, pushapi.WatchPath, "Bearer token-a1", nil)
	defer slow.Body.Close() // not read until the end
	fast := h.watch(t, h.client(t), "token-a2")
	wait.For(t, 0, func() bool { return h.srv.Streams("a") == 2 }, "two streams")

	publish := func(data []byte) {
		done := make(chan struct{})
		go func() { h.srv.Publish("a", data); close(done) }()
		select {
		case <-done:
		case <-time.After(wait.DefaultTimeout):
			t.Fatal("Publish blocked")
		}
	}
	big := bigBundle("a", 1)
	publish(big)
	fast.expect(t, big, 1) // the slow stream's write of it is stuck now
	for rev := int64(2); rev <= 20; rev++ {
		publish(bundle("a", rev))
	}
	for u := fast.next(t); u.Revision != 20; u = fast.next(t) {
		if u.Revision < 2 {
			t.Fatalf("got revision %d after 1", u.Revision)
		}
	}
	// The slow stream, read at last, holds only the newest update after
	// the one it was stuck in: 2 to 19 were superseded unwritten.
	sw := newWatcher(t, slow)
	for u := sw.next(t); u.Revision != 20; u = sw.next(t) {
		if u.Revision != 1 {
			t.Fatalf("slow stream: got revision %d, want 1 or 20", u.Revision)
		}
	}
}

// TestStuckStreamClosed: a client that reads nothing for WriteTimeout has
// its stream closed.
func TestStuckStreamClosed(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{WriteTimeout: 200 * time.Millisecond})
	slow := h.request(t, h.slowClient(t), http.MethodGet, pushapi.WatchPath, "Bearer token-a1", nil)
	defer slow.Body.Close()
	wait.For(t, 0, func() bool { return h.srv.Streams("a") == 1 }, "the stream")
	h.srv.Publish("a", bigBundle("a", 1))
	wait.For(t, 0, func() bool { return h.srv.Streams("a") == 0 }, "the stuck stream to be closed")
}

// TestUnauthorized: every way of not presenting a valid token is 401 with
// a Bearer challenge, and nothing of the token comes back.
func TestUnauthorized(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := start(t, push.Options{Metrics: push.NewMetrics(reg)})
	c := h.client(t)
	const secret = "s3cr3t-t0ken-value"
	for _, tc := range []struct{ name, auth string }{
		{"no header", ""},
		{"basic", "Basic " + secret},
		{"no scheme", secret},
		{"empty bearer", "Bearer "},
		{"two spaces", "Bearer  " + secret},
		{"trailing text", "Bearer " + secret + " more"},
		{"invalid token", "Bearer " + secret},
		{"valid token with another scheme", "Token token-a1"},
	} {
		for _, path := range []struct{ method, path string }{
			{http.MethodGet, pushapi.WatchPath},
			{http.MethodPost, pushapi.AckPath},
		} {
			t.Run(tc.name+" "+path.path, func(t *testing.T) {
				code, hdr, body := h.status(t, c, path.method, path.path, tc.auth, ackJSON("a", 1, pushapi.SourcePush))
				if code != http.StatusUnauthorized {
					t.Fatalf("got %d %s, want 401", code, body)
				}
				if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", hdr.Get("WWW-Authenticate"))
				}
				if strings.Contains(body, secret) || strings.Contains(body, "token-a1") {
					t.Errorf("body %q echoes the token", body)
				}
			})
		}
	}
	t.Run("two headers", func(t *testing.T) {
		req := mustRequest(t, h.ts.URL+pushapi.WatchPath, "Bearer token-a1")
		req.Header.Add("Authorization", "Bearer token-a2")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", resp.StatusCode)
		}
	})
	if got := metrictest.Sum(t, reg, "authgate_controller_push_auth_failures_total", "reason", push.ReasonInvalid); got < 16 {
		t.Errorf("auth failures (invalid) = %v, want at least 16", got)
	}
	if h.acks.Snapshot("a")["a1"].Hash != "" {
		t.Error("an unauthenticated ack was recorded")
	}
}

// TestServerFaults: a review that could not be made and a server not
// ready are 503, never 401; a bundle read failure is 503.
func TestServerFaults(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var ready atomic.Bool
	h := start(t, push.Options{
		Metrics: push.NewMetrics(reg),
		Ready:   ready.Load,
		Read: func(_ context.Context, ns string) ([]byte, error) {
			if ns == "b" {
				return nil, errors.New("cache not synced")
			}
			return nil, nil
		},
	})
	c := h.client(t)
	if code, _, body := h.status(t, c, http.MethodGet, pushapi.WatchPath, "Bearer token-a1", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("not ready: got %d %s, want 503", code, body)
	}
	ready.Store(true)
	if code, hdr, body := h.status(t, c, http.MethodGet, pushapi.WatchPath, "Bearer "+tokenDown, ""); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("review down: got %d %s (Retry-After %q), want 503 with Retry-After", code, body, hdr.Get("Retry-After"))
	}
	if code, _, body := h.status(t, c, http.MethodPost, pushapi.AckPath, "Bearer "+tokenDown, ackJSON("a", 1, "push")); code != http.StatusServiceUnavailable {
		t.Fatalf("review down, ack: got %d %s, want 503", code, body)
	}
	if code, _, body := h.status(t, c, http.MethodGet, pushapi.WatchPath, "Bearer token-b1", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("read failure: got %d %s, want 503", code, body)
	}
	if got := metrictest.Sum(t, reg, "authgate_controller_push_auth_failures_total", "reason", push.ReasonUnavailable); got != 2 {
		t.Errorf("auth failures (unavailable) = %v, want 2", got)
	}
	if got := metrictest.Sum(t, reg, "authgate_controller_push_auth_failures_total", "reason", push.ReasonInvalid); got != 0 {
		t.Errorf("auth failures (invalid) = %v, want 0: a server fault is not the client's", got)
	}
	wait.For(t, 0, func() bool { return h.srv.Streams("b") == 0 }, "the stream of the failed read to be dropped")
}

// TestMethods: each path serves one method.
func TestMethods(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{})
	c := h.client(t)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, pushapi.WatchPath, http.MethodGet},
		{http.MethodPut, pushapi.WatchPath, http.MethodGet},
		{http.MethodGet, pushapi.AckPath, http.MethodPost},
		{http.MethodDelete, pushapi.AckPath, http.MethodPost},
	} {
		code, hdr, _ := h.status(t, c, tc.method, tc.path, "Bearer token-a1", "")
		if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != tc.allow {
			t.Errorf("%s %s: got %d (Allow %q), want 405 (Allow %s)", tc.method, tc.path, code, hdr.Get("Allow"), tc.allow)
		}
	}
	if code, _, _ := h.status(t, c, http.MethodGet, "/v1/bundle/other", "Bearer token-a1", ""); code != http.StatusNotFound {
		t.Errorf("unknown path: got %d, want 404", code)
	}
	if code, _, _ := h.status(t, c, http.MethodGet, pushapi.WatchPath+"?revision=x", "Bearer token-a1", ""); code != http.StatusBadRequest {
		t.Errorf("malformed revision: got %d, want 400", code)
	}
}

// TestStreamLimit: beyond MaxStreamsPerNamespace a watch is 429; other
// namespaces are not affected, and a closed stream frees its slot.
func TestStreamLimit(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{MaxStreamsPerNamespace: 2})
	first := h.watch(t, h.client(t), "token-a1")
	h.watch(t, h.client(t), "token-a2")
	code, hdr, body := h.status(t, h.client(t), http.MethodGet, pushapi.WatchPath, "Bearer token-a1", "")
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("third stream: got %d %s (Retry-After %q), want 429 with Retry-After", code, body, hdr.Get("Retry-After"))
	}
	h.watch(t, h.client(t), "token-b1")
	first.resp.Body.Close()
	wait.For(t, 0, func() bool { return h.srv.Streams("a") == 1 }, "the closed stream to be dropped")
	h.watch(t, h.client(t), "token-a1")
}

// TestClose: Close ends every stream at once and refuses new ones.
func TestClose(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{})
	a := h.watch(t, h.client(t), "token-a1")
	b := h.watch(t, h.client(t), "token-b1")
	h.srv.Close()
	for _, w := range []*watcher{a, b} {
		if err := w.ended(t); !errors.Is(err, io.EOF) {
			t.Errorf("stream ended with %v, want a clean end (EOF)", err)
		}
	}
	if n := h.srv.Streams("a") + h.srv.Streams("b"); n != 0 {
		t.Errorf("%d streams after Close, want 0", n)
	}
	if code, _, _ := h.status(t, h.client(t), http.MethodGet, pushapi.WatchPath, "Bearer token-a1", ""); code != http.StatusServiceUnavailable {
		t.Errorf("watch after Close: got %d, want 503", code)
	}
	h.srv.Close() // twice is fine
}

// TestMetrics: streams, updates sent and acks are counted by namespace.
func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := start(t, push.Options{Metrics: push.NewMetrics(reg), Read: newBundles(map[string][]byte{"a": bundle("a", 1)}).read})
	w := h.watch(t, h.client(t), "token-a1")
	w.expect(t, bundle("a", 1), 1)
	h.watch(t, h.client(t), "token-a2").expect(t, bundle("a", 1), 1)
	if got := metrictest.Sum(t, reg, "authgate_controller_push_streams", "namespace", "a"); got != 2 {
		t.Errorf("streams{a} = %v, want 2", got)
	}
	// Counted once the write returned, which may be after the client read it.
	wait.For(t, 0, func() bool {
		return metrictest.Sum(t, reg, "authgate_controller_push_updates_sent_total", "namespace", "a") == 2
	}, "updates sent{a} to be 2")
	if code, _, body := h.status(t, h.client(t), http.MethodPost, pushapi.AckPath, "Bearer token-a1", ackJSON("a", 1, pushapi.SourcePush)); code != http.StatusNoContent {
		t.Fatalf("ack: got %d %s, want 204", code, body)
	}
	if got := metrictest.Sum(t, reg, "authgate_controller_push_acks_total", "namespace", "a", "source", "push"); got != 1 {
		t.Errorf("acks{a,push} = %v, want 1", got)
	}
	h.srv.Close()
	wait.For(t, 0, func() bool {
		return metrictest.Sum(t, reg, "authgate_controller_push_streams", "namespace", "a") == 0
	}, "the streams gauge to drop to 0")
}

// TestMaxStreamAge: a stream ends cleanly at its age; the sidecar
// reconnects saying what it holds and is sent nothing again.
func TestMaxStreamAge(t *testing.T) {
	t.Parallel()
	cur := bundle("a", 2)
	h := start(t, push.Options{MaxStreamAge: 200 * time.Millisecond, Read: newBundles(map[string][]byte{"a": cur}).read})
	w := h.watch(t, h.client(t), "token-a1")
	w.expect(t, cur, 2)
	if err := w.ended(t); !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v, want a clean end (EOF)", err)
	}
	wait.For(t, 0, func() bool { return h.srv.Streams("a") == 0 }, "the stream to be dropped")
	again := h.watch(t, h.client(t), "token-a1", "2", config.Hash(cur))
	h.srv.Publish("a", bundle("a", 3))
	again.expect(t, bundle("a", 3), 3)
}
