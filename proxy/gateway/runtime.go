// Package gateway is the request pipeline of authgate-proxy: built once per
// configuration (verifiers, routers, prepared Rego, limiters) and then
// serving every request: canonicalise → strip → authenticate → authorize →
// inject → forward.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/proxy/assertion"
	"github.com/authgate/authgate/proxy/authn"
	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/forwarded"
	"github.com/authgate/authgate/proxy/headers"
	"github.com/authgate/authgate/proxy/jwks"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/ratelimit"
	"github.com/authgate/authgate/proxy/sharedlimit"
	"github.com/authgate/authgate/proxy/upstream"
)

// maxLimiterKeys bounds the memory of every rate limiter.
const maxLimiterKeys = 100_000

// Deps are the runtime's collaborators, injected by the caller.
type Deps struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient fetches JWKS and discovery; nil lets each key set build its own.
	HTTPClient *http.Client
	// Transport reaches the upstream; nil uses Transports.
	Transport http.RoundTripper
	// Transports returns the transport for an upstream setting (the
	// workload's effective one, see workloadSettings); nil builds one.
	Transports func(config.Upstream) http.RoundTripper
	// BufferPool recycles streaming buffers; nil builds one.
	BufferPool httputil.BufferPool
	// Sample decides whether an allowed request is logged; nil uses the
	// configured sample rate with math/rand.
	Sample func(rate float64) bool
	// State keeps limiter buckets, the throttle, the token cache and key
	// sets across configurations; nil gives this runtime a state of its own.
	State *State
	// Assertions signs identity assertions (policies with
	// identityAssertion); nil: every request such a policy would forward
	// is refused with 503.
	Assertions *assertion.Keys
	// Tracing traces requests (docs/tracing.md); nil or disabled: no
	// spans, and the request path only tests a nil tracer.
	Tracing *tracing.Provider
}

// Runtime is one immutable, fully built configuration.
type Runtime struct {
	cfg       *config.ProxyConfig
	hash      string
	deps      Deps
	authn     *authn.Authenticator
	policies  []*policyRuntime
	stripper  *headers.Stripper
	trust     *forwarded.Trust
	proxy     *httputil.ReverseProxy
	target    *url.URL
	global    []limitRule
	authFails bucket // nil: the throttle is off
	credHdrs  []string
	stages    [stageCount]prometheus.Observer
	counters  sync.Map // counterKey → prometheus.Counter
	state     *State
	use       *usage
	work      workload
	tracer    trace.Tracer // nil: tracing off
	prop      propagation.TextMapPropagator
}

type limitRule struct {
	key    string
	bucket bucket
}

type policyRuntime struct {
	cfg           *config.Policy
	router        *authz.Router
	engine        *authz.Engine
	scope         *authn.Scope
	limits        []limitRule
	authFails     bucket // the throttle of this policy's requests: the runtime's unless sharedLimits differ
	enforce       bool
	managedHeader []string
	revoked       *revocations // nil: the policy revokes nothing (in force)
	// decisions caches Rego decisions; nil when the policy has no Rego,
	// its Rego reads more than the cache key fixes, or the cache is off.
	decisions *authz.DecisionCache
	// cacheJWT: JWT identities are cached too (the token cache is on, so
	// a token's identity is the same object on its next request).
	cacheJWT bool
}

// Build constructs a runtime for the workload with the given labels. It does
// no network I/O: inline keys are loaded, remote key sets are fetched later
// by Run or on first use. Any error means the config must not be used.
//
// Only the policies the labels select are built: a policy of another
// function never changes what this one accepts or whether its config loads
// (the controller compiles every policy before it enters a bundle; Check
// builds them all for a whole-file verdict).
func Build(ctx context.Context, cfg *config.ProxyConfig, hash string, labels map[string]string, d Deps) (*Runtime, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Sample == nil {
		d.Sample = defaultSample
	}
	if d.State == nil {
		d.State = NewState(StateOptions{Metrics: d.Metrics, Logger: d.Logger, Now: d.Now, HTTPClient: d.HTTPClient, Tracing: d.Tracing})
	}
	rt := &Runtime{cfg: cfg, hash: hash, deps: d, state: d.State, use: newUsage(),
		tracer: d.Tracing.Tracer(TracerName), prop: d.Tracing.TextMapPropagator()}
	if err := rt.build(ctx, labels); err != nil {
		d.State.prune()
		return nil, err
	}
	return rt, nil
}

