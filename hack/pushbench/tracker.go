package main

import (
	"math"
	"sort"
	"sync"
	"time"
)

// tracker records, per sidecar, when it first activated and first
// acknowledged each version of the benchmark policy, and when its last
// acknowledgement of anything was accepted.
type tracker struct {
	mu      sync.Mutex
	n       int
	applies map[string][]time.Time // version → per sidecar; zero: not yet
	acks    map[string][]time.Time
	counts  map[string]int // version → sidecars that acknowledged it
	lastAck []time.Time
}

func newTracker(n int) *tracker {
	return &tracker{n: n, applies: map[string][]time.Time{}, acks: map[string][]time.Time{}, counts: map[string]int{}, lastAck: make([]time.Time, n)}
}

func (t *tracker) applied(idx int, version string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	first(t.applies, t.n, version, idx, at)
}

func (t *tracker) acked(idx int, version string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastAck[idx] = at
	if first(t.acks, t.n, version, idx, at) {
		t.counts[version]++
	}
}

// first sets m[version][idx] to at unless it is set, and says whether it
// did.
func first(m map[string][]time.Time, n int, version string, idx int, at time.Time) bool {
	ts := m[version]
	if ts == nil {
		ts = make([]time.Time, n)
		m[version] = ts
	}
	if !ts[idx].IsZero() {
		return false
	}
	ts[idx] = at
	return true
}

// ackedVersion counts the sidecars that acknowledged version.
func (t *tracker) ackedVersion(version string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[version]
}

// ackedSince counts the sidecars with an acknowledgement accepted after
// at, and returns the latest of those.
func (t *tracker) ackedSince(at time.Time) (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, last := 0, time.Time{}
	for _, a := range t.lastAck {
		if a.After(at) {
			n++
			if a.After(last) {
				last = a
			}
		}
	}
	return n, last
}

// since returns, for version, each sidecar's time from start to its first
// activation and to its first acknowledgement, sorted, for the sidecars
// that did.
func (t *tracker) since(version string, start time.Time) (applied, acked []time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return durations(t.applies[version], start), durations(t.acks[version], start)
}

func durations(ts []time.Time, start time.Time) []time.Duration {
	out := make([]time.Duration, 0, len(ts))
	for _, at := range ts {
		if !at.IsZero() {
			out = append(out, at.Sub(start))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// quantile is the nearest-rank q-quantile of sorted ds (0 when empty).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
