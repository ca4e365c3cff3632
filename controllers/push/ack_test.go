package push_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/controllers/push"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/wait"
)

// TestAck: a valid Ack is recorded under the verified namespace and pod;
// opening a stream records nothing.
func TestAck(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{Read: newBundles(map[string][]byte{"a": bundle("a", 1)}).read})
	c := h.client(t)
	h.watch(t, c, "token-a1").expect(t, bundle("a", 1), 1)
	if got := h.acks.Snapshot("a"); len(got) != 0 {
		t.Fatalf("acks after the stream opened: %v, want none", got)
	}
	if code, _, body := h.status(t, c, http.MethodPost, pushapi.AckPath, "Bearer token-a1", ackJSON("a", 1, pushapi.SourceFile)); code != http.StatusNoContent || body != "" {
		t.Fatalf("got %d %q, want 204 and no body", code, body)
	}
	got := h.acks.Snapshot("a")["a1"]
	if got.Revision != 1 || got.Hash != config.Hash(bundle("a", 1)) || got.Source != pushapi.SourceFile || got.Policies["a/fn"] != "1" {
		t.Errorf("recorded %+v, want revision 1 from file", got)
	}
	if others := h.acks.Snapshot("b"); len(others) != 0 {
		t.Errorf("acks of b: %v, want none", others)
	}
}

