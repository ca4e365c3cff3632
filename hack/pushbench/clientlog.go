package main

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"
)

// clientLog is the simulated sidecars' slog.Handler: it keeps when each
// client logged that its stream connected, ended or could not be opened,
// so the storm can be told apart into its steps.
type clientLog struct {
	mu     sync.Mutex
	events []clientEvent
	// reasons counts the failed attempts and ended streams by the end of
	// their error ("connection refused", "server answered 503 ...").
	reasons map[string]int
}

type clientEvent struct {
	at   time.Time
	kind string
}

// Kinds of clientEvent: the first words of the client's messages.
const (
	kindConnected   = "push stream connected"
	kindEnded       = "push stream ended"
	kindUnavailable = "push stream unavailable"
)

func (l *clientLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelInfo }

func (l *clientLog) Handle(_ context.Context, r slog.Record) error {
	for _, kind := range []string{kindConnected, kindEnded, kindUnavailable} {
		if strings.HasPrefix(r.Message, kind) {
			reason := ""
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "error" {
					msg := a.Value.String()
					reason = kind + ": " + msg[strings.LastIndex(msg, ": ")+1:]
				}
				return true
			})
			l.mu.Lock()
			defer l.mu.Unlock()
			l.events = append(l.events, clientEvent{at: r.Time, kind: kind})
			if reason != "" {
				if l.reasons == nil {
					l.reasons = map[string]int{}
				}
				l.reasons[strings.TrimSpace(reason)]++
			}
			return nil
		}
	}
	return nil
}

func (l *clientLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *clientLog) WithGroup(string) slog.Handler      { return l }

// since counts the events of kind after start and returns the first and
// the last of them.
func (l *clientLog) since(start time.Time, kind string) (n int, first, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.kind != kind || !e.at.After(start) {
			continue
		}
		if n == 0 {
			first = e.at
		}
		n++
		last = e.at
	}
	return n, first, last
}

// reasonCounts is a copy of the counts of failures by reason.
func (l *clientLog) reasonCounts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.reasons)
}
