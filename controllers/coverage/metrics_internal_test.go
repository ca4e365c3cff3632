package coverage

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/api/v1alpha1"
)

// Lagging pods are the selected sidecars that have not reported the
// current generation, exported only while the push channel is on.
func TestLaggingPodsMetric(t *testing.T) {
	t.Parallel()
	m := NewMetrics(prometheus.NewRegistry())
	res := Result{Policies: map[string]*v1alpha1.CoverageStatus{
		"orders": {SelectedPods: 4, ProtectedPods: 2, BypassablePods: 1, UnprotectedPods: 1, EnforcingPods: 2},
	}}
	m.set("shop", res, true, true)
	if got := testutil.ToFloat64(m.lagging.WithLabelValues("shop", "orders")); got != 1 {
		t.Fatalf("lagging %v, want 1 (3 sidecars, 2 enforcing; the pod without a sidecar is unprotected, not lagging)", got)
	}
	m.set("shop", res, true, false)
	if n := testutil.CollectAndCount(m.lagging); n != 0 {
		t.Fatalf("%d lagging series with the push channel off, want none", n)
	}
}
