package watchdog

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// readiness is the original's /_/ready (pkg/readiness.go): 503 while not
// accepting or without the lock file, 429 while max_inflight is reached,
// and with ready_path set the function itself answers (the request is sent
// to ready_path through the function handler, bypassing the limiter);
// otherwise 200. GET only.
type readiness struct {
	w       *Watchdog
	fn      http.Handler
	limiter *limiter
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	switch {
	case !rd.w.accepting.Load(), !rd.w.LockFilePresent():
		w.WriteHeader(http.StatusServiceUnavailable)
	case rd.limiter.met():
		w.WriteHeader(http.StatusTooManyRequests)
	case rd.w.cfg.ReadyPath != "":
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, rd.w.cfg.ReadyPath, nil)
		if err != nil {
			rd.w.log.Printf("Error creating readiness request to: %s : %s", rd.w.cfg.ReadyPath, err)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		req.RequestURI = rd.w.cfg.ReadyPath
		req.Header = r.Header.Clone()
		rd.fn.ServeHTTP(w, req)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// limiter is faas-middleware's concurrency limiter (v1.2.5, vendored by the
// pinned of-watchdog): past max requests in flight, 429 with a text body.
type limiter struct {
	next      http.Handler
	max       uint64
	started   atomic.Uint64
	completed atomic.Uint64
}

func (l *limiter) met() bool {
	if l == nil || l.max == 0 {
		return false
	}
	return l.started.Load()-l.completed.Load() >= l.max
}

func (l *limiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := l.started.Add(1)
	if started-l.completed.Load() > l.max {
		l.completed.Add(1)
		w.Header().Add("Content-Type", "text/plain")
		w.Header().Add("X-OpenFaaS-Internal", "faas-middleware")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, "Concurrent request limit exceeded. Max concurrent requests: %d\n", l.max)
		return
	}
	l.next.ServeHTTP(w, r)
	l.completed.Add(1)
}
