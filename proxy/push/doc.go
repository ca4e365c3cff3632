// Package push is the sidecar's side of the push channel: a client, run
// inside authgate-proxy, that holds a watch stream to the controller's push
// server (controllers/push), applies each namespace bundle it delivers and
// acknowledges what the proxy enforces. The wire contract is
// internal/pushapi.
//
// # Design
//
// Run loops: connect, stream, and after the stream ends wait and connect
// again, until its context is done. One connection is:
//
//  1. A transport built for it: the CA file is read now (a rotated CA is
//     picked up at the next connect), TLS 1.2 or later with the server name
//     of the URL, HTTP/2 with PING liveness (Options.PingTimeout: a PING
//     after that long without a frame, the connection closed when its
//     answer is that late), a response header timeout, no proxy from the
//     environment and no compression, so each update reaches the decoder
//     as it is written.
//  2. GET WatchPath with the revision and hash the proxy enforces (none
//     while nothing is loaded), "Authorization: Bearer" with the token file
//     read now (the kubelet rotates it) and "Accept: application/json".
//     Only a 200 over HTTP/2 starts a stream: HTTP/1 has no PING, so a dead
//     connection would go unnoticed; it is refused and logged. Redirects
//     are not followed.
//  3. Updates decoded one after the other from the body by one
//     json.Decoder, at most one bundle's worth of bytes each. An update
//     whose Hash is not config.Hash(Data), or whose data carries another
//     revision than Revision, is corrupt: it is not applied, it is counted
//     and logged, and the stream is dropped and connected again. An intact
//     one goes to Applier.Apply, which loads, validates and builds it
//     exactly as a file reload and activates it only on success (Applied);
//     Stale and Unchanged change nothing; Rejected is logged at error level
//     with its reason (never the data) and counted, and the last good
//     configuration stays.
//  4. Acknowledgements, POSTed on AckPath over the same connection by one
//     goroutine per stream: once after the connect, after every Applied
//     update, and after every Notify (the file loader activated a bundle).
//     Requests coalesce; each POST reports Applier.Enforced() as it is when
//     sent, so a rejected bundle is never acknowledged as enforced. Source
//     is SourcePush when the enforced hash is that of the last update this
//     client applied, else SourceFile. A POST is bounded to 5s and retried
//     with backoff while the stream is up, unless the server refused it as
//     malformed (a 4xx other than 401, 403, 408, 429): the same ack would
//     meet the same answer.
//
// The token is never logged: errors name the token file, not its content,
// and a response body that is logged (at most 512 bytes) has the token cut
// out should the server echo it.
//
// # Failure behaviour
//
// The push channel only speeds up what the mounted bundle file already
// delivers: the reload.Loader keeps watching the file on its own, and this
// client never stops it nor sits on the request path (Apply runs in the
// client's goroutine; the proxy serves from whatever is active).
//
//   - Controller down, unreachable or failing: the proxy keeps enforcing
//     the last good configuration, file updates still apply, and the
//     client connects again after a delay that grows exponentially with
//     full jitter from MinBackoff to MaxBackoff (default 200ms to 5s). The
//     delay starts again from MinBackoff after a stream that stayed up 30s
//     or delivered an intact update, so a corrupt stream that the server
//     sends again at once does not reset it.
//   - A refusal with Retry-After (the push server sends it with 503 when
//     not ready and 429 with too many streams): the delay is at least the
//     Retry-After, capped at MaxBackoff, plus up to half of it as jitter so
//     sidecars refused together do not return together.
//   - 401 or 403: logged with the status and the bounded body, counted as
//     unauthorized, and retried after a delay between MaxBackoff/2 and
//     MaxBackoff, so a token or RBAC problem does not hammer the controller
//     (nor its TokenReviews).
//   - CA or token file missing or unusable: New does not read either file,
//     so the proxy starts (and enforces its mounted file) even when the
//     push channel's inputs are not there yet, e.g. an optional volume
//     whose Secret the controller has not written. Each connect reads them
//     again; a failure is an error log and connects_total{result="error"},
//     retried with the backoff above.
//   - A dead connection (node gone, network partition) is found by the
//     HTTP/2 PING and handled as a closed stream.
//
// Run returns when its context is done, mid-stream or mid-backoff, after
// its goroutines ended.
//
// # Metrics
//
// NewMetrics registers authgate_proxy_push_connected,
// authgate_proxy_push_connects_total{result}, authgate_proxy_push_updates_total{outcome},
// authgate_proxy_push_acks_total{result} and
// authgate_proxy_push_last_update_timestamp_seconds.
package push
