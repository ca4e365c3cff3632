package issuers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/test/faultidp"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newManager(t)
	spec := Spec{IssuerURL: idp.URL}
	t0 := f.clk.Now()
	f.m.Ensure(t.Context(), spec)
	idp.Set(faultidp.JWKS, faultidp.Down)
	f.clk.Advance(time.Hour)
	f.m.Ensure(t.Context(), spec)
	f.m.Ensure(t.Context(), spec) // cached until the retry: not a refresh

	want := fmt.Sprintf(`
# HELP authgate_controller_jwks_keys Usable keys the controller holds (and renders inline) per issuer.
# TYPE authgate_controller_jwks_keys gauge
authgate_controller_jwks_keys{issuer=%[1]q} 2
# HELP authgate_controller_jwks_last_success_timestamp_seconds Unix time the controller last fetched the issuer's key set successfully.
# TYPE authgate_controller_jwks_last_success_timestamp_seconds gauge
authgate_controller_jwks_last_success_timestamp_seconds{issuer=%[1]q} %[2]d
# HELP authgate_controller_jwks_refresh_total Key set refreshes by the controller, by issuer and result (success, error).
# TYPE authgate_controller_jwks_refresh_total counter
authgate_controller_jwks_refresh_total{issuer=%[1]q,result="error"} 1
authgate_controller_jwks_refresh_total{issuer=%[1]q,result="success"} 1
`, idp.URL, t0.Unix())
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	reg := prometheus.NewRegistry()
	a := New(Options{Registerer: reg, FetchPolicy: loopbackAllowed(t)})
	b := New(Options{Registerer: reg, FetchPolicy: loopbackAllowed(t)}) // must not panic; shares the collectors
	a.Ensure(t.Context(), Spec{IssuerURL: idp.URL})
	b.Ensure(t.Context(), Spec{IssuerURL: idp.URL})
	if got := testutil.ToFloat64(a.metrics.refreshes.WithLabelValues(idp.URL, resultSuccess)); got != 2 {
		t.Fatalf("got %v successful refreshes, want 2 from both managers", got)
	}
	// No registerer: nothing registered, nothing panics.
	New(Options{FetchPolicy: loopbackAllowed(t)}).Ensure(t.Context(), Spec{IssuerURL: idp.URL})
}
