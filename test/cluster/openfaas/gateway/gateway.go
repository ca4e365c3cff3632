package gateway

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/test/cluster/openfaas/internal/relay"
	"github.com/authgate/authgate/test/cluster/openfaas/internal/route"
)

// NameExpression is the characters of a function name in a route.
const NameExpression = "-a-zA-Z_0-9."

// Config is the gateway's configuration: the environment the original reads
// (gateway/types/readconfig.go), as fields.
type Config struct {
	// ProviderURL is functions_provider_url, "http://127.0.0.1:8081/" in the
	// chart (faas-netes in the same pod). Keep the trailing slash: the
	// original builds provider query URLs by appending "system/...".
	ProviderURL *url.URL
	// UpstreamTimeout is upstream_timeout (default 60s; chart 1m): the limit
	// of each call to the provider, function calls included.
	UpstreamTimeout time.Duration
	// MaxIdleConns and MaxIdleConnsPerHost are max_idle_conns(_per_host),
	// 1024 each.
	MaxIdleConns, MaxIdleConnsPerHost int
	// ScaleFromZero is scale_from_zero (chart: true): before a function
	// call, ask the provider whether the function exists and wait for an
	// available replica.
	ScaleFromZero bool
	// Namespace is function_namespace, for names without ".namespace".
	Namespace string
	// MaxPollCount and PollInterval bound the wait for an available replica
	// (the original: 1000 × 100 ms).
	MaxPollCount int
	PollInterval time.Duration
	// Version goes into X-Served-By ("openfaas-ce/<Version>") and the
	// default User-Agent ("openfaas-ce-gateway/<Version>").
	Version string
	// Log receives the gateway's lines; nil discards them.
	Log *log.Logger
}

// Defaults fills unset fields with the original's defaults.
func (c *Config) Defaults() {
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = 60 * time.Second
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = 1024
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = 1024
	}
	if c.MaxPollCount == 0 {
		c.MaxPollCount = 1000
	}
	if c.PollInterval == 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = log.New(io.Discard, "", 0)
	}
}

// New returns the gateway's routes (gateway/main.go) for cfg.
func New(cfg Config) http.Handler {
	cfg.Defaults()
	f := &forwarder{cfg: cfg, base: strings.TrimSuffix(cfg.ProviderURL.String(), "/"), client: newClient(cfg)}
	f.stream = relay.DirectorProxy(func(out *http.Request) {
		u, _ := url.Parse(f.base)
		out.URL.Scheme, out.URL.Host = "http", u.Host
	})
	fn := http.Handler(callID(f, cfg.Version))
	if cfg.ScaleFromZero {
		fn = &scaling{next: fn, cfg: cfg, query: newServiceQuery(cfg.ProviderURL)}
	}
	rt := &route.Router{}
	rt.Handle("/function/(?P<name>["+NameExpression+"]+)", fn)
	rt.Handle("/function/(?P<name>["+NameExpression+"]+)/", fn)
	rt.Handle("/function/(?P<name>["+NameExpression+"]+)/(?P<params>.*)", fn)
	rt.Handle("/system/function/(?P<name>["+NameExpression+"]+)", f, http.MethodGet)
	rt.Handle("/system/functions", listWithoutMetrics(f), http.MethodGet)
	rt.Handle("/system/functions", f, http.MethodPost)
	rt.Handle("/system/functions", f, http.MethodDelete)
	rt.Handle("/system/functions", f, http.MethodPut)
	rt.Handle("/healthz", f, http.MethodGet)
	rt.Handle("/", http.RedirectHandler("/ui/", http.StatusTemporaryRedirect), http.MethodGet)
	return rt
}

// callID is gateway/handlers/callid_middleware.go: X-Call-Id (a new UUID
// unless the caller sent one) on the request and the response, X-Start-Time
// (Unix nanoseconds) added to both, X-Served-By on the response.
func callID(next http.Handler, version string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.Header.Get("X-Call-Id") == "" {
			id := newUUID()
			r.Header.Add("X-Call-Id", id)
			w.Header().Add("X-Call-Id", id)
		}
		ts := fmt.Sprintf("%d", start.UTC().UnixNano())
		r.Header.Add("X-Start-Time", ts)
		w.Header().Add("X-Start-Time", ts)
		w.Header().Add("X-Served-By", "openfaas-ce/"+version)
		next.ServeHTTP(w, r)
	})
}

// newUUID is a random (version 4) UUID, as docker/distribution/uuid makes.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newClient is gateway/types/proxy_client.go: dial timeout and keep-alive
// the upstream timeout, 90 s idle, redirects returned, and a User-Agent of
// its own on requests without one.
func newClient(cfg Config) *http.Client {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.UpstreamTimeout, KeepAlive: cfg.UpstreamTimeout}).DialContext,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	ua := "openfaas-ce-gateway/" + cfg.Version
	return &http.Client{
		Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			if _, ok := r.Header["User-Agent"]; !ok {
				r.Header.Set("User-Agent", ua)
			}
			return t.RoundTrip(r)
		}),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// hopHeaders are removed before forwarding (forwarding_proxy.go).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forwarder is gateway/handlers/forwarding_proxy.go with the transparent
// path transformer (direct_functions=false): the request goes to the
// provider at the same path and query.
type forwarder struct {
	cfg    Config
	base   string
	client *http.Client
	stream http.Handler
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	originalURL := r.URL.String()
	start := time.Now()
	status, err := f.forward(w, r)
	if err != nil {
		f.cfg.Log.Printf("error with upstream request to: %s, %s\n", r.URL.Path, err.Error())
	}
	f.cfg.Log.Printf("Forwarded [%s] to %s - [%d] - %.4fs", r.Method, originalURL, status, time.Since(start).Seconds())
}

func (f *forwarder) forward(w http.ResponseWriter, r *http.Request) (int, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	target := f.base + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequest(r.Method, target, nil)
	if err != nil {
		// The original ignores this error and dereferences the nil request:
		// the handler panics and the connection is dropped unanswered.
		panic(http.ErrAbortHandler)
	}
	relay.Forward(out, r, hopHeaders...)
	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.UpstreamTimeout)
	defer cancel()
	if strings.HasPrefix(r.Header.Get("Accept"), "text/event-stream") {
		f.stream.ServeHTTP(w, r.WithContext(ctx))
		return http.StatusOK, nil
	}
	res, err := f.client.Do(out.WithContext(ctx))
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return http.StatusBadGateway, err
	}
	defer res.Body.Close()
	relay.CopyHeaders(w.Header(), res.Header)
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
	return res.StatusCode, nil
}
