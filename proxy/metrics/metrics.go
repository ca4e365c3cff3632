// Package metrics holds every Prometheus metric of the proxy. It is built
// once in main with an injected Registerer and passed to each component.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Decision label values of RequestsTotal.
const (
	DecisionAllow     = "allow"
	DecisionDeny      = "deny"
	DecisionAuditDeny = "audit_deny"
)

// Metrics are the proxy's metrics.
type Metrics struct {
	// RequestsTotal counts requests by policy, route, decision and reason.
	RequestsTotal *prometheus.CounterVec
	// StageDuration observes latency per stage: authn, authz, upstream, total.
	StageDuration *prometheus.HistogramVec
	// JWKSFetches counts key set fetches by issuer and result (success, error).
	JWKSFetches *prometheus.CounterVec
	// JWKSRefetchSuppressed counts unknown-kid refetches skipped by the
	// issuer's refetch limit (see package jwks).
	JWKSRefetchSuppressed *prometheus.CounterVec
	// JWKSLastSuccess is the Unix time of the last good key set per issuer.
	JWKSLastSuccess *prometheus.GaugeVec
	// TokenCache counts verified-token cache lookups by result (hit, miss).
	TokenCache *prometheus.CounterVec
	// TokenCacheEntries is the current number of cached tokens.
	TokenCacheEntries prometheus.Gauge
	// ConfigReloads counts config loads by result (success, failure, stale:
	// older than the enforced revision, not loaded).
	ConfigReloads *prometheus.CounterVec
	// ConfigLastSuccess is the Unix time of the last successful load.
	ConfigLastSuccess prometheus.Gauge
	// ConfigInfo is 1 for the active config hash.
	ConfigInfo *prometheus.GaugeVec
	// RateLimited counts 429 responses by limiter (ip, subject, apikey, route, auth_failures).
	RateLimited *prometheus.CounterVec
	// RegoEvalErrors counts failed Rego evaluations by policy and reason.
	RegoEvalErrors *prometheus.CounterVec
	// DecisionCache counts Rego decision cache lookups by policy and result
	// (hit, miss).
	DecisionCache *prometheus.CounterVec
	// DecisionCacheEnabled is 1 for a policy whose Rego decisions are
	// cached, 0 for one whose Rego reads more than the cache key fixes.
	DecisionCacheEnabled *prometheus.GaugeVec
	// LimitBackendCalls counts calls to the shared-limit backend (Redis) by
	// result: ok, error, timeout, breaker_open, unconfigured.
	LimitBackendCalls *prometheus.CounterVec
	// LimitBackendDuration observes each Redis call of a shared limit.
	LimitBackendDuration prometheus.Histogram
	// LimitBackendFallbacks counts decisions taken without Redis by what
	// the limit's onUnavailable chose: local (this replica's buckets) or
	// deny (503).
	LimitBackendFallbacks *prometheus.CounterVec
	// LimitBackendBreakerState is 1 while the circuit breaker in front of
	// Redis is open (no call is made), 0.5 while half-open, 0 closed.
	LimitBackendBreakerState prometheus.Gauge
	// UpgradedConnections is the number of open upgraded (WebSocket)
	// connections, which a shutdown waits for.
	UpgradedConnections prometheus.Gauge
	// AssertionsSigned counts identity assertions signed, by policy.
	AssertionsSigned *prometheus.CounterVec
	// AssertionFailures counts requests refused (503) because their
	// identity assertion could not be signed, by policy and reason.
	AssertionFailures *prometheus.CounterVec

	keys         *keyCollector
	assertionKey *assertionKeyCollector
}

