package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/sharedlimit"
	"github.com/authgate/authgate/test/redisserver"
	"github.com/authgate/authgate/test/wait"
)

// These tests run two replicas of one function (two gateways, each with its
// own State and its own Redis connection pool, as two sidecars have) in
// front of the same function, with a real redis-server between them.

// replica is one sidecar of the function.
type replica struct {
	proxy   *httptest.Server
	metrics *metrics.Metrics
}

// replicas builds n sidecars of e's configuration, each connected to srv
// (nil: no Redis configured) with the options mod sets.
func (e *env) replicas(t *testing.T, srv *redisserver.Server, n int, mod func(*sharedlimit.Options)) []*replica {
	t.Helper()
	raw, err := json.Marshal(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*replica, n)
	for i := range out {
		var cfg config.ProxyConfig
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		m := metrics.New(prometheus.NewRegistry())
		var b *sharedlimit.Backend
		if srv != nil {
			o := sharedlimit.Options{Network: srv.Network, Address: srv.Address, Timeout: 2 * time.Second, Metrics: m, KeyPrefix: "authgate:test:"}
			if mod != nil {
				mod(&o)
			}
			if b, err = sharedlimit.New(o); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
		}
		logger := slog.New(slog.NewJSONHandler(e.logs, nil))
		rt, err := gateway.Build(context.Background(), &cfg, "testhash", map[string]string{"app": "fn"}, gateway.Deps{
			Logger: logger, Metrics: m,
			State: gateway.NewState(gateway.StateOptions{Metrics: m, Logger: logger, SharedLimits: b}),
		})
		if err != nil {
			t.Fatalf("build replica %d: %v", i, err)
		}
		sw := &gateway.Switch{}
		sw.Store(rt)
		ts := httptest.NewServer(sw)
		t.Cleanup(ts.Close)
		out[i] = &replica{proxy: ts, metrics: m}
	}
	return out
}

// send sends GET path with hdr to r and returns the status and the reason.
func (r *replica) send(t *testing.T, path string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.proxy.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("request to a replica: %v", err)
	}
	defer resp.Body.Close()
	var body errorBody
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%d without Retry-After", resp.StatusCode)
		}
	}
	return resp.StatusCode, body.Reason
}

func withLimit(key string, shared *config.SharedLimits) envOption {
	return func(c *config.ProxyConfig) {
		c.Policies[0].RateLimits = []config.RateLimit{{Key: key, RequestsPerSecond: 0.01, Burst: 4}}
		c.Policies[0].SharedLimits = shared
	}
}

// A client alternating between two replicas gets the limit once with
// shared limits, and twice over without them (what the issue set out to
// fix). Each key kind is charged by what the local limit uses.
func TestSharedLimitHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t, redisserver.Options{})
	for _, tc := range []struct {
		name   string
		key    string
		shared bool
		want   int
	}{
		{"apikey shared", config.RateKeyAPIKey, true, 4},
		{"subject shared", config.RateKeySubject, true, 4},
		{"ip shared", config.RateKeyIP, true, 4},
		{"route shared", config.RateKeyRoute, true, 4},
		{"apikey local", config.RateKeyAPIKey, false, 8},
		{"subject local", config.RateKeySubject, false, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var shared *config.SharedLimits
			if tc.shared {
				shared = &config.SharedLimits{}
			}
			e := newEnv(t, withLimit(tc.key, shared))
			rs := e.replicas(t, srv, 2, func(o *sharedlimit.Options) { o.KeyPrefix = "authgate:" + t.Name() + ":" })
			cred := []string{"X-API-Key", partnerKey}
			if tc.key == config.RateKeySubject {
				cred = bearer(e.mint(map[string]any{"sub": "alice"}))
			}
			before := e.fn.Count()
			limited := 0
			for i := range 12 {
				status, reason := rs[i%2].send(t, "/orders/1", cred...)
				switch {
				case status == http.StatusOK:
				case status == http.StatusTooManyRequests && reason == gateway.ReasonRateLimited:
					limited++
				default:
					t.Fatalf("request %d: %d %s", i, status, reason)
				}
			}
			if got := e.fn.Count() - before; got != tc.want || limited != 12-tc.want {
				t.Fatalf("the function received %d of 12 requests (%d limited), want %d", got, limited, tc.want)
			}
			if tc.shared {
				// Someone else is not charged for alice's requests.
				other := []string{"Authorization", "Bearer " + e.mint(map[string]any{"sub": "bob"})}
				if tc.key == config.RateKeySubject {
					if status, _ := rs[1].send(t, "/orders/1", other...); status != http.StatusOK {
						t.Fatalf("another subject got %d", status)
					}
				}
				for _, r := range rs {
					if v := testutil.ToFloat64(r.metrics.LimitBackendCalls.WithLabelValues("ok")); v == 0 {
						t.Fatal("a replica never called Redis")
					}
				}
			}
		})
	}
}

