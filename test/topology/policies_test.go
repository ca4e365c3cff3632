package topology

import (
	"maps"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/internal/echo"
)

// The namespace of TestPolicyScopedAuthentication: four functions, three
// of them trusting the same IdP, two with the same issuer and audience.
const (
	ordersPolicy = `metadata: {name: orders}
spec:
  targets: {knativeService: orders}
  authentication:
    jwt: [{issuerURL: ISSUER, audiences: [shop-api]}]
  routes:
  - {name: health, paths: [/healthz], public: true}
  - {name: orders, paths: ["/orders/**"], requireScopes: ["orders:read"]}`
	billingPolicy = `metadata: {name: billing}
spec:
  targets: {knativeService: billing}
  authentication:
    jwt: [{issuerURL: ISSUER, audiences: [shop-api]}]
    apiKeys: {secretNames: [billing-partner]}
  routes: [{paths: ["/**"]}]`
	reportsPolicy = `metadata: {name: reports}
spec:
  targets: {openFaaSFunction: reports}
  authentication:
    jwt: [{issuerURL: ISSUER, audiences: [reports-api], sources: [{type: cookie, name: session}]}]
  routes: [{paths: ["/**"]}]`
	inventoryPolicy = `metadata: {name: inventory}
spec:
  selector: {matchLabels: {app: inventory}}
  authentication:
    apiKeys: {secretNames: [inventory-key], sources: [{type: header, name: X-Inventory-Key}]}
  routes: [{paths: ["/**"]}]`

	billingKey   = "billing-partner-key-0123456789"
	inventoryKey = "inventory-key-0123456789abcdef"
)

// Pod labels as the platforms set them.
var (
	ordersPod    = map[string]string{"serving.knative.dev/service": "orders", "serving.knative.dev/revision": "orders-00001", "app": "orders"}
	billingPod   = map[string]string{"serving.knative.dev/service": "billing", "serving.knative.dev/revision": "billing-00003", "app": "billing"}
	reportsPod   = map[string]string{"faas_function": "reports", "app": "reports"}
	inventoryPod = map[string]string{"app": "inventory"}
)

