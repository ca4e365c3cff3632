package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/logbuf"
)

// partnerKey is the plaintext API key of the test partner; configs hold
// only its hash.
const partnerKey = "agk_test_partner_key_0123456789abcdef"

// partnerHash is sha256(partnerKey).
const partnerHash = "sha256:f0992dacd3492d57ea3de793332ac43c28d7b65ac787eb85ae67a8f1b50d4616"

// env is one proxy in front of the echo function, with a real OIDC issuer,
// all on loopback.
type env struct {
	t       testing.TB
	idp     *faultidp.Server // idp.Set(faultidp.All, faultidp.Down): an IdP outage
	issuer  *devissuer.Issuer
	fn      *echo.Function
	fnTS    *httptest.Server
	proxy   *httptest.Server
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	logs    *syncBuffer
	rt      *gateway.Runtime
	sw      *gateway.Switch
	now     func() time.Time
	cfg     *config.ProxyConfig // as built, defaults applied
}

type syncBuffer = logbuf.Buffer

type envOption func(*config.ProxyConfig)

func newEnv(t testing.TB, opts ...envOption) *env {
	return newEnvWith(t, nil, opts...)
}

// newEnvWith builds the env; a non-nil transport replaces the network path
// to the upstream (benchmarks).
func newEnvWith(t testing.TB, transport http.RoundTripper, opts ...envOption) *env {
	t.Helper()
	return newEnvDeps(t, gateway.Deps{Transport: transport}, opts...)
}

// newEnvDeps builds the env with d's Transport and Tracing.
func newEnvDeps(t testing.TB, d gateway.Deps, opts ...envOption) *env {
	t.Helper()
	idp := faultidp.New(t)
	e := &env{t: t, idp: idp, issuer: idp.Issuer, fn: echo.New(), logs: &syncBuffer{}, now: time.Now}
	e.fnTS = httptest.NewServer(e.fn)
	t.Cleanup(e.fnTS.Close)

	cfg := baseConfig(idp.URL, idp.Issuer.PublicJWKS(), e.fnTS.URL)
	for _, o := range opts {
		o(cfg)
	}
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	e.cfg = cfg
	e.reg = prometheus.NewRegistry()
	e.metrics = metrics.New(e.reg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rt, err := gateway.Build(ctx, cfg, "testhash", map[string]string{"app": "fn"}, gateway.Deps{
		Logger:    slog.New(slog.NewJSONHandler(e.logs, nil)),
		Metrics:   e.metrics,
		Now:       func() time.Time { return e.now() },
		Transport: d.Transport,
		Tracing:   d.Tracing,
	})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	e.rt = rt
	e.sw = &gateway.Switch{}
	e.sw.Store(rt)
	e.proxy = httptest.NewServer(e.sw)
	t.Cleanup(e.proxy.Close)
	return e
}

// baseConfig: one enforcing policy with public, scoped, MFA, Rego and
// API-key routes.
func baseConfig(issuerURL string, jwks config.JSONWebKeySet, upstreamURL string) *config.ProxyConfig {
	return &config.ProxyConfig{
		APIVersion: config.APIVersion,
		Kind:       config.Kind,
		Upstream:   config.Upstream{URL: upstreamURL},
		Issuers: []config.Issuer{{
			Name: "dev", IssuerURL: issuerURL, JWKS: &jwks, Audiences: []string{"api"},
			Algorithms: []string{"RS256", "ES256"},
		}},
		APIKeys: config.APIKeys{Keys: []config.APIKey{{Name: "partner", Hash: partnerHash, Scopes: []string{"orders:read"}}}},
		Policies: []config.Policy{{
			Name:     "fn",
			Selector: config.Selector{MatchLabels: map[string]string{"app": "fn"}},
			Authentication: config.Authentication{
				Issuers: []string{"dev"}, APIKeys: &config.APIKeyAccess{},
			},
			Routes: []config.Route{
				{Name: "health", Paths: []string{"/healthz"}, Public: true},
				{Name: "orders", Paths: []string{"/orders/**"}, RequireScopes: []string{"orders:read"}},
				{Name: "admin", Paths: []string{"/admin/**"}, RequireMFA: &config.MFA{}},
				{Name: "any", Paths: []string{"/api/**"}},
			},
			Headers: config.IdentityHeaders{
				Claims: []config.ClaimHeader{{Header: "X-Authgate-Email", Claim: "email"}, {Header: "X-Authgate-Groups", Claim: "groups"}},
			},
		}},
	}
}

func (e *env) mint(claims map[string]any, opts ...devissuer.MintOption) string {
	e.t.Helper()
	base := map[string]any{"sub": "alice", "aud": "api", "scope": "orders:read", "email": "alice@example.com"}
	for k, v := range claims {
		base[k] = v
	}
	tok, err := e.issuer.Mint(base, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// result is a response plus what the function received for it, if anything.
type result struct {
	status   int
	header   http.Header
	body     errorBody
	raw      string
	received *echo.Received
}

type errorBody struct {
	Error       string `json:"error"`
	Reason      string `json:"reason"`
	Description string `json:"description"`
	RequestID   string `json:"request_id"`
}

// do sends req through the proxy and reports whether the function was hit.
func (e *env) do(req *http.Request) result {
	e.t.Helper()
	before := e.fn.Count()
	resp, err := e.proxy.Client().Do(req)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	return e.result(resp, before)
}

// result reads a response and what the function received since before.
func (e *env) result(resp *http.Response, before int) result {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	if e.fn.Count() > before {
		last, _ := e.fn.Last()
		r.received = &last
	}
	return r
}

func (e *env) get(path string, hdr ...string) result {
	e.t.Helper()
	return e.request(http.MethodGet, path, hdr...)
}

// request sends method path with the header pairs hdr through the proxy.
func (e *env) request(method, path string, hdr ...string) result {
	e.t.Helper()
	req, err := http.NewRequest(method, e.proxy.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return e.do(req)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func (r result) mustDeny(t *testing.T, status int, reason string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d (%s), want %d", r.status, r.raw, status)
	}
	if reason != "" && r.body.Reason != reason {
		t.Fatalf("got reason %q (%s), want %q", r.body.Reason, r.raw, reason)
	}
	if r.received != nil {
		t.Fatalf("function was called with %+v, want no upstream call", *r.received)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("got WWW-Authenticate %q, want a Bearer challenge", r.header.Get("WWW-Authenticate"))
	}
}

func (r result) mustForward(t *testing.T) echo.Received {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("got status %d (%s), want 200", r.status, r.raw)
	}
	if r.received == nil {
		t.Fatal("function was not called, want one upstream call")
	}
	return *r.received
}

func header(rec echo.Received, name string) []string {
	return rec.Headers[http.CanonicalHeaderKey(name)]
}

type (
	configT = config.ProxyConfig
	sourceT = config.CredentialSource
)

// rawGet writes the request-target byte for byte (no client-side
// normalisation) over a raw connection.
func (e *env) rawGet(target string, hdr ...string) result {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.proxy.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString("GET " + target + " HTTP/1.1\r\nHost: fn.example\r\nConnection: close\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		b.WriteString(hdr[i] + ": " + hdr[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	before := e.fn.Count()
	if _, err := io.WriteString(conn, b.String()); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("read response: %v", err)
	}
	return e.result(resp, before)
}

func kidOpt(i int) devissuer.MintOption {
	return devissuer.WithKID("random-kid-" + strings.Repeat("z", i))
}
