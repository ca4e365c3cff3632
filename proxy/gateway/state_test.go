package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/metrictest"
)

// reloader builds runtimes from one State and activates them on one Switch,
// as authgate-proxy's reload loop does.
type reloader struct {
	t     *testing.T
	e     *env
	state *gateway.State
	sw    *gateway.Switch
	srv   *httptest.Server
}

func newReloader(t *testing.T, e *env) *reloader {
	r := &reloader{t: t, e: e, sw: &gateway.Switch{},
		state: gateway.NewState(gateway.StateOptions{Metrics: e.metrics, Logger: slog.New(slog.DiscardHandler)})}
	r.srv = httptest.NewServer(r.sw)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *reloader) load(cfg *config.ProxyConfig) {
	r.t.Helper()
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		r.t.Fatalf("config invalid: %v", errs)
	}
	rt, err := gateway.Build(context.Background(), cfg, "h", map[string]string{"app": "fn"},
		gateway.Deps{Logger: slog.New(slog.DiscardHandler), Metrics: r.e.metrics, State: r.state})
	if err != nil {
		r.t.Fatalf("build: %v", err)
	}
	r.sw.Store(rt)
}

func (r *reloader) get(path string, hdr ...string) int {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatalf("request: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stateConfig: policy fn (inline keys of the dev issuer, the partner key
// limited to 3 requests, a throttle of 2 failures) and, with extra, an
// audit policy trusting a second IdP.
func stateConfig(e *env, keys config.JSONWebKeySet, extra *devissuer.Issuer, routes ...config.Route) *config.ProxyConfig {
	cfg := baseConfig(e.idp.URL, keys, e.fnTS.URL)
	cfg.Limits.AuthFailures = config.AuthFailureLimit{PerMinute: 1, Burst: 2}
	p := &cfg.Policies[0]
	p.RateLimits = []config.RateLimit{{Key: config.RateKeyAPIKey, RequestsPerSecond: 0.001, Burst: 3}}
	p.Routes = append(p.Routes, routes...)
	if extra != nil {
		cfg.Issuers = append(cfg.Issuers, config.Issuer{Name: "extra-idp", IssuerURL: extra.URL(), JWKSURL: extra.URL() + "/jwks", Audiences: []string{"api"}})
		cfg.Policies = append(cfg.Policies, config.Policy{Name: "extra", Mode: config.ModeAudit,
			Selector:       config.Selector{MatchLabels: map[string]string{"app": "fn"}},
			Authentication: config.Authentication{Issuers: []string{"extra-idp"}},
			Routes:         []config.Route{{Name: "all"}}})
	}
	return cfg
}

// TestReloadKeepsStateAndDropsWhatWasRemoved reloads under load: buckets,
// the throttle, key sets and cached tokens whose verifier did not change
// survive a policy edit and a key added by the controller; a removed key
// drops the identities it verified; a removed policy and issuer leave no
// metric series, no key set and no cache entry behind.
func TestReloadKeepsStateAndDropsWhatWasRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := faultidp.New(t).Issuer
	r := newReloader(t, e)
	k1 := e.issuer.PublicJWKS()
	r.load(stateConfig(e, k1, other))

	tok := e.mint(nil)
	if got := r.get("/orders/1", bearer(tok)...); got != 200 {
		t.Fatalf("got %d, want 200", got)
	}
	otherTok, _ := other.Mint(map[string]any{"sub": "x", "aud": "api"})
	r.get("/orders/1", bearer(otherTok)...) // verified (and cached) by the audit policy's issuer
	for range 3 {
		r.get("/orders/1", "X-API-Key", partnerKey)
	}
	for range 2 {
		r.get("/orders/1", bearer("a.b.c")...)
	}
	mustState := func(stage string) {
		t.Helper()
		if got := r.get("/orders/1", "X-API-Key", partnerKey); got != 429 {
			t.Fatalf("%s: API key bucket: got %d, want 429 (bucket kept)", stage, got)
		}
		if got := r.get("/orders/1", bearer("x.y.z")...); got != 429 {
			t.Fatalf("%s: throttle: got %d, want 429 (failures kept)", stage, got)
		}
		hits := testutil.ToFloat64(e.metrics.TokenCache.WithLabelValues("hit"))
		if got := r.get("/orders/1", bearer(tok)...); got != 200 {
			t.Fatalf("%s: cached token: got %d, want 200", stage, got)
		}
		if testutil.ToFloat64(e.metrics.TokenCache.WithLabelValues("hit")) <= hits {
			t.Fatalf("%s: the token was verified again, want a cache hit (cache kept)", stage)
		}
	}
	mustState("before any reload")
	if n := other.JWKSRequests(); n != 1 {
		t.Fatalf("got %d fetches of the second IdP, want 1", n)
	}

	stop, failures := loadInBackground(r, e.mint(map[string]any{"sub": "load"}, devissuer.WithAlg(devissuer.ES256)))
	// A policy edit, and a key added by the controller: nothing is reset.
	if _, err := e.issuer.RotateKey(devissuer.RS256); err != nil {
		t.Fatal(err)
	}
	both := config.JSONWebKeySet{Keys: slices.Concat(k1.Keys, e.issuer.PublicJWKS().Keys[:1])}
	r.load(stateConfig(e, both, other, config.Route{Name: "new", Paths: []string{"/new/**"}}))
	mustState("after a policy edit and an added key")
	if n := other.JWKSRequests(); n != 1 {
		t.Fatalf("got %d fetches of the second IdP, want 1 (key set kept)", n)
	}
	entries := testutil.ToFloat64(e.metrics.TokenCacheEntries)

	// The audit policy and its issuer go away, and so does the old key.
	r.load(stateConfig(e, e.issuer.PublicJWKS(), nil))
	stop()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d requests failed during the reloads, want 0", n)
	}
	// Refused (429: this client is still throttled, and the token is no
	// longer known): a kept cache entry would have answered 200.
	if got := r.get("/orders/1", bearer(tok)...); got != 429 {
		t.Fatalf("a token signed with a removed key: got %d, want it refused (its cached identity dropped)", got)
	}
	if got := testutil.ToFloat64(e.metrics.TokenCacheEntries); got >= entries {
		t.Fatalf("got %v cache entries, want fewer than %v: entries of removed verifiers dropped", got, entries)
	}
	assertNoSeries(t, e, "policy", "extra", "issuer", "extra-idp")
}

