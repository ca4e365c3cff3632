package gateway_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
)

func withPolicyLimits(l config.PolicyLimits) envOption {
	return func(c *config.ProxyConfig) { c.Policies[0].Limits = &l }
}

func withUpstream(u string) envOption {
	return func(c *config.ProxyConfig) { c.Upstream.URL = u }
}

// secondPolicy adds a copy of the first policy under another name, so two
// policies select the workload.
func secondPolicy(edit func(*config.Policy)) envOption {
	return func(c *config.ProxyConfig) {
		p := c.Policies[0]
		p.Name = "fn-2"
		edit(&p)
		c.Policies = append(c.Policies, p)
	}
}

// build builds a runtime for the env's issuer and function with opts.
func (e *env) build(t *testing.T, opts ...envOption) (*gateway.Runtime, error) {
	t.Helper()
	cfg := baseConfig(e.idp.URL, e.issuer.PublicJWKS(), e.fnTS.URL)
	for _, o := range opts {
		o(cfg)
	}
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	return gateway.Build(context.Background(), cfg, "swapped", map[string]string{"app": "fn"}, gateway.Deps{
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Metrics: e.metrics, Now: func() time.Time { return e.now() },
	})
}

// swap makes a runtime built with opts the active one, as a reload does.
func (e *env) swap(t *testing.T, opts ...envOption) {
	t.Helper()
	rt, err := e.build(t, opts...)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	e.sw.Store(rt)
}

func (e *env) post(t *testing.T, body io.Reader, length int64) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.proxy.URL+"/healthz", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	return e.do(req)
}

func TestPolicyBodyLimitAfterReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.post(t, strings.NewReader("123456789"), 9).mustForward(t)
	e.swap(t, withPolicyLimits(config.PolicyLimits{MaxBodyBytes: 8}))
	e.post(t, strings.NewReader("123456789"), 9).mustDeny(t, http.StatusRequestEntityTooLarge, "body_too_large")
	// Without a declared length the body is cut while it streams.
	if r := e.post(t, io.MultiReader(strings.NewReader("1234"), strings.NewReader("56789")), -1); r.status != http.StatusRequestEntityTooLarge || r.body.Reason != "body_too_large" {
		t.Fatalf("got %d %s for a chunked body over the limit, want 413 body_too_large", r.status, r.raw)
	}
	e.post(t, strings.NewReader("12345678"), 8).mustForward(t)
}

func TestPolicyUpstreamTimeoutAfterReload(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })
	e := newEnv(t, withUpstream(hung.URL))
	e.swap(t, withUpstream(hung.URL), withPolicyLimits(config.PolicyLimits{UpstreamTimeout: config.D(100 * time.Millisecond)}))
	r := e.get("/healthz")
	if r.status != http.StatusGatewayTimeout || r.body.Reason != "upstream_timeout" {
		t.Fatalf("got %d %s, want 504 upstream_timeout", r.status, r.raw)
	}
}

func TestPolicyReadTimeoutAfterReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.swap(t, withPolicyLimits(config.PolicyLimits{ReadTimeout: config.D(200 * time.Millisecond)}))
	conn, err := net.Dial("tcp", e.proxy.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The test server has no read timeout of its own: only the policy's
	// can end this upload, which stops after 10 of 100 bytes.
	_, _ = io.WriteString(conn, "POST /healthz HTTP/1.1\r\nHost: fn.example\r\nContent-Length: 100\r\n\r\n0123456789")
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("got %v, want a 408 answer", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("got %d, want 408", resp.StatusCode)
	}
}

func TestWorkloadSettingsFromSeveralPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name    string
		opts    []envOption
		wantErr []string
	}{
		{"same addresses, other spelling", []envOption{
			withPolicyTrust("127.0.0.1", "10.0.0.0/8"),
			secondPolicy(func(p *config.Policy) {
				p.ClientIdentity = &config.ClientIdentity{TrustedProxies: []string{"10.1.2.3/8", "127.0.0.1/32", "10.0.0.0/8"}}
			}),
		}, nil},
		{"different addresses", []envOption{
			withPolicyTrust("127.0.0.1"),
			secondPolicy(func(p *config.Policy) {
				p.ClientIdentity = &config.ClientIdentity{TrustedProxies: []string{"10.0.0.0/8"}}
			}),
		}, []string{"policies fn and fn-2", "clientIdentity.trustedProxies"}},
		{"trust nobody next to trust some", []envOption{
			withPolicyTrust(),
			secondPolicy(func(p *config.Policy) {
				p.ClientIdentity = &config.ClientIdentity{TrustedProxies: []string{"127.0.0.1"}}
			}),
		}, []string{"different clientIdentity.trustedProxies"}},
		{"the other policy selects another workload", []envOption{
			withPolicyTrust("127.0.0.1"),
			secondPolicy(func(p *config.Policy) {
				p.Selector = config.Selector{MatchLabels: map[string]string{"app": "other"}}
				p.ClientIdentity = &config.ClientIdentity{TrustedProxies: []string{"10.0.0.0/8"}}
			}),
		}, nil},
		{"only one sets it", []envOption{withPolicyTrust("127.0.0.1"), secondPolicy(func(*config.Policy) {})}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.build(t, tt.opts...)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v, want the config accepted", err)
				}
				return
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("got %v, want an error containing %q", err, w)
				}
			}
		})
	}
}
