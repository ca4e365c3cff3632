package push_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/coverage"
	"github.com/authgate/authgate/test/faultidp"
)

// jwtPolicy selects the orders function and admits the IdP's tokens for
// audience orders.
const jwtPolicy = `
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: orders}
spec:
  selector: {matchLabels: {app: orders}}
  authentication: {jwt: [{issuerURL: %q, audiences: [orders]}]}
  routes: [{name: all}]
`

// A token every sidecar accepted, and holds in its verified-token cache,
// is refused by every one of them once its jti is revoked: the revocation
// travels over the push channel like any change of the policy.
func TestRevocationOverPush(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "push-revoke")
	idp := faultidp.New(t)
	sidecars := withSidecars(t, ns, 2)
	createPolicy(t, ns, fmt.Sprintf(jwtPolicy, idp.URL))
	bearer := func(jti string) string {
		tok, err := idp.Issuer.Mint(map[string]any{"sub": "alice", "aud": "orders", "jti": jti})
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	leaked, other := bearer("leaked-1"), bearer("other-1")
	for _, s := range sidecars {
		s.waitReady(t)
	}
	waitStatus(t, sidecars, time.Now(), http.StatusOK, "/orders/1", "Authorization", leaked)
	for _, s := range sidecars {
		hits := s.metric(t, "authgate_token_cache_requests_total", "result", "hit")
		s.expect(t, http.StatusOK, "/orders/1", "Authorization", leaked)
		if got := s.metric(t, "authgate_token_cache_requests_total", "result", "hit"); got <= hits {
			t.Fatalf("sidecar %s: token cache hits %v, want above %v: the token is not cached", s.pod.Name, got, hits)
		}
	}

	revoked := time.Now()
	updatePolicy(t, ns, "orders", func(p *v1alpha1.AuthPolicy) {
		p.Spec.Revocations = []v1alpha1.Revocation{{JTI: "leaked-1", ExpiresAt: metav1.NewTime(time.Now().Add(time.Hour))}}
	})
	took := waitStatus(t, sidecars, revoked, http.StatusUnauthorized, "/orders/1", "Authorization", leaked)
	t.Logf("figure: jti revoked → refused by the last of 2 sidecars: %s", took.Round(time.Millisecond))
	for _, s := range sidecars {
		s.expect(t, http.StatusUnauthorized, "/orders/1", "Authorization", leaked) // the function receives nothing
		s.expect(t, http.StatusOK, "/orders/1", "Authorization", other)
	}
	waitEnforced(t, ns, "orders", "2/2 at generation 2", metav1.ConditionTrue, coverage.ReasonAllPodsEnforce, 2)
}
