package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/test/fakeclock"
	"github.com/authgate/authgate/test/faultidp"
)

// revoker reloads configurations the way authgate-proxy does: each one is
// encoded and parsed as a bundle file is (config.Parse), built from one
// State and activated on one Switch, with a clock the test moves.
type revoker struct {
	t     *testing.T
	e     *env
	clk   *fakeclock.Clock
	logs  *syncBuffer
	state *gateway.State
	sw    *gateway.Switch
	srv   *httptest.Server
}

func newRevoker(t *testing.T, e *env) *revoker {
	r := &revoker{t: t, e: e, clk: fakeclock.New(time.Now()), logs: &syncBuffer{}, sw: &gateway.Switch{}}
	r.state = gateway.NewState(gateway.StateOptions{Metrics: e.metrics, Logger: r.logger(), Now: r.clk.Now})
	r.srv = httptest.NewServer(r.sw)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *revoker) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(r.logs, nil)) }

// build parses cfg as a sidecar reads its file and builds a runtime from
// the shared State, without activating it.
func (r *revoker) build(cfg *config.ProxyConfig) *gateway.Runtime {
	r.t.Helper()
	data, err := yaml.Marshal(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	parsed, err := config.Parse(data)
	if err != nil {
		r.t.Fatalf("config refused: %v\n%s", err, data)
	}
	rt, err := gateway.Build(context.Background(), parsed, config.Hash(data), map[string]string{"app": "fn"},
		gateway.Deps{Logger: r.logger(), Metrics: r.e.metrics, State: r.state, Now: r.clk.Now})
	if err != nil {
		r.t.Fatalf("build: %v", err)
	}
	return rt
}

// load builds cfg and makes it the active configuration.
func (r *revoker) load(cfg *config.ProxyConfig) { r.sw.Store(r.build(cfg)) }

// get sends a request through the active runtime and reports what the
// function received; getVia sends it through srv.
func (r *revoker) get(path, tok string) result {
	return r.getVia(r.srv, path, tok)
}

func (r *revoker) getVia(srv *httptest.Server, path, tok string) result {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	before := r.e.fn.Count()
	resp, err := srv.Client().Do(req)
	if err != nil {
		r.t.Fatalf("request: %v", err)
	}
	return r.e.result(resp, before)
}

func (r *revoker) cacheHits() float64 {
	return testutil.ToFloat64(r.e.metrics.TokenCache.WithLabelValues("hit"))
}

func (r *revoker) cacheEntries() float64 { return testutil.ToFloat64(r.e.metrics.TokenCacheEntries) }

func (r *revoker) revokedCount(decision string) float64 {
	return testutil.ToFloat64(r.e.metrics.RequestsTotal.WithLabelValues("fn", "orders", decision, gateway.ReasonRevoked))
}

// mustCache sends tok twice and proves the second answer came from the
// verified-token cache.
func (r *revoker) mustCache(tok string) {
	r.t.Helper()
	r.get("/orders/1", tok).mustForward(r.t)
	hits := r.cacheHits()
	r.get("/orders/1", tok).mustForward(r.t)
	if r.cacheHits() != hits+1 {
		r.t.Fatalf("got %v cache hits, want %v: the token was not cached", r.cacheHits(), hits+1)
	}
}

// mustRevoke asserts the answer to a revoked token: 401 exactly like an
// invalid token, the function not called, the value never echoed.
func (r result) mustRevoke(t *testing.T, secrets ...string) {
	t.Helper()
	r.mustDeny(t, http.StatusUnauthorized, gateway.ReasonRevoked)
	if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="authgate", error="invalid_token"`; got != want {
		t.Fatalf("got WWW-Authenticate %q, want %q", got, want)
	}
	for _, s := range secrets {
		if strings.Contains(r.raw, s) {
			t.Fatalf("the response %s names %q", r.raw, s)
		}
	}
}

// withRevocations returns the base config with revocations in policy fn.
func withRevocations(e *env, rs ...config.Revocation) *config.ProxyConfig {
	cfg := baseConfig(e.idp.URL, e.issuer.PublicJWKS(), e.fnTS.URL)
	cfg.Policies[0].Revocations = rs
	return cfg
}

func revoke(claim, value string, until time.Time) config.Revocation {
	return config.Revocation{Claim: claim, Value: value, ExpiresAt: until.UTC().Format(time.RFC3339)}
}

// A token accepted (and cached), then a reload that revokes its jti, its
// sub or its sid: the next request is refused as an invalid token, the
// function receives nothing, the cached identity is gone the moment the
// configuration is activated, the decision is counted and logged under
// reason revoked without the token, and other tokens are unaffected.
func TestRevocationTakesEffectOnReload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		claim, value string
		other        map[string]any // claims of a token the entry does not name
	}{
		{config.RevokeJTI, "tok-0001", map[string]any{"jti": "tok-0002"}},
		{config.RevokeSub, "alice", map[string]any{"sub": "bob", "jti": "tok-0003"}},
		{config.RevokeSID, "sess-A", map[string]any{"sid": "sess-B", "jti": "tok-0004"}},
	}
	for _, tt := range tests {
		t.Run(tt.claim, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := newRevoker(t, e)
			tok := e.mint(map[string]any{"jti": "tok-0001", "sid": "sess-A"})
			other := e.mint(tt.other)
			r.load(withRevocations(e))
			r.mustCache(tok)
			r.mustCache(other)
			entries := r.cacheEntries()

			r.load(withRevocations(e, revoke(tt.claim, tt.value, r.clk.Now().Add(time.Hour))))
			if got := r.cacheEntries(); got != entries-1 {
				t.Fatalf("got %v cache entries right after the reload, want %v: the revoked identity dropped at once", got, entries-1)
			}
			hits := r.cacheHits()
			r.get("/orders/1", tok).mustRevoke(t, tt.value, tok)
			if r.cacheHits() != hits {
				t.Fatal("the revoked token was answered from the cache, want it dropped by the reload")
			}
			r.get("/orders/1", tok).mustRevoke(t, tt.value) // refused again, from the cache now
			if got := r.revokedCount("deny"); got != 2 {
				t.Fatalf("got %v requests counted deny/revoked, want 2", got)
			}
			hits = r.cacheHits()
			r.get("/orders/1", other).mustForward(t)
			if r.cacheHits() != hits+1 {
				t.Fatal("a token the revocation does not name lost its cache entry")
			}

			logs := r.logs.String()
			if !strings.Contains(logs, `"reason":"revoked"`) || !strings.Contains(logs, `"subject":"alice"`) {
				t.Fatalf("got logs %s, want a decision line with reason revoked naming the subject", logs)
			}
			if strings.Contains(logs, tok) || strings.Contains(logs, strings.Split(tok, ".")[2]) {
				t.Fatal("the token appears in the logs")
			}
		})
	}
}

// The check runs for identities served from the cache too, not only
// because activation purges them: a runtime that carries the revocation
// refuses the token while the cache still holds it.
func TestRevocationRefusesCachedIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRevoker(t, e)
	tok := e.mint(map[string]any{"jti": "tok-cached"})
	r.load(withRevocations(e))
	r.mustCache(tok)

	// Built from the same State (and so the same cache) but not activated:
	// nothing was purged.
	rt := r.build(withRevocations(e, revoke(config.RevokeJTI, "tok-cached", r.clk.Now().Add(time.Hour))))
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	hits := r.cacheHits()
	r.getVia(srv, "/orders/1", tok).mustRevoke(t, "tok-cached")
	if r.cacheHits() != hits+1 {
		t.Fatal("the identity was not served from the cache, want the check applied to a cached identity")
	}
	r.get("/orders/1", tok).mustForward(t) // the active runtime revokes nothing
}

// An entry restricted to one issuer never refuses the same jti minted by
// another issuer the policy trusts, nor drops that token's cache entry; an
// entry without issuer refuses both.
func TestRevocationIssuerRestricted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	second := faultidp.New(t).Issuer
	r := newRevoker(t, e)
	cfg := func(rs ...config.Revocation) *config.ProxyConfig {
		c := withRevocations(e, rs...)
		keys := second.PublicJWKS()
		c.Issuers = append(c.Issuers, config.Issuer{Name: "second", IssuerURL: second.URL(), JWKS: &keys, Audiences: []string{"api"}})
		c.Policies[0].Authentication.Issuers = []string{"dev", "second"}
		return c
	}
	claims := map[string]any{"sub": "alice", "aud": "api", "scope": "orders:read", "jti": "shared-jti"}
	fromDev := e.mint(claims)
	fromSecond, err := second.Mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	r.load(cfg())
	r.mustCache(fromDev)
	r.mustCache(fromSecond)

	until := r.clk.Now().Add(time.Hour)
	onlyDev := revoke(config.RevokeJTI, "shared-jti", until)
	onlyDev.Issuer = e.idp.URL
	r.load(cfg(onlyDev))
	r.get("/orders/1", fromDev).mustRevoke(t)
	hits := r.cacheHits()
	r.get("/orders/1", fromSecond).mustForward(t)
	if r.cacheHits() != hits+1 {
		t.Fatal("the other issuer's token lost its cache entry, want it kept")
	}

	r.load(cfg(revoke(config.RevokeJTI, "shared-jti", until)))
	r.get("/orders/1", fromDev).mustRevoke(t)
	r.get("/orders/1", fromSecond).mustRevoke(t)
}

// An entry that has ended is ignored, whether it had ended when the
// configuration was loaded or ends while it is in force.
func TestRevocationExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRevoker(t, e)
	tok := e.mint(map[string]any{"jti": "tok-exp"})
	now := r.clk.Now()

	r.load(withRevocations(e, revoke(config.RevokeJTI, "tok-exp", now.Add(-time.Second))))
	r.mustCache(tok) // ended before the load: not even purged

	r.load(withRevocations(e, revoke(config.RevokeJTI, "tok-exp", now.Add(time.Minute))))
	r.get("/orders/1", tok).mustRevoke(t)
	r.clk.Advance(time.Minute) // the entry ends; the token (exp 1h) is still valid
	r.get("/orders/1", tok).mustForward(t)
}

// In an audit policy a revoked token is a would-be denial: recorded and
// forwarded, as audit mode does for every denial.
func TestRevocationInAuditMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRevoker(t, e)
	tok := e.mint(map[string]any{"jti": "tok-audit"})
	cfg := withRevocations(e, revoke(config.RevokeJTI, "tok-audit", r.clk.Now().Add(time.Hour)))
	cfg.Policies[0].Mode = config.ModeAudit
	r.load(cfg)
	r.get("/orders/1", tok).mustForward(t)
	if got := r.revokedCount("audit_deny"); got != 1 {
		t.Fatalf("got %v requests counted audit_deny/revoked, want 1", got)
	}
}

// Revocations apply to JWTs only: a sub entry naming an API key's subject
// leaves the key working; removing the key from the configuration (in a
// cluster: deleting its Secret) is what revokes it.
func TestAPIKeysAreRevokedByRemovingThem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRevoker(t, e)
	key := func() result {
		req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/orders/1", nil)
		req.Header.Set("X-API-Key", partnerKey)
		before := e.fn.Count()
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return e.result(resp, before)
	}
	r.load(withRevocations(e, revoke(config.RevokeSub, "partner", r.clk.Now().Add(time.Hour))))
	key().mustForward(t)

	cfg := withRevocations(e)
	cfg.APIKeys.Keys = nil
	r.load(cfg)
	key().mustDeny(t, http.StatusUnauthorized, "")
}
