package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// Class 10, topology: requests reach the sidecar through the platform's
// hops, built here from real reverse proxies on loopback; clients come from
// their own loopback addresses.

func TestKnativeChainForwardsTheRealClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTrust(knativeTrust()...), withRego(regoClientIP, 0))
	front := knativeChain(t, e)
	tok := e.mint(nil)
	for name, spoof := range map[string][]string{
		"plain": nil,
		"spoofing": {"X-Forwarded-For", "198.51.100.7", "X-Real-Ip", "198.51.100.7", "Forwarded", "for=198.51.100.7;proto=https",
			"X-Forwarded-Host", "admin.internal", "True-Client-Ip", "198.51.100.7"},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.send(from(t, aliceAddr), front, "/api/x", append(bearer(tok), spoof...)...)
			wantHeader(t, r, "X-Forwarded-For", "127.0.0.2, 127.0.0.10, 127.0.0.11, 127.0.0.1")
			wantHeader(t, r, "X-Forwarded-Proto", "https")
			wantHeader(t, r, "X-Forwarded-Host", "fn.example.com")
			wantHeader(t, r, "Forwarded", "for=127.0.0.2;host=fn.example.com;proto=https, for=127.0.0.10, for=127.0.0.11, for=127.0.0.1")
			wantHeader(t, r, "X-Real-Ip", aliceAddr)
			wantHeader(t, r, "X-Authgate-Client-Ip", aliceAddr) // Rego's input.request.client_ip
			if got := header(r.mustForward(t), "True-Client-Ip"); got != nil {
				t.Errorf("got True-Client-Ip %q at the function, want it removed", got)
			}
		})
	}
}

func TestKnativeChainRateLimitsEachClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTrust(knativeTrust()...), withIPLimit(2))
	front := knativeChain(t, e)
	alice, bob := from(t, aliceAddr), from(t, bobAddr)
	for range 2 {
		e.send(alice, front, "/healthz").mustForward(t)
	}
	e.send(alice, front, "/healthz").mustDeny(t, http.StatusTooManyRequests, "rate_limited")
	// Claiming another address gives alice no fresh bucket ...
	for _, claim := range []string{bobAddr, "198.51.100.7", bobAddr + ", " + ingressAddr} {
		e.send(alice, front, "/healthz", "X-Forwarded-For", claim).mustDeny(t, http.StatusTooManyRequests, "rate_limited")
	}
	// ... and spends nothing of bob's.
	for range 2 {
		e.send(bob, front, "/healthz").mustForward(t)
	}
	e.send(bob, front, "/healthz").mustDeny(t, http.StatusTooManyRequests, "rate_limited")
}

func TestKnativeChainThrottlesAuthFailuresPerClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTrust(knativeTrust()...), withAuthFailures(2))
	front := knativeChain(t, e)
	mallory, alice := from(t, malloryAddr), from(t, aliceAddr)
	for range 2 {
		e.send(mallory, front, "/api/x", bearer("not-a-token")...).mustDeny(t, http.StatusUnauthorized, "")
	}
	e.send(mallory, front, "/api/x", bearer("not-a-token")...).mustDeny(t, http.StatusTooManyRequests, "auth_failures")
	e.send(mallory, front, "/api/x", append(bearer("not-a-token"), "X-Forwarded-For", aliceAddr)...).
		mustDeny(t, http.StatusTooManyRequests, "auth_failures")
	// mallory's flood never makes the gateway refuse alice.
	e.send(alice, front, "/api/x", bearer(e.mint(nil))...).mustForward(t)
	e.send(alice, front, "/api/x", bearer("not-a-token")...).mustDeny(t, http.StatusUnauthorized, "")
}

// With only queue-proxy trusted (the chart's default), the client is the
// hop in front of it: coarse, but nobody can choose it. The headers
// queue-proxy passed on came from that untrusted hop and are not believed.
func TestKnativeLoopbackOnlyStopsAtTheHopBeforeQueueProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTrust("127.0.0.1/32", "::1/128"), withRego(regoClientIP, 0))
	front := knativeChain(t, e)
	r := e.send(from(t, aliceAddr), front, "/api/x", append(bearer(e.mint(nil)), "X-Forwarded-For", "198.51.100.7")...)
	wantHeader(t, r, "X-Forwarded-For", "127.0.0.11, 127.0.0.1")
	wantHeader(t, r, "X-Authgate-Client-Ip", activatorAddr)
	wantHeader(t, r, "X-Forwarded-Proto", "http")
	wantHeader(t, r, "Forwarded", "for=127.0.0.11;host=fn.example.com;proto=http, for=127.0.0.1")
}

func TestPolicyClientIdentityReplacesTheProxyDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       []envOption
		wantClient string
		wantXFF    string
	}{
		{"no policy override: the flag's loopback", []envOption{withTrust("127.0.0.1/32")}, activatorAddr, "127.0.0.11, 127.0.0.1"},
		{"policy adds the platform hops", []envOption{withTrust("127.0.0.1/32"), withPolicyTrust("127.0.0.1", platformCIDR)}, aliceAddr,
			"127.0.0.2, 127.0.0.10, 127.0.0.11, 127.0.0.1"},
		{"policy trusts nobody", []envOption{withTrust(knativeTrust()...), withPolicyTrust()}, "127.0.0.1", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, append(tt.opts, withRego(regoClientIP, 0))...)
			r := e.send(from(t, aliceAddr), knativeChain(t, e), "/api/x", bearer(e.mint(nil))...)
			wantHeader(t, r, "X-Authgate-Client-Ip", tt.wantClient)
			wantHeader(t, r, "X-Forwarded-For", tt.wantXFF)
		})
	}
}

func TestOpenFaaSChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTrust(gatewayAddr), withRego(regoClientIP, 0), withIPLimit(1))
	ingress, gateway := openFaaSChain(t, e)
	tok := e.mint(nil)
	// Behind an ingress that appends to X-Forwarded-For, a spoofed chain is
	// left of the client and dropped.
	r := e.send(from(t, aliceAddr), ingress, "/api/x", append(bearer(tok), "X-Forwarded-For", "198.51.100.7")...)
	wantHeader(t, r, "X-Forwarded-For", "127.0.0.2, 127.0.0.20")
	wantHeader(t, r, "X-Authgate-Client-Ip", aliceAddr)
	wantHeader(t, r, "X-Forwarded-Proto", "https")
	wantHeader(t, r, "X-Forwarded-Host", "fn.example.com")
	// Straight to the gateway without a chain: it records the client's
	// host:port, and the proxy reads the address.
	r = e.send(from(t, bobAddr), gateway, "/api/x", bearer(tok)...)
	wantHeader(t, r, "X-Forwarded-For", "127.0.0.3, 127.0.0.20")
	wantHeader(t, r, "X-Authgate-Client-Ip", bobAddr)
	if rec := r.mustForward(t); !strings.HasPrefix(rec.Host, "127.0.0.1:") {
		t.Errorf("got Host %q, want the function's address the gateway dialled", rec.Host)
	}
	// Each client has its own bucket.
	e.send(from(t, aliceAddr), ingress, "/api/x", bearer(tok)...).mustDeny(t, http.StatusTooManyRequests, "rate_limited")
	e.send(from(t, bobAddr), ingress, "/api/x", bearer(tok)...).mustDeny(t, http.StatusTooManyRequests, "rate_limited")
	e.send(from(t, malloryAddr), ingress, "/api/x", bearer(tok)...).mustForward(t)
}
