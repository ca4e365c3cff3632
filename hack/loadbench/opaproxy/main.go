// Command opaproxy is the load harness's external-authorizer peer (the
// Envoy ext_authz / Lambda authorizer pattern): a reverse proxy that POSTs
// each request's method, path and bearer token to an OPA server's REST API
// and forwards only when the decision is true. It has the same upstream
// transport and buffer pool as the proxy and the baseline.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/upstream"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8090", "listen address")
	target := flag.String("upstream", "http://127.0.0.1:8080", "upstream URL")
	opa := flag.String("opa", "http://127.0.0.1:8181/v1/data/authz/allow", "OPA decision URL")
	flag.Parse()
	if err := run(*addr, *target, *opa); err != nil {
		fmt.Fprintln(os.Stderr, "opaproxy:", err)
		os.Exit(1)
	}
}

func run(addr, target, opaURL string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("--upstream: %w", err)
	}
	tuning := config.Upstream{URL: target, MaxIdleConns: 256, Timeout: config.D(60 * time.Second)}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport:  upstream.NewTransport(tuning),
		BufferPool: upstream.NewBufferPool(),
	}
	az := &authorizer{url: opaURL, client: &http.Client{Timeout: 5 * time.Second, Transport: upstream.NewTransport(tuning)}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowed, err := az.allow(r)
		switch {
		case err != nil:
			http.Error(w, "authorizer unavailable", http.StatusServiceUnavailable)
		case !allowed:
			http.Error(w, "forbidden", http.StatusForbidden)
		default:
			rp.ServeHTTP(w, r)
		}
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.ListenAndServe()
}

type authorizer struct {
	url    string
	client *http.Client
}

type input struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Token  string `json:"token"`
}

func (a *authorizer) allow(r *http.Request) (bool, error) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	body, err := json.Marshal(map[string]input{"input": {Method: r.Method, Path: r.URL.Path, Token: tok}})
	if err != nil {
		return false, fmt.Errorf("encode input: %w", err)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("opa request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("opa: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Result bool `json:"result"`
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return false, fmt.Errorf("opa status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return false, fmt.Errorf("decode opa result: %w", err)
	}
	return out.Result, nil
}
