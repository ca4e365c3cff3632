package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/upstream"
)

// staticUpstream answers every request in memory, so benchmarks measure the
// proxy's own cost and not the network or the function.
type staticUpstream struct{}

func (staticUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Length": {"2"}}, ContentLength: 2,
		Body: io.NopCloser(strings.NewReader("ok")), Request: r,
	}, nil
}

func benchServe(b *testing.B, h http.Handler, path string, hdr ...string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = "192.0.2.1:1234"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := req.Clone(req.Context())
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("got status %d: %s", w.Code, w.Body.String())
		}
	}
}

// BenchmarkBaselineReverseProxy is the bare ReverseProxy every other figure
// is compared with.
func BenchmarkBaselineReverseProxy(b *testing.B) {
	target, _ := url.Parse("http://127.0.0.1:1")
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport:  staticUpstream{},
		BufferPool: upstream.NewBufferPool(), // same tuning as the proxy
	}
	benchServe(b, rp, "/orders/1")
}

func BenchmarkPublicRoute(b *testing.B) {
	e := newEnvWith(b, staticUpstream{}, quietLogs)
	benchServe(b, e.rt, "/healthz")
}

func BenchmarkCachedJWT(b *testing.B) {
	e := newEnvWith(b, staticUpstream{}, quietLogs)
	benchServe(b, e.rt, "/orders/1", bearer(e.mint(nil))...)
}

func BenchmarkCachedJWTWithRego(b *testing.B) {
	e := newEnvWith(b, staticUpstream{}, quietLogs, withRego(regoDepartments, 0))
	benchServe(b, e.rt, "/api/sales/report", bearer(e.mint(map[string]any{"department": "sales"}))...)
}

func BenchmarkAPIKey(b *testing.B) {
	e := newEnvWith(b, staticUpstream{}, quietLogs)
	benchServe(b, e.rt, "/orders/1", "X-API-Key", partnerKey)
}

func BenchmarkFreshRS256(b *testing.B) {
	e := newEnvWith(b, staticUpstream{}, quietLogs, func(c *config.ProxyConfig) { c.TokenCache.MaxEntries = -1 })
	benchServe(b, e.rt, "/orders/1", bearer(e.mint(nil))...)
}

// quietLogs samples no allowed requests, as a busy production proxy would.
func quietLogs(c *config.ProxyConfig) {
	zero := 0.0
	c.DecisionLog.SampleRate = &zero
}

// BenchmarkCachedJWTTraced is BenchmarkCachedJWT with tracing on at 1 %
// (exported to an OTLP/HTTP receiver that answers 200): the cost of
// tracing on the request path.
func BenchmarkCachedJWTTraced(b *testing.B) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(recv.Close)
	p, err := tracing.New(context.Background(), tracing.Options{Endpoint: recv.URL, SamplingRatio: 0.01}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	e := newEnvDeps(b, gateway.Deps{Transport: staticUpstream{}, Tracing: p}, quietLogs)
	benchServe(b, e.rt, "/orders/1", bearer(e.mint(nil))...)
}
