// Package injector is the mutating admission webhook that adds the
// authgate-proxy sidecar to opted-in function pods at CREATE and rewires
// their ports so that every request reaches the function through the proxy.
//
// # Opting in
//
// A pod is injected when
//
//	(its namespace is labelled authgate.dev/inject=enabled AND the pod label
//	 authgate.dev/inject is not "false")
//	OR
//	(the pod is labelled authgate.dev/inject=true AND its namespace is not
//	 labelled authgate.dev/inject=disabled)
//
// The pod label wins over the namespace's default in both directions: "false"
// opts a pod out of an enabled namespace, "true" opts a pod in where the
// namespace has no label. A namespace labelled "disabled" is a hard off
// switch that no pod label overrides.
//
//	namespace label   pod label        injected
//	enabled           (none) / other   yes
//	enabled           true             yes
//	enabled           false            no
//	(none) / other    true             yes
//	(none) / other    (none) / false   no
//	disabled          any              no
//
// Put the pod label on the pod template (Deployment spec.template, Knative
// spec.template.metadata.labels, OpenFaaS function labels), not on the
// workload object.
//
// A pod is never injected, whatever its labels, when
//   - its namespace is kube-system or listed in Config.ExcludeNamespaces
//     (the gateway's own namespace belongs there);
//   - it uses the host network (spec.hostNetwork);
//   - it is annotated authgate.dev/injected=true (set by the injector:
//     injecting an injected pod again changes nothing);
//   - it already has a container named authgate-proxy (for example a
//     sidecar added by hand).
//
// # Wiring
//
// The sidecar is appended after the pod's containers, so the function stays
// containers[0], and the pod is annotated authgate.dev/injected=true. How the
// traffic is routed through it depends on the kind of pod:
//
//   - Knative revision pods (label serving.knative.dev/revision): the proxy
//     listens on Config.ProxyPort (default 8090, or the pod annotation
//     authgate.dev/proxy-port), forwards to the queue-proxy container's
//     original USER_PORT, and USER_PORT is set to the proxy's port, so the
//     queue-proxy sends every request through it. The sidecar's /readyz is
//     added to queue-proxy's readiness probes (SERVING_READINESS_PROBE as a
//     list, ENABLE_MULTI_CONTAINER_PROBES=true; Knative's own probe of the
//     function is kept), so neither the kubelet nor the activator, which
//     probes new pods itself on a scale from zero, sends traffic before the
//     sidecar listens. h2c revisions (queue-proxy
//     serving on 8013, or a user port named h2c) get --upstream-h2c. A pod
//     without a queue-proxy container or a literal USER_PORT is denied.
//   - OpenFaaS function pods (label faas_function): faas-netes dials the pod
//     on 8080, so the proxy takes 8080. The watchdog in containers[0] moves to
//     Config.WatchdogPort (default 8082): env port=<WatchdogPort>, its
//     containerPort 8080 and any httpGet/tcpSocket probe on 8080 move with it.
//   - Any other pod ("plain", e.g. a Deployment): the annotation
//     authgate.dev/app-port (a port number, or the name of a container port)
//     names the port the application listens on and is required; the proxy
//     listens on authgate.dev/proxy-port or Config.ProxyPort (default 8090).
//     The Service in front of the pod must target the proxy's port (the
//     container port named "authgate"), not the application's.
//
// # Inbound capture
//
// Unless the pod annotation authgate.dev/inbound-capture is "false" (or
// Config.InboundCapture is off and the annotation is not "true"), the
// injector prepends the init container authgate-capture, which redirects
// inbound TCP for the function's port (the proxy's upstream) to the
// proxy's port with nftables (package proxy/capture), and moves every
// kubelet httpGet/tcpSocket probe of that port to the proxy's admin port
// (/app-health/<container>-<kind>, package proxy/appprobe; the proxy runs
// it on loopback). A gRPC probe of the captured port is denied. The
// outcome is written back to the annotation ("true" or "false").
//
// # Client identity and timeouts
//
// Every request reaches the proxy from a hop (queue-proxy, the OpenFaaS
// gateway), so the injector tells the proxy which hops may report the
// client (--trusted-proxies) and how long the platform lets the function
// take (--upstream-timeout); docs/platform-hops.md has the hop chains:
//
//   - Knative: queue-proxy on loopback (127.0.0.1/32, ::1/128) plus
//     Config.TrustedProxies.Knative (where the activator and the ingress
//     run); the timeout is queue-proxy's REVISION_TIMEOUT_SECONDS.
//   - OpenFaaS: Config.TrustedProxies.OpenFaaS (the gateway); the timeout
//     is the larger of the watchdog's exec_timeout and write_timeout env on
//     containers[0], when set.
//   - Plain pods: Config.TrustedProxies.Plain, or the pod annotation
//     authgate.dev/trusted-proxies (comma-separated IPs or CIDRs, empty for
//     none), which replaces it. The annotation only changes what the pod's
//     own proxy believes about its callers; an invalid one denies the pod.
//     Knative and OpenFaaS pods refuse it: their hops are the platform's.
//
// An AuthPolicy's spec.clientIdentity.trustedProxies and spec.limits
// replace both for the pods it selects.
//
// The sidecar reads the namespace bundle (Secret authgate-proxy-config, key
// config.yaml, rendered by the controller; mode 0444 inside a volume only
// the sidecar mounts, as the proxy's user 65532 does not own the files) from
// /etc/authgate and its own pod labels from a downward API file. The Secret
// volume is optional: in a namespace with no AuthPolicy yet the proxy
// starts, stays not ready (fail closed) and becomes ready by itself once the
// controller writes the bundle. Pods injected by a version that mounted the
// bundle from a ConfigMap keep that volume until they are recreated.
//
// Pods that cannot be wired (a missing or invalid annotation, a port or name
// collision, a Knative pod without queue-proxy) are denied with a message
// saying what to change: the webhook runs with failurePolicy Fail, and a pod
// that should be protected must not start unprotected. Opt such a pod out
// with authgate.dev/inject=false if it really must run without the proxy.
//
// With Config.RequirePolicy (--injector-require-policy, off by default) a
// pod that would be injected but that no AuthPolicy of its namespace
// selects is denied too, with a message naming the namespace and the fix:
// its sidecar would deny every request (docs/coverage.md).
//
// # Metrics
//
// authgate_injector_admissions_total{result} counts every answer: injected,
// skipped (allowed unchanged), denied (opted in but cannot be wired, or
// selected by no policy under RequirePolicy) and error (the pod, its
// namespace or, under RequirePolicy, its policies could not be read; the
// pod is refused).
// The webhook answers HTTP 200 for all of them, so controller-runtime's
// webhook metrics cannot tell them apart; the chart's AuthgateInjectorErrors
// and AuthgateInjectorDenials alerts read this counter.
package injector
