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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/authn"
	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/forwarded"
	"github.com/authgate/authgate/proxy/headers"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/ratelimit"
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
	authFails *ratelimit.Limiter
	credHdrs  []string
	stages    [stageCount]prometheus.Observer
	work      workload
}

type limitRule struct {
	key     string
	limiter *ratelimit.Limiter
}

type policyRuntime struct {
	cfg           *config.Policy
	router        *authz.Router
	engine        *authz.Engine
	issuers       map[string]bool
	acceptKeys    bool
	keys          map[string]bool // nil: every key
	limits        []limitRule
	enforce       bool
	managedHeader []string
}

// Build constructs a runtime for the workload with the given labels. It does
// no network I/O: inline keys are loaded, remote key sets are fetched later
// by Run or on first use. Any error means the config must not be used.
func Build(ctx context.Context, cfg *config.ProxyConfig, hash string, labels map[string]string, d Deps) (*Runtime, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Sample == nil {
		d.Sample = defaultSample
	}
	rt := &Runtime{cfg: cfg, hash: hash, deps: d}
	for i, name := range stageNames {
		rt.stages[i] = d.Metrics.StageDuration.WithLabelValues(name)
	}
	var err error
	rt.authn, err = authn.New(cfg, authn.Options{HTTPClient: d.HTTPClient, Now: d.Now, Metrics: d.Metrics, Logger: d.Logger})
	if err != nil {
		return nil, fmt.Errorf("build authentication: %w", err)
	}
	var managed []string
	for i := range cfg.Policies {
		p := &cfg.Policies[i]
		if !p.Selector.Matches(labels) {
			continue
		}
		pr, err := buildPolicy(ctx, p, d)
		if err != nil {
			return nil, err
		}
		rt.policies = append(rt.policies, pr)
	}
	// Every identity header of every policy is stripped, selected or not, so
	// a policy change can never expose a header another policy trusted.
	for i := range cfg.Policies {
		managed = append(managed, identityHeaderNames(&cfg.Policies[i].Headers)...)
	}
	rt.stripper = headers.NewStripper(managed)
	if rt.work, err = workloadSettings(cfg, labels); err != nil {
		return nil, fmt.Errorf("workload settings: %w", err)
	}
	if rt.trust, err = forwarded.NewTrust(rt.work.trustedProxies); err != nil {
		return nil, fmt.Errorf("trustedProxies: %w", err)
	}
	rt.global = buildLimits(cfg.Limits.RateLimits, d.Now)
	if af := cfg.Limits.AuthFailures; af.PerMinute > 0 {
		rt.authFails = ratelimit.New(float64(af.PerMinute)/60, af.Burst, maxLimiterKeys, d.Now)
	}
	rt.credHdrs = credentialHeaders(cfg)
	if rt.target, err = url.Parse(cfg.Upstream.URL); err != nil {
		return nil, fmt.Errorf("upstream.url: %w", err)
	}
	transport := d.transportFor(rt.work.upstream)
	pool := d.BufferPool
	if pool == nil {
		pool = upstream.NewBufferPool()
	}
	rt.proxy = upstream.NewReverseProxy(transport, pool, rt.rewrite, rt.upstreamError, d.Logger)
	return rt, nil
}

func buildPolicy(ctx context.Context, p *config.Policy, d Deps) (*policyRuntime, error) {
	router, err := authz.NewRouter(p.Routes)
	if err != nil {
		return nil, fmt.Errorf("policy %s: routes: %w", p.Name, err)
	}
	pr := &policyRuntime{cfg: p, router: router, enforce: p.Mode != config.ModeAudit, issuers: map[string]bool{},
		managedHeader: identityHeaderNames(&p.Headers)}
	for _, n := range p.Authentication.Issuers {
		pr.issuers[n] = true
	}
	if ak := p.Authentication.APIKeys; ak != nil {
		pr.acceptKeys = true
		if len(ak.Keys) > 0 {
			pr.keys = map[string]bool{}
			for _, k := range ak.Keys {
				pr.keys[k] = true
			}
		}
	}
	if p.Rego != nil {
		if pr.engine, err = authz.Compile(ctx, p.Name, p.Rego); err != nil {
			return nil, fmt.Errorf("policy %s: rego: %w", p.Name, err)
		}
	}
	pr.limits = buildLimits(p.RateLimits, d.Now)
	return pr, nil
}

func buildLimits(rls []config.RateLimit, now func() time.Time) []limitRule {
	out := make([]limitRule, 0, len(rls))
	for _, rl := range rls {
		out = append(out, limitRule{key: rl.Key, limiter: ratelimit.New(rl.RequestsPerSecond, rl.Burst, maxLimiterKeys, now)})
	}
	return out
}

func identityHeaderNames(h *config.IdentityHeaders) []string {
	names := []string{h.Subject, h.Issuer, h.Kind, h.Scopes, h.ClaimsJSON}
	for _, c := range h.Claims {
		names = append(names, c.Header)
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
