// Package topology tests authgate in the shape users run it: several
// AuthPolicies in one namespace rendered by the controller's own path
// (translate → bundle), one real proxy runtime per function pod selecting
// its policies by the pod's labels, requests arriving through platform hops,
// and attackers next to users. Every assertion is on the HTTP answer and on
// exactly what each function received.
package topology

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/bundle"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/logbuf"
)

const ns = "shop"

// idp is the namespace's identity provider: a real HTTP issuer on loopback
// (discovery and JWKS); srv.Set(faultidp.All, faultidp.Down) is an outage.
type idp struct {
	*devissuer.Issuer
	srv *faultidp.Server
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	srv := faultidp.New(t)
	return &idp{Issuer: srv.Issuer, srv: srv}
}

func (i *idp) token(t *testing.T, claims map[string]any, opts ...devissuer.MintOption) string {
	t.Helper()
	tok, err := i.Mint(claims, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// render translates the policies with the controller's code and renders the
// namespace bundle, as authgate-controller writes it. keys says whether the
// controller had fetched the issuer's keys (shipped inline).
func render(t *testing.T, iss *idp, keys bool, secrets []corev1.Secret, policies ...string) *config.ProxyConfig {
	t.Helper()
	var frags []*translate.Fragment
	for i, src := range policies {
		var p v1alpha1.AuthPolicy
		src = strings.ReplaceAll(src, "ISSUER", iss.URL())
		if err := yaml.UnmarshalStrict([]byte(src), &p); err != nil {
			t.Fatalf("policy %d: %v", i, err)
		}
		p.Namespace, p.Generation = ns, 1
		f, prob := translate.Translate(context.Background(), translate.Input{
			Policy:  &p,
			Secrets: secrets,
			Keys: func(u string) (config.JSONWebKeySet, bool) {
				return iss.PublicJWKS(), keys && u == iss.URL()
			},
		})
		if prob != nil {
			t.Fatalf("policy %s: %v", p.Name, prob)
		}
		frags = append(frags, f)
	}
	data, err := bundle.Render(frags)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func apiKeySecret(name, key string) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"authgate.dev/api-key": "true"}},
		Data:       map[string][]byte{translate.SecretKeyKey: []byte(key)},
	}
}

// pod is one function pod: the function and its sidecar.
type pod struct {
	name    string
	fn      *echo.Function
	proxy   *httptest.Server
	metrics *metrics.Metrics
	logs    *logbuf.Buffer
}

// deploy starts a function and a real proxy runtime in front of it, built
// from the namespace bundle for a pod with these labels, the way the
// sidecar builds it (the injector's flags override upstream and trust).
func deploy(t *testing.T, name string, bundleCfg *config.ProxyConfig, labels map[string]string, trusted ...string) *pod {
	t.Helper()
	p := &pod{name: name, fn: echo.New(), metrics: metrics.New(prometheus.NewRegistry()), logs: &logbuf.Buffer{}}
	fnSrv := httptest.NewServer(p.fn)
	t.Cleanup(fnSrv.Close)
	cfg := *bundleCfg
	cfg.Upstream.URL = fnSrv.URL
	cfg.TrustedProxies = trusted
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rt, err := gateway.Build(ctx, &cfg, "topology", labels, gateway.Deps{
		Logger:  slog.New(slog.NewJSONHandler(p.logs, nil)),
		Metrics: p.metrics,
	})
	if err != nil {
		t.Fatalf("%s: build: %v", name, err)
	}
	sw := &gateway.Switch{}
	sw.Store(rt)
	p.proxy = httptest.NewServer(sw)
	t.Cleanup(p.proxy.Close)
	return p
}

// hop is a platform hop in front of a sidecar (an ingress, the activator,
// queue-proxy): a real httputil.ReverseProxy on 127.0.0.1 that appends the
// peer to X-Forwarded-For, as those components do.
func hop(t *testing.T, next string) *httptest.Server {
	t.Helper()
	target, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
		pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
		pr.SetXForwarded()
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv
}

// clientFrom is an HTTP client whose connections come from one loopback
// address, so each client is a distinct address behind the hop.
func clientFrom(addr string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// answer is one response.
type answer struct {
	status int
	reason string
	header http.Header
}

func call(t *testing.T, c *http.Client, base, path string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body struct {
		Reason string `json:"reason"`
	}
	if resp.StatusCode != http.StatusOK {
		_ = decodeJSON(resp, &body)
	}
	return answer{status: resp.StatusCode, reason: body.Reason, header: resp.Header}
}

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