// A client that fails authentication on one replica is throttled on the
// other: the auth-failure throttle of a policy with sharedLimits is shared.
func TestSharedThrottleAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t, redisserver.Options{})
	e := newEnv(t, withLimit(config.RateKeyIP, &config.SharedLimits{}), func(c *config.ProxyConfig) {
		c.Limits.AuthFailures = config.AuthFailureLimit{PerMinute: 1, Burst: 3}
	})
	rs := e.replicas(t, srv, 2, nil)
	for i := range 3 {
		if status, reason := rs[0].send(t, "/orders/1", "X-API-Key", "guess-"+strings.Repeat("x", 20+i)); status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i, status, reason)
		}
	}
	if status, reason := rs[1].send(t, "/orders/1", "X-API-Key", "guess-on-the-other-replica-xxxxx"); status != http.StatusTooManyRequests || reason != gateway.ReasonAuthFailures {
		t.Fatalf("the other replica answered %d %s, want 429 auth_failures", status, reason)
	}
}

// Redis killed in the middle of load and started again: with the local
// fallback every request is answered (200 or 429) from each replica's own
// buckets; with deny, the outage is 503 and the function sees none of those
// requests; after the restart both share again.
func TestSharedLimitRedisKilledMidLoad(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{config.SharedFallbackLocal, config.SharedFallbackDeny} {
		t.Run(mode, func(t *testing.T) {
			srv := redisserver.Start(t, redisserver.Options{TCP: true})
			e := newEnv(t, func(c *config.ProxyConfig) {
				c.Policies[0].RateLimits = []config.RateLimit{{Key: config.RateKeyAPIKey, RequestsPerSecond: 1000, Burst: 1000}}
				c.Policies[0].SharedLimits = &config.SharedLimits{OnUnavailable: mode}
			})
			rs := e.replicas(t, srv, 2, func(o *sharedlimit.Options) { o.BreakerOpen = 100 * time.Millisecond })
			var (
				statuses sync.Map // status → *atomic.Int64
				stop     atomic.Bool
				wg       sync.WaitGroup
			)
			count := func(status int) int64 {
				v, _ := statuses.LoadOrStore(status, new(atomic.Int64))
				return v.(*atomic.Int64).Load()
			}
			for w := range 4 {
				wg.Go(func() {
					for i := 0; !stop.Load(); i++ {
						status, reason := rs[(w+i)%2].send(t, "/orders/1", "X-API-Key", partnerKey)
						if status == http.StatusServiceUnavailable && reason != gateway.ReasonLimitUnavailable {
							t.Errorf("503 %s", reason)
						}
						v, _ := statuses.LoadOrStore(status, new(atomic.Int64))
						v.(*atomic.Int64).Add(1)
					}
				})
			}
			wait.For(t, 30*time.Second, func() bool { return count(http.StatusOK) >= 50 }, "requests flow with Redis up")
			srv.Kill()
			fallback := func() float64 {
				n := 0.0
				for _, r := range rs {
					n += testutil.ToFloat64(r.metrics.LimitBackendFallbacks.WithLabelValues(mode))
				}
				return n
			}
			wait.For(t, 30*time.Second, func() bool { return fallback() >= 50 }, "requests decided without Redis")
			okDuring := count(http.StatusOK)
			srv.Restart()
			wait.For(t, 30*time.Second, func() bool {
				return testutil.ToFloat64(rs[0].metrics.LimitBackendBreakerState) == 0 &&
					testutil.ToFloat64(rs[1].metrics.LimitBackendBreakerState) == 0
			}, "both replicas use Redis again")
			after := count(http.StatusOK)
			wait.For(t, 30*time.Second, func() bool { return count(http.StatusOK) >= after+50 }, "requests flow after the restart")
			stop.Store(true)
			wg.Wait()
			statuses.Range(func(k, v any) bool {
				switch k.(int) {
				case http.StatusOK, http.StatusTooManyRequests:
				case http.StatusServiceUnavailable:
					if mode != config.SharedFallbackDeny {
						t.Errorf("%d requests got 503 with the local fallback", v.(*atomic.Int64).Load())
					}
				default:
					t.Errorf("%d requests got %d", v.(*atomic.Int64).Load(), k)
				}
				return true
			})
			if mode == config.SharedFallbackDeny && count(http.StatusServiceUnavailable) == 0 {
				t.Fatal("no request was refused while Redis was down")
			}
			t.Logf("%s: 200 %d (%d by the kill), 429 %d, 503 %d; fallbacks %.0f", mode, count(http.StatusOK), okDuring,
				count(http.StatusTooManyRequests), count(http.StatusServiceUnavailable), fallback())
		})
	}
}

