package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/authgate/authgate/test/cluster/openfaas/faasnetes"
	"github.com/authgate/authgate/test/cluster/openfaas/gateway"
)

const ns = "openfaas-fn"

// seen is what the function endpoint received.
type seen struct {
	Path, RawQuery, Host, Body string
	Header                     http.Header
	TransferEncoding           []string
	ContentLength              int64
	RemoteAddr                 string
}

// fakeResolver sends names it knows to their test endpoint and the rest to
// the real resolver over an Endpoints store.
type fakeResolver struct {
	known map[string]url.URL
	next  faasnetes.Resolver
}

func (f fakeResolver) Resolve(name string) (url.URL, error) {
	if u, ok := f.known[name]; ok {
		return u, nil
	}
	return f.next.Resolve(name)
}

// chain is client → gateway → provider → function endpoints, on loopback.
type chain struct {
	gateway  *httptest.Server
	mu       sync.Mutex
	received []seen
	release  chan struct{}
	fnHost   string
}

func (c *chain) last() seen {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received[len(c.received)-1]
}

func deployment(name string, replicas, available int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"faas_function": name}},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "img"}}}}},
		Status: appsv1.DeploymentStatus{AvailableReplicas: available},
	}
}

func newChain(t *testing.T, edit func(*gateway.Config, *faasnetes.Provider)) *chain {
	t.Helper()
	c := &chain{release: make(chan struct{})}
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.received = append(c.received, seen{Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Body: string(b),
			Header: r.Header.Clone(), TransferEncoding: r.TransferEncoding, ContentLength: r.ContentLength, RemoteAddr: r.RemoteAddr})
		c.mu.Unlock()
		if r.URL.Path == "/hang" {
			<-c.release
		}
		w.Header()["Content-Type"] = nil // no sniffing: the provider's default shows
		w.Header().Set("X-Function", "echo")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("from the function"))
	}))
	t.Cleanup(fn.Close)
	t.Cleanup(func() { close(c.release) }) // before fn.Close, which waits for /hang
	fnURL, _ := url.Parse(fn.URL)
	c.fnHost = fnURL.Host

	deployments := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, d := range []*appsv1.Deployment{deployment("echo", 1, 1), deployment("gone", 1, 1), deployment("cold", 1, 0)} {
		_ = deployments.Add(d)
	}
	endpoints := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = endpoints.Add(&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: ns},
		Subsets: []corev1.EndpointSubset{{NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.42.0.9"}}}}})
	p := &faasnetes.Provider{Namespace: ns, Client: fake.NewClientset(), Deployments: appslisters.NewDeploymentLister(deployments),
		Deploy: faasnetes.DefaultDeployConfig(),
		Resolver: fakeResolver{known: map[string]url.URL{"echo": *fnURL, "echo.openfaas-fn": *fnURL},
			next: &faasnetes.FunctionLookup{DefaultNamespace: ns, Endpoints: corelisters.NewEndpointsLister(endpoints)}}}
	cfg := gateway.Config{Namespace: ns, ScaleFromZero: true, Version: "test", MaxPollCount: 3, PollInterval: time.Millisecond}
	if edit != nil {
		edit(&cfg, p)
	}
	provider := httptest.NewServer(p.Handler())
	t.Cleanup(provider.Close)
	if cfg.ProviderURL == nil {
		cfg.ProviderURL, _ = url.Parse(provider.URL + "/")
	}
	c.gateway = httptest.NewServer(gateway.New(cfg))
	t.Cleanup(c.gateway.Close)
	return c
}

// send makes one request on a connection of its own and returns the
// response, its body and the client's address.
func send(t *testing.T, req *http.Request) (*http.Response, string, string) {
	t.Helper()
	var local string
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				local = conn.LocalAddr().String()
			}
			return conn, err
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b), local
}

func newReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestFunctionCall(t *testing.T) {
	t.Parallel()
	c := newChain(t, nil)
	req := newReq(t, http.MethodGet, c.gateway.URL+"/function/echo.openfaas-fn/a/b?q=1&r=two", nil)
	req.Host = "gw.example"
	req.Header.Set("X-Custom", "kept")
	req.Header.Set("User-Agent", "") // none: the gateway sets its own
	res, body, client := send(t, req)
	if res.StatusCode != 201 || body != "from the function" || res.Header.Get("X-Function") != "echo" {
		t.Fatalf("got %d %q %v, want the function's answer", res.StatusCode, body, res.Header)
	}
	got := c.last()
	want := map[string]string{
		"X-Forwarded-For":  client, // the gateway's peer, host:port
		"X-Forwarded-Host": "gw.example",
		"X-Custom":         "kept",
		"User-Agent":       "openfaas-ce-gateway/test",
		"X-Call-Id":        res.Header.Get("X-Call-Id"),
	}
	for h, v := range want {
		if g := strings.Join(got.Header[h], ","); g != v {
			t.Errorf("function got %s %q, want %q", h, g, v)
		}
	}
	if got.Path != "/a/b" || got.RawQuery != "q=1&r=two" || got.Host != c.fnHost {
		t.Errorf("function got path %q query %q Host %q, want /a/b, the query and the pod's address", got.Path, got.RawQuery, got.Host)
	}
	if !uuidRE.MatchString(res.Header.Get("X-Call-Id")) || !regexp.MustCompile(`^\d+$`).MatchString(got.Header.Get("X-Start-Time")) ||
		res.Header.Get("X-Start-Time") != got.Header.Get("X-Start-Time") || res.Header.Get("X-Served-By") != "openfaas-ce/test" {
		t.Errorf("call headers: response %v, function %v", res.Header, got.Header)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type: got %q, want the provider's default text/plain", ct)
	}

	req = newReq(t, http.MethodPost, c.gateway.URL+"/function/echo", strings.NewReader("payload"))
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Call-Id", "caller-chosen")
	send(t, req)
	got = c.last()
	if got.Body != "payload" || strings.Join(got.TransferEncoding, ",") != "chunked" || got.ContentLength != -1 {
		t.Errorf("POST: function got %+v, want the body, chunked, no Content-Length", got)
	}
	if xff := strings.Join(got.Header["X-Forwarded-For"], ","); xff != "203.0.113.9" {
		t.Errorf("client's X-Forwarded-For: function got %q, want it unchanged (nothing appended)", xff)
	}
	if id := got.Header.Get("X-Call-Id"); id != "caller-chosen" {
		t.Errorf("X-Call-Id: got %q, want the caller's", id)
	}
}

