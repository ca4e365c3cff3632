package push

import (
	"maps"
	"sync"

	"github.com/authgate/authgate/internal/pushapi"
)

// changesBuffer is the capacity of the Changes channel.
const changesBuffer = 64

// Acks holds the last Ack of every pod, by namespace, and says which
// namespaces changed. It is safe for concurrent use. Entries come only
// from verified pods (see Server); the reconciler drops the pods that are
// gone with PruneExcept.
type Acks struct {
	mu      sync.Mutex
	pods    map[string]map[string]podAck // namespace → pod name → ack
	queue   []string                     // namespaces changed, not yet handed out
	queued  map[string]bool              // the set of queue
	pumping bool                         // a goroutine is handing queue to changes
	changes chan string
	done    chan struct{}
	close   sync.Once
}

type podAck struct {
	uid string
	ack pushapi.Ack
}

// NewAcks returns an empty registry.
func NewAcks() *Acks {
	return &Acks{
		pods:    map[string]map[string]podAck{},
		queued:  map[string]bool{},
		changes: make(chan string, changesBuffer),
		done:    make(chan struct{}),
	}
}

// Record stores pod's Ack (pod uid is the instance that sent it),
// replacing the previous one. The namespace is reported on Changes when
// anything differs from what was stored. a is copied.
func (r *Acks) Record(ns, pod string, uid string, a pushapi.Ack) {
	a.Policies = maps.Clone(a.Policies)
	r.mu.Lock()
	defer r.mu.Unlock()
	byPod := r.pods[ns]
	if old, ok := byPod[pod]; ok && old.uid == uid && sameAck(old.ack, a) {
		return
	}
	if byPod == nil {
		byPod = map[string]podAck{}
		r.pods[ns] = byPod
	}
	byPod[pod] = podAck{uid: uid, ack: a}
	r.changedLocked(ns)
}

// Forget drops pod's Ack.
func (r *Acks) Forget(ns, pod string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pods[ns][pod]; !ok {
		return
	}
	delete(r.pods[ns], pod)
	if len(r.pods[ns]) == 0 {
		delete(r.pods, ns)
	}
	r.changedLocked(ns)
}

// PruneExcept drops the Acks of the namespace's pods not in pods (nil
// drops them all, for a deleted namespace).
func (r *Acks) PruneExcept(ns string, pods map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byPod := r.pods[ns]
	dropped := false
	for pod := range byPod {
		if !pods[pod] {
			delete(byPod, pod)
			dropped = true
		}
	}
	if len(byPod) == 0 {
		delete(r.pods, ns)
	}
	if dropped {
		r.changedLocked(ns)
	}
}

// Snapshot returns a copy of the namespace's Acks by pod name.
func (r *Acks) Snapshot(ns string) map[string]pushapi.Ack {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]pushapi.Ack, len(r.pods[ns]))
	for pod, e := range r.pods[ns] {
		a := e.ack
		a.Policies = maps.Clone(a.Policies)
		out[pod] = a
	}
	return out
}

// Changes delivers the name of a namespace whose Acks changed, at least
// once after each change: a consumer reads Snapshot after receiving it.
// Changes that come before the name is received are coalesced. Record
// never waits for the consumer. After Close nothing more is delivered.
func (r *Acks) Changes() <-chan string { return r.changes }

// Close stops delivering Changes; the registry stays usable.
func (r *Acks) Close() {
	r.close.Do(func() { close(r.done) })
}

// changedLocked queues ns for Changes; r.mu is held.
func (r *Acks) changedLocked(ns string) {
	select {
	case <-r.done:
		return
	default:
	}
	if r.queued[ns] {
		return
	}
	r.queued[ns] = true
	r.queue = append(r.queue, ns)
	if !r.pumping {
		r.pumping = true
		go r.pump()
	}
}

// pump hands queued namespaces to the channel, blocking on the consumer
// (never Record), and ends when the queue is empty. A name leaves the set
// before it is sent, so a change made while it is sent queues it again:
// a change is never lost, at worst a name is delivered twice.
func (r *Acks) pump() {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.pumping = false
			r.mu.Unlock()
			return
		}
		ns := r.queue[0]
		r.queue[0] = ""
		r.queue = r.queue[1:]
		delete(r.queued, ns)
		r.mu.Unlock()
		select {
		case r.changes <- ns:
		case <-r.done:
			r.mu.Lock()
			r.pumping = false
			r.mu.Unlock()
			return
		}
	}
}

func sameAck(a, b pushapi.Ack) bool {
	return a.Revision == b.Revision && a.Hash == b.Hash && a.Source == b.Source && maps.Equal(a.Policies, b.Policies)
}
