package assertionkeys

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics report each namespace's ring at scrape time:
// authgate_assertion_key_age_seconds (since the signing key was created)
// and authgate_assertion_keys (keys published).
type Metrics struct {
	now       func() time.Time
	age, keys *prometheus.Desc
	mu        sync.Mutex
	ns        map[string]ringStat
}

type ringStat struct {
	created time.Time
	keys    int
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer, now func() time.Time) *Metrics {
	m := &Metrics{now: now, ns: map[string]ringStat{},
		age: prometheus.NewDesc("authgate_assertion_key_age_seconds",
			"Seconds since the namespace's signing identity assertion key was created.", []string{"namespace"}, nil),
		keys: prometheus.NewDesc("authgate_assertion_keys",
			"Identity assertion keys published in the namespace's JWKS (the signing key, a pending successor, a retired one kept for verifiers).", []string{"namespace"}, nil),
	}
	reg.MustRegister(m)
	return m
}

func (m *Metrics) set(ns string, created time.Time, keys int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ns[ns] = ringStat{created: created, keys: keys}
}

func (m *Metrics) forget(ns string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.ns, ns)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.age
	ch <- m.keys
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for ns, s := range m.ns {
		ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, now.Sub(s.created).Seconds(), ns)
		ch <- prometheus.MustNewConstMetric(m.keys, prometheus.GaugeValue, float64(s.keys), ns)
	}
}
