package main

import (
	"bytes"
	"strings"
	"testing"
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
		{"injector without image", []string{"--enable-injector"}, "injector"},
		{"reserved knative admin port", []string{"--enable-injector", "--injector-image", "authgate/proxy:1", "--injector-admin-port", "9090"}, "injector"},
		{"knative hop not an address", []string{"--enable-injector", "--injector-image", "authgate/proxy:1", "--injector-knative-trusted-proxies", "10.42.0.0/16,activator"},
			"trustedProxies.knative[1]"},
		{"webhook certificate outlives its CA", []string{"--enable-injector", "--injector-image", "authgate/proxy:1",
			"--webhook-ca-validity", "24h", "--webhook-cert-validity", "48h"}, "webhook certificates"},
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
