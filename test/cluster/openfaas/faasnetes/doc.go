// Package faasnetes is a reproduction of the faas-netes provider at
// openfaas/faas-netes@662ce9ce36ec4a32467773c308807bd5d58f5ae6 (0.18.17-1,
// Community Edition) serving the faas-provider routes of
// openfaas/faas-provider@f53fe6362ce959e032b8c063318ca5e38c0cbed8 (v0.25.12),
// written for authgate's cluster tests from a reading of their sources; it is
// not faas-netes, and none of its code is in it. The real components could
// not be had: the Go module proxy answers 403 for github.com/openfaas/faas-netes
// and github.com/openfaas/faas-provider.
//
// What is reproduced, with the original's file for each:
//
//   - the function proxy (faas-provider proxy/proxy.go) on /function/{name},
//     /function/{name}/ and /function/{name}/{params}: the function is
//     resolved for every request by FunctionLookup (faas-netes
//     pkg/k8s/proxy.go), which reads the function's v1 Endpoints from an
//     informer and picks a random ready address: the pod IP, always port
//     8080, never the Service's ClusterIP. The request goes to
//     http://<pod IP>:8080/<params>?<query> with the caller's headers;
//     X-Forwarded-Host (the Host) and X-Forwarded-For (the caller's
//     host:port) are set only when absent, so behind the gateway both are the
//     gateway's; a body goes on chunked (no Content-Length). No endpoint:
//     503 "No endpoints available for: <name>." with X-OpenFaaS-Internal:
//     proxy; the pod unreachable or the read_timeout passed: 500 "Can't reach
//     service for: <name>."; other methods than GET, HEAD, OPTIONS, POST,
//     PUT, PATCH and DELETE: 405;
//   - POST /system/functions (pkg/handlers/deploy.go): a FunctionDeployment
//     rendered into a Deployment and a Service (MakeDeployment, MakeService:
//     label faas_function, annotations with prometheus.io.scrape "false",
//     env fprocess + envVars sorted, container port "http" 8080, probes
//     httpGet /_/health :8080 (http_probe) or exec "cat /tmp/.lock", 2/1/2 s,
//     resources, readOnlyRootFilesystem with an emptyDir on /tmp, runAsUser
//     12000 with set_nonroot_user, RollingUpdate 0/1, Service ClusterIP
//     "http" 8080 → 8080), 202; CE's checks (name, scaling labels, annotation
//     refusals, 15 functions, the one function namespace);
//   - PUT (update.go, with the "uid" label that rolls the pods), DELETE
//     (delete.go), GET /system/functions (reader.go), GET
//     /system/function/{name} (replica_reader.go), /healthz (health.go);
//   - gorilla/mux's path cleaning (301), 404 and 405 (internal/route).
//
// Left out: basic auth on the /system routes (the chart's basic_auth: true;
// here anyone who reaches the port may deploy), the CE connectivity check at
// start (faas-netes CE refuses to start without Internet access), the image
// check (isAnonymous: CE deploys only images an anonymous client can fetch,
// impossible offline), secrets (a deploy naming any is refused with 400),
// scaling (/system/scale-function and the replica clamp), logs, namespaces,
// /system/info, /metrics, the Function CRD and the operator. One setting is
// added: the pull policy (ImagePullPolicy), hard-coded Always in CE, so that
// side-loaded images run in a cluster without a registry.
package faasnetes

// Commits are the sources this package reproduces.
const Commits = "openfaas/faas-netes@662ce9ce36ec4a32467773c308807bd5d58f5ae6, openfaas/faas-provider@f53fe6362ce959e032b8c063318ca5e38c0cbed8"