// New creates and registers every metric on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RequestsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_requests_total",
			Help: "Requests handled, by policy, route, decision (allow, deny, audit_deny) and reason.",
		}, []string{"policy", "route", "decision", "reason"}),
		StageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_stage_duration_seconds",
			Help:    "Time spent per request stage (authn, authz, upstream, total).",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"stage"}),
		JWKSFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_jwks_fetches_total",
			Help: "JWKS and discovery fetches, by issuer and result (success, error).",
		}, []string{"issuer", "result"}),
		JWKSRefetchSuppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_jwks_refetch_suppressed_total",
			Help: "Token-triggered key refetches (unknown key id) skipped by the issuer's refetch limit: at most 3 per refresh cooldown with keys loaded, one per 250ms without.",
		}, []string{"issuer"}),
		JWKSLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_jwks_last_success_timestamp_seconds",
			Help: "Unix time the issuer's key set was last loaded successfully.",
		}, []string{"issuer"}),
		TokenCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_token_cache_requests_total",
			Help: "Verified-token cache lookups by result (hit, miss).",
		}, []string{"result"}),
		TokenCacheEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authgate_token_cache_entries",
			Help: "Tokens currently in the verified-token cache.",
		}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_config_reloads_total",
			Help: "Configuration loads by result (success, failure, stale: older than the enforced revision, not loaded).",
		}, []string{"result"}),
		ConfigLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authgate_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_config_info",
			Help: "The active configuration: 1 for its SHA-256 hash.",
		}, []string{"hash"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_rate_limited_total",
			Help: "Requests refused with 429, by limiter (ip, subject, apikey, route, auth_failures).",
		}, []string{"limiter"}),
		RegoEvalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_rego_eval_errors_total",
			Help: "Rego evaluations that failed (all deny), by policy and reason (rego_undefined, rego_error, rego_timeout, rego_panic, rego_invalid_result).",
		}, []string{"policy", "reason"}),
		DecisionCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_rego_decision_cache_requests_total",
			Help: "Rego decision cache lookups by policy and result (hit, miss); only policies whose Rego reads just identity, method, path, route and policy are cached.",
		}, []string{"policy", "result"}),
		DecisionCacheEnabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_rego_decision_cache_enabled",
			Help: "1 when the policy's Rego decisions are cached, 0 when its Rego reads more than the cache key fixes (headers, query, host, client address, time) or the cache is off.",
		}, []string{"policy"}),
		keys: &keyCollector{
			usable: prometheus.NewDesc("authgate_jwks_keys",
				"Usable verification keys per issuer: inline keys and remote keys not past their maximum staleness. 0: tokens of the issuer are refused.",
				[]string{"issuer"}, nil),
			inline: prometheus.NewDesc("authgate_jwks_inline_keys",
				"Usable keys the configuration carries inline per issuer (the controller renders them); they never go stale and need no network.",
				[]string{"issuer"}, nil),
			age: prometheus.NewDesc("authgate_jwks_key_age_seconds",
				"Seconds since the issuer's key set was last loaded successfully.", []string{"issuer"}, nil),
			sources: map[string]func() KeyStats{},
		},
	}
	m.newAssertionMetrics()
	m.newLimitBackendMetrics(reg)
	reg.MustRegister(m.RequestsTotal, m.StageDuration, m.JWKSFetches, m.JWKSRefetchSuppressed,
		m.JWKSLastSuccess, m.TokenCache, m.TokenCacheEntries, m.ConfigReloads, m.ConfigLastSuccess,
		m.ConfigInfo, m.RateLimited, m.RegoEvalErrors, m.DecisionCache, m.DecisionCacheEnabled, m.UpgradedConnections, m.AssertionsSigned, m.AssertionFailures,
		m.keys, m.assertionKey)
	return m
}

// KeyStats is an issuer's key set as a scrape sees it.
type KeyStats struct {
	// Usable is the number of keys that verify tokens now.
	Usable int
	// Inline is the number of those the configuration carries inline.
	Inline int
	// Age is the seconds since the keys in use were loaded; HasAge is
	// false while none has been.
	Age    float64
	HasAge bool
}

