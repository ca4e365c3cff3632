// Command baseline is the load harness's "limit": a bare
// httputil.ReverseProxy (Rewrite with SetURL and SetXForwarded) with exactly
// the proxy's upstream transport and buffer pool, and nothing else.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/upstream"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8090", "listen address")
	target := flag.String("upstream", "http://127.0.0.1:8080", "upstream URL")
	idle := flag.Int("max-idle-conns", 256, "keep-alive pool size to the upstream (the proxy's default)")
	flag.Parse()
	if err := run(*addr, *target, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(addr, target string, idle int) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("--upstream: %w", err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		// The same transport and buffer pool the proxy builds.
		Transport:  upstream.NewTransport(config.Upstream{URL: target, MaxIdleConns: idle, Timeout: config.D(60 * time.Second)}),
		BufferPool: upstream.NewBufferPool(),
	}
	srv := &http.Server{Addr: addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.ListenAndServe()
}
