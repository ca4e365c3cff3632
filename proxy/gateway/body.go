package gateway

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// limitBody applies the workload's body limit and read timeout to a request
// that has a body, and keeps a handle on the body (ev.body) so that a failed
// forward is blamed on the client's body, not the function, when that is
// what failed. It returns a refusal when the declared length is over the
// limit.
func (rt *Runtime) limitBody(w http.ResponseWriter, r *http.Request, ev *event) *outcome {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 { // HTTP/2 gives bodyless requests a closed body
		return nil
	}
	limit := rt.work.maxBodyBytes
	if limit > 0 && r.ContentLength > limit {
		return &outcome{status: http.StatusRequestEntityTooLarge, reason: ReasonBodyTooLarge}
	}
	// The http.Server's ReadTimeout comes from the first configuration; this
	// deadline makes the current one apply. Only with a body: the server
	// reads a bodyless request's connection in the background and a deadline
	// there would cancel the request; and never on an upgrade, whose
	// connection outlives the request. The deadline is for the kernel, so it
	// is wall-clock time, not the injected clock.
	if d := rt.work.readTimeout; d > 0 && r.Header.Get("Upgrade") == "" {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
	}
	body := r.Body
	if limit > 0 {
		body = http.MaxBytesReader(w, body, limit)
	}
	ev.body = &bodyReader{rc: body}
	r.Body = ev.body
	return nil
}

// bodyReader remembers the first error reading the client's body. The
// transport reads the body on its own goroutine, hence the atomic.
type bodyReader struct {
	rc  io.ReadCloser
	err atomic.Pointer[error]
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.rc.Close() }

// failure is the answer to a forward that failed because of the client's
// body, if it did.
func (b *bodyReader) failure() (status int, reason, detail string, ok bool) {
	if b == nil {
		return 0, "", "", false
	}
	p := b.err.Load()
	if p == nil {
		return 0, "", "", false
	}
	var tooLarge *http.MaxBytesError
	var ne net.Error
	switch err := *p; {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "the request body is over the limit", true
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, ReasonRequestTimeout, "the request body was not received in time", true
	}
	return 0, "", "", false
}

// upstreamError answers a forward that failed: 413 or 408 when the client's
// body was too large or too slow, 504 when the function did not answer in
// time (upstream.timeout or limits.upstreamTimeout), 502 otherwise.
func (rt *Runtime) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	status, reason, detail := http.StatusBadGateway, ReasonUpstreamUnavailable, "the function did not answer"
	scope, _ := r.Context().Value(scopeKey{}).(*reqScope)
	var ne net.Error
	if s, rs, d, ok := scope.bodyFailure(); ok {
		status, reason, detail = s, rs, d
		w.Header().Set("Connection", "close")
	} else if errors.As(err, &ne) && ne.Timeout() {
		status, reason, detail = http.StatusGatewayTimeout, ReasonUpstreamTimeout, "the function did not answer in time"
	}
	if r.Context().Err() == nil {
		level := slog.LevelWarn
		if status < http.StatusInternalServerError {
			level = slog.LevelInfo
		}
		rt.deps.Logger.LogAttrs(r.Context(), level, "upstream request failed", slog.String("reason", reason), errAttr(err))
	}
	writeError(w, status, reason, detail, w.Header().Get("X-Request-Id"), 0)
}

func (s *reqScope) bodyFailure() (int, string, string, bool) {
	if s == nil {
		return 0, "", "", false
	}
	return s.body.failure()
}