// loadInBackground sends valid requests until stopped and counts every
// answer that is not 200.
func loadInBackground(r *reloader, tok string) (stop func(), failures *atomic.Int64) {
	failures = &atomic.Int64{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c := r.srv.Client()
		for {
			select {
			case <-done:
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := c.Do(req)
			if err != nil || resp.StatusCode != 200 {
				failures.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	})
	return func() { close(done); wg.Wait() }, failures
}

// assertNoSeries fails if a series carries one of the label/value pairs.
func assertNoSeries(t *testing.T, e *env, labels ...string) {
	t.Helper()
	var left []string
	for i := 0; i+1 < len(labels); i += 2 {
		left = append(left, metrictest.Labelled(t, e.reg, labels[i], labels[i+1])...)
	}
	if len(left) > 0 {
		t.Fatalf("series of removed policies or issuers remain: %s", strings.Join(left, " "))
	}
}

// A build that fails after creating key sets (here: new inline keys, then
// a Rego module that does not compile) leaves the key metrics to the key
// set in use: the alert on a sidecar without usable keys reads them.
func TestFailedBuildLeavesKeyMetricsToTheActiveKeySet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReloader(t, e)
	all := e.issuer.PublicJWKS()
	r.load(stateConfig(e, all, nil))
	keys := func() float64 { return metrictest.Sum(t, e.reg, "authgate_jwks_keys", "issuer", "dev") }
	if got := keys(); got != float64(len(all.Keys)) {
		t.Fatalf("got authgate_jwks_keys %v, want %d", got, len(all.Keys))
	}

	broken := stateConfig(e, config.JSONWebKeySet{Keys: all.Keys[:1]}, nil)
	broken.Policies[0].Rego = &config.Rego{Modules: []config.RegoModule{{Name: "p.rego", Source: "package authgate.authz\ndecision := {"}}}
	broken.Default()
	if _, err := gateway.Build(t.Context(), broken, "h2", map[string]string{"app": "fn"},
		gateway.Deps{Logger: slog.New(slog.DiscardHandler), Metrics: e.metrics, State: r.state}); err == nil {
		t.Fatal("got the broken Rego built, want an error")
	}
	if got := keys(); got != float64(len(all.Keys)) {
		t.Fatalf("got authgate_jwks_keys %v after a failed build, want the active key set's %d", got, len(all.Keys))
	}
}
