package faasnetes

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/authgate/authgate/test/cluster/openfaas/internal/relay"
	"github.com/authgate/authgate/test/cluster/openfaas/internal/route"
)

const internalHeader = "X-OpenFaaS-Internal"

// functionProxy is faas-provider's proxy.NewHandlerFunc (proxy/proxy.go):
// GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE (anything else 405), the
// function resolved by name for every request, the request sent to
// http://<pod IP>:8080/<rest of the path>?<query> with the caller's headers,
// X-Forwarded-Host set to the Host and X-Forwarded-For to the caller's
// host:port only when absent (never appended), the response copied back
// with Content-Type defaulted (response's, else request's, else text/plain).
type functionProxy struct {
	resolver Resolver
	client   *http.Client
	stdlib   http.Handler
	log      *log.Logger
	verbose  bool
}

func newFunctionProxy(resolver Resolver, timeout time.Duration, maxIdle, maxIdlePerHost int, logger *log.Logger) *functionProxy {
	if timeout <= 0 {
		timeout = 10 * time.Second // types.FaaSConfig.GetReadTimeout
	}
	if maxIdle < 1 {
		maxIdle = 1024
	}
	if maxIdlePerHost < 1 {
		maxIdlePerHost = maxIdle
	}
	return &functionProxy{
		resolver: resolver,
		log:      logger,
		verbose:  true, // faas-netes passes printFunctionExecutionTime = true
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
				MaxIdleConns:          maxIdle,
				MaxIdleConnsPerHost:   maxIdlePerHost,
				IdleConnTimeout:       5 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				ExpectContinueTimeout: 1500 * time.Millisecond,
			},
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		stdlib: relay.DirectorProxy(func(out *http.Request) { out.URL.Scheme = "http" }),
	}
}

func (p *functionProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodGet, http.MethodOptions, http.MethodHead:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	name := route.Var(r, "name")
	if name == "" {
		w.Header().Add(internalHeader, "proxy")
		http.Error(w, "Provide function name in the request path", http.StatusBadRequest)
		return
	}
	base, err := p.resolver.Resolve(name)
	if err != nil {
		w.Header().Add(internalHeader, "proxy")
		p.log.Printf("resolver error: no endpoints for %s: %s\n", name, err.Error())
		http.Error(w, fmt.Sprintf("No endpoints available for: %s.", name), http.StatusServiceUnavailable)
		return
	}
	out, err := buildProxyRequest(r, base, route.Var(r, "params"))
	if err != nil {
		w.Header().Add(internalHeader, "proxy")
		http.Error(w, fmt.Sprintf("Failed to resolve service: %s.", name), http.StatusInternalServerError)
		return
	}
	if p.verbose {
		start := time.Now()
		defer func() { p.log.Printf("%s took %f seconds\n", name, time.Since(start).Seconds()) }()
	}
	if relay.RequiresStdlibProxy(r) {
		r.URL = out.URL
		p.stdlib.ServeHTTP(w, r)
		return
	}
	res, err := p.client.Do(out.WithContext(r.Context()))
	if err != nil {
		p.log.Printf("error with proxy request to: %s, %s\n", out.URL.String(), err.Error())
		w.Header().Add(internalHeader, "proxy")
		http.Error(w, fmt.Sprintf("Can't reach service for: %s.", name), http.StatusInternalServerError)
		return
	}
	defer func() {
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
	}()
	relay.CopyHeaders(w.Header(), res.Header)
	w.Header().Set("Content-Type", contentType(r.Header, res.Header))
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
}

// buildProxyRequest is faas-provider's: the path is the route's params
// (the part after /function/<name>/), the query the caller's.
func buildProxyRequest(r *http.Request, base url.URL, extraPath string) (*http.Request, error) {
	host := base.Host
	if base.Port() == "" {
		host += fmt.Sprintf(":%d", watchdogPort)
	}
	u := url.URL{Scheme: base.Scheme, Host: host, Path: extraPath, RawQuery: r.URL.RawQuery}
	out, err := http.NewRequest(r.Method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	relay.Forward(out, r)
	return out, nil
}

func contentType(req, res http.Header) string {
	if v := res.Get("Content-Type"); v != "" {
		return v
	}
	if v := req.Get("Content-Type"); v != "" {
		return v
	}
	return "text/plain"
}
