package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's own metrics, next to controller-runtime's.
type Metrics struct {
	reconciles *prometheus.CounterVec
}

// NewMetrics registers the controller metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_controller_reconcile_total",
		Help: "Namespace reconciles by result (success, error).",
	}, []string{"result"})}
	reg.MustRegister(m.reconciles)
	return m
}

func (m *Metrics) observe(err error) {
	if err != nil {
		m.reconciles.WithLabelValues("error").Inc()
		return
	}
	m.reconciles.WithLabelValues("success").Inc()
}
