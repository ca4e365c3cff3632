package issuers

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Refresh results, the values of the result label.
const (
	resultSuccess = "success"
	resultError   = "error"
)

// managerMetrics are the controller's key-refresh metrics, labelled by
// issuer URL.
type managerMetrics struct {
	refreshes   *prometheus.CounterVec
	keys        *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	// Per namespace (bounded by the namespaces with AuthPolicies that
	// trust an issuer; a series exists only while the namespace fetches or
	// once it was throttled, and goes with ForgetNamespace).
	inFlightG *prometheus.GaugeVec
	throttled *prometheus.CounterVec
}

// newMetrics creates the metrics and registers them on reg (nil: not
// registered). A collector already registered by another Manager on the
// same registry is shared.
func newMetrics(reg prometheus.Registerer, log *slog.Logger) *managerMetrics {
	m := &managerMetrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_controller_jwks_refresh_total",
			Help: "Key set refreshes by the controller, by issuer and result (success, error).",
		}, []string{"issuer", "result"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_jwks_keys",
			Help: "Usable keys the controller holds (and renders inline) per issuer.",
		}, []string{"issuer"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_jwks_last_success_timestamp_seconds",
			Help: "Unix time the controller last fetched the issuer's key set successfully.",
		}, []string{"issuer"}),
		inFlightG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_jwks_fetches_in_flight",
			Help: "Key set refreshes running, by the namespace they are charged to (the least busy namespace using the issuer; \"(none)\" for issuers no namespace uses).",
		}, []string{"namespace"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_controller_jwks_fetches_throttled_total",
			Help: "Key set refreshes that were due but had to wait because every namespace using the issuer had --max-concurrent-fetches-per-namespace refreshes running, by namespace.",
		}, []string{"namespace"}),
	}
	if reg != nil {
		m.inFlightG = register(reg, log, m.inFlightG)
		m.throttled = register(reg, log, m.throttled)
		m.refreshes = register(reg, log, m.refreshes)
		m.keys = register(reg, log, m.keys)
		m.lastSuccess = register(reg, log, m.lastSuccess)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, log *slog.Logger, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Error("issuers: cannot register a metric; it is not exported", "error", err)
	return c
}

// observe records one refresh attempt.
func (m *managerMetrics) observe(issuer string, st State, err error) {
	result := resultSuccess
	if err != nil {
		result = resultError
	}
	m.refreshes.WithLabelValues(issuer, result).Inc()
	m.keys.WithLabelValues(issuer).Set(float64(st.KeyCount))
	if !st.LastSuccess.IsZero() {
		m.lastSuccess.WithLabelValues(issuer).Set(float64(st.LastSuccess.Unix()))
	}
}

// forget removes an issuer's series.
func (m *managerMetrics) forget(issuer string) {
	m.refreshes.DeletePartialMatch(prometheus.Labels{"issuer": issuer})
	m.keys.DeleteLabelValues(issuer)
	m.lastSuccess.DeleteLabelValues(issuer)
}

// noNamespace is the namespace label of refreshes of issuers no namespace
// uses (never a valid namespace name).
const noNamespace = "(none)"

func nsLabel(ns string) string {
	if ns == "" {
		return noNamespace
	}
	return ns
}

// inFlight records the refreshes charged to ns; at 0 the series goes.
func (m *managerMetrics) inFlight(ns string, n int) {
	if n <= 0 {
		m.inFlightG.DeleteLabelValues(nsLabel(ns))
		return
	}
	m.inFlightG.WithLabelValues(nsLabel(ns)).Set(float64(n))
}

// throttle counts a due refresh that waits for a slot, once for each
// namespace using the issuer (all of them are full).
func (m *managerMetrics) throttle(namespaces []string) {
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		m.throttled.WithLabelValues(nsLabel(ns)).Inc()
	}
}

// forgetNamespace removes a namespace's throttle series.
func (m *managerMetrics) forgetNamespace(ns string) {
	m.throttled.DeleteLabelValues(nsLabel(ns))
}