// TestPolicyScopedAuthentication: each function accepts exactly the
// issuers, API keys and credential sources its own policy names, whatever
// the other policies of the namespace bundle hold (security.md class 10).
func TestPolicyScopedAuthentication(t *testing.T) {
	t.Parallel()
	iss := newIDP(t)
	secrets := []corev1.Secret{apiKeySecret("billing-partner", billingKey), apiKeySecret("inventory-key", inventoryKey)}
	cfg := render(t, iss, true, secrets, ordersPolicy, billingPolicy, reportsPolicy, inventoryPolicy)
	pods := map[string]*pod{
		"orders":    deploy(t, "orders", cfg, ordersPod),
		"billing":   deploy(t, "billing", cfg, billingPod),
		"reports":   deploy(t, "reports", cfg, reportsPod),
		"inventory": deploy(t, "inventory", cfg, inventoryPod),
	}
	shop := iss.token(t, map[string]any{"sub": "alice", "aud": "shop-api", "scope": "orders:read"})
	reports := iss.token(t, map[string]any{"sub": "carol", "aud": "reports-api"})
	jwtID := func(sub, scopes string) map[string]string {
		return map[string]string{"X-Authgate-Subject": sub, "X-Authgate-Issuer": iss.URL(), "X-Authgate-Credential-Kind": "jwt", "X-Authgate-Scopes": scopes}
	}
	keyID := func(sub, scopes string) map[string]string {
		return map[string]string{"X-Authgate-Subject": sub, "X-Authgate-Credential-Kind": "apikey", "X-Authgate-Scopes": scopes}
	}
	tests := []struct {
		name, pod, path string
		hdr             []string
		status          int
		reason          string
		identity        map[string]string // exactly the X-Authgate-* headers the function must see
		passed          map[string]string // other headers the function must see unchanged
		stripped        []string          // headers the function must not see
	}{
		{name: "same IdP: orders accepts its token", pod: "orders", path: "/orders/1", hdr: []string{"Authorization", "Bearer " + shop},
			status: 200, identity: jwtID("alice", "orders:read"), stripped: []string{"Authorization"}},
		{name: "same IdP: billing accepts the same token", pod: "billing", path: "/invoices", hdr: []string{"Authorization", "Bearer " + shop},
			status: 200, identity: jwtID("alice", "orders:read"), stripped: []string{"Authorization"}},
		{name: "same issuer, other audience: refused by reports", pod: "reports", path: "/r", hdr: []string{"Cookie", "session=" + shop},
			status: 401, reason: "invalid_audience"},
		{name: "reports accepts its audience from its cookie", pod: "reports", path: "/r", hdr: []string{"Cookie", "theme=dark; session=" + reports},
			status: 200, identity: jwtID("carol", ""), passed: map[string]string{"Cookie": "theme=dark"}},
		{name: "reports reads no bearer token", pod: "reports", path: "/r", hdr: []string{"Authorization", "Bearer " + reports},
			status: 401, reason: "missing_credential"},
		{name: "orders' audience is not reports'", pod: "orders", path: "/orders/1", hdr: []string{"Authorization", "Bearer " + reports},
			status: 401, reason: "invalid_audience"},
		{name: "another function's cookie is not orders' credential", pod: "orders", path: "/orders/1",
			hdr:    []string{"Authorization", "Bearer " + shop, "Cookie", "session=" + reports},
			status: 200, identity: jwtID("alice", "orders:read"), passed: map[string]string{"Cookie": "session=" + reports}},
		{name: "another function's cookie passes a public route untouched", pod: "orders", path: "/healthz", hdr: []string{"Cookie", "session=" + reports},
			status: 200, identity: map[string]string{}, passed: map[string]string{"Cookie": "session=" + reports}},
		{name: "billing's API key is accepted by billing", pod: "billing", path: "/invoices", hdr: []string{"X-API-Key", billingKey},
			status: 200, identity: keyID("billing-partner", ""), stripped: []string{"X-Api-Key"}},
		{name: "billing's API key is no credential for orders", pod: "orders", path: "/orders/1", hdr: []string{"X-API-Key", billingKey},
			status: 401, reason: "missing_credential"},
		{name: "billing's key header passes orders' public route", pod: "orders", path: "/healthz", hdr: []string{"X-API-Key", billingKey},
			status: 200, identity: map[string]string{}, passed: map[string]string{"X-Api-Key": billingKey}},
		{name: "inventory reads its own key header", pod: "inventory", path: "/stock", hdr: []string{"X-Inventory-Key", inventoryKey},
			status: 200, identity: keyID("inventory-key", ""), stripped: []string{"X-Inventory-Key"}},
		{name: "inventory does not read billing's header", pod: "inventory", path: "/stock", hdr: []string{"X-API-Key", billingKey},
			status: 401, reason: "missing_credential"},
		{name: "billing does not read inventory's header", pod: "billing", path: "/invoices", hdr: []string{"X-Inventory-Key", inventoryKey},
			status: 401, reason: "missing_credential"},
		{name: "inventory's key in billing's header is unknown to billing", pod: "billing", path: "/invoices", hdr: []string{"X-API-Key", inventoryKey},
			status: 401, reason: "unknown_api_key"},
		{name: "no JWT for a function that takes API keys only", pod: "inventory", path: "/stock", hdr: []string{"Authorization", "Bearer " + shop},
			status: 401, reason: "missing_credential"},
	}
	client := &http.Client{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pods[tt.pod]
			before := p.fn.Count()
			got := call(t, client, p.proxy.URL, tt.path, tt.hdr...)
			if got.status != tt.status || got.reason != tt.reason {
				t.Fatalf("%s %s: got %d %q, want %d %q", tt.pod, tt.path, got.status, got.reason, tt.status, tt.reason)
			}
			if tt.status != http.StatusOK {
				if p.fn.Count() != before {
					t.Fatalf("%s: the function was called for a refused request", tt.pod)
				}
				return
			}
			rec, _ := p.fn.Last()
			checkReceived(t, tt.pod, rec, tt.identity, tt.passed, tt.stripped)
		})
	}
}

func checkReceived(t *testing.T, pod string, rec echo.Received, identity, passed map[string]string, stripped []string) {
	t.Helper()
	if got := rec.IdentityHeaders(); !maps.Equal(got, identity) {
		t.Fatalf("%s: function got identity headers %v, want exactly %v", pod, got, identity)
	}
	for k, v := range passed {
		if got := http.Header(rec.Headers).Values(k); len(got) != 1 || got[0] != v {
			t.Fatalf("%s: function got %d %s values, want the client's one value passed unchanged", pod, len(got), k)
		}
	}
	for _, k := range stripped {
		if got := http.Header(rec.Headers).Values(k); len(got) != 0 {
			t.Fatalf("%s: function got %s (%d values), want it stripped", pod, k, len(got))
		}
	}
}