func (rt *Runtime) build(ctx context.Context, labels map[string]string) error {
	cfg, d, st, u := rt.cfg, rt.deps, rt.state, rt.use
	for i, name := range stageNames {
		rt.stages[i] = d.Metrics.StageDuration.WithLabelValues(name)
	}
	selected := selectPolicies(cfg, labels)
	var err error
	rt.authn, err = authn.New(cfg.Scoped(selected), authn.Options{
		Now: d.Now, Metrics: d.Metrics, Logger: d.Logger,
		KeySet:   func(fp string, iss config.Issuer) (*jwks.KeySet, error) { return st.keySet(u, fp, iss) },
		KeyEpoch: st.epoch,
		Cache:    st.tokenCache(u, cfg.TokenCache),
	})
	if err != nil {
		return fmt.Errorf("build authentication: %w", err)
	}
	for _, v := range rt.authn.VerifierIDs() {
		u.verifiers[v] = true
	}
	// Before the policies: a policy without sharedLimits of its own takes
	// the runtime's throttle.
	rt.global = rt.buildLimits("limits", cfg.Limits.RateLimits, cfg.Limits.SharedLimits)
	rt.authFails = rt.authFailureBucket(cfg.Limits.SharedLimits)
	var managed []string
	for _, p := range selected {
		pr, err := rt.buildPolicy(ctx, p)
		if err != nil {
			return err
		}
		if pr.scope, err = rt.authn.Scope(p); err != nil {
			return err
		}
		rt.policies = append(rt.policies, pr)
	}
	// Every identity header of every policy is stripped, selected or not, so
	// a policy change can never expose a header another policy trusted.
	for i := range cfg.Policies {
		managed = append(managed, identityHeaderNames(&cfg.Policies[i].Headers, cfg.Policies[i].IdentityAssertion)...)
	}
	rt.stripper = headers.NewStripper(managed)
	if rt.work, err = workloadSettings(cfg, selected); err != nil {
		return fmt.Errorf("workload settings: %w", err)
	}
	if rt.trust, err = forwarded.NewTrust(rt.work.trustedProxies); err != nil {
		return fmt.Errorf("trustedProxies: %w", err)
	}
	rt.credHdrs = credentialHeaders(cfg)
	if rt.target, err = url.Parse(cfg.Upstream.URL); err != nil {
		return fmt.Errorf("upstream.url: %w", err)
	}
	transport := d.transportFor(rt.work.upstream)
	pool := d.BufferPool
	if pool == nil {
		pool = upstream.NewBufferPool()
	}
	rt.proxy = upstream.NewReverseProxy(transport, pool, rt.rewrite, rt.upstreamError, d.Logger)
	return nil
}

func (rt *Runtime) buildPolicy(ctx context.Context, p *config.Policy) (*policyRuntime, error) {
	router, err := authz.NewRouter(p.Routes)
	if err != nil {
		return nil, fmt.Errorf("policy %s: routes: %w", p.Name, err)
	}
	pr := &policyRuntime{cfg: p, router: router, enforce: p.Mode != config.ModeAudit,
		managedHeader: identityHeaderNames(&p.Headers, p.IdentityAssertion)}
	if p.Rego != nil {
		if pr.engine, err = authz.Compile(ctx, p.Name, p.Rego); err != nil {
			return nil, fmt.Errorf("policy %s: rego: %w", p.Name, err)
		}
		if err := rt.buildDecisionCache(pr); err != nil {
			return nil, err
		}
	}
	if pr.revoked, err = newRevocations(p, rt.cfg.Issuers, rt.deps.Now()); err != nil {
		return nil, err
	}
	if pr.revoked != nil {
		rt.use.revoked = append(rt.use.revoked, pr.revoked)
	}
	pr.limits = rt.buildLimits(p.Name, p.RateLimits, p.SharedLimits)
	pr.authFails = rt.authFails
	if p.SharedLimits != nil {
		pr.authFails = rt.authFailureBucket(p.SharedLimits)
	}
	rt.use.policies[p.Name] = true
	for i, r := range p.Routes {
		name := r.Name
		if name == "" {
			name = "route-" + strconv.Itoa(i)
		}
		rt.use.routes[[2]string{p.Name, name}] = true
	}
	return pr, nil
}

