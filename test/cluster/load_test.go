package cluster

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load is steady traffic from a number of clients that the test changes
// while it runs. Each client sends GET requests one after another, pacing
// itself, and each request that does not get 200 counts as failed. target
// gives every request its URL and headers, so a test can move the traffic
// the way an ingress moves it.
type load struct {
	ctx    context.Context
	c      *http.Client
	pace   time.Duration
	target func() (string, map[string]string)

	wg          sync.WaitGroup
	stops       []context.CancelFunc
	ok, failed  atomic.Int64
	mu          sync.Mutex
	failSamples []string
}

func newLoad(t *testing.T, c *http.Client, pace time.Duration, target func() (string, map[string]string)) *load {
	l := &load{ctx: t.Context(), c: c, pace: pace, target: target}
	t.Cleanup(l.stop)
	return l
}

// clients sets the number of clients sending now.
func (l *load) clients(n int) {
	for len(l.stops) < n {
		ctx, cancel := context.WithCancel(l.ctx)
		l.stops = append(l.stops, cancel)
		l.wg.Go(func() { l.run(ctx) })
	}
	for len(l.stops) > n {
		l.stops[len(l.stops)-1]()
		l.stops = l.stops[:len(l.stops)-1]
	}
}

func (l *load) run(ctx context.Context) {
	for ctx.Err() == nil {
		url, hdr := l.target()
		r, err := do(ctx, l.c, http.MethodGet, url, hdr)
		if ctx.Err() != nil {
			return // stopped by the test, not a failure
		}
		if err != nil || r.status != http.StatusOK {
			l.failed.Add(1)
			l.mu.Lock()
			if len(l.failSamples) < 5 {
				l.failSamples = append(l.failSamples, fmt.Sprintf("%s: status %d err %v body %.200s", url, r.status, err, r.body))
			}
			l.mu.Unlock()
		} else {
			l.ok.Add(1)
		}
		select { // pacing, not synchronisation
		case <-ctx.Done():
		case <-time.After(l.pace):
		}
	}
}

// phase returns what was counted since the last phase (and a few of the
// failures), and starts counting afresh.
func (l *load) phase() (failed, total int64, samples []string) {
	ok, failed := l.ok.Swap(0), l.failed.Swap(0)
	l.mu.Lock()
	samples, l.failSamples = l.failSamples, nil
	l.mu.Unlock()
	return failed, ok + failed, samples
}

// stop ends every client and waits for them.
func (l *load) stop() {
	l.clients(0)
	l.wg.Wait()
}

// record adds the phase's failed requests as the figure name and logs the
// count with a few of the failures.
func (l *load) record(t *testing.T, name, what string) {
	t.Helper()
	failed, total, samples := l.phase()
	figs.add(name, float64(failed), "requests")
	t.Logf("%s: %d of %d requests failed", what, failed, total)
	for _, s := range samples {
		t.Logf("  failed: %s", s)
	}
}

// underLoad sends requests with hdr (a valid credential) from 4 clients
// while change runs, and counts the ones that did not get 200.
func underLoad(t *testing.T, c *http.Client, url string, hdr map[string]string, change func()) (failed, total int64) {
	l := newLoad(t, c, 20*time.Millisecond, func() (string, map[string]string) { return url, hdr })
	l.clients(4)
	change()
	l.stop()
	failed, total, samples := l.phase()
	for _, s := range samples {
		t.Logf("  failed: %s", s)
	}
	return failed, total
}
