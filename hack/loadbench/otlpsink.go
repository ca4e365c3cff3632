package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// otlpSink is a minimal OTLP/HTTP receiver on loopback for the jwt-traced
// target: it reads each export and answers 200 with an empty
// ExportTraceServiceResponse (an empty protobuf message), counting
// requests. What it measures is the proxy's cost of tracing; decoding is
// the receiver's business (the tests use the collector's own receiver).
type otlpSink struct {
	once    sync.Once
	addr    string
	err     error
	exports atomic.Int64
	bytes   atomic.Int64
}

// start listens once and returns the traces URL.
func (s *otlpSink) start() (string, error) {
	s.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.err = err
			return
		}
		s.addr = ln.Addr().String()
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 16<<20))
			s.exports.Add(1)
			s.bytes.Add(n)
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusOK)
		})}
		go func() { _ = srv.Serve(ln) }()
	})
	return "http://" + s.addr + "/v1/traces", s.err
}