// A Redis that stalls (DEBUG SLEEP 5) holds no request for long: each call
// gives up at --redis-timeout and the limit falls back. The client's own
// 3 s timeout (generous next to the 50 ms the proxy waits) fails the test
// if a request waited for Redis.
func TestSlowRedisNeverHoldsARequest(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t, redisserver.Options{})
	e := newEnv(t, withLimit(config.RateKeyAPIKey, &config.SharedLimits{}))
	rs := e.replicas(t, srv, 1, func(o *sharedlimit.Options) { o.Timeout = 50 * time.Millisecond })
	if status, _ := rs[0].send(t, "/orders/1", "X-API-Key", partnerKey); status != http.StatusOK {
		t.Fatalf("healthy: %d", status)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _, _ = srv.Do("DEBUG", "SLEEP", "5") })
	client := &http.Client{Timeout: 3 * time.Second}
	send := func() int {
		req, _ := http.NewRequest(http.MethodGet, rs[0].proxy.URL+"/orders/1", nil)
		req.Header.Set("X-API-Key", partnerKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request while Redis sleeps: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("request while Redis sleeps: %d", resp.StatusCode)
		}
		return resp.StatusCode
	}
	wait.For(t, 10*time.Second, func() bool {
		send()
		return testutil.ToFloat64(rs[0].metrics.LimitBackendCalls.WithLabelValues("timeout")) > 0
	}, "a Redis call times out")
	for range 5 {
		send()
	}
	if v := testutil.ToFloat64(rs[0].metrics.LimitBackendFallbacks.WithLabelValues("local")); v < 1 {
		t.Fatalf("local fallbacks = %v", v)
	}
}

// No Redis configured: a limit that denies when Redis is unavailable
// denies (fail closed); one with the local fallback is a local limit.
func TestSharedLimitWithoutRedis(t *testing.T) {
	t.Parallel()
	deny := newEnv(t, withLimit(config.RateKeyAPIKey, &config.SharedLimits{OnUnavailable: config.SharedFallbackDeny}))
	rs := deny.replicas(t, nil, 1, nil)
	before := deny.fn.Count()
	if status, reason := rs[0].send(t, "/orders/1", "X-API-Key", partnerKey); status != http.StatusServiceUnavailable || reason != gateway.ReasonLimitUnavailable {
		t.Fatalf("deny without Redis: %d %s", status, reason)
	}
	if deny.fn.Count() != before {
		t.Fatal("the function was called")
	}
	local := newEnv(t, withLimit(config.RateKeyAPIKey, &config.SharedLimits{}))
	rl := local.replicas(t, nil, 1, nil)
	ok := 0
	for range 6 {
		if status, _ := rl[0].send(t, "/orders/1", "X-API-Key", partnerKey); status == http.StatusOK {
			ok++
		}
	}
	if ok != 4 {
		t.Fatalf("local fallback without Redis allowed %d of 6, want the burst of 4", ok)
	}
}

// The shared auth-failure throttle is read only when its answer matters: a
// credential the sidecar already verified costs it no Redis call, and with
// Redis down and onUnavailable deny such a credential still passes, while
// a credential that would need fresh verification gets 503.
func TestSharedThrottleReadOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t, redisserver.Options{})
	e := newEnv(t, func(c *config.ProxyConfig) {
		c.Policies[0].SharedLimits = &config.SharedLimits{OnUnavailable: config.SharedFallbackDeny}
	})
	rs := e.replicas(t, srv, 1, func(o *sharedlimit.Options) { o.BreakerFailures = 1000 })
	calls := func() float64 {
		m := rs[0].metrics.LimitBackendCalls
		return testutil.ToFloat64(m.WithLabelValues("ok")) + testutil.ToFloat64(m.WithLabelValues("error")) + testutil.ToFloat64(m.WithLabelValues("timeout"))
	}
	if status, _ := rs[0].send(t, "/orders/1", "X-API-Key", partnerKey); status != http.StatusOK {
		t.Fatalf("first request: %d", status)
	}
	if n := calls(); n != 1 {
		t.Fatalf("a key never verified before read the throttle %v times, want 1", n)
	}
	for range 5 {
		if status, _ := rs[0].send(t, "/orders/1", "X-API-Key", partnerKey); status != http.StatusOK {
			t.Fatalf("known key: %d", status)
		}
	}
	if n := calls(); n != 1 {
		t.Fatalf("a known key read the throttle: %v calls, want still 1", n)
	}
	srv.Kill()
	if status, _ := rs[0].send(t, "/orders/1", "X-API-Key", partnerKey); status != http.StatusOK {
		t.Fatalf("known key with Redis down: %d, want 200 (it is what a throttled client may still use)", status)
	}
	before := e.fn.Count()
	if status, reason := rs[0].send(t, "/orders/1", "X-API-Key", "a-guess-never-seen-before-xxxxxxxx"); status != http.StatusServiceUnavailable || reason != gateway.ReasonLimitUnavailable {
		t.Fatalf("an unknown key with Redis down: %d %s, want 503 %s", status, reason, gateway.ReasonLimitUnavailable)
	}
	if status, reason := rs[0].send(t, "/orders/1", bearer(e.mint(map[string]any{"sub": "x"}, kidOpt(9)))...); status != http.StatusServiceUnavailable {
		t.Fatalf("a token of an unknown key id with Redis down: %d %s, want 503", status, reason)
	}
	if e.fn.Count() != before || e.issuer.JWKSRequests() != 0 {
		t.Fatalf("with the throttle unreadable the function got %d requests and the IdP %d JWKS requests, want none",
			e.fn.Count()-before, e.issuer.JWKSRequests())
	}
}
