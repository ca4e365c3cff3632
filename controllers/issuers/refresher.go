package issuers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sync"
	"time"
)

// Start runs the refresher until ctx is done: every issuer Current (or
// Ensure) registered is fetched at once, then again when its NextRefresh
// is due, each refresh on its own goroutine, so a hanging issuer holds up
// no other. OnChange hears of every change. Start returns nil once ctx is
// done and the running refreshes, cancelled with it, have ended. It makes
// the Manager a controller-runtime manager.Runnable.
func (m *Manager) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(m.refreshDue(ctx, &wg))
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// NeedLeaderElection is true: only the leader reconciles, and so only the
// leader registers issuers and renders their keys. Refreshing on every
// replica would multiply the traffic to each identity provider for keys
// nobody ships; a new leader starts cold, and the controller keeps existing
// bundles until its first fetches have ended (FetchTimeout at most).
func (m *Manager) NeedLeaderElection() bool { return true }

// refreshDue starts a refresh of every issuer that was never fetched or is
// due and returns how long until the next one is due. Due issuers are
// started oldest first (never fetched ones in the order they were
// registered), so a namespace's queue drains in order. Issuers with a
// refresh running are skipped (its end wakes the refresher), and so are
// those queued for a namespace slot (a slot's release wakes it).
func (m *Manager) refreshDue(ctx context.Context, wg *sync.WaitGroup) time.Duration {
	m.mu.Lock()
	entries := make([]*entry, 0, len(m.entries))
	for _, e := range m.entries {
		entries = append(entries, e)
	}
	m.mu.Unlock()
	type item struct {
		e         *entry
		attempted bool
		next      time.Time
	}
	items := make([]item, len(entries))
	for i, e := range entries {
		e.mu.Lock()
		items[i] = item{e: e, attempted: e.attempted, next: e.next}
		e.mu.Unlock()
	}
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.attempted != b.attempted:
			if !a.attempted {
				return -1
			}
			return 1
		case a.attempted && !a.next.Equal(b.next):
			return a.next.Compare(b.next)
		}
		return cmp.Compare(a.e.seq, b.e.seq)
	})
	wait := m.opts.MaxRefresh
	for _, it := range items {
		e := it.e
		if f, queued := m.startIfDue(ctx, e, wg); f != nil || queued {
			continue
		}
		e.mu.Lock()
		next := e.next
		e.mu.Unlock()
		wait = min(wait, next.Sub(m.opts.Now()))
	}
	return max(wait, time.Millisecond)
}

// poke wakes the refresher without blocking; one pending wake is enough.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// fingerprint identifies what Current reports about a fetched issuer,
// apart from NextRefresh (which moves with every refresh).
func fingerprint(s State) string {
	h := sha256.New()
	for _, k := range s.Keys.Keys {
		h.Write(k)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)) + "|" + s.LastSuccess.Format(time.RFC3339Nano) + "|" + s.LastError
}
