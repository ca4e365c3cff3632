package forwarded

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// In a Knative pod the peer is queue-proxy on loopback. It appends its own
// peer to X-Forwarded-For but passes X-Forwarded-Proto, -Host, X-Request-Id
// and the Forwarded header it synthesises from them (pkg/queue/forwarded_shim.go)
// on as received. When the hop in front of it is not trusted, those headers
// are whatever that hop (or anyone reaching queue-proxy directly) sent.
func TestLoopbackHopFedByAnUntrustedPeerVouchesForNothing(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "127.0.0.1/32")
	h := e.do(t, "fn.example.com",
		"X-Forwarded-For", "6.6.6.6, 10.9.9.9", // 10.9.9.9: queue-proxy's peer, not trusted
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "admin.internal",
		"X-Forwarded-Port", "443",
		"Forwarded", "for=6.6.6.6;host=admin.internal;proto=https, for=10.9.9.9",
		"X-Real-Ip", "6.6.6.6",
		"True-Client-Ip", "6.6.6.6",
		"X-Request-Id", "attacker-chosen",
	)
	want(t, h, "X-Forwarded-For", "10.9.9.9, 127.0.0.1")
	want(t, h, "X-Forwarded-Proto", "http")
	want(t, h, "X-Forwarded-Host", "fn.example.com")
	want(t, h, "X-Forwarded-Port")
	want(t, h, "Forwarded", `for=10.9.9.9;host=fn.example.com;proto=http, for=127.0.0.1`)
	want(t, h, "X-Real-Ip", "10.9.9.9")
	want(t, h, "True-Client-Ip")
	if id := find(h, "X-Request-Id"); len(id) != 1 || id[0] == "attacker-chosen" {
		t.Fatalf("got X-Request-Id %q, want a generated one", id)
	}
}

// When the hop in front of the loopback hop is trusted (an ingress that
// appends to X-Forwarded-For and sets X-Forwarded-Proto), the client is
// found behind it and its headers are kept; every client-address header is
// rebuilt from the verified chain, so a client's spoofed values never reach
// the function.
func TestTrustedHopBehindLoopbackHop(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "127.0.0.1/32", "10.1.0.0/16")
	h := e.do(t, "fn.example.com:8080",
		"X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.0.5",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "fn.example.com",
		"Forwarded", "for=6.6.6.6;proto=https, for=203.0.113.7, for=10.1.0.5",
		"X-Real-Ip", "6.6.6.6",
		"Cf-Connecting-Ip", "6.6.6.6",
		"X-Request-Id", "envoy-42",
	)
	want(t, h, "X-Forwarded-For", "203.0.113.7, 10.1.0.5, 127.0.0.1")
	want(t, h, "X-Forwarded-Proto", "https")
	want(t, h, "X-Forwarded-Host", "fn.example.com")
	want(t, h, "Forwarded", `for=203.0.113.7;host=fn.example.com;proto=https, for=10.1.0.5, for=127.0.0.1`)
	want(t, h, "X-Real-Ip", "203.0.113.7")
	want(t, h, "Cf-Connecting-Ip")
	want(t, h, "X-Request-Id", "envoy-42")
}

func TestForwardedElementQuoting(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "127.0.0.1/32", "2001:db8::/32")
	h := e.do(t, "[2001:db8::80]:8443",
		"X-Forwarded-For", "2001:db9::7, 2001:db8::5",
	)
	want(t, h, "Forwarded", `for="[2001:db9::7]";host="[2001:db8::80]:8443";proto=http, for="[2001:db8::5]", for=127.0.0.1`)
}

func TestRequestIDFromLoopbackHop(t *testing.T) {
	t.Parallel()
	tr := mustTrust(t, "127.0.0.1/32", "10.1.0.0/16")
	tests := []struct {
		name  string
		xff   string
		reuse bool
	}{
		{"loopback origin", "", true},
		{"fed by a trusted hop", "203.0.113.7, 10.1.0.5", true},
		{"fed by an untrusted hop", "10.1.0.5, 203.0.113.7", false},
		{"malformed chain", "10.1.0.5, unknown", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "127.0.0.1:5000"
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			r.Header.Set("X-Request-Id", "hop-id")
			if got := tr.RequestID(r) == "hop-id"; got != tt.reuse {
				t.Fatalf("got reused=%v, want %v", got, tt.reuse)
			}
		})
	}
}

func TestForwardedValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"fn.example.com": "fn.example.com",
		"fn:8080":        `"fn:8080"`,
		"http":           "http",
		"[::1]":          `"[::1]"`,
		"a_b-c.d":        "a_b-c.d",
	} {
		if got := forwardedValue(in); got != want {
			t.Errorf("forwardedValue(%q): got %s, want %s", in, got, want)
		}
	}
	if strings.Contains(forwardedValue(`a"b`), `a"b`) {
		t.Error("a quote was not escaped")
	}
}
