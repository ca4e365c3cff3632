// Package pushapi is the wire contract of the push channel between the
// controller (controllers/push, the server) and the sidecars (proxy/push,
// the client): paths, headers and the JSON messages. It holds no logic
// beyond what both sides must agree on, so the two cannot drift.
//
// Transport: HTTP/2 over TLS (net/http on both sides). The sidecar holds
// one long-lived GET on WatchPath whose response body is a stream of JSON
// objects, one Update each, in the manner of the Kubernetes watch API;
// encoding/json's Decoder reads them one after the other, so there is no
// framing beyond JSON values on an HTTP/2 stream. Liveness is HTTP/2 PING
// (the transport's, not messages of this package). Acknowledgements are
// separate POSTs on AckPath over the same connection.
//
// Authentication: every request carries the sidecar's projected
// ServiceAccount token for Audience as "Authorization: Bearer <token>";
// the controller verifies it with a TokenReview and serves the bundle of
// the token's own namespace only: no request field names a namespace.
//
// Answers: 200 (a stream) and 204 (an Ack taken); 400 a malformed Ack or
// query; 401 a token refused (re-read the token file before retrying);
// 413 an Ack over MaxAckBytes; 429 too many streams in the namespace and
// 503 the server not ready or the review unavailable, both with
// Retry-After. The server may end a stream at any time (its age bound, a
// shutdown, a client that stopped reading); the client reconnects,
// sending what it enforces in QueryRevision and QueryHash.
package pushapi

// Paths served by the controller's push server.
const (
	// WatchPath streams Updates (GET).
	WatchPath = "/v1/bundle/watch"
	// AckPath receives an Ack (POST, JSON body, answered 204).
	AckPath = "/v1/bundle/ack"
)

// Audience is the audience of the projected ServiceAccount token the
// sidecar presents; the TokenReview asks for it, so the pod's ordinary
// API-server token is refused.
const Audience = "authgate.dev/push"

// Query parameters of WatchPath: what the sidecar enforces now, so the
// server sends the current bundle at once only when it differs.
const (
	QueryRevision = "revision"
	QueryHash     = "hash"
)

// MaxAckBytes bounds an Ack body.
const MaxAckBytes = 64 << 10

// Update is one message of the watch stream: the namespace's whole bundle
// (the bytes of the bundle Secret's config.BundleKey) as the controller
// wrote it. A sidecar applies it only when Revision is above what it
// enforces, after checking that Hash is config.Hash(Data) and that Data's
// own revision field equals Revision; it loads, validates and builds it
// exactly as a file reload.
type Update struct {
	// Revision is the bundle's revision (ProxyConfig.Revision): increasing
	// with every change the controller writes.
	Revision int64 `json:"revision"`
	// Hash is config.Hash(Data), hex SHA-256.
	Hash string `json:"hash"`
	// Data is the bundle (base64 in JSON).
	Data []byte `json:"data"`
}

// Ack is what a sidecar reports after every change of what it enforces
// (from the push channel or from the mounted file) and once per stream.
type Ack struct {
	// Revision and Hash identify the bundle the sidecar enforces
	// (Hash is config.Hash of the bundle's bytes, not of the labels).
	Revision int64  `json:"revision"`
	Hash     string `json:"hash"`
	// Policies maps each policy the sidecar applies (those selecting its
	// pod), by name ("namespace/name"), to its version (the AuthPolicy's
	// generation, config.Policy.Version).
	Policies map[string]string `json:"policies"`
	// Source says where the enforced bundle came from: SourcePush or
	// SourceFile.
	Source string `json:"source"`
}

// Ack sources.
const (
	SourcePush = "push"
	SourceFile = "file"
)
