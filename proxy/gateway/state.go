package gateway

import (
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/jwks"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/ratelimit"
	"github.com/authgate/authgate/proxy/sharedlimit"
	"github.com/authgate/authgate/proxy/tokencache"
)

// State is the request-path state that outlives a configuration: rate-limit
// buckets, the auth-failure throttle, the verified-token cache and the JWKS
// key sets, each keyed by what it is for. The app owns one State and every
// Build takes what it needs from it, so a reload (a policy edit, keys
// rotated by the controller) reuses whatever the new configuration did not
// change. When a runtime becomes active (Switch.Store), everything it does
// not use is dropped, with its metric series. State is safe for concurrent
// use.
type State struct {
	now        func() time.Time
	metrics    *metrics.Metrics
	logger     *slog.Logger
	httpClient *http.Client
	shared     *sharedlimit.Backend
	tracer     trace.Tracer // JWKS fetches; nil: tracing off

	mu       sync.Mutex
	limiters map[limiterID]*ratelimit.Limiter
	keySets  map[keySetID]*jwks.KeySet
	epochs   map[string]*keyEpoch
	cache    *tokencache.Cache
	cacheCfg config.TokenCache
	active   *usage
}

// StateOptions are a State's dependencies.
type StateOptions struct {
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient fetches JWKS and discovery; nil lets each key set build its own.
	HTTPClient *http.Client
	// SharedLimits is the Redis that policies with sharedLimits keep their
	// buckets in; nil: none is configured, and those limits act as their
	// onUnavailable says.
	SharedLimits *sharedlimit.Backend
	// Tracing traces JWKS fetches (jwks.fetch spans); nil: none.
	Tracing *tracing.Provider
}

// NewState returns an empty State.
func NewState(o StateOptions) *State {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &State{now: o.Now, metrics: o.Metrics, logger: o.Logger, httpClient: o.HTTPClient, tracer: o.Tracing.Tracer(jwks.TracerName),
		shared:   o.SharedLimits,
		limiters: map[limiterID]*ratelimit.Limiter{}, keySets: map[keySetID]*jwks.KeySet{}, epochs: map[string]*keyEpoch{}}
}

// limiterID identifies a limiter by everything that shapes its buckets: a
// rule with the same place, key, rate and burst keeps its buckets.
type limiterID struct {
	scope string // "limits" (global), "authFailures", or the policy name
	index int
	key   string
	rps   float64
	burst int
}

// keySetID identifies a key set by its key settings and its metrics label.
type keySetID struct{ fingerprint, name string }

// keyEpoch tracks the inline keys a verifier was last built with.
type keyEpoch struct {
	keys map[[32]byte]bool
	n    int
}

// usage is what one runtime takes from the State.
type usage struct {
	limiters  map[limiterID]bool
	keySets   map[keySetID]bool
	verifiers map[string]bool
	routes    map[[2]string]bool // policy, route
	policies  map[string]bool
	cache     *tokencache.Cache
	cacheCfg  config.TokenCache
	revoked   []*revocations // of the policies that revoke tokens
}

func newUsage() *usage {
	return &usage{limiters: map[limiterID]bool{}, keySets: map[keySetID]bool{}, verifiers: map[string]bool{},
		routes: map[[2]string]bool{}, policies: map[string]bool{}}
}

func (s *State) limiter(u *usage, id limiterID) *ratelimit.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.limiters[id] = true
	l, ok := s.limiters[id]
	if !ok {
		l = ratelimit.New(id.rps, id.burst, maxLimiterKeys, s.now)
		s.limiters[id] = l
	}
	return l
}

func (s *State) keySet(u *usage, fingerprint string, iss config.Issuer) (*jwks.KeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := keySetID{fingerprint, iss.Name}
	u.keySets[id] = true
	if ks, ok := s.keySets[id]; ok {
		return ks, nil
	}
	ks, err := jwks.New(jwks.Options{Issuer: iss, HTTPClient: s.httpClient, Now: s.now, Metrics: s.metrics, Logger: s.logger, Tracer: s.tracer})
	if err != nil {
		return nil, err
	}
	s.keySets[id] = ks
	return ks, nil
}

