package injector

import (
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/proxy/config"
)

// Facts about the platforms' hops and timeouts, from their sources
// (docs/platform-hops.md).
const (
	// knativeRevisionTimeoutEnv is queue-proxy's request timeout in whole
	// seconds (a revision's timeoutSeconds; Knative's default is 300).
	knativeRevisionTimeoutEnv = "REVISION_TIMEOUT_SECONDS"
	// The OpenFaaS watchdog's timeouts: whole seconds or a Go duration.
	openFaaSExecTimeoutEnv  = "exec_timeout"
	openFaaSWriteTimeoutEnv = "write_timeout"
)

// knativeLoopback is where queue-proxy reaches the proxy from: it forwards
// to 127.0.0.1 inside the pod (::1 for completeness).
func knativeLoopback() []string { return []string{"127.0.0.1/32", "::1/128"} }

// trustList normalises entries (valid by Config.Validate) to their prefixes,
// without duplicates, keeping their order.
func trustList(entries ...[]string) []string {
	var out []string
	for _, l := range entries {
		for _, e := range l {
			p, err := config.ParseTrustedProxy(e)
			if err != nil {
				continue
			}
			if s := p.String(); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// noTrustAnnotation denies the trusted-proxies annotation on a pod whose
// hops are the platform's.
func noTrustAnnotation(pod *corev1.Pod, kind string) error {
	if _, ok := pod.Annotations[AnnotationTrustedProxies]; !ok {
		return nil
	}
	return deny("annotation %s applies to plain pods only: in a %s pod the hops in front of the proxy are the platform's "+
		"(the cluster's trusted-proxies setting); remove the annotation, or set spec.clientIdentity.trustedProxies in the AuthPolicy",
		AnnotationTrustedProxies, kind)
}

// plainTrust is the annotation's list, or the cluster default without it.
func plainTrust(pod *corev1.Pod, cfg Config) ([]string, error) {
	v, ok := pod.Annotations[AnnotationTrustedProxies]
	if !ok {
		return trustList(cfg.TrustedProxies.Plain), nil
	}
	entries := splitList(v)
	if len(entries) > config.MaxTrustedProxies {
		return nil, deny("annotation %s lists %d addresses, at most %d are allowed", AnnotationTrustedProxies, len(entries), config.MaxTrustedProxies)
	}
	for i, e := range entries {
		if _, err := config.ParseTrustedProxy(e); err != nil {
			return nil, deny("annotation %s: entry %d (%q) is not an IP address or CIDR (%v); write comma-separated addresses "+
				"such as \"10.0.0.0/8, 192.0.2.7\" of the proxies in front of this pod, or an empty value to trust none", AnnotationTrustedProxies, i, e, err)
		}
	}
	return trustList(entries), nil
}

// revisionTimeout is queue-proxy's REVISION_TIMEOUT_SECONDS, or 0 when it
// is absent, not a literal or not a positive number (the proxy keeps its
// default then).
func revisionTimeout(qp *corev1.Container) time.Duration {
	v, ok := literalEnv(qp, knativeRevisionTimeoutEnv)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// watchdogTimeout is the larger of the watchdog's exec_timeout and
// write_timeout, read the way of-watchdog reads them (whole seconds, else a
// Go duration); 0 when neither is set and usable.
func watchdogTimeout(fn *corev1.Container) time.Duration {
	var out time.Duration
	for _, name := range []string{openFaaSExecTimeoutEnv, openFaaSWriteTimeoutEnv} {
		v, ok := literalEnv(fn, name)
		if !ok {
			continue
		}
		var d time.Duration
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			d = time.Duration(n) * time.Second
		} else if d, err = time.ParseDuration(v); err != nil {
			continue
		}
		out = max(out, d)
	}
	return out
}

// literalEnv is the value of the last env var name of c, unless it comes
// from a reference.
func literalEnv(c *corev1.Container, name string) (string, bool) {
	for i := len(c.Env) - 1; i >= 0; i-- {
		if e := c.Env[i]; e.Name == name {
			return e.Value, e.ValueFrom == nil
		}
	}
	return "", false
}

// platformArgs are the sidecar's flags for the platform's hops and timeout.
func platformArgs(w wiring) []string {
	var args []string
	if w.upstreamTimeout > 0 {
		args = append(args, "--upstream-timeout", w.upstreamTimeout.String())
	}
	if len(w.trustedProxies) > 0 {
		args = append(args, "--trusted-proxies", strings.Join(w.trustedProxies, ","))
	}
	if w.drainDelay > 0 {
		args = append(args, "--drain-delay", w.drainDelay.String())
	}
	if w.shutdownTimeout > 0 {
		args = append(args, "--shutdown-timeout", w.shutdownTimeout.String())
	}
	return append(args, w.appProbes...)
}