// buildDecisionCache gives pr a decision cache when its Rego allows one,
// and says which it is in the log and the enabled gauge.
func (rt *Runtime) buildDecisionCache(pr *policyRuntime) error {
	d, dc := rt.deps, rt.cfg.DecisionCache
	ok, why := pr.engine.Cacheable()
	if dc.MaxEntries <= 0 || dc.TTL.Duration <= 0 {
		ok, why = false, "the decision cache is disabled (decisionCache.maxEntries: -1)"
	}
	name := pr.cfg.Name
	if d.Metrics != nil {
		v := 0.0
		if ok {
			v = 1
		}
		d.Metrics.DecisionCacheEnabled.WithLabelValues(name).Set(v)
	}
	if !ok {
		if d.Logger != nil {
			d.Logger.Info("rego decisions are evaluated on every request, not cached", "policy", name, "why", why)
		}
		return nil
	}
	var hits, misses prometheus.Counter
	if d.Metrics != nil {
		hits = d.Metrics.DecisionCache.WithLabelValues(name, "hit")
		misses = d.Metrics.DecisionCache.WithLabelValues(name, "miss")
	}
	c, err := authz.NewDecisionCache(dc.MaxEntries, dc.TTL.Duration, hits, misses)
	if err != nil {
		return fmt.Errorf("policy %s: %w", name, err)
	}
	pr.decisions = c
	tc := rt.cfg.TokenCache
	pr.cacheJWT = tc.MaxEntries > 0 && tc.TTL.Duration > 0
	return nil
}

