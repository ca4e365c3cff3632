package forwarded

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

type scopeKey struct{}

type scope struct {
	client netip.Addr
	id     string
}

// proxyEnv is a front server on 127.0.0.1 running ClientIP, RequestID and
// SetForwarded around a real ReverseProxy, and an upstream that records the
// headers it receives.
type proxyEnv struct {
	front *httptest.Server
	got   chan http.Header
}

func newProxyEnv(t *testing.T, trust ...string) *proxyEnv {
	t.Helper()
	tr := mustTrust(t, trust...)
	e := &proxyEnv{got: make(chan http.Header, 1)}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h["Host"] = []string{r.Host}
		e.got <- h
	}))
	t.Cleanup(upstream.Close)
	target, err := url.Parse(upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		s := pr.In.Context().Value(scopeKey{}).(scope)
		tr.SetForwarded(pr, s.client, s.id)
	}}
	e.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := scope{client: tr.ClientIP(r), id: tr.RequestID(r)}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), scopeKey{}, s)))
	}))
	t.Cleanup(e.front.Close)
	return e
}

// do sends a request with headers given as name, value pairs (names sent
// exactly as written) and returns what the upstream received.
func (e *proxyEnv) do(t *testing.T, host string, kv ...string) http.Header {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.front.URL+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i < len(kv); i += 2 {
		req.Header[kv[i]] = append(req.Header[kv[i]], kv[i+1])
	}
	resp, err := e.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return <-e.got
}

// find returns the values of every header whose name normalises to name.
func find(h http.Header, name string) []string {
	var out []string
	for k, v := range h {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
			out = append(out, v...)
		}
	}
	return out
}

func want(t *testing.T, h http.Header, name string, values ...string) {
	t.Helper()
	got := find(h, name)
	if strings.Join(got, "\n") != strings.Join(values, "\n") {
		t.Fatalf("got %s %q, want %q", name, got, values)
	}
}

var spoofs = []string{
	"X-Forwarded-For", "6.6.6.6",
	"X-Forwarded-For", "7.7.7.7",
	"X-Forwarded-Host", "admin.internal",
	"X-Forwarded-Proto", "https",
	"X-Forwarded-Port", "443",
	"X-Forwarded-Prefix", "/admin",
	"Forwarded", "for=6.6.6.6;proto=https",
	"X-Real-Ip", "6.6.6.6",
	"X_Real_IP", "6.6.6.6",
	"X_Forwarded_For", "6.6.6.6",
	"True-Client-Ip", "6.6.6.6",
	"X-Client-Ip", "6.6.6.6",
	"Cf-Connecting-Ip", "6.6.6.6",
	"X-Original-Url", "/admin",
	"X_Rewrite_Url", "/admin",
	"X-Http-Method-Override", "DELETE",
	"X-Request-Id", "attacker-chosen",
	"X-Other", "kept",
}

func TestUntrustedPeerHeadersAreReplaced(t *testing.T) {
	t.Parallel()
	for _, trust := range [][]string{nil, {"10.0.0.0/8"}} {
		t.Run(strings.Join(trust, ","), func(t *testing.T) {
			t.Parallel()
			e := newProxyEnv(t, trust...)
			h := e.do(t, "fn.example.com", spoofs...)
			want(t, h, "X-Forwarded-For", "127.0.0.1")
			want(t, h, "X-Forwarded-Host", "fn.example.com")
			want(t, h, "X-Forwarded-Proto", "http")
			for _, gone := range []string{"Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "True-Client-Ip",
				"X-Client-Ip", "Cf-Connecting-Ip", "X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override"} {
				want(t, h, gone)
			}
			if id := find(h, "X-Request-Id"); len(id) != 1 || id[0] == "attacker-chosen" {
				t.Fatalf("got X-Request-Id %q, want one generated id", id)
			}
			want(t, h, "X-Other", "kept")
		})
	}
}

func TestHostileConnectionHeader(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t)
	h := e.do(t, "fn.example.com",
		"Connection", "X-Forwarded-For, X-Forwarded-Proto, X-Request-Id, X-Forwarded-Host",
		"X-Forwarded-For", "6.6.6.6")
	want(t, h, "X-Forwarded-For", "127.0.0.1")
	want(t, h, "X-Forwarded-Host", "fn.example.com")
	want(t, h, "X-Forwarded-Proto", "http")
	if id := find(h, "X-Request-Id"); len(id) != 1 || id[0] == "" {
		t.Fatalf("got X-Request-Id %q, want one", id)
	}
}

func TestTrustedChainIsKept(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "127.0.0.1", "10.0.0.0/8")
	h := e.do(t, "internal:8080",
		"X-Forwarded-For", "6.6.6.6, 1.1.1.1",
		"X-Forwarded-For", "10.0.0.2",
		"X-Forwarded-Host", "fn.example.com",
		"X-Forwarded-Proto", "HTTPS",
		"Forwarded", "for=1.1.1.1;proto=https",
		"X-Real-Ip", "1.1.1.1",
		"X_Real_IP", "6.6.6.6",
		"X-Original-Url", "/admin",
		"X-Request-Id", "lb-42.a_b",
	)
	// 6.6.6.6 is left of the client and could have been written by anyone.
	want(t, h, "X-Forwarded-For", "1.1.1.1, 10.0.0.2, 127.0.0.1")
	want(t, h, "X-Forwarded-Host", "fn.example.com")
	want(t, h, "X-Forwarded-Proto", "https")
	// Forwarded and X-Real-Ip are rebuilt from the verified chain.
	want(t, h, "Forwarded", "for=1.1.1.1;host=fn.example.com;proto=https, for=10.0.0.2, for=127.0.0.1")
	want(t, h, "X-Real-Ip", "1.1.1.1") // the '_' spelling is gone
	want(t, h, "X-Original-Url")
	want(t, h, "X-Request-Id", "lb-42.a_b")
}

func TestTrustedPeerWithoutHeaders(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "127.0.0.1")
	h := e.do(t, "fn.example.com", "X-Forwarded-Proto", "gopher", "X-Forwarded-Host", "a b")
	want(t, h, "X-Forwarded-For", "127.0.0.1")
	want(t, h, "X-Forwarded-Host", "fn.example.com")
	want(t, h, "X-Forwarded-Proto", "http")
}

func TestTrustedPeerDeclaringXFFHopByHop(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "127.0.0.1")
	h := e.do(t, "fn.example.com", "Connection", "X-Forwarded-For", "X-Forwarded-For", "1.1.1.1")
	want(t, h, "X-Forwarded-For", "127.0.0.1")
}

func BenchmarkSetForwarded(b *testing.B) {
	tr := mustTrust(b)
	in := httptest.NewRequest(http.MethodGet, "http://fn.example.com/x", nil)
	in.RemoteAddr = "203.0.113.9:1234"
	in.Header.Set("Accept", "*/*")
	in.Header.Set("User-Agent", "bench")
	in.Header.Set("Authorization", "Bearer x")
	client := tr.ClientIP(in)
	b.ReportAllocs()
	for b.Loop() {
		out := in.Clone(in.Context())
		tr.SetForwarded(&httputil.ProxyRequest{In: in, Out: out}, client, "id-1")
	}
}
