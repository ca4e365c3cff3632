package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

// bundleRevocations returns the rendered revocations of the namespace's
// policy, as "claim=value@issuer" sorted as rendered.
func bundleRevocations(t *testing.T, ns, policy string) ([]string, error) {
	t.Helper()
	c, _ := bundleConfig(t, ns)
	if c == nil {
		return nil, fmt.Errorf("no bundle")
	}
	for _, p := range c.Policies {
		if p.Name != ns+"/"+policy {
			continue
		}
		var out []string
		for _, r := range p.Revocations {
			out = append(out, r.Claim+"="+r.Value+"@"+r.Issuer)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no policy %s in the bundle", policy)
}

func waitRevocations(t *testing.T, ns, policy string, want ...string) {
	t.Helper()
	wait.ForNil(t, settle, func() error {
		got, err := bundleRevocations(t, ns, policy)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("got %v", got)
		}
		return nil
	}, "revocations %v in the bundle", want)
}

// Revocations written on an AuthPolicy reach the namespace's bundle (what
// the sidecars load, by push or through the mounted Secret) sorted and
// without the entries that ended; a revocation added while the policy's
// new generation is rejected still reaches it, with the last good
// generation.
func TestRevocationsReachTheBundle(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	idp := faultidp.New(t)
	p := jwtPolicy(t, ns, "rev", idp.URL)
	p.Spec.Revocations = []v1alpha1.Revocation{
		{Sub: "mallory", Issuer: idp.URL, ExpiresAt: metav1.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), Reason: "offboarded"},
		{JTI: "ended", ExpiresAt: metav1.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)},
		{JTI: "leaked-1", ExpiresAt: metav1.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "rev", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	waitRevocations(t, ns, "rev", "jti=leaked-1@", "sub=mallory@"+idp.URL)

	// A new generation that is rejected (its Rego does not compile) and
	// revokes a session: the last good generation stays in force, with the
	// session revoked.
	updateSpec(t, ns, "rev", func(got *v1alpha1.AuthPolicy) {
		got.Spec.Rego = &v1alpha1.Rego{Inline: "package authgate.authz\n\ndecision := \n"}
		got.Spec.Revocations = append(got.Spec.Revocations, v1alpha1.Revocation{Sid: "stolen", ExpiresAt: metav1.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)})
	})
	waitCondition(t, ns, "rev", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonLastGoodGeneration)
	waitRevocations(t, ns, "rev", "jti=leaked-1@", "sid=stolen@", "sub=mallory@"+idp.URL)
	if c, _ := bundleConfig(t, ns); c != nil {
		for _, pol := range c.Policies {
			if pol.Rego != nil {
				t.Fatal("the rejected generation's Rego reached the bundle")
			}
		}
	}

	// The controller refuses an entry for an issuer the policy does not
	// trust (it would never match), naming the field; the last good
	// generation keeps the revocations of the spec it can carry.
	updateSpec(t, ns, "rev", func(got *v1alpha1.AuthPolicy) {
		got.Spec.Rego = nil
		got.Spec.Revocations = []v1alpha1.Revocation{
			{JTI: "x", Issuer: "https://elsewhere.example.com/", ExpiresAt: metav1.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
			{JTI: "leaked-2", ExpiresAt: metav1.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
		}
	})
	refused := waitCondition(t, ns, "rev", v1alpha1.ConditionAccepted, metav1.ConditionFalse, translate.ReasonInvalidSpec)
	if msg := condition(refused, v1alpha1.ConditionAccepted).Message; !strings.Contains(msg, `spec.revocations[0].issuer: "https://elsewhere.example.com/" is not the issuerURL`) {
		t.Fatalf("got Accepted message %q, want it to name spec.revocations[0].issuer", msg)
	}
	waitRevocations(t, ns, "rev", "jti=leaked-2@")
}
