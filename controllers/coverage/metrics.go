package coverage

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the coverage gauges. A policy's series go when the policy
// does; a namespace's when nothing of authgate is left in it (no policy,
// no injected pod, and no opt-in).
type Metrics struct {
	selected, unprotected, bypassable *prometheus.GaugeVec
	lagging                           *prometheus.GaugeVec
	injectedUnselected, optedOut      *prometheus.GaugeVec

	mu sync.Mutex
	// policies records the policies with series, per namespace.
	policies map[string]map[string]bool
}

// NewMetrics registers the coverage metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	policy := []string{"namespace", "policy"}
	ns := []string{"namespace"}
	m := &Metrics{
		selected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_policy_selected_pods",
			Help: "Pods the AuthPolicy selects, not counting pods being deleted.",
		}, policy),
		unprotected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_policy_unprotected_pods",
			Help: "Pods the AuthPolicy selects that run without the authgate sidecar: nothing enforces the policy for them.",
		}, policy),
		bypassable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_policy_bypassable_pods",
			Help: "Pods the AuthPolicy selects that run the sidecar with inbound capture off (authgate.dev/inbound-capture: \"false\"): reachable around the proxy on the pod IP.",
		}, policy),
		lagging: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_policy_lagging_pods",
			Help: "Pods the AuthPolicy selects that run the sidecar but have not reported, over the push channel, enforcing the policy's current generation (config lag). Only with the push channel on.",
		}, policy),
		injectedUnselected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_injected_unselected_pods",
			Help: "Pods with the authgate sidecar that no AuthPolicy selects: their sidecar denies every request.",
		}, ns),
		optedOut: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_controller_opted_out_pods",
			Help: "Pods labelled authgate.dev/inject=false in a namespace that opted in to injection: they run without the sidecar.",
		}, ns),
		policies: map[string]map[string]bool{},
	}
	reg.MustRegister(m.selected, m.unprotected, m.bypassable, m.lagging, m.injectedUnselected, m.optedOut)
	return m
}

// set exports a namespace's result; keep says whether its namespace
// series stay (see Metrics), push whether sidecars report what they
// enforce (the lagging series exist only then). Series of policies gone
// are deleted.
func (m *Metrics) set(ns string, res Result, keep, push bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	had := m.policies[ns]
	now := map[string]bool{}
	for name, c := range res.Policies {
		if c == nil {
			continue
		}
		now[name] = true
		m.selected.WithLabelValues(ns, name).Set(float64(c.SelectedPods))
		m.unprotected.WithLabelValues(ns, name).Set(float64(c.UnprotectedPods))
		m.bypassable.WithLabelValues(ns, name).Set(float64(c.BypassablePods))
		if push {
			m.lagging.WithLabelValues(ns, name).Set(float64(max(c.ProtectedPods+c.BypassablePods-c.EnforcingPods, 0)))
		} else {
			m.lagging.DeleteLabelValues(ns, name)
		}
	}
	for name := range had {
		if !now[name] {
			m.deletePolicy(ns, name)
		}
	}
	if len(now) == 0 {
		delete(m.policies, ns)
	} else {
		m.policies[ns] = now
	}
	if !keep {
		m.injectedUnselected.DeleteLabelValues(ns)
		m.optedOut.DeleteLabelValues(ns)
		return
	}
	m.injectedUnselected.WithLabelValues(ns).Set(float64(res.InjectedUnselected))
	m.optedOut.WithLabelValues(ns).Set(float64(len(res.OptedOut)))
}

func (m *Metrics) deletePolicy(ns, name string) {
	m.selected.DeleteLabelValues(ns, name)
	m.unprotected.DeleteLabelValues(ns, name)
	m.bypassable.DeleteLabelValues(ns, name)
	m.lagging.DeleteLabelValues(ns, name)
}
