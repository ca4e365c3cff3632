package gateway_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/config"
)

// Addresses on loopback standing for the parts of a platform: Linux routes
// all of 127.0.0.0/8 to lo, so a socket can bind any of them, and the proxy
// sees each part at its own address.
const (
	aliceAddr     = "127.0.0.2"
	bobAddr       = "127.0.0.3"
	malloryAddr   = "127.0.0.4"
	ingressAddr   = "127.0.0.10" // Kourier/Envoy or ingress-nginx
	activatorAddr = "127.0.0.11" // Knative's activator
	gatewayAddr   = "127.0.0.20" // the OpenFaaS gateway (faas-netes runs in its pod)
	// platformCIDR is where the ingress and the activator run (the
	// cluster-level "platform hop" setting).
	platformCIDR = "127.0.0.8/29"
)

// knativeTrust is what the injector passes a Knative pod: queue-proxy on
// loopback plus the platform hops.
func knativeTrust() []string { return []string{"127.0.0.1/32", "::1/128", platformCIDR} }

// regoClientIP allows and hands the function input.request.client_ip, so a
// test sees what Rego saw.
const regoClientIP = `package authgate.authz

import rego.v1

decision := {"allow": true, "headers": {"X-Authgate-Client-Ip": input.request.client_ip}}
`

// hopKind is how a hop treats forwarding headers. Each is a reproduction of
// the named component's behaviour, built on httputil.ReverseProxy, not the
// component itself.
type hopKind int

const (
	// edgeHop is an ingress that ends TLS and appends its peer to
	// X-Forwarded-For: Kourier (Envoy) with use-remote-address: "true",
	// ingress-nginx. It sets X-Forwarded-Proto and X-Forwarded-Host.
	edgeHop hopKind = iota
	// goProxyHop is Knative's activator: an httputil.ReverseProxy with a
	// Director (knative.dev/serving pkg/http/proxy.go), which appends its
	// peer to X-Forwarded-For and passes every other header on.
	goProxyHop
	// queueProxyHop is goProxyHop plus the Forwarded header queue-proxy
	// synthesises from X-Forwarded-* when there is none
	// (pkg/queue/forwarded_shim.go).
	queueProxyHop
	// openFaaSGatewayHop sets X-Forwarded-For (to its peer's host:port) and
	// X-Forwarded-Host only when absent, passes the rest on unchanged, and
	// addresses the function by its own address (openfaas/faas
	// gateway/handlers/forwarding_proxy.go, openfaas/faas-provider
	// proxy/proxy.go).
	openFaaSGatewayHop
)

// newHop starts a hop of kind on 127.0.0.1 forwarding to next, dialling
// from source, and returns its URL.
func newHop(t *testing.T, kind hopKind, next, source string) string {
	t.Helper()
	target, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		in, out := pr.In.Header, pr.Out.Header
		// ReverseProxy dropped these before Rewrite; the hops reproduced
		// here pass them on.
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"} {
			if v, ok := in[k]; ok {
				out[k] = v
			}
		}
		peer, _, _ := net.SplitHostPort(pr.In.RemoteAddr)
		switch kind {
		case edgeHop:
			pr.Out.Host = pr.In.Host
			appendXFF(out, peer)
			out.Set("X-Forwarded-Proto", "https")
			out.Set("X-Forwarded-Host", pr.In.Host)
		case goProxyHop, queueProxyHop:
			pr.Out.Host = pr.In.Host
			if kind == queueProxyHop && out.Get("Forwarded") == "" && out.Get("X-Forwarded-For") != "" {
				out.Set("Forwarded", shimForwarded(out))
			}
			appendXFF(out, peer)
		case openFaaSGatewayHop:
			if out.Get("X-Forwarded-Host") == "" {
				out.Set("X-Forwarded-Host", pr.In.Host)
			}
			if out.Get("X-Forwarded-For") == "" {
				out.Set("X-Forwarded-For", pr.In.RemoteAddr)
			}
		}
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

func appendXFF(h http.Header, peer string) {
	if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
		peer = strings.Join(prior, ", ") + ", " + peer
	}
	h.Set("X-Forwarded-For", peer)
}

// shimForwarded is queue-proxy's Forwarded header: for= per
// X-Forwarded-For node, host and proto on the first.
func shimForwarded(h http.Header) string {
	nodes := strings.Split(h.Get("X-Forwarded-For"), ",")
	first := "for=" + strings.TrimSpace(nodes[0])
	if v := h.Get("X-Forwarded-Host"); v != "" {
		first += ";host=" + v
	}
	if v := h.Get("X-Forwarded-Proto"); v != "" {
		first += ";proto=" + v
	}
	elems := []string{first}
	for _, n := range nodes[1:] {
		elems = append(elems, "for="+strings.TrimSpace(n))
	}
	return strings.Join(elems, ", ")
}

// knativeChain is client → ingress → activator → queue-proxy (on
// 127.0.0.1) → the proxy: the path of a request the activator buffers (a
// revision scaled to zero, or within target-burst-capacity). It returns the
// ingress's URL.
func knativeChain(t *testing.T, e *env) string {
	t.Helper()
	qp := newHop(t, queueProxyHop, e.proxy.URL, "127.0.0.1")
	act := newHop(t, goProxyHop, qp, activatorAddr)
	return newHop(t, edgeHop, act, ingressAddr)
}

// openFaaSChain is client → ingress → OpenFaaS gateway → the proxy on
// podIP:8080; it returns the ingress's URL.
func openFaaSChain(t *testing.T, e *env) (ingress, gateway string) {
	t.Helper()
	gateway = newHop(t, openFaaSGatewayHop, e.proxy.URL, gatewayAddr)
	return newHop(t, edgeHop, gateway, ingressAddr), gateway
}

// from is a client whose connections come from the loopback address ip.
func from(t *testing.T, ip string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// send GETs front+path as client c with Host fn.example.com and reports
// what the function received.
func (e *env) send(c *http.Client, front, path string, hdr ...string) result {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, front+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = "fn.example.com"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	before := e.fn.Count()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	return e.result(resp, before)
}

func withTrust(entries ...string) envOption {
	return func(c *config.ProxyConfig) { c.TrustedProxies = entries }
}

func withPolicyTrust(entries ...string) envOption {
	return func(c *config.ProxyConfig) {
		c.Policies[0].ClientIdentity = &config.ClientIdentity{TrustedProxies: entries}
	}
}

// withIPLimit allows burst requests per client address before every
// authentication, refilling too slowly to matter during a test.
func withIPLimit(burst int) envOption {
	return func(c *config.ProxyConfig) {
		c.Limits.RateLimits = []config.RateLimit{{Key: config.RateKeyIP, RequestsPerSecond: 0.001, Burst: burst}}
	}
}

func withAuthFailures(burst int) envOption {
	return func(c *config.ProxyConfig) {
		c.Limits.AuthFailures = config.AuthFailureLimit{PerMinute: 1, Burst: burst}
	}
}

// wantHeader asserts the one value the function received for name.
func wantHeader(t *testing.T, r result, name, want string) {
	t.Helper()
	rec := r.mustForward(t)
	if got := header(rec, name); len(got) != 1 || got[0] != want {
		t.Errorf("got %s %q at the function, want [%q]", name, got, want)
	}
}
