package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/proxy/config"
)

// Target kinds.
const (
	kindBaseline = "baseline"
	kindProxy    = "authgate"
	kindPeer     = "peer"
)

// target is one thing measured: the baseline, an authgate-proxy config or
// a peer.
type target struct {
	Name    string // short id, used by -only and in the chart
	Title   string
	Kind    string
	Path    string
	Headers [][2]string
	// Config is an authgate target's configuration (nil for the others);
	// the profiling run reuses it.
	Config *config.ProxyConfig
	// start launches the target's processes and returns them, the main
	// (accounted for RSS) first, once the listener at addr answers.
	start func(ctx context.Context) (addr string, procs []*proc, err error)
}

// regoDepartments is the small ABAC policy: the department claim must equal
// the path segment after /api/.
const regoDepartments = `package authgate.authz

import rego.v1

default decision := {"allow": false, "reason": "department mismatch"}

decision := {"allow": true, "headers": {"X-Authgate-Department": input.identity.claims.department}} if {
	input.identity.claims.department == input.request.segments[1]
}
`

// proxyLabels select the benchmark policy.
const proxyLabels = "app=fn"

// coreTargets are the baseline and the five proxy configurations.
func (e *env) coreTargets() []*target {
	bearer := [][2]string{{"Authorization", "Bearer " + e.token}}
	ts := []*target{{
		Name: "baseline", Title: "bare ReverseProxy (baseline)", Kind: kindBaseline, Path: "/orders/1",
		start: e.startBaseline,
	}}
	for _, p := range []struct {
		name, title, path string
		headers           [][2]string
		tweak             func(*config.ProxyConfig)
	}{
		{"public", "authgate: public route", "/healthz", nil, nil},
		{"jwt", "authgate: cached JWT (RS256)", "/orders/1", bearer, nil},
		{"jwt-rego", "authgate: cached JWT + Rego ABAC", "/api/sales/report", bearer, addRego},
		{"jwt-fresh", "authgate: fresh RS256 per request", "/orders/1", bearer, func(c *config.ProxyConfig) {
			c.TokenCache.MaxEntries = -1
		}},
		{"apikey", "authgate: API key", "/orders/1", [][2]string{{"X-API-Key", e.apiKey}}, nil},
	} {
		cfg := e.proxyConfig()
		if p.tweak != nil {
			p.tweak(cfg)
		}
		ts = append(ts, &target{
			Name: p.name, Title: p.title, Kind: kindProxy, Path: p.path, Headers: p.headers, Config: cfg,
			start: func(ctx context.Context) (string, []*proc, error) {
				return e.startProxy(ctx, e.bins.Proxy, p.name, cfg, nil)
			},
		})
	}
	return append(ts, e.redisTarget(bearer), e.tracedTarget(bearer))
}

// tracedTarget is the cached-JWT route with tracing on at 1 % sampling,
// exporting over OTLP/HTTP to a receiver on loopback; the report compares
// it with the jwt target of the same run (≥ 0.97 ×, docs/tracing.md).
func (e *env) tracedTarget(bearer [][2]string) *target {
	cfg := e.proxyConfig()
	sink := &otlpSink{}
	return &target{
		Name: "jwt-traced", Title: "authgate: cached JWT, tracing at 1 %", Kind: kindProxy, Path: "/orders/1", Headers: bearer, Config: cfg,
		start: func(ctx context.Context) (string, []*proc, error) {
			url, err := sink.start()
			if err != nil {
				return "", nil, err
			}
			return e.startProxy(ctx, e.bins.Proxy, "jwt-traced", cfg, []string{"--tracing-endpoint", url, "--tracing-sampling-ratio", "0.01"})
		},
	}
}

// proxyConfig is the benchmark's ProxyConfig: inline JWKS (no network),
// one policy, no decision log sampling, as a busy production proxy runs.
func (e *env) proxyConfig() *config.ProxyConfig {
	jwks := e.issuer.PublicJWKS()
	zero := 0.0
	return &config.ProxyConfig{
		APIVersion: config.APIVersion,
		Kind:       config.Kind,
		Upstream:   config.Upstream{URL: "http://" + e.upAddr},
		Issuers: []config.Issuer{{
			Name: "dev", IssuerURL: e.issuer.URL(), JWKS: &jwks, Audiences: []string{"api"},
			Algorithms: []string{"RS256"},
		}},
		APIKeys: config.APIKeys{Keys: []config.APIKey{{Name: "partner", Hash: e.keyHash, Scopes: []string{"orders:read"}}}},
		Policies: []config.Policy{{
			Name:           "bench/fn",
			Selector:       config.Selector{MatchLabels: map[string]string{"app": "fn"}},
			Authentication: config.Authentication{Issuers: []string{"dev"}, APIKeys: &config.APIKeyAccess{}},
			Routes: []config.Route{
				{Name: "health", Paths: []string{"/healthz"}, Public: true},
				{Name: "orders", Paths: []string{"/orders/**"}, RequireScopes: []string{"orders:read"}},
				{Name: "api", Paths: []string{"/api/**"}},
			},
			Headers: config.IdentityHeaders{Claims: []config.ClaimHeader{{Header: "X-Authgate-Email", Claim: "email"}}},
		}},
		DecisionLog: config.DecisionLog{SampleRate: &zero},
	}
}

// addRego gives the policy the department ABAC module.
func addRego(c *config.ProxyConfig) {
	c.Policies[0].Rego = &config.Rego{Modules: []config.RegoModule{{Name: "abac.rego", Source: regoDepartments}}}
}

// writeConfig renders cfg to a file of its own.
func (e *env) writeConfig(name string, cfg *config.ProxyConfig) (string, error) {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("render %s config: %w", name, err)
	}
	path := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("write %s config: %w", name, err)
	}
	return path, nil
}

// startProxy starts bin (authgate-proxy or its profiling variant) with cfg
// and waits for /readyz.
func (e *env) startProxy(ctx context.Context, bin, name string, cfg *config.ProxyConfig, extra []string) (string, []*proc, error) {
	path, err := e.writeConfig(name, cfg)
	if err != nil {
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	args := append([]string{"--config", path, "--labels", proxyLabels, "--listen", addr, "--admin-listen", admin}, extra...)
	p, err := startProc(name, bin, args, nil, filepath.Join(e.dir, name+".log"))
	if err != nil {
		return "", nil, err
	}
	if _, err := waitReady(ctx, p, "http://"+admin+"/readyz", 5*time.Millisecond, 30*time.Second); err != nil {
		p.stop()
		return "", nil, err
	}
	return addr, []*proc{p}, nil
}

func (e *env) startBaseline(ctx context.Context) (string, []*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	p, err := startProc("baseline", e.bins.Baseline, []string{"-listen", addr, "-upstream", "http://" + e.upAddr},
		nil, filepath.Join(e.dir, "baseline.log"))
	if err != nil {
		return "", nil, err
	}
	if _, err := waitReady(ctx, p, "http://"+addr+"/", 5*time.Millisecond, 10*time.Second); err != nil {
		p.stop()
		return "", nil, err
	}
	return addr, []*proc{p}, nil
}
