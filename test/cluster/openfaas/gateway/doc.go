// Package gateway is a reproduction of the OpenFaaS CE gateway at
// openfaas/faas@8d803bf9e2655aec6a60fd0e25b392839f96af95 (gateway 0.27.14),
// written for authgate's cluster tests from a reading of its sources; it is
// not the gateway, and none of its code is in it. The real component could
// not be had: the Go module proxy answers 403 for github.com/openfaas/faas/gateway.
//
// The gateway does not reach functions itself (direct_functions=false, the
// chart's default): every request goes to the provider at
// functions_provider_url (faas-netes, http://127.0.0.1:8081/ in the same
// pod), at the same path and query. What is reproduced, with the original's
// file for each:
//
//   - the routes of gateway/main.go: /function/{name}[/{params}] (any
//     method), GET /system/function/{name}, GET, POST, PUT and DELETE
//     /system/functions, GET /healthz, GET / (307 to /ui/), with
//     gorilla/mux's path cleaning, 404 and 405;
//   - the call id middleware (handlers/callid_middleware.go) on function
//     calls: X-Call-Id (a new UUID unless sent) on request and response,
//     X-Start-Time added to both, X-Served-By on the response;
//   - scale_from_zero's existence check (handlers/scaling.go,
//     scaling/function_scaler.go): 404 "error finding function
//     <name>.<ns>: server returned non-200 status code (404) ..." for a
//     function the provider does not know, and a wait for an available
//     replica;
//   - forwarding (handlers/forwarding_proxy.go): headers copied less the
//     hop-by-hop ones, X-Forwarded-Host set to the Host and X-Forwarded-For
//     to the caller's host:port only when absent (a client's own
//     X-Forwarded-For passes unchanged, nothing is appended), a User-Agent
//     of its own when none, the body sent chunked, upstream_timeout for the
//     whole call; a provider that cannot be reached or does not answer in
//     time is 502 with no body; the provider's answer is copied back;
//     text/event-stream goes through the standard library's reverse proxy;
//   - GET /system/functions re-encoded (metrics/add_metrics.go) with
//     invocationCount 0.
//
// Left out: basic auth (basic_auth=true in the chart protects /system/*,
// /ui and logs, and the gateway injects the credentials into its provider
// calls; here the /system routes are open to whoever reaches the port, so
// the test manifests keep the Service ClusterIP), NATS and
// /async-function, scaling itself (a function at 0 replicas is not scaled
// up), the replica cache, Prometheus metrics and the invocation counts, the
// UI, /system/info, secrets, logs, namespaces, alerts, the auth plugin.
package gateway

// Commit is the gateway commit this package reproduces.
const Commit = "openfaas/faas@8d803bf9e2655aec6a60fd0e25b392839f96af95"
