package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/metrictest"
	"github.com/authgate/authgate/test/wait"
)

// multiIssuerPolicy trusts each of the issuers (issuer URL and JWKS URL).
func multiIssuerPolicy(t *testing.T, ns, name string, issuers [][2]string) *v1alpha1.AuthPolicy {
	t.Helper()
	var jwt []string
	for _, is := range issuers {
		entry := fmt.Sprintf("{issuerURL: %q, audiences: [fn]", is[0])
		if is[1] != "" {
			entry += fmt.Sprintf(", jwksURL: %q", is[1])
		}
		jwt = append(jwt, entry+"}")
	}
	return policyFromYAML(t, ns, fmt.Sprintf(`
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: %s}
spec:
  selector: {matchLabels: {app: %s}}
  authentication: {jwt: [%s]}
  routes: [{name: all}]
`, name, name, strings.Join(jwt, ", ")))
}

// Issue 11: a namespace with many hanging issuers holds at most
// suiteFetchesPerNamespace fetches, and another namespace's issuer (one it
// shares with the noisy namespace too) is Ready with its keys while they
// still hang; the noisy namespace's policy past the issuer bound is
// refused with IssuerLimitExceeded, none of its issuers fetched, and its
// other policy is unaffected.
func TestNoisyNamespaceIsBounded(t *testing.T) {
	ctx := context.Background()
	tp := faultidp.New(t)
	tp.Set(faultidp.All, faultidp.Hang)
	shared := faultidp.New(t)
	noisy := newNamespace(t)
	var hanging [][2]string
	for i := range suiteIssuersPerNamespace - 1 {
		hanging = append(hanging, [2]string{tp.URL, fmt.Sprintf("%s/jwks?n=%d", tp.URL, i)})
	}
	if err := k8s.Create(ctx, multiIssuerPolicy(t, noisy, "many", append(hanging, [2]string{shared.URL, ""}))); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, func() bool { return tp.Hits(faultidp.All) >= suiteFetchesPerNamespace }, "the noisy namespace's fetches to hang")

	quiet := newNamespace(t)
	start := time.Now()
	if err := k8s.Create(ctx, jwtPolicy(t, quiet, "healthy", shared.URL)); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, 30*time.Second, func() error { return readyWithKeys(t, quiet, "healthy", shared) }, "the quiet namespace rendered with the shared issuer's keys")
	elapsed := time.Since(start)
	if !tp.InFlight(1) {
		t.Fatalf("got the noisy namespace's first fetch finished before the quiet one was ready (%v), want it ready while they hang", elapsed)
	}
	if got := tp.Hits(faultidp.All); got != suiteFetchesPerNamespace {
		t.Fatalf("got %d fetches of the noisy namespace's hanging issuers, want %d at once", got, suiteFetchesPerNamespace)
	}
	if got := metrictest.Sum(t, registry, "authgate_controller_jwks_fetches_in_flight", "namespace", noisy); got != suiteFetchesPerNamespace {
		t.Fatalf("got authgate_controller_jwks_fetches_in_flight{namespace=%q} %v, want %d", noisy, got, suiteFetchesPerNamespace)
	}
	if got := metrictest.Sum(t, registry, "authgate_controller_jwks_fetches_throttled_total", "namespace", noisy); got < 1 {
		t.Fatalf("got authgate_controller_jwks_fetches_throttled_total{namespace=%q} %v, want the queued fetches counted", noisy, got)
	}
	if got := metrictest.Sum(t, registry, "authgate_controller_jwks_fetches_throttled_total", "namespace", quiet); got != 0 {
		t.Fatalf("got %v throttled fetches in the quiet namespace, want none", got)
	}
	t.Logf("the quiet namespace was Ready with its keys %v after creation, with the noisy namespace's fetches hanging", elapsed)

	over := faultidp.New(t)
	if err := k8s.Create(ctx, jwtPolicy(t, noisy, "one-too-many", over.URL)); err != nil {
		t.Fatal(err)
	}
	p := waitCondition(t, noisy, "one-too-many", v1alpha1.ConditionAccepted, metav1.ConditionFalse, controllers.ReasonIssuerLimitExceeded)
	if c := condition(p, v1alpha1.ConditionIssuersReady); c.Status != metav1.ConditionFalse || c.Reason != controllers.ReasonIssuerLimitExceeded ||
		!strings.Contains(c.Message, "--max-issuers-per-namespace") {
		t.Fatalf("got IssuersReady %+v, want False/%s naming the flag", c, controllers.ReasonIssuerLimitExceeded)
	}
	if c := condition(p, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != controllers.ReasonNotRendered {
		t.Fatalf("got Ready %+v, want False/%s", c, controllers.ReasonNotRendered)
	}
	if got := over.Hits(faultidp.All); got != 0 {
		t.Fatalf("got %d requests to the issuer past the bound, want none", got)
	}
	c, _ := bundleConfig(t, noisy)
	if policyVersion(c, noisy+"/one-too-many") != "" || policyVersion(c, noisy+"/many") == "" {
		t.Fatalf("got bundle policies %v, want the older policy rendered and the one past the bound not", c.Policies)
	}
	// The older policy keeps its issuers.
	if c := condition(get(t, noisy, "many"), v1alpha1.ConditionAccepted); c.Status != metav1.ConditionTrue {
		t.Fatalf("got the older policy's Accepted %+v, want True", c)
	}
	// Removing the older policy frees the issuers: the newer one is accepted.
	if err := k8s.Delete(ctx, get(t, noisy, "many")); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, noisy, "one-too-many", v1alpha1.ConditionAccepted, metav1.ConditionTrue, controllers.ReasonValid)
	if err := readyWithKeysEventually(t, noisy, "one-too-many", over); err != nil {
		t.Fatal(err)
	}
}

func readyWithKeysEventually(t *testing.T, ns, name string, idp *faultidp.Server) error {
	t.Helper()
	return wait.Until(context.Background(), 30*time.Second, func() error { return readyWithKeys(t, ns, name, idp) })
}
