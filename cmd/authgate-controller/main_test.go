package main

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/netguard"
)

// Flag errors are reported before anything touches a cluster.
func TestFlagValidation(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "authgate-system")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"refresh bounds", []string{"--jwks-min-refresh", "1h", "--jwks-max-refresh", "1m"}, "refresh bounds"},
		{"fetch timeout", []string{"--jwks-fetch-timeout", "0s"}, "fetch timeout"},
		{"negative reconcile workers", []string{"--reconcile-workers", "-1"}, "reconcile workers"},
		{"too many reconcile workers", []string{"--reconcile-workers", "65"}, "reconcile workers"},
		{"too many issuers per namespace", []string{"--max-issuers-per-namespace", "1025"}, "max issuers per namespace"},
		{"negative fetches per namespace", []string{"--max-concurrent-fetches-per-namespace", "-1"}, "max concurrent fetches per namespace"},
		{"watch namespace not a name", []string{"--watch-namespaces", "team-a,Team_B"}, `watch namespace "Team_B"`},
		{"injector without image", []string{"--enable-injector"}, "injector"},
		{"reserved knative admin port", []string{"--enable-injector", "--injector-image", "authgate/proxy:1", "--injector-admin-port", "9090"}, "injector"},
		{"knative hop not an address", []string{"--enable-injector", "--injector-image", "authgate/proxy:1", "--injector-knative-trusted-proxies", "10.42.0.0/16,activator"},
			"trustedProxies.knative[1]"},
		{"webhook certificate outlives its CA", []string{"--enable-injector", "--injector-image", "authgate/proxy:1",
			"--webhook-ca-validity", "24h", "--webhook-cert-validity", "48h"}, "webhook certificates"},
		{"fetch allow entry not an address", []string{"--fetch-allow-cidrs", "10.0.0.0/8,idp.internal"}, `fetch-allow-cidrs: entry 2 "idp.internal"`},
		{"fetch deny entry out of range", []string{"--fetch-deny-cidrs", "10.0.0.0/33"}, `fetch-deny-cidrs: entry 1 "10.0.0.0/33"`},
		{"unknown flag", []string{"--nope"}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(tt.args, &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), tt.want) {
				t.Fatalf("got %v (%s), want an error mentioning %q", err, out.String(), tt.want)
			}
		})
	}
}

// The API server's own address is allowed by default, exactly that one
// address, only as an IP literal, and never over a deny entry; nothing else
// private is.
func TestFetchPolicyAllowsTheAPIServer(t *testing.T) {
	t.Parallel()
	mustList := func(s string) []netip.Prefix {
		l, err := netguard.ParseList(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	tests := []struct {
		name        string
		host        string
		allowAPI    bool
		allow, deny string
		allowed     []string
		refused     []string
	}{
		{name: "in cluster", host: "10.96.0.1", allowAPI: true,
			allowed: []string{"10.96.0.1", "::ffff:10.96.0.1", "8.8.8.8"}, refused: []string{"10.96.0.2", "10.96.0.10", "169.254.169.254", "127.0.0.1"}},
		{name: "IPv6 cluster", host: "fd00:10:96::1", allowAPI: true,
			allowed: []string{"fd00:10:96::1"}, refused: []string{"fd00:10:96::a", "10.96.0.1"}},
		{name: "turned off", host: "10.96.0.1", allowAPI: false, refused: []string{"10.96.0.1"}},
		{name: "out of cluster", host: "", allowAPI: true, refused: []string{"10.96.0.1", "127.0.0.1"}},
		{name: "a name is not resolved", host: "kubernetes.default.svc", allowAPI: true, refused: []string{"10.96.0.1"}},
		{name: "deny wins", host: "10.96.0.1", allowAPI: true, deny: "10.96.0.0/12", refused: []string{"10.96.0.1"}},
		{name: "with allow entries", host: "10.96.0.1", allowAPI: true, allow: "10.20.0.0/16",
			allowed: []string{"10.96.0.1", "10.20.3.4"}, refused: []string{"10.21.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string {
				if k == "KUBERNETES_SERVICE_HOST" {
					return tt.host
				}
				return ""
			}
			p, _, err := fetchPolicy(mustList(tt.allow), mustList(tt.deny), tt.allowAPI, getenv)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tt.allowed {
				if err := p.Check(netip.MustParseAddr(a)); err != nil {
					t.Errorf("got %v, want %s allowed", err, a)
				}
			}
			for _, a := range tt.refused {
				var de *netguard.DeniedError
				if err := p.Check(netip.MustParseAddr(a)); !errors.As(err, &de) {
					t.Errorf("got %v, want %s refused", err, a)
				}
			}
		})
	}
}
