package gateway_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/upgradeecho"
)

// proxyTo builds a runtime for cfg in front of upstreamURL and serves it.
func proxyTo(t *testing.T, cfg *config.ProxyConfig, server func(http.Handler) *httptest.Server) (*httptest.Server, *metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	rt, err := gateway.Build(context.Background(), cfg, "h", map[string]string{"app": "fn"}, gateway.Deps{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	sw := &gateway.Switch{}
	sw.Store(rt)
	if server == nil {
		server = httptest.NewServer
	}
	ts := server(sw)
	t.Cleanup(ts.Close)
	return ts, m, reg
}

func publicConfig(upstreamURL string) *config.ProxyConfig {
	return &config.ProxyConfig{
		APIVersion: config.APIVersion, Kind: config.Kind,
		Upstream: config.Upstream{URL: upstreamURL},
		Policies: []config.Policy{{Name: "p", Routes: []config.Route{{Name: "all", Public: true}}}},
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(upgradeecho.Handler())
	defer up.Close()
	ts, _, _ := proxyTo(t, publicConfig(up.URL), nil)
	conn := upgradeecho.Dial(t, ts.Listener.Addr().String(), "/ws")
	if err := conn.Echo("hello"); err != nil {
		t.Fatalf("over the upgraded connection: %v", err)
	}
}

func TestResponsesStream(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		_ = http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "data: second\n\n")
	}))
	defer up.Close()
	defer close(release)
	ts, _, _ := proxyTo(t, publicConfig(up.URL), nil)
	resp, err := http.Get(ts.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("got %q (%v) before the upstream finished, want the first event streamed", line, err)
	}
}

func TestH2CBothWays(t *testing.T) {
	t.Parallel()
	protoSeen := make(chan int, 1)
	h2cServer := func(h http.Handler) *httptest.Server {
		ts := httptest.NewUnstartedServer(h)
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		ts.Config.Protocols = p
		ts.Start()
		return ts
	}
	up := h2cServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protoSeen <- r.ProtoMajor
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	cfg := publicConfig(up.URL)
	cfg.Upstream.H2C = true
	// The proxy itself also accepts h2c, as Knative's queue-proxy speaks it to h2c revisions.
	ts, _, _ := proxyTo(t, cfg, h2cServer)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: p}}
	resp, err := client.Get(ts.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("got %s %d from the proxy, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
	if got := <-protoSeen; got != 2 {
		t.Fatalf("upstream saw HTTP/%d, want HTTP/2 (h2c)", got)
	}
}

func TestSeveralIssuersChosenByIss(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secondIDP := faultidp.New(t)
	second := secondIDP.Issuer
	cfg := baseConfig(e.idp.URL, e.issuer.PublicJWKS(), e.fnTS.URL)
	cfg.Issuers = append(cfg.Issuers, config.Issuer{
		Name: "partner-idp", IssuerURL: secondIDP.URL, JWKSURL: secondIDP.URL + "/jwks", Audiences: []string{"api"},
		Sources: []config.CredentialSource{{Type: config.SourceCookie, Name: "session"}},
	})
	cfg.Policies[0].Authentication.Issuers = []string{"dev", "partner-idp"}
	ts, _, _ := proxyTo(t, cfg, nil)

	mint := func(iss *devissuer.Issuer, sub string) string {
		tok, err := iss.Mint(map[string]any{"sub": sub, "aud": "api", "scope": "orders:read"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	call := func(name, value string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/orders/1", nil)
		req.Header.Set(name, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := call("Authorization", "Bearer "+mint(e.issuer, "alice")); got != 200 {
		t.Fatalf("first issuer via bearer: got %d, want 200", got)
	}
	if got := call("Cookie", "session="+mint(second, "bob")); got != 200 {
		t.Fatalf("second issuer via its cookie (keys fetched from its JWKS URL): got %d, want 200", got)
	}
	if got := call("Authorization", "Bearer "+mint(second, "bob")); got != 401 {
		t.Fatalf("second issuer's token from a source it does not use: got %d, want 401", got)
	}
}

func TestMetricsGolden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.get("/healthz")
	e.get("/orders/1")
	e.get("/orders/1", bearer(e.mint(nil))...)
	e.get("/orders/1", bearer(e.mint(map[string]any{"scope": "none"}))...)
	want := `
# HELP authgate_requests_total Requests handled, by policy, route, decision (allow, deny, audit_deny) and reason.
# TYPE authgate_requests_total counter
authgate_requests_total{decision="allow",policy="fn",reason="allowed",route="orders"} 1
authgate_requests_total{decision="allow",policy="fn",reason="public_route",route="health"} 1
authgate_requests_total{decision="deny",policy="fn",reason="missing_credential",route="orders"} 1
authgate_requests_total{decision="deny",policy="fn",reason="missing_scope",route="orders"} 1
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "authgate_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e.metrics.StageDuration); n != 4 {
		t.Fatalf("got %d stage histograms, want authn, authz, upstream and total", n)
	}
}
