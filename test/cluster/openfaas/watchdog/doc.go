// Package watchdog is a reproduction of of-watchdog's http mode at
// openfaas/of-watchdog@9bdadb1e8c68ae1016ac1a35906cd2acaa53169a (tag 0.11.6),
// written for authgate's cluster tests from a reading of its sources; it is
// not of-watchdog, and no of-watchdog code is in it. The real component could
// not be had: the Go module proxy answers 403 for github.com/openfaas/of-watchdog.
//
// What is reproduced, with the original's file for each:
//
//   - configuration from the environment (config/config.go): port (8080),
//     fprocess/function_process, upstream_url/http_upstream_url, read_timeout,
//     write_timeout, exec_timeout (30s each; whole seconds or a Go duration),
//     healthcheck_interval (default write_timeout), suppress_lock,
//     buffer_http/http_buffer_req_body, max_inflight, prefix_logs,
//     log_buffer_size, ready_path, log_callid;
//   - the function process (executor/http_runner.go Start): started before
//     the server listens, split on single spaces, stdin an open pipe, stdout
//     and stderr passed on line by line (executor/logging.go), SIGTERM
//     forwarded at once; if it exits with an error the watchdog stops at once
//     (the original's log.Fatalf, exit 1); if it exits 0 the watchdog goes on
//     serving 500s;
//   - forwarding (executor/http_runner.go Run): upstream_url + RequestURI,
//     every header copied, Host kept, no X-Forwarded-* added; an unbuffered
//     body goes chunked; exec_timeout (shortened, never lengthened, by an
//     X-Timeout header) ends in 504, any other upstream error in 500, both
//     with X-OpenFaaS-Internal: of-watchdog, X-Duration-Seconds and no body;
//     the response's status and headers are copied and X-Duration-Seconds
//     set; SSE, NDJSON and WebSocket requests go through the standard
//     library's reverse proxy instead (which appends the peer to
//     X-Forwarded-For and applies no exec timeout);
//   - /_/health (pkg/watchdog.go makeHealthHandler): GET only; 200 "OK" while
//     accepting and the lock file (os.TempDir()/.lock) exists, else 503. The
//     lock file is written right after the server starts listening, without
//     asking the function anything: /_/health says 200 before the function
//     listens, and a request then gets 500. With suppress_lock there is no
//     lock file, so /_/health is always 503. /_/ready (pkg/readiness.go) is
//     the same plus 429 at max_inflight, and with ready_path it is answered
//     by the function at that path: that is the original's only readiness
//     check that reaches the function;
//   - max_inflight: faas-middleware's limiter (429, "Concurrent request limit
//     exceeded. Max concurrent requests: N");
//   - SIGTERM (pkg/watchdog.go listenUntilShutdown): remove the lock file and
//     stop accepting (/_/health 503) but keep serving for
//     healthcheck_interval, then http.Server.Shutdown with write_timeout as
//     the limit for requests in flight, then exit 0;
//   - metrics on port 8081 (metrics/): http_requests_total,
//     http_request_duration_seconds, http_requests_in_flight, on a registry of
//     the watchdog's own rather than the global one.
//
// Left out: the streaming, serializing, static and inproc modes (this
// reproduction refuses any mode but http, where the original defaults to
// streaming), JWT authentication (jwt_auth), and the version/commit build
// variables. Differences made for tests: the listen host and metrics port
// can be set (the original listens on every interface and always on 8081),
// the lock path is a field, and stopping kills the function process (the
// original leaves that to its own exit).
package watchdog

// Commit is the of-watchdog commit this package reproduces.
const Commit = "openfaas/of-watchdog@9bdadb1e8c68ae1016ac1a35906cd2acaa53169a"
