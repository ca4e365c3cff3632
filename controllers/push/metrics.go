package push

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of authgate_controller_push_auth_failures_total.
const (
	// ReasonInvalid: no credential, a malformed one, or one the API server
	// refused (answered 401).
	ReasonInvalid = "invalid"
	// ReasonUnavailable: the TokenReview could not be made (answered 503).
	ReasonUnavailable = "unavailable"
)

// Results of authgate_controller_push_tokenreviews_total.
const (
	ResultAuthenticated = "authenticated"
	ResultRefused       = "refused"
	ResultError         = "error"
)

// Metrics are the push channel's Prometheus metrics. A nil *Metrics is
// valid: every method is then a no-op, so tests and callers that do not
// care pass nil.
type Metrics struct {
	streams      *prometheus.GaugeVec
	sent         *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	acks         *prometheus.CounterVec
	reviews      *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg (it panics, as MustRegister
// does, when they are registered twice).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_push_streams",
			Help: "Open push watch streams, by the namespace of the sidecars holding them.",
		}, []string{"namespace"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_controller_push_updates_sent_total",
			Help: "Bundle updates written to push watch streams.",
		}, []string{"namespace"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_controller_push_auth_failures_total",
			Help: "Push requests refused for their credential: invalid (401) or the review unavailable (503).",
		}, []string{"reason"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_controller_push_acks_total",
			Help: "Acknowledgements accepted from sidecars, by namespace and the source of the bundle they enforce.",
		}, []string{"namespace", "source"}),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_controller_push_tokenreviews_total",
			Help: "TokenReviews sent to the API server for push tokens (cache hits are not counted), by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.streams, m.sent, m.authFailures, m.acks, m.reviews)
	for _, r := range []string{ReasonInvalid, ReasonUnavailable} {
		m.authFailures.WithLabelValues(r)
	}
	for _, r := range []string{ResultAuthenticated, ResultRefused, ResultError} {
		m.reviews.WithLabelValues(r)
	}
	return m
}

// setStreams sets the namespace's open streams, dropping the series at 0
// so deleted namespaces do not linger.
func (m *Metrics) setStreams(ns string, n int) {
	if m == nil {
		return
	}
	if n == 0 {
		m.streams.DeleteLabelValues(ns)
		return
	}
	m.streams.WithLabelValues(ns).Set(float64(n))
}

func (m *Metrics) updateSent(ns string) {
	if m == nil {
		return
	}
	m.sent.WithLabelValues(ns).Inc()
}

func (m *Metrics) authFailure(reason string) {
	if m == nil {
		return
	}
	m.authFailures.WithLabelValues(reason).Inc()
}

func (m *Metrics) ack(ns, source string) {
	if m == nil {
		return
	}
	m.acks.WithLabelValues(ns, source).Inc()
}

func (m *Metrics) review(result string) {
	if m == nil {
		return
	}
	m.reviews.WithLabelValues(result).Inc()
}
