package push_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/wait"
)

const (
	connects = "authgate_proxy_push_connects_total"
	updates  = "authgate_proxy_push_updates_total"
	acks     = "authgate_proxy_push_acks_total"
)

func TestTokenIsReadAtEachConnectAndAck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.app.loadFile(1)
	first := h.tokens[0]
	h.run()

	s := h.fc.nextStream(t)
	if got := h.fc.watchList()[0].auth; got != "Bearer "+first {
		t.Fatalf("first watch: got Authorization %q, want the token of the file", got)
	}
	h.fc.waitAck(t, "with the first token", func(a ackSeen) bool { return a.auth == "Bearer "+first })

	second := h.rotateToken()
	close(s.end)
	h.fc.nextStream(t)
	if got := h.fc.watchList()[1].auth; got != "Bearer "+second {
		t.Fatalf("watch after rotation: got Authorization %q, want the rotated token", got)
	}
	h.fc.waitAck(t, "with the rotated token", func(a ackSeen) bool { return a.auth == "Bearer "+second })
}

func TestUpdatesAreAppliedInOrderAndAckedWithTheirSource(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.app.loadFile(1)
	fileHash := config.Hash(bundle(1, "from the file"))
	h.run()

	s := h.fc.nextStream(t)
	q := h.fc.watchList()[0].query
	if q.Get(pushapi.QueryRevision) != "1" || q.Get(pushapi.QueryHash) != fileHash {
		t.Fatalf("watch query: got %v, want revision 1 and the file's hash", q)
	}
	first := h.fc.waitAck(t, "once connected", func(ackSeen) bool { return true })
	if first.ack.Revision != 1 || first.ack.Hash != fileHash || first.ack.Source != pushapi.SourceFile {
		t.Fatalf("first ack: got %+v, want revision 1 from the file", first.ack)
	}
	if !h.client.Connected() || h.metric("authgate_proxy_push_connected") != 1 {
		t.Fatalf("got Connected()=%v, gauge %v; want connected", h.client.Connected(), h.metric("authgate_proxy_push_connected"))
	}

	// Two updates in one write: the decoder reads one after the other.
	s.send <- append(update(2, "push"), update(3, "push")...)
	got := h.fc.waitAck(t, "of revision 3 from push", func(a ackSeen) bool {
		return a.ack.Revision == 3 && a.ack.Source == pushapi.SourcePush
	})
	if want := config.Hash(bundle(3, "push")); got.ack.Hash != want || got.ack.Policies["team-a/orders"] != "3" {
		t.Fatalf("ack: got %+v, want hash %s and the policies of revision 3", got.ack, want)
	}
	if _, applied := h.app.state(); !slices.Equal(applied, []int64{2, 3}) {
		t.Fatalf("applied revisions: got %v, want [2 3]", applied)
	}

	s.send <- append(update(3, "push"), update(2, "push")...)
	h.waitMetric(1, updates, "outcome", "unchanged")
	h.waitMetric(1, updates, "outcome", "stale")

	h.app.loadFile(4)
	h.client.Notify()
	h.fc.waitAck(t, "of revision 4 from the file", func(a ackSeen) bool {
		return a.ack.Revision == 4 && a.ack.Source == pushapi.SourceFile
	})
	if got := h.metric(updates, "outcome", "applied"); got != 2 {
		t.Fatalf("applied updates: got %v, want 2", got)
	}
	if h.metric("authgate_proxy_push_last_update_timestamp_seconds") <= 0 {
		t.Fatal("last update timestamp not set")
	}
}

func TestCorruptUpdateIsNotAppliedAndTheStreamIsReestablished(t *testing.T) {
	t.Parallel()
	good := bundle(2, "push")
	tests := []struct {
		name string
		u    pushapi.Update
	}{
		{"hash of other data", pushapi.Update{Revision: 2, Hash: config.Hash(bundle(2, "other")), Data: good}},
		{"data altered", pushapi.Update{Revision: 2, Hash: config.Hash(good), Data: append([]byte("#\n"), good...)}},
		{"no hash", pushapi.Update{Revision: 2, Data: good}},
		{"revision not the data's", pushapi.Update{Revision: 7, Hash: config.Hash(good), Data: good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{})
			h.app.loadFile(1)
			h.run()
			s := h.fc.nextStream(t)
			s.send <- encode(tt.u)
			select {
			case <-s.gone:
			case <-time.After(wait.DefaultTimeout):
				t.Fatal("the client kept the stream after a corrupt update")
			}
			again := h.fc.nextStream(t)
			if calls, _ := h.app.state(); calls != 0 {
				t.Fatalf("Apply called %d times for a corrupt update, want 0", calls)
			}
			if got := h.metric(updates, "outcome", "corrupt"); got != 1 {
				t.Fatalf("corrupt updates: got %v, want 1", got)
			}
			h.waitLog("ERROR", "corrupt update")

			again.send <- update(2, "push")
			h.fc.waitAck(t, "of revision 2 after reconnecting", func(a ackSeen) bool {
				return a.ack.Revision == 2 && a.ack.Source == pushapi.SourcePush
			})
		})
	}
}