func TestNoEndpoint(t *testing.T) {
	t.Parallel()
	c := newChain(t, nil)
	noScale := newChain(t, func(cfg *gateway.Config, _ *faasnetes.Provider) { cfg.ScaleFromZero = false })
	for _, tt := range []struct {
		c          *chain
		path       string
		code       int
		body, from string
	}{
		{c, "/function/gone", 503, "No endpoints available for: gone.\n", "proxy"},
		{c, "/function/gone.openfaas-fn/x", 503, "No endpoints available for: gone.openfaas-fn.\n", "proxy"},
		{c, "/function/cold", 503, "No endpoints available for: cold.\n", "proxy"}, // after the wait
		{c, "/function/nope", 404, "error finding function nope.openfaas-fn: server returned non-200 status code (404) for function, nope, body: ", ""},
		{c, "/function/echo.other", 404, "error finding function echo.other: server returned non-200 status code (400) for function, echo, body: namespace must be: openfaas-fn\n", ""},
		{noScale, "/function/nope", 503, "No endpoints available for: nope.\n", "proxy"},
	} {
		res, body, _ := send(t, newReq(t, http.MethodGet, tt.c.gateway.URL+tt.path, nil))
		if res.StatusCode != tt.code || body != tt.body || res.Header.Get("X-OpenFaaS-Internal") != tt.from {
			t.Errorf("%s: got %d %q (internal %q), want %d %q (internal %q)", tt.path, res.StatusCode, body,
				res.Header.Get("X-OpenFaaS-Internal"), tt.code, tt.body, tt.from)
		}
	}
}

func TestTimeoutsAndUnreachable(t *testing.T) {
	t.Parallel()
	down := newChain(t, func(cfg *gateway.Config, _ *faasnetes.Provider) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		cfg.ProviderURL, _ = url.Parse("http://" + ln.Addr().String() + "/")
		ln.Close()
		cfg.ScaleFromZero = false
	})
	gwTimeout := newChain(t, func(cfg *gateway.Config, _ *faasnetes.Provider) { cfg.UpstreamTimeout = 200 * time.Millisecond })
	provTimeout := newChain(t, func(_ *gateway.Config, p *faasnetes.Provider) { p.ReadTimeout = 200 * time.Millisecond })
	for _, tt := range []struct {
		name string
		c    *chain
		code int
		body string
	}{
		{"provider unreachable", down, 502, ""},
		{"upstream_timeout", gwTimeout, 502, ""},
		{"provider read_timeout", provTimeout, 500, "Can't reach service for: echo.\n"},
	} {
		res, body, _ := send(t, newReq(t, http.MethodGet, tt.c.gateway.URL+"/function/echo/hang", nil))
		if res.StatusCode != tt.code || body != tt.body {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, res.StatusCode, body, tt.code, tt.body)
		}
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	c := newChain(t, nil)
	for _, tt := range []struct {
		method, path string
		code         int
		body, loc    string
	}{
		{http.MethodGet, "/function/echo/../x/", 301, "", "/function/x/"},
		{http.MethodGet, "/function/echo//a?q=1", 301, "", "/function/echo/a?q=1"},
		{http.MethodGet, "/nothing", 404, "404 page not found\n", ""},
		{http.MethodGet, "/", 307, "", "/ui/"},
		{http.MethodPatch, "/system/functions", 405, "", ""},
		{"TRACE", "/function/echo", 405, "", ""},
		{http.MethodGet, "/healthz", 200, "", ""},
	} {
		res, body, _ := send(t, newReq(t, tt.method, c.gateway.URL+tt.path, nil))
		if res.StatusCode != tt.code || (tt.code != 307 && body != tt.body) || res.Header.Get("Location") != tt.loc {
			t.Errorf("%s %s: got %d %q Location %q, want %d %q %q", tt.method, tt.path, res.StatusCode, body,
				res.Header.Get("Location"), tt.code, tt.body, tt.loc)
		}
	}
}

func TestDeployThroughTheGateway(t *testing.T) {
	t.Parallel()
	c := newChain(t, nil)
	body := `{"service":"hello","image":"dev.local/openfaas-repro/echo-fn:e2e","envProcess":"authgate echo"}`
	res, got, _ := send(t, newReq(t, http.MethodPost, c.gateway.URL+"/system/functions", strings.NewReader(body)))
	if res.StatusCode != 202 || got != "" {
		t.Errorf("deploy: got %d %q, want 202", res.StatusCode, got)
	}
	res, got, _ = send(t, newReq(t, http.MethodGet, c.gateway.URL+"/system/functions", nil))
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || !strings.Contains(got, `"name":"echo"`) {
		t.Errorf("list: got %d %v %s", res.StatusCode, res.Header, got)
	}
}