// TestAckValidation: malformed, unknown, oversized or out-of-bounds Acks
// are refused and nothing is recorded.
func TestAckValidation(t *testing.T) {
	t.Parallel()
	h := start(t, push.Options{})
	c := h.client(t)
	hash := config.Hash([]byte("x"))
	manyPolicies := make([]string, push.MaxAckPolicies+1)
	for i := range manyPolicies {
		manyPolicies[i] = fmt.Sprintf(`"a/p%d":"1"`, i)
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"empty", "", http.StatusBadRequest},
		{"not JSON", "revision=1", http.StatusBadRequest},
		{"array", "[]", http.StatusBadRequest},
		{"unknown field", `{"revision":1,"hash":"` + hash + `","source":"push","namespace":"b"}`, http.StatusBadRequest},
		{"two acks", ackJSON("a", 1, "push") + ackJSON("a", 2, "push"), http.StatusBadRequest},
		{"trailing garbage", ackJSON("a", 1, "push") + "x", http.StatusBadRequest},
		{"no hash", `{"revision":1,"source":"push"}`, http.StatusBadRequest},
		{"short hash", `{"revision":1,"hash":"abc","source":"push"}`, http.StatusBadRequest},
		{"upper-case hash", `{"revision":1,"hash":"` + strings.ToUpper(hash) + `","source":"push"}`, http.StatusBadRequest},
		{"non-hex hash", `{"revision":1,"hash":"` + strings.Repeat("g", 64) + `","source":"push"}`, http.StatusBadRequest},
		{"negative revision", `{"revision":-1,"hash":"` + hash + `","source":"push"}`, http.StatusBadRequest},
		{"revision as string", `{"revision":"1","hash":"` + hash + `","source":"push"}`, http.StatusBadRequest},
		{"unknown source", `{"revision":1,"hash":"` + hash + `","source":"mail"}`, http.StatusBadRequest},
		{"no source", `{"revision":1,"hash":"` + hash + `"}`, http.StatusBadRequest},
		{"too many policies", `{"revision":1,"hash":"` + hash + `","source":"push","policies":{` + strings.Join(manyPolicies, ",") + `}}`, http.StatusBadRequest},
		{"another namespace's policy", `{"revision":1,"hash":"` + hash + `","source":"push","policies":{"b/fn":"1"}}`, http.StatusBadRequest},
		{"policy without namespace", `{"revision":1,"hash":"` + hash + `","source":"push","policies":{"fn":"1"}}`, http.StatusBadRequest},
		{"long policy name", `{"revision":1,"hash":"` + hash + `","source":"push","policies":{"a/` + strings.Repeat("n", 600) + `":"1"}}`, http.StatusBadRequest},
		{"long version", `{"revision":1,"hash":"` + hash + `","source":"push","policies":{"a/fn":"` + strings.Repeat("1", 21) + `"}}`, http.StatusBadRequest},
		{"version with spaces", `{"revision":1,"hash":"` + hash + `","source":"push","policies":{"a/fn":"1 2"}}`, http.StatusBadRequest},
		{"too large", `{"revision":1,"hash":"` + hash + `","source":"push","policies":{"a/fn":"` + strings.Repeat(" ", pushapi.MaxAckBytes) + `"}}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.status(t, c, http.MethodPost, pushapi.AckPath, "Bearer token-a1", tc.body)
			if code != tc.want {
				t.Fatalf("got %d %s, want %d", code, body, tc.want)
			}
		})
	}
	if got := h.acks.Snapshot("a"); len(got) != 0 {
		t.Errorf("recorded %v, want nothing", got)
	}
	if got := h.acks.Snapshot("b"); len(got) != 0 {
		t.Errorf("recorded %v in b, want nothing", got)
	}
}

// TestValidateAck: the bounds, accepted at their limits.
func TestValidateAck(t *testing.T) {
	t.Parallel()
	hash := config.Hash([]byte("x"))
	policies := map[string]string{}
	for i := range push.MaxAckPolicies {
		policies[fmt.Sprintf("a/p%d", i)] = "9223372036854775807"
	}
	long := "a/" + strings.Repeat("n", 253)
	for _, tc := range []struct {
		name string
		ack  pushapi.Ack
		ok   bool
	}{
		{"minimal", pushapi.Ack{Hash: hash, Source: pushapi.SourcePush}, true},
		{"at the bounds", pushapi.Ack{Hash: hash, Source: pushapi.SourceFile, Revision: 1<<63 - 1, Policies: policies}, true},
		{"longest name", pushapi.Ack{Hash: hash, Source: pushapi.SourcePush, Policies: map[string]string{long: ""}}, true},
		{"name too long", pushapi.Ack{Hash: hash, Source: pushapi.SourcePush, Policies: map[string]string{long + "n": "1"}}, false},
		{"bad name", pushapi.Ack{Hash: hash, Source: pushapi.SourcePush, Policies: map[string]string{"a/Fn": "1"}}, false},
		{"two slashes", pushapi.Ack{Hash: hash, Source: pushapi.SourcePush, Policies: map[string]string{"a/b/c": "1"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := push.ValidateAck("a", tc.ack)
			if (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// countingAuth counts the reviews it answers.
type countingAuth struct {
	fakeAuth
	n atomic.Int64
}

func (c *countingAuth) Authenticate(ctx context.Context, token string) (push.Identity, error) {
	c.n.Add(1)
	return c.fakeAuth.Authenticate(ctx, token)
}

// An Ack on the token an open stream was admitted with costs no review
// (the benchmark's update after the review cache expired paid one per
// sidecar); once the stream is closed, the token is reviewed again.
func TestAckOnAStreamsTokenIsNotReviewedAgain(t *testing.T) {
	t.Parallel()
	auth := &countingAuth{fakeAuth: sidecars}
	h := start(t, push.Options{Auth: auth, Read: newBundles(map[string][]byte{"a": bundle("a", 1)}).read})
	c := h.client(t)
	w := h.watch(t, c, "token-a1")
	w.expect(t, bundle("a", 1), 1)
	if auth.n.Load() != 1 {
		t.Fatalf("%d reviews for one stream, want 1", auth.n.Load())
	}
	for range 3 {
		if code, _, _ := h.status(t, c, http.MethodPost, pushapi.AckPath, "Bearer token-a1", ackJSON("a", 1, pushapi.SourcePush)); code != http.StatusNoContent {
			t.Fatalf("ack got %d", code)
		}
	}
	if auth.n.Load() != 1 {
		t.Fatalf("%d reviews after 3 acks on the stream's token, want still 1", auth.n.Load())
	}
	// Another pod's token is reviewed (and gets its own identity).
	if code, _, _ := h.status(t, c, http.MethodPost, pushapi.AckPath, "Bearer token-a2", ackJSON("a", 1, pushapi.SourcePush)); code != http.StatusNoContent || auth.n.Load() != 2 {
		t.Fatalf("ack of a2 got %d with %d reviews, want 204 after a second review", code, auth.n.Load())
	}
	if got := h.acks.Snapshot("a"); got["a1"].Revision != 1 || got["a2"].Revision != 1 {
		t.Fatalf("acks %v, want a1 and a2", got)
	}
	h.srv.Close()
	if err := w.ended(t); err == nil {
		t.Log("stream ended")
	}
	wait.For(t, 10*time.Second, func() bool { return h.srv.Streams("a") == 0 }, "the stream to end")
	before := auth.n.Load()
	h.status(t, c, http.MethodPost, pushapi.AckPath, "Bearer token-a1", ackJSON("a", 1, pushapi.SourcePush))
	if auth.n.Load() != before+1 {
		t.Fatalf("an ack after the stream closed was not reviewed (%d → %d reviews)", before, auth.n.Load())
	}
}
