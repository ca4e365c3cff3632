// Package push is the controller's side of the push channel
// (internal/pushapi): it streams each namespace's bundle to that
// namespace's sidecars as soon as the controller writes it, instead of the
// 60-80 s the kubelet takes to re-project the mounted Secret, and collects
// what each sidecar says it enforces.
//
// # Authentication
//
// Every request carries the sidecar's projected ServiceAccount token for
// pushapi.Audience. TokenReviewer sends it to the API server in a
// TokenReview that names that audience, and accepts it only when the API
// server authenticated it for that audience, as a ServiceAccount
// ("system:serviceaccount:<ns>:<sa>"), bound to exactly one pod (the
// pod-name and pod-uid extras): the pod's ordinary API token, a token
// bound to no pod and one of a deleted pod are refused. Answers are cached
// by the token's SHA-256, never the token: successes for a minute at most
// (and never past the token's exp), refusals for 5 s at most, both caches
// bounded; concurrent reviews of one token are sent once, and a bounded
// number are in flight. Something that is not a JWS never reaches the API
// server. A refused credential is 401; a review that could not be made
// (API server down, timeout) is 503, never counted against the client.
//
// # Isolation
//
// No request names a namespace: a stream serves the namespace of the
// verified Identity, and Publish fans a bundle out to that namespace's
// streams only. A sidecar of namespace A never receives namespace B's
// bundle (which holds B's API-key hashes), and an Ack can report only
// policies of its sender's namespace, so no tenant can claim to enforce
// another's policy.
//
// # Ordering
//
// A bundle's revision is its "revision" field, increasing with every
// change. When a stream opens it is registered first, then the current
// bundle is read (BundleReader) and sent, unless the client's
// pushapi.QueryRevision and pushapi.QueryHash say it holds exactly that
// one. Afterwards a stream is sent a Publish only when its revision is
// above every revision the stream was given, so a stale read or an
// out-of-order Publish never sends a client backwards. The controller
// calls Publish after it writes a bundle and on every bundle Secret event,
// so a stream opened while the controller's cache lagged catches up.
//
// # Slow consumers
//
// Publish never waits for a client: each stream holds one pending Update,
// the newest (a bundle is a whole snapshot, so one superseded before it
// was written need never be), encoded once for all streams. The stream's
// own handler goroutine writes it with a write deadline
// (Options.WriteTimeout); a client that reads nothing for that long has
// its stream reset and reconnects. Idle streams have no deadline; HTTP/2
// PINGs (Serve's server) find peers that vanished. Each namespace has at
// most Options.MaxStreamsPerNamespace streams (429 beyond). A stream
// lives at most Options.MaxStreamAge on one authentication, then ends
// cleanly and the sidecar reconnects with its current token (and is sent
// nothing when it holds the current bundle). Close ends every idle stream
// at once, one stuck in a write within WriteTimeout, so an http.Server's
// Shutdown completes.
//
// # Acks
//
// A sidecar POSTs a pushapi.Ack after every change of what it enforces
// and once per stream; nothing is recorded for a stream until it does.
// The server validates it (strict JSON, bounded) and records it in Acks
// under the verified namespace and pod. The controller reads Acks to
// report, per AuthPolicy, how many selected pods enforce its current
// version: it receives changed namespaces from Acks.Changes, reads
// Acks.Snapshot, and drops pods that are gone with Acks.PruneExcept.
package push
