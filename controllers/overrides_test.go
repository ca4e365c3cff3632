package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
)

// The CEL rules of spec.clientIdentity and spec.limits run in the API
// server itself.
func TestAPIServerChecksClientIdentityAndLimits(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	base := "selector: {matchLabels: {a: b}}\nroutes: [{name: a, public: true}]\n"
	tests := []struct {
		name, spec, want string
	}{
		{"not an address", "clientIdentity: {trustedProxies: [10.0.0.0/8, gateway]}", "every entry must be an IP address or a CIDR"},
		{"address with a port", "clientIdentity: {trustedProxies: ['10.0.0.1:80']}", "every entry must be an IP address or a CIDR"},
		{"trust everyone", "clientIdentity: {trustedProxies: ['::/0']}", "a /0 prefix would trust every address"},
		{"no list", "clientIdentity: {}", "trustedProxies: Required"},
		{"timeout too long", "limits: {upstreamTimeout: 2h}", "upstreamTimeout must be more than 0s and at most 1h"},
		{"zero read timeout", "limits: {readTimeout: 0s}", "readTimeout must be more than 0s"},
		{"body over 10GiB", "limits: {maxBodyBytes: 10737418241}", "maxBodyBytes"},
		{"empty limits", "limits: {}", "set upstreamTimeout, readTimeout or maxBodyBytes"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policyFromYAML(t, ns, fmt.Sprintf("apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: bad-%d}\nspec:\n%s\n", i, indent(base+tt.spec)))
			err := k8s.Create(ctx, p)
			if err == nil {
				t.Fatalf("the API server accepted %s", tt.name)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tt.want)
			}
		})
	}
}

// Accepted overrides reach the namespace bundle; an empty list (trust
// nobody) stays an empty list all the way.
func TestClientIdentityAndLimitsAreRendered(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for name, spec := range map[string]string{
		"hops":   "clientIdentity: {trustedProxies: [127.0.0.1/32, '::1/128', 10.8.0.0/16]}\nlimits: {upstreamTimeout: 5m, readTimeout: 90s, maxBodyBytes: 1048576}",
		"nobody": "clientIdentity: {trustedProxies: []}",
	} {
		doc := fmt.Sprintf("apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: %s}\nspec:\n%s\n", name,
			indent("selector: {matchLabels: {app: "+name+"}}\nroutes: [{name: a, public: true}]\n"+spec))
		if err := k8s.Create(ctx, policyFromYAML(t, ns, doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"hops", "nobody"} {
		waitCondition(t, ns, name, v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	}
	cfg, _ := bundleConfig(t, ns)
	if cfg == nil || len(cfg.Policies) != 2 {
		t.Fatalf("got bundle %+v, want both policies", cfg)
	}
	hops, nobody := cfg.Policies[0], cfg.Policies[1]
	if ci := hops.ClientIdentity; ci == nil || strings.Join(ci.TrustedProxies, ",") != "127.0.0.1/32,::1/128,10.8.0.0/16" {
		t.Errorf("got clientIdentity %+v, want the three hops", ci)
	}
	if l := hops.Limits; l == nil || l.UpstreamTimeout.Duration != 5*time.Minute || l.ReadTimeout.Duration != 90*time.Second || l.MaxBodyBytes != 1<<20 {
		t.Errorf("got limits %+v, want 5m, 90s, 1MiB", l)
	}
	if ci := nobody.ClientIdentity; ci == nil || ci.TrustedProxies == nil || len(ci.TrustedProxies) != 0 {
		t.Errorf("got clientIdentity %+v, want an empty, non-nil list (trust nobody)", ci)
	}
}

// spec.routes[].requireMFA's maxAge and acr bounds run in the API server;
// an accepted maxAge reaches the bundle.
func TestAPIServerChecksMFAFreshness(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	route := func(mfa string) string {
		return "selector: {matchLabels: {app: mfa}}\nauthentication: {apiKeys: {secretNames: [partner]}}\nroutes: [{name: pay, paths: ['/pay/**'], requireMFA: " + mfa + "}]\n"
	}
	for i, tt := range []struct{ name, mfa, want string }{
		{"max age too long", "{maxAge: 48h}", "must be between 1s and 24h"},
		{"max age too short", "{maxAge: 500ms}", "must be between 1s and 24h"},
		{"acr with a quote", `{acr: ['gold"']}`, "acr[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := policyFromYAML(t, ns, fmt.Sprintf("apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: bad-mfa-%d}\nspec:\n%s\n", i, indent(route(tt.mfa))))
			err := k8s.Create(ctx, p)
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tt.want)
			}
		})
	}
	if err := k8s.Create(ctx, consumerSecret(ns, "partner", "mfa-test-key-0123456789abcdefghijklmnop", "orders:read")); err != nil {
		t.Fatal(err)
	}
	doc := "apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: mfa}\nspec:\n" + indent(route("{amr: [otp], acr: ['urn:gold'], maxAge: 5m}"))
	if err := k8s.Create(ctx, policyFromYAML(t, ns, doc)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "mfa", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	cfg, _ := bundleConfig(t, ns)
	if cfg == nil || len(cfg.Policies) != 1 || cfg.Policies[0].Routes[0].RequireMFA == nil ||
		cfg.Policies[0].Routes[0].RequireMFA.MaxAge.Duration != 5*time.Minute {
		t.Fatalf("got bundle %+v, want requireMFA.maxAge 5m", cfg)
	}
}
