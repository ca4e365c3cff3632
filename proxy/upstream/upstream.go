// Package upstream builds the transport and reverse proxy that forward
// requests to the function.
package upstream

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/authgate/authgate/proxy/config"
)

// NewTransport returns a transport tuned for one local upstream: a keep-alive
// pool sized for load (never http.DefaultTransport's 2 idle connections), a
// response-header timeout, and cleartext HTTP/2 when the upstream speaks h2c.
func NewTransport(u config.Upstream) *http.Transport {
	t := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          u.MaxIdleConns,
		MaxIdleConnsPerHost:   u.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: u.Timeout.Duration,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
	if u.H2C {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		t.Protocols = p
	}
	return t
}

// BufferPool recycles copy buffers for response streaming.
type BufferPool struct{ pool sync.Pool }

// NewBufferPool returns a pool of 32 KiB buffers.
func NewBufferPool() *BufferPool {
	return &BufferPool{pool: sync.Pool{New: func() any {
		b := make([]byte, 32<<10)
		return &b
	}}}
}

// Get returns a buffer.
func (p *BufferPool) Get() []byte { return *(p.pool.Get().(*[]byte)) }

// Put returns a buffer to the pool.
func (p *BufferPool) Put(b []byte) { p.pool.Put(&b) }

// NewReverseProxy returns a streaming reverse proxy using Rewrite (never
// Director). Responses stream: ReverseProxy flushes at once for unknown
// lengths and event streams. rewrite sets the target and headers; onError
// answers upstream failures.
func NewReverseProxy(rt http.RoundTripper, pool httputil.BufferPool, rewrite func(*httputil.ProxyRequest),
	onError func(http.ResponseWriter, *http.Request, error), logger *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    rt,
		BufferPool:   pool,
		ErrorHandler: onError,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Cache keeps one transport per upstream setting so reloads keep their
// keep-alive pool.
type Cache struct {
	mu sync.Mutex
	m  map[config.Upstream]*http.Transport
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{m: map[config.Upstream]*http.Transport{}} }

// Get returns the transport for u, building it once.
func (c *Cache) Get(u config.Upstream) *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[u]; ok {
		return t
	}
	for old, t := range c.m {
		t.CloseIdleConnections()
		delete(c.m, old)
	}
	t := NewTransport(u)
	c.m[u] = t
	return t
}
