package app

import (
	"context"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// upgrades tracks the connections that requests hand over to a protocol
// upgrade (WebSocket). http.Server.Shutdown forgets a connection once its
// handler hijacks it, so without this the process would exit under an open
// WebSocket; the app waits for them itself and closes what is left when
// the shutdown timeout ends.
type upgrades struct {
	gauge prometheus.Gauge

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	changed chan struct{} // closed and replaced whenever conns shrinks
}

func newUpgrades(gauge prometheus.Gauge) *upgrades {
	return &upgrades{gauge: gauge, conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
}

type connKey struct{}

// connContext is the server's ConnContext: it lets the handler find the
// connection that a request arrived on.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// wrap registers the connection of every HTTP/1 upgrade request for as long
// as its handler runs (the reverse proxy copies the upgraded stream inside
// the handler, so its return is the stream's end). Other requests pass
// untouched: Shutdown waits for them.
func (u *upgrades) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := r.Context().Value(connKey{}).(net.Conn)
		if !ok || r.ProtoMajor != 1 || r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		u.add(c)
		defer u.remove(c)
		next.ServeHTTP(w, r)
	})
}

func (u *upgrades) add(c net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.conns[c] = struct{}{}
	u.gauge.Set(float64(len(u.conns)))
}

func (u *upgrades) remove(c net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.conns, c)
	u.gauge.Set(float64(len(u.conns)))
	close(u.changed)
	u.changed = make(chan struct{})
}

// wait returns once no upgraded connection is open, or when ctx ends:
// then it closes those still open (ending their handlers) and returns how
// many it closed.
func (u *upgrades) wait(ctx context.Context) int {
	for {
		u.mu.Lock()
		n, changed := len(u.conns), u.changed
		if n == 0 {
			u.mu.Unlock()
			return 0
		}
		u.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			u.mu.Lock()
			defer u.mu.Unlock()
			for c := range u.conns {
				_ = c.Close()
			}
			return len(u.conns)
		}
	}
}

// open is the number of upgraded connections now.
func (u *upgrades) open() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}
