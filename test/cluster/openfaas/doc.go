// Package openfaas is a reproduction of the OpenFaaS CE request path at
// openfaas/faas@8d803bf9e2655aec6a60fd0e25b392839f96af95 (gateway),
// openfaas/faas-netes@662ce9ce36ec4a32467773c308807bd5d58f5ae6 (provider),
// openfaas/faas-provider@f53fe6362ce959e032b8c063318ca5e38c0cbed8 (routes and
// function proxy) and openfaas/of-watchdog@9bdadb1e8c68ae1016ac1a35906cd2acaa53169a
// (watchdog), for authgate's cluster tests; it is not OpenFaaS. Every OpenFaaS
// module is refused (403) by the Go module proxy, so the real components
// cannot be built here; these were written from a reading of their sources,
// copying none, and each package says what it reproduces and what it leaves
// out:
//
//   - gateway: the gateway (routes, call id, scale-from-zero's existence
//     check, forwarding to the provider);
//   - faasnetes: the provider (function proxy and resolver, deploy, update,
//     delete, list, status; Deployment and Service rendering);
//   - watchdog: of-watchdog's http mode (function process, forwarding,
//     /_/health and the lock file, SIGTERM drain);
//   - cmd/gateway, cmd/watchdog: their commands; deploy.yaml: the gateway's
//     namespaces, RBAC, Deployment and Service.
//
// # Where the authgate sidecar sits
//
// With authgate's injector the path of a call to /function/echo is
//
//	client
//	  → gateway Service (openfaas, ClusterIP :8080)
//	  → gateway container :8080                        (cmd/gateway)
//	  → provider on 127.0.0.1:8081, same process here  (faas-netes: same pod)
//	  → <pod IP>:8080 = authgate-proxy                 (the pod IP from the
//	                                                     function's Endpoints,
//	                                                     port 8080 hard-coded)
//	  → 127.0.0.1:8082 watchdog                        (env port=8082, set by
//	                                                     the injector)
//	  → 127.0.0.1:5000 function                        (upstream_url; e.g.
//	                                                     authgate echo)
//
// What authgate-proxy sees on port 8080:
//
//   - the TCP peer is the gateway pod's IP: the provider dials from it (its
//     loopback hop to the provider never shows);
//   - X-Forwarded-For is set by the gateway only when the client sent none,
//     to the gateway's own peer as host:port ("10.42.0.12:51234"): the
//     client pod, or a node address after kube-proxy's SNAT, or an ingress.
//     The provider sets it only when absent too, so it never changes it.
//     Neither appends: a client's own X-Forwarded-For arrives exactly as the
//     client wrote it. The only trustworthy hop is therefore the gateway pod's
//     IP as the peer; trusting it makes the proxy believe whatever is in
//     X-Forwarded-For, which is right only when every way into the gateway
//     is an ingress that appends (or replaces) the header with the address it
//     saw; otherwise the client is the gateway's address;
//   - X-Forwarded-Host is the Host the gateway received, or the client's own
//     X-Forwarded-Host; Host is "<pod IP>:8080";
//   - X-Call-Id (a UUID, or the client's) and X-Start-Time are the gateway's;
//     User-Agent is the client's, or "openfaas-ce-gateway/<version>";
//   - a request body comes chunked, without Content-Length: the gateway and
//     the provider both drop the length;
//   - the kubelet's probes: the injector moves the httpGet /_/health probes
//     to 8082, where the watchdog answers 200 once it has written its lock
//     file, which it does as soon as it listens, without asking the function.
//
// Behind the proxy the watchdog adds no forwarding header and passes every
// header and the Host on to the function. It listens on every interface, so
// <pod IP>:8082 (and its metrics on :8081) can be reached without passing
// through the proxy unless something closes them. Note also that some
// of-watchdog templates run the function itself on 8082
// (openfaas/golang-http-template@01ca6a33ee22cb51481914e8a8a33811277cb7c1
// template/golang-http/Dockerfile sets upstream_url=http://127.0.0.1:8082,
// and so do the Java templates): in such a pod the injector's default
// watchdog port collides with the function, and one of the two fails to
// listen.
package openfaas