// SetKeySource reports issuer's key set at scrape time: authgate_jwks_keys,
// authgate_jwks_inline_keys and authgate_jwks_key_age_seconds. They are
// read when scraped, not set when keys change, because remote keys stop
// being usable by time passing alone (maximum staleness) and a gauge set
// on fetches would go on reporting them. The last source set for an issuer
// wins; nil removes the issuer.
func (m *Metrics) SetKeySource(issuer string, src func() KeyStats) {
	m.keys.mu.Lock()
	defer m.keys.mu.Unlock()
	if src == nil {
		delete(m.keys.sources, issuer)
		return
	}
	m.keys.sources[issuer] = src
}

type keyCollector struct {
	usable, inline, age *prometheus.Desc
	mu                  sync.Mutex
	sources             map[string]func() KeyStats
}

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.usable
	ch <- c.inline
	ch <- c.age
}

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for issuer, src := range c.sources {
		st := src()
		ch <- prometheus.MustNewConstMetric(c.usable, prometheus.GaugeValue, float64(st.Usable), issuer)
		ch <- prometheus.MustNewConstMetric(c.inline, prometheus.GaugeValue, float64(st.Inline), issuer)
		if st.HasAge {
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, st.Age, issuer)
		}
	}
}

// newLimitBackendMetrics builds and registers the shared-limit metrics and
// the upgraded-connection gauge.
func (m *Metrics) newLimitBackendMetrics(reg prometheus.Registerer) {
	m.UpgradedConnections = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authgate_upgraded_connections",
		Help: "Open upgraded (WebSocket) connections through the proxy; a shutdown waits for them up to its timeout.",
	})
	m.LimitBackendCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_ratelimit_backend_requests_total",
		Help: "Calls to the shared-limit backend (Redis), by result: ok, error, timeout (past --redis-timeout), breaker_open (not called), unconfigured (no --redis-address).",
	}, []string{"result"})
	m.LimitBackendDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "authgate_ratelimit_backend_duration_seconds",
		Help:    "Time of each Redis call made for a shared limit (timeouts included).",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05},
	})
	m.LimitBackendFallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_ratelimit_backend_fallbacks_total",
		Help: "Shared-limit decisions taken without Redis, by action: local (this replica's own buckets) or deny (503), as the limit's onUnavailable says.",
	}, []string{"action"})
	m.LimitBackendBreakerState = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authgate_ratelimit_backend_breaker_state",
		Help: "The circuit breaker in front of Redis: 0 closed, 0.5 half-open (probing), 1 open (Redis is not called).",
	})
	for _, r := range []string{"ok", "error", "timeout", "breaker_open", "unconfigured"} {
		m.LimitBackendCalls.WithLabelValues(r)
	}
	for _, a := range []string{"local", "deny"} {
		m.LimitBackendFallbacks.WithLabelValues(a)
	}
	reg.MustRegister(m.LimitBackendCalls, m.LimitBackendDuration, m.LimitBackendFallbacks, m.LimitBackendBreakerState)
}

func (m *Metrics) newAssertionMetrics() {
	m.AssertionsSigned = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_assertions_signed_total",
		Help: "Identity assertions signed for the function, by policy.",
	}, []string{"policy"})
	m.AssertionFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_assertion_signing_failures_total",
		Help: "Requests refused with 503 because their identity assertion could not be signed, by policy and reason (no_key, sign_error).",
	}, []string{"policy", "reason"})
	m.assertionKey = &assertionKeyCollector{desc: prometheus.NewDesc("authgate_assertion_signing_key_age_seconds",
		"Seconds since the identity assertion key that signs now was created; absent while the proxy holds no usable key.", nil, nil)}
}

// SetAssertionKeySource reports authgate_assertion_signing_key_age_seconds
// at scrape time from src (ok false: no usable key, the series is absent).
// nil removes the source.
func (m *Metrics) SetAssertionKeySource(src func() (age float64, ok bool)) {
	m.assertionKey.mu.Lock()
	defer m.assertionKey.mu.Unlock()
	m.assertionKey.src = src
}

type assertionKeyCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	src  func() (float64, bool)
}

func (c *assertionKeyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *assertionKeyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.src == nil {
		return
	}
	if age, ok := c.src(); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, age)
	}
}
