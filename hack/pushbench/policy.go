package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/authgate/authgate/api/v1alpha1"
)

// policyName is the benchmark's AuthPolicy; the sidecars report it as
// policyKey in their acknowledgements.
const (
	policyName = "bench"
	policyKey  = benchNamespace + "/" + policyName
)

// benchPolicy selects every simulated sidecar's pod; its one public route
// needs no issuer, so a reconcile fetches nothing. Each update changes the
// route's path, so each is a new generation and a new bundle.
func benchPolicy(step int) *v1alpha1.AuthPolicy {
	p := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: policyName},
	}
	setRoute(p, step)
	p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "fn"}}
	return p
}

func setRoute(p *v1alpha1.AuthPolicy, step int) {
	p.Spec.Routes = []v1alpha1.Route{{Name: "api", Paths: []string{fmt.Sprintf("/v%d/**", step)}, Public: true}}
}

func (c *cluster) createPolicy(ctx context.Context) error {
	if err := c.client.Create(ctx, benchPolicy(0)); err != nil {
		return fmt.Errorf("create authpolicy: %w", err)
	}
	return nil
}

func (c *cluster) getPolicy(ctx context.Context) (*v1alpha1.AuthPolicy, error) {
	var p v1alpha1.AuthPolicy
	if err := c.client.Get(ctx, types.NamespacedName{Namespace: benchNamespace, Name: policyName}, &p); err != nil {
		return nil, fmt.Errorf("get authpolicy: %w", err)
	}
	return &p, nil
}

// updatePolicy sets the route of step and returns the time the successful
// Update call was made and the new generation. A conflict (the
// controller writes the status) is retried with a fresh read, and the
// time taken again.
func (c *cluster) updatePolicy(ctx context.Context, step int) (time.Time, int64, error) {
	var (
		at  time.Time
		gen int64
	)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.getPolicy(ctx)
		if err != nil {
			return err
		}
		setRoute(p, step)
		at = time.Now()
		if err := c.client.Update(ctx, p); err != nil {
			return err
		}
		gen = p.Generation
		return nil
	})
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("update authpolicy: %w", err)
	}
	return at, gen, nil
}

// enforcement is what status.coverage.enforcement reads when all n pods
// enforce generation gen.
func enforcement(n int, gen int64) string {
	return fmt.Sprintf("%d/%d at generation %d", n, n, gen)
}

// statusEnforcement is the policy's status.coverage.enforcement and the
// number of pods it counts as enforcing.
func (c *cluster) statusEnforcement(ctx context.Context) (string, int32, error) {
	p, err := c.getPolicy(ctx)
	if err != nil {
		return "", 0, err
	}
	if p.Status.Coverage == nil {
		return "", 0, nil
	}
	return p.Status.Coverage.Enforcement, p.Status.Coverage.EnforcingPods, nil
}
