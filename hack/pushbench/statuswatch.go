package main

import (
	"context"
	"sync"
	"time"
)

// statusInterval is how often the policy's status is read: 40 GETs a
// second of one object, a small load next to the controller's.
const statusInterval = 25 * time.Millisecond

// statusEvent is a change of status.coverage.enforcement, seen at At.
type statusEvent struct {
	At        time.Time
	Text      string
	Enforcing int32
}

// statusWatcher polls the benchmark policy's status.coverage.enforcement
// and records each change.
type statusWatcher struct {
	mu     sync.Mutex
	events []statusEvent
}

func (w *statusWatcher) run(ctx context.Context, c *cluster) {
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	last := "\x00"
	for {
		text, enforcing, err := c.statusEnforcement(ctx)
		if err == nil && text != last {
			last = text
			w.mu.Lock()
			w.events = append(w.events, statusEvent{At: time.Now(), Text: text, Enforcing: enforcing})
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// firstSince is when the status first read text after start (its last
// change before start included, when it still read text then).
func (w *statusWatcher) firstSince(start time.Time, text string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var prev *statusEvent
	for i := range w.events {
		e := &w.events[i]
		if !e.At.After(start) {
			prev = e
			continue
		}
		if prev != nil && prev.Text == text {
			return start, true
		}
		prev = nil
		if e.Text == text {
			return e.At, true
		}
	}
	if prev != nil && prev.Text == text {
		return start, true
	}
	return time.Time{}, false
}

// lowestSince is the fewest enforcing pods the status reported after
// start, and when it read text again after that low point; changed is
// false when the status did not change after start at all.
func (w *statusWatcher) lowestSince(start time.Time, text string) (low int32, back time.Time, changed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var lowAt time.Time
	for _, e := range w.events {
		if e.At.After(start) && (!changed || e.Enforcing < low) {
			low, lowAt, changed = e.Enforcing, e.At, true
		}
	}
	for _, e := range w.events {
		if changed && !e.At.Before(lowAt) && e.Text == text {
			return low, e.At, true
		}
	}
	return low, time.Time{}, changed
}
