package push

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the client's metrics.
const (
	resultOK           = "ok"
	resultUnauthorized = "unauthorized"
	resultError        = "error"

	outcomeApplied   = "applied"
	outcomeUnchanged = "unchanged"
	outcomeStale     = "stale"
	outcomeRejected  = "rejected"
	outcomeCorrupt   = "corrupt"
)

// Metrics are the push client's metrics. Build them once with NewMetrics
// and pass them in Options.
type Metrics struct {
	connected  prometheus.Gauge
	connects   *prometheus.CounterVec
	updates    *prometheus.CounterVec
	acks       *prometheus.CounterVec
	lastUpdate prometheus.Gauge
}

// NewMetrics creates the client's metrics and registers them on reg (none
// when reg is nil). Every label value exists from the start at 0.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authgate_proxy_push_connected",
			Help: "1 while the sidecar holds an HTTP/2 watch stream to the controller's push server, else 0 (the mounted file still applies).",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_proxy_push_connects_total",
			Help: "Watch connection attempts to the controller's push server, by result (ok, unauthorized: 401 or 403, error).",
		}, []string{"result"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_proxy_push_updates_total",
			Help: "Bundles received over the push channel, by outcome (applied, unchanged, stale, rejected: failed validation or build, corrupt: hash or revision not matching the data; the stream is dropped).",
		}, []string{"outcome"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_proxy_push_acks_total",
			Help: "Acknowledgement POSTs of what the sidecar enforces, by result (ok, error).",
		}, []string{"result"}),
		lastUpdate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authgate_proxy_push_last_update_timestamp_seconds",
			Help: "Unix time of the last bundle received intact over the push channel, whatever its outcome.",
		}),
	}
	for _, r := range []string{resultOK, resultUnauthorized, resultError} {
		m.connects.WithLabelValues(r)
	}
	for _, o := range []string{outcomeApplied, outcomeUnchanged, outcomeStale, outcomeRejected, outcomeCorrupt} {
		m.updates.WithLabelValues(o)
	}
	for _, r := range []string{resultOK, resultError} {
		m.acks.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.connects, m.updates, m.acks, m.lastUpdate)
	}
	return m
}