// CheckPolicies builds every policy of cfg as a sidecar it selects would
// (its authentication, routes, Rego and limits), whatever labels select it.
// It does no network I/O and keeps nothing.
func CheckPolicies(ctx context.Context, cfg *config.ProxyConfig, d Deps) error {
	if d.Now == nil {
		d.Now = time.Now
	}
	for i := range cfg.Policies {
		p := &cfg.Policies[i]
		a, err := authn.New(cfg.Scoped([]*config.Policy{p}), authn.Options{Now: d.Now, Metrics: d.Metrics, Logger: d.Logger})
		if err == nil {
			_, err = a.Scope(p)
		}
		if err != nil {
			return fmt.Errorf("policy %s: build authentication: %w", p.Name, err)
		}
		scratch := &Runtime{cfg: cfg, deps: d, state: NewState(StateOptions{Now: d.Now}), use: newUsage()}
		if _, err := scratch.buildPolicy(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// selectPolicies returns the policies whose selector matches the labels.
func selectPolicies(cfg *config.ProxyConfig, labels map[string]string) []*config.Policy {
	var out []*config.Policy
	for i := range cfg.Policies {
		if cfg.Policies[i].Selector.Matches(labels) {
			out = append(out, &cfg.Policies[i])
		}
	}
	return out
}

// buildLimits takes the rules' limiters from the State: a rule that did not
// change keeps its buckets across configurations. With shared set the
// buckets live in Redis and the local ones are the fallback.
func (rt *Runtime) buildLimits(scope string, rls []config.RateLimit, shared *config.SharedLimits) []limitRule {
	out := make([]limitRule, 0, len(rls))
	for i, rl := range rls {
		id := limiterID{scope: scope, index: i, key: rl.Key, rps: rl.RequestsPerSecond, burst: rl.Burst}
		out = append(out, limitRule{key: rl.Key, bucket: rt.bucket(id, shared)})
	}
	return out
}

// authFailureBucket is the auth-failure throttle, local or shared; nil
// when it is off.
func (rt *Runtime) authFailureBucket(shared *config.SharedLimits) bucket {
	af := rt.cfg.Limits.AuthFailures
	if af.PerMinute <= 0 {
		return nil
	}
	return rt.bucket(limiterID{scope: "authFailures", key: "client", rps: float64(af.PerMinute) / 60, burst: af.Burst}, shared)
}

// bucket returns the local limiter of id, or a shared one in front of it.
func (rt *Runtime) bucket(id limiterID, shared *config.SharedLimits) bucket {
	local := rt.state.limiter(rt.use, id)
	if shared == nil {
		return localBucket{local}
	}
	return sharedlimit.NewRule(rt.state.shared, sharedlimit.RuleOptions{
		Name:              id.scope + ":" + strconv.Itoa(id.index) + ":" + id.key,
		RequestsPerSecond: id.rps, Burst: id.burst, Local: local,
		Deny: shared.OnUnavailable == config.SharedFallbackDeny, Metrics: rt.deps.Metrics,
	})
}

func identityHeaderNames(h *config.IdentityHeaders, a *config.IdentityAssertion) []string {
	names := []string{h.Subject, h.Issuer, h.Kind, h.Scopes, h.ClaimsJSON}
	for _, c := range h.Claims {
		names = append(names, c.Header)
	}
	if a != nil {
		names = append(names, a.Header)
	}
	out := names[:0]
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// credentialHeaders lists header names that may carry credentials; they
// never reach Rego input or logs.
func credentialHeaders(cfg *config.ProxyConfig) []string {
	var out []string
	add := func(srcs []config.CredentialSource) {
		for _, s := range srcs {
			if s.Type == config.SourceHeader {
				out = append(out, strings.ToLower(s.Name))
			}
		}
	}
	for _, is := range cfg.Issuers {
		add(is.Sources)
	}
	add(cfg.APIKeys.Sources)
	for i := range cfg.Policies {
		if ak := cfg.Policies[i].Authentication.APIKeys; ak != nil {
			add(ak.Sources)
		}
	}
	return out
}

// Run runs background work (JWKS refresh) until ctx is done.
func (rt *Runtime) Run(ctx context.Context) { rt.authn.Run(ctx) }

// Hash is the SHA-256 of the config this runtime was built from.
func (rt *Runtime) Hash() string { return rt.hash }

// Policies names the policies that select this workload.
func (rt *Runtime) Policies() []string {
	out := make([]string, len(rt.policies))
	for i, p := range rt.policies {
		out[i] = p.cfg.Name
	}
	return out
}

// Config returns the runtime's configuration (read-only).
func (rt *Runtime) Config() *config.ProxyConfig { return rt.cfg }

// Authenticator exposes issuer status for readiness and diagnostics.
func (rt *Runtime) Authenticator() *authn.Authenticator { return rt.authn }

var errNoRuntime = errors.New("no valid configuration loaded")

// bucket is a limiter the gateway charges: this replica's own, or one kept
// in Redis (sharedlimit.Rule) in front of it.
type bucket interface {
	Allow(ctx context.Context, key string) sharedlimit.Decision
	Blocked(ctx context.Context, key string) sharedlimit.Decision
}

// localBucket is a bucket of this replica alone.
type localBucket struct{ l *ratelimit.Limiter }

func (b localBucket) Allow(_ context.Context, key string) sharedlimit.Decision {
	ok, retry := b.l.Allow(key)
	return sharedlimit.Decision{Allowed: ok, RetryAfter: retry}
}

func (b localBucket) Blocked(_ context.Context, key string) sharedlimit.Decision {
	blocked, retry := b.l.Blocked(key)
	return sharedlimit.Decision{Allowed: !blocked, RetryAfter: retry}
}