// tokenCache returns the cache for these settings; other settings replace
// it (the old one is emptied when the runtime using it is replaced).
func (s *State) tokenCache(u *usage, cfg config.TokenCache) *tokencache.Cache {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil || s.cacheCfg != cfg {
		s.cache, s.cacheCfg = tokencache.New(cfg.MaxEntries, cfg.TTL.Duration, s.now, s.metrics), cfg
	}
	u.cache, u.cacheCfg = s.cache, s.cacheCfg
	return s.cache
}

// epoch changes whenever a key present the last time verifier was built is
// missing from its inline keys now: identities cached by a verifier
// survive added keys, never removed ones.
func (s *State) epoch(verifier string, inline *config.JSONWebKeySet) string {
	keys := map[[32]byte]bool{}
	if inline != nil {
		for _, k := range inline.Keys {
			keys[sha256.Sum256(k)] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.epochs[verifier]
	if !ok {
		e = &keyEpoch{}
		s.epochs[verifier] = e
	}
	for k := range e.keys {
		if !keys[k] {
			e.n++
			break
		}
	}
	e.keys = keys
	return strconv.Itoa(e.n)
}

// activate makes u the active usage and drops everything it does not use,
// and every cached identity its policies revoke.
func (s *State) activate(u *usage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.active
	s.active = u
	s.pruneLocked(prev)
	s.dropRevokedLocked(u)
}

// dropRevokedLocked removes from u's token cache the identities that a
// revocation of u's policies names, at once rather than when they would
// expire. Requests are refused either way (the runtime checks every
// identity, cached or not); this frees the entries.
func (s *State) dropRevokedLocked(u *usage) {
	if u.cache == nil || len(u.revoked) == 0 {
		return
	}
	now := s.now()
	n := u.cache.Remove(func(_ string, id *identity.Identity) bool {
		for _, r := range u.revoked {
			if r.purges(id, now) {
				return true
			}
		}
		return false
	})
	if n > 0 {
		s.logger.Info("dropped revoked tokens from the verified-token cache", "entries", n)
	}
}

// prune drops what a build took that the active runtime does not use (a
// build that failed or was never activated).
func (s *State) prune() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(nil)
}

func (s *State) pruneLocked(prev *usage) {
	u := s.active
	if u == nil {
		u = newUsage()
	}
	for id := range s.limiters {
		if !u.limiters[id] {
			delete(s.limiters, id)
		}
	}
	names := map[string]bool{}
	for id := range u.keySets {
		names[id.name] = true
	}
	for id, ks := range s.keySets {
		if u.keySets[id] {
			// A key set reports its metrics from New on, also when its
			// build then failed: the one in use reports them again.
			if s.metrics != nil {
				s.metrics.SetKeySource(id.name, ks.KeyStats)
			}
			continue
		}
		delete(s.keySets, id)
		if !names[id.name] {
			s.deleteIssuerSeries(id.name)
		}
	}
	if s.cache != nil && s.cache != u.cache {
		s.cache.Close() // built for a config that never became active
		s.cache, s.cacheCfg = u.cache, u.cacheCfg
	}
	if prev != nil && prev.cache != nil && prev.cache != u.cache {
		prev.cache.Close()
	}
	if u.cache != nil {
		u.cache.Retain(func(v string) bool { return u.verifiers[v] })
	}
	if prev != nil {
		s.deleteRuleSeries(prev, u)
	}
}

func (s *State) deleteIssuerSeries(name string) {
	if s.metrics == nil {
		return
	}
	m := s.metrics
	m.JWKSFetches.DeletePartialMatch(prometheus.Labels{"issuer": name})
	m.JWKSRefetchSuppressed.DeleteLabelValues(name)
	m.JWKSLastSuccess.DeleteLabelValues(name)
	m.SetKeySource(name, nil)
}

// deleteRuleSeries deletes the request series of policies and routes that
// prev served and u does not.
func (s *State) deleteRuleSeries(prev, u *usage) {
	if s.metrics == nil {
		return
	}
	for p := range prev.policies {
		if !u.policies[p] {
			s.metrics.RequestsTotal.DeletePartialMatch(prometheus.Labels{"policy": p})
			s.metrics.RegoEvalErrors.DeletePartialMatch(prometheus.Labels{"policy": p})
		}
	}
	for r := range prev.routes {
		if u.policies[r[0]] && !u.routes[r] {
			s.metrics.RequestsTotal.DeletePartialMatch(prometheus.Labels{"policy": r[0], "route": r[1]})
		}
	}
}
