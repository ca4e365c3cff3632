package injector

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Admission results, the values of the result label of
// authgate_injector_admissions_total.
const (
	// ResultInjected: the pod got the sidecar.
	ResultInjected = "injected"
	// ResultSkipped: the request was allowed unchanged (not a Pod CREATE,
	// not opted in, excluded, already injected).
	ResultSkipped = "skipped"
	// ResultDenied: the pod opted in but cannot be wired (Mutate's error);
	// the webhook refuses it with a message saying what to change.
	ResultDenied = "denied"
	// ResultError: the handler failed (the request could not be decoded,
	// the namespace could not be read, the patch could not be built); the
	// pod is refused with failurePolicy Fail.
	ResultError = "error"
)

// Metrics are the injector's metrics. controller-runtime's
// controller_runtime_webhook_requests_total counts HTTP answers, and an
// admission webhook answers 200 whatever it decides; this counter says what
// was decided.
type Metrics struct {
	admissions *prometheus.CounterVec
}

// NewMetrics registers the injector metrics on reg. Every result's series
// exists from the start at 0, so the first denial or error is an increase
// a rate() sees.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_injector_admissions_total",
		Help: "Pod admission requests answered by the injector, by result (injected, skipped, denied, error).",
	}, []string{"result"})}
	for _, r := range []string{ResultInjected, ResultSkipped, ResultDenied, ResultError} {
		m.admissions.WithLabelValues(r)
	}
	reg.MustRegister(m.admissions)
	return m
}

func (m *Metrics) observe(result string) {
	m.admissions.WithLabelValues(result).Inc()
}
