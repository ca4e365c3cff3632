package push_test

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/controllers/push"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/test/wait"
)

func ack(rev int64) pushapi.Ack {
	return pushapi.Ack{Revision: rev, Hash: fmt.Sprintf("%064d", rev), Source: pushapi.SourcePush,
		Policies: map[string]string{"a/fn": fmt.Sprint(rev)}}
}

// nextChange is the next namespace Changes delivers.
func nextChange(t *testing.T, r *push.Acks) string {
	t.Helper()
	select {
	case ns := <-r.Changes():
		return ns
	case <-time.After(wait.DefaultTimeout):
		t.Fatalf("no change within %s", wait.DefaultTimeout)
		return ""
	}
}

func TestAcksRecordSnapshot(t *testing.T) {
	t.Parallel()
	r := push.NewAcks()
	defer r.Close()
	a := ack(1)
	r.Record("a", "p1", "u1", a)
	a.Policies["a/fn"] = "changed by the caller"
	snap := r.Snapshot("a")
	if got := snap["p1"].Policies["a/fn"]; got != "1" {
		t.Fatalf("stored policies changed with the caller's map: %q", got)
	}
	snap["p1"].Policies["a/fn"] = "changed by the reader"
	if got := r.Snapshot("a")["p1"].Policies["a/fn"]; got != "1" {
		t.Fatalf("stored policies changed with a snapshot: %q", got)
	}
	if got := r.Snapshot("b"); got == nil || len(got) != 0 {
		t.Fatalf("Snapshot of an unknown namespace: %v, want an empty map", got)
	}
	r.Record("a", "p1", "u1", ack(2))
	if got := r.Snapshot("a")["p1"].Revision; got != 2 {
		t.Fatalf("revision %d after a second Record, want 2", got)
	}
}

// TestAcksChanges: a change is delivered after it was made, a Record that
// changes nothing is not, and the names come in the order of the changes.
func TestAcksChanges(t *testing.T) {
	t.Parallel()
	r := push.NewAcks()
	defer r.Close()
	r.Record("a", "p1", "u1", ack(1))
	if ns := nextChange(t, r); ns != "a" {
		t.Fatalf("got change %q, want a", ns)
	}
	r.Record("a", "p1", "u1", ack(1)) // the same: no change
	r.Record("b", "p1", "u1", ack(1))
	if ns := nextChange(t, r); ns != "b" {
		t.Fatalf("got change %q, want b (a did not change)", ns)
	}
	r.Record("a", "p1", "u2", ack(1)) // a new instance of the pod
	if ns := nextChange(t, r); ns != "a" {
		t.Fatalf("got change %q, want a (new pod uid)", ns)
	}
	r.Record("a", "p2", "u3", ack(1))
	r.Forget("a", "p2")
	r.Forget("a", "none") // nothing to forget: no change
	r.Forget("c", "none")
	for ns := nextChange(t, r); ns != "a"; ns = nextChange(t, r) {
		t.Fatalf("got change %q, want a", ns)
	}
	if _, ok := r.Snapshot("a")["p2"]; ok {
		t.Error("forgotten pod still in the snapshot")
	}
}

// TestAcksSlowConsumer: Record never waits for the consumer, changes are
// coalesced while not received, and none is lost.
func TestAcksSlowConsumer(t *testing.T) {
	t.Parallel()
	r := push.NewAcks()
	defer r.Close()
	const namespaces, rounds = 200, 50
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range rounds {
				for n := range namespaces {
					r.Record(fmt.Sprintf("ns-%d", n), fmt.Sprintf("p%d", g), "u", ack(int64(i)))
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done: // nobody read Changes meanwhile
	case <-time.After(wait.DefaultTimeout):
		t.Fatal("Record blocked on a consumer that does not read")
	}
	// Now read: every namespace comes, and far fewer names than changes.
	r.Record("last", "p", "u", ack(1))
	seen, received := map[string]bool{}, 0
	for !seen["last"] || len(seen) < namespaces+1 {
		seen[nextChange(t, r)] = true
		received++
	}
	if changes := 4 * rounds * namespaces; received > 3*namespaces+100 {
		t.Errorf("received %d names for %d changes in %d namespaces: not coalesced", received, changes, namespaces)
	}
	// And a change after all that is delivered too.
	r.Record("ns-7", "p0", "u", ack(1000))
	for ns := nextChange(t, r); ns != "ns-7"; ns = nextChange(t, r) {
	}
	if got := r.Snapshot("ns-7")["p0"].Revision; got != 1000 {
		t.Errorf("revision %d, want 1000", got)
	}
}

func TestAcksPruneExcept(t *testing.T) {
	t.Parallel()
	r := push.NewAcks()
	defer r.Close()
	for _, p := range []string{"p1", "p2", "p3"} {
		r.Record("a", p, "u-"+p, ack(1))
	}
	r.Record("b", "p1", "u", ack(1))
	// Names come in the order of the changes: after b, no a is pending.
	for nextChange(t, r) != "b" {
	}
	r.PruneExcept("a", map[string]bool{"p1": true, "p3": false, "gone": true})
	if got := slices.Sorted(maps.Keys(r.Snapshot("a"))); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("after PruneExcept: %v, want [p1]", got)
	}
	if ns := nextChange(t, r); ns != "a" {
		t.Fatalf("got change %q, want a (pruned)", ns)
	}
	r.PruneExcept("a", map[string]bool{"p1": true}) // nothing to drop
	r.PruneExcept("b", map[string]bool{"p1": true})
	r.Record("c", "p1", "u", ack(1))
	if ns := nextChange(t, r); ns != "c" {
		t.Fatalf("got change %q, want c (nothing pruned)", ns)
	}
	r.PruneExcept("a", nil)
	if got := r.Snapshot("a"); len(got) != 0 {
		t.Fatalf("after PruneExcept(nil): %v, want none", got)
	}
	if got := r.Snapshot("b"); len(got) != 1 {
		t.Fatalf("namespace b: %v, want its pod", got)
	}
}

// TestAcksClose: after Close, Record still works and never blocks, and
// nothing more is delivered.
func TestAcksClose(t *testing.T) {
	t.Parallel()
	r := push.NewAcks()
	r.Close()
	r.Close()
	for i := range 1000 {
		r.Record("a", "p", "u", ack(int64(i)))
	}
	if got := r.Snapshot("a")["p"].Revision; got != 999 {
		t.Fatalf("revision %d, want 999", got)
	}
	select {
	case ns := <-r.Changes():
		t.Fatalf("change %q delivered after Close", ns)
	default:
	}
}
