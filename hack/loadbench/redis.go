package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/authgate/authgate/proxy/config"
)

// redisTarget is the cached-JWT configuration with a subject rate limit
// kept in Redis (a real redis-server on a loopback port, started here):
// every request costs the shared auth-failure throttle's read and the
// limit's GCRA call. The limit is far above the load, so every request is
// forwarded; what is measured is the cost of asking Redis.
func (e *env) redisTarget(bearer [][2]string) *target {
	cfg := e.proxyConfig()
	cfg.Policies[0].RateLimits = []config.RateLimit{{Key: config.RateKeySubject, RequestsPerSecond: 1e6, Burst: 1e6}}
	cfg.Policies[0].SharedLimits = &config.SharedLimits{OnUnavailable: config.SharedFallbackDeny}
	return &target{
		Name: "jwt-redis", Title: "authgate: cached JWT + Redis-backed limit", Kind: kindProxy, Path: "/orders/1", Headers: bearer, Config: cfg,
		start: func(ctx context.Context) (string, []*proc, error) {
			rp, addr, err := e.startRedis(ctx)
			if err != nil {
				return "", nil, err
			}
			// deny: a request the proxy could not check against Redis is a
			// 503, which the harness counts as an error, so a run whose
			// figures came from the local fallback cannot pass unnoticed.
			a, ps, err := e.startProxy(ctx, e.bins.Proxy, "jwt-redis", cfg, []string{"--redis-address", addr, "--redis-timeout", "50ms"})
			if err != nil {
				rp.stop()
				return "", nil, err
			}
			return a, append(ps, rp), nil
		},
	}
}

// startRedis runs Debian's redis-server on a free loopback port, no
// persistence, and waits until it accepts connections.
func (e *env) startRedis(ctx context.Context) (*proc, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("redis-server not found (make redis-server): %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	p, err := startProc("redis", bin, []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--dir", e.dir}, nil, filepath.Join(e.dir, "redis.log"))
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
			return p, addr, nil
		}
		select {
		case <-p.done:
			return nil, "", fmt.Errorf("redis-server exited: %w\n%s", errors.Join(p.err, err), p.logTail())
		case <-ctx.Done():
			p.stop()
			return nil, "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, "", fmt.Errorf("redis-server not reachable at %s: %w", addr, err)
		}
	}
}
