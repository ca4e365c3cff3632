package faultidp

import (
	"io"
	"net/http"
	"time"
)

// trickle answers 200 and the start of ep's body, then a space every
// 10ms until the client gives up or the test ends.
func (s *Server) trickle(w http.ResponseWriter, r *http.Request, ep Endpoint) {
	body := s.body(ep)
	rc := http.NewResponseController(w)
	_, _ = w.Write(body[:min(len(body), 9)])
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := w.Write([]byte(" ")); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.release:
			return
		case <-tick.C:
		}
	}
}

// trickleHeaders takes over the connection and writes a status line and
// the start of a header, then a byte every 100ms, until the client hangs
// up or the test ends: a response whose header never ends.
func (s *Server) trickleHeaders(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "faultidp: cannot hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hungUp := make(chan struct{})
	go func() {
		defer close(hungUp)
		_, _ = io.Copy(io.Discard, buf) // returns when the client closes (or Close above)
	}()
	defer func() { _ = conn.Close(); <-hungUp }()
	if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\nX-Trickle: ")); err != nil {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-hungUp:
			return
		case <-s.release:
			return
		case <-tick.C:
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
		}
	}
}