func TestRejectedUpdateIsNotAckedAsEnforced(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.app.loadFile(1)
	h.run()
	s := h.fc.nextStream(t)
	h.fc.waitAck(t, "once connected", func(ackSeen) bool { return true })

	bad := []byte("revision: 2\npolicies: invalid # bundle-bytes-marker\n")
	s.send <- encode(pushapi.Update{Revision: 2, Hash: config.Hash(bad), Data: bad})
	h.waitMetric(1, updates, "outcome", "rejected")
	h.waitLog("ERROR", "rejected", "rego_parse_error")
	if strings.Contains(h.logs.String(), "bundle-bytes-marker") {
		t.Fatalf("the rejected bundle's data was logged:\n%s", h.logs.String())
	}

	// An ack requested now reports what is enforced: revision 1.
	n := len(h.fc.ackList())
	h.client.Notify()
	wait.For(t, 0, func() bool { return len(h.fc.ackList()) > n }, "an ack after Notify")
	if got := h.fc.ackList()[n].ack; got.Revision != 1 || got.Source != pushapi.SourceFile {
		t.Fatalf("ack after the rejection: got %+v, want revision 1 from the file", got)
	}

	s.send <- update(3, "push")
	h.fc.waitAck(t, "of revision 3", func(a ackSeen) bool { return a.ack.Revision == 3 })
	for _, a := range h.fc.ackList() {
		if a.ack.Revision == 2 {
			t.Fatalf("revision 2 was rejected but acked: %+v", a.ack)
		}
	}
}

func TestReconnectsAfterTheServerClosesTheStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.fc.configure(func(fc *controller) { fc.closeAtOnce = true })
	h.run()
	h.waitMetric(5, connects, "result", "ok")
	if got := len(h.fc.watchList()); got < 5 {
		t.Fatalf("watches: got %d, want at least 5", got)
	}
	h.waitLog("INFO", "push stream ended", "server closed the stream")
}

func TestDeadConnectionIsFoundByPing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{blackhole: true, pingTimeout: 100 * time.Millisecond})
	h.app.loadFile(1)
	h.run()
	h.fc.nextStream(t)
	wait.For(t, 0, h.client.Connected, "connected")
	// The connection stays open but nothing crosses it any more: only a
	// PING unanswered tells the client it is dead.
	h.hole.freeze()
	h.fc.nextStream(t)
	h.waitLog("WARN", "push stream ended", `"was_connected":true`)
	wait.For(t, 0, h.client.Connected, "connected again")
}

func TestRefusalsDoNotHammer(t *testing.T) {
	t.Parallel()
	const maxBackoff = 200 * time.Millisecond
	tests := []struct {
		status     int
		retryAfter string
		result     string
		level      string
		minGap     time.Duration
	}{
		// 401/403: at least maxBackoff/2 between attempts, although
		// MinBackoff is 1ms.
		{http.StatusUnauthorized, "", "unauthorized", "ERROR", maxBackoff / 2},
		{http.StatusForbidden, "", "unauthorized", "ERROR", maxBackoff / 2},
		// Retry-After (what the push server sends when not ready or
		// with too many streams) is honoured up to MaxBackoff.
		{http.StatusServiceUnavailable, "5", "error", "WARN", maxBackoff},
		{http.StatusTooManyRequests, "30", "error", "WARN", maxBackoff},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{maxBackoff: maxBackoff})
			h.fc.configure(func(fc *controller) {
				fc.status, fc.retryAfter = tt.status, tt.retryAfter
				// A server echoing the credential must not get it into the logs.
				fc.body = "token " + h.tokens[0] + " refused: " + strings.Repeat("x", 2000)
			})
			h.run()
			h.waitMetric(3, connects, "result", tt.result)
			h.stop()
			w := h.fc.watchList()
			for i := 1; i < len(w); i++ {
				// The client's wait is a lower bound of the gap the server
				// sees; a slow machine only widens it.
				if gap := w[i].at.Sub(w[i-1].at); gap < tt.minGap {
					t.Fatalf("watch %d came %v after the previous one, want at least %v", i, gap, tt.minGap)
				}
			}
			// The last watch may have been cut short by the stop.
			if got := h.metric(connects, "result", tt.result); got < float64(len(w)-1) {
				t.Fatalf("%s connects: got %v, want at least %d", tt.result, got, len(w)-1)
			}
			h.waitLog(tt.level, fmt.Sprintf(`"status":%d`, tt.status), "[redacted]")
			for _, rec := range h.logRecords() {
				if body, ok := rec["body"].(string); ok && len(body) > 512 {
					t.Fatalf("logged body is %d bytes, want at most 512", len(body))
				}
			}
			if h.client.Connected() {
				t.Fatal("connected after a refusal")
			}
		})
	}
}

func TestWrongCAConnectsNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{wrongCA: true})
	h.run()
	h.waitMetric(2, connects, "result", "error")
	if n := len(h.fc.watchList()); n != 0 {
		t.Fatalf("the server saw %d watch requests through an unverified connection, want 0", n)
	}
	if calls, _ := h.app.state(); calls != 0 || h.client.Connected() {
		t.Fatalf("got %d Apply calls, Connected()=%v; want nothing", calls, h.client.Connected())
	}
	h.waitLog("ERROR", "certificate signed by unknown authority")
}

func TestRotatedCAFileIsPickedUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{wrongCA: true})
	h.run()
	h.waitMetric(1, connects, "result", "error")
	writeFile(t, h.caFile, h.fc.caPEM())
	h.fc.nextStream(t)
	wait.For(t, 0, h.client.Connected, "connected with the rotated CA")
}

func TestHTTP1IsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{http1: true})
	h.fc.configure(func(fc *controller) { fc.greeting = update(2, "push") })
	h.run()
	h.waitMetric(2, connects, "result", "error")
	if w := h.fc.watchList(); w[0].proto != "HTTP/1.1" {
		t.Fatalf("got %s, want the server to speak HTTP/1.1", w[0].proto)
	}
	if calls, _ := h.app.state(); calls != 0 || h.client.Connected() {
		t.Fatalf("got %d Apply calls, Connected()=%v; want nothing over HTTP/1", calls, h.client.Connected())
	}
	h.waitLog("ERROR", "HTTP/1.1", "requires HTTP/2")
}

func TestFailedAckIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.app.loadFile(1)
	h.fc.configure(func(fc *controller) { fc.ackFailures = 2 })
	h.run()
	h.fc.waitAck(t, "after two failures", func(a ackSeen) bool { return a.ack.Revision == 1 })
	if got := h.metric(acks, "result", "error"); got != 2 {
		t.Fatalf("failed acks: got %v, want 2", got)
	}
	h.waitMetric(1, acks, "result", "ok")
}

func TestMalformedAckIsNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.app.loadFile(1)
	h.fc.configure(func(fc *controller) { fc.ackFailures, fc.ackStatus = 1, http.StatusBadRequest })
	h.run()
	h.waitMetric(1, acks, "result", "error")
	h.waitLog("ERROR", "push acknowledgement not sent", "400")
	h.app.loadFile(2)
	h.client.Notify()
	h.fc.waitAck(t, "of revision 2", func(a ackSeen) bool { return a.ack.Revision == 2 })
	if got := h.fc.ackList(); len(got) != 2 || got[0].ack.Revision != 1 {
		t.Fatalf("acks: got %+v, want the refused one of revision 1 and then revision 2, no retry", got)
	}
}

func TestNothingEnforcedSendsNoQueryAndNoAck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.run()
	s := h.fc.nextStream(t)
	if q := h.fc.watchList()[0].query; len(q) != 0 {
		t.Fatalf("watch query with nothing loaded: got %v, want none", q)
	}
	s.send <- update(1, "push")
	got := h.fc.waitAck(t, "of the first bundle", func(ackSeen) bool { return true })
	if got.ack.Revision != 1 || got.ack.Source != pushapi.SourcePush {
		t.Fatalf("first ack: got %+v, want revision 1 from push (nothing was acked before it)", got.ack)
	}
}

func TestMissingFilesAreFailedConnectsNotAFailedStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	writeFile(t, h.tokenFile, []byte("  \n"))
	h.run()
	h.waitMetric(2, connects, "result", "error")
	h.waitLog("ERROR", "token file", "is empty")
	if n := len(h.fc.watchList()); n != 0 {
		t.Fatalf("got %d watches without a token, want 0", n)
	}
}

func TestRunReturnsWhenCancelled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   setup
		prepare func(h *harness)
		until   func(t *testing.T, h *harness)
	}{
		{"mid-stream", setup{}, func(*harness) {}, func(t *testing.T, h *harness) {
			h.fc.nextStream(t)
			wait.For(t, 0, h.client.Connected, "connected")
		}},
		{"mid-backoff", setup{minBackoff: time.Hour, maxBackoff: time.Hour}, func(h *harness) {
			h.fc.configure(func(fc *controller) { fc.status = http.StatusServiceUnavailable })
		}, func(t *testing.T, h *harness) {
			h.waitMetric(1, connects, "result", "error")
		}},
		{"mid-apply", setup{}, func(h *harness) { h.app.setBlock() }, func(t *testing.T, h *harness) {
			h.fc.nextStream(t).send <- update(1, "push")
			wait.For(t, 0, func() bool { calls, _ := h.app.state(); return calls == 1 }, "Apply called")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.setup)
			tt.prepare(h)
			h.run()
			tt.until(t, h)
			h.stop() // fails the test unless Run returns
			if h.client.Connected() || h.metric("authgate_proxy_push_connected") != 0 {
				t.Fatal("still connected after Run returned")
			}
		})
	}
}
