package sharedlimit_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/ratelimit"
	"github.com/authgate/authgate/proxy/sharedlimit"
	"github.com/authgate/authgate/test/redisserver"
	"github.com/authgate/authgate/test/wait"
)

// Every test here runs against a real redis-server (Debian's package).

// healthy is a timeout no healthy call on a loaded test machine reaches.
const healthy = 2 * time.Second

func backend(t *testing.T, srv *redisserver.Server, mod func(*sharedlimit.Options)) (*sharedlimit.Backend, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	o := sharedlimit.Options{Network: srv.Network, Address: srv.Address, Timeout: healthy, Metrics: m, KeyPrefix: "test:"}
	if mod != nil {
		mod(&o)
	}
	b, err := sharedlimit.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, m
}

func rule(b *sharedlimit.Backend, rps float64, burst int, deny bool) *sharedlimit.Rule {
	return sharedlimit.NewRule(b, sharedlimit.RuleOptions{
		Name: "policy/orders:0:ip", RequestsPerSecond: rps, Burst: burst, Deny: deny,
		Local: ratelimit.New(rps, burst, 1000, nil),
	})
}

func allowed(t *testing.T, r *sharedlimit.Rule, key string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		d := r.Allow(context.Background(), key)
		if d.Unavailable {
			t.Fatalf("Allow(%q) unavailable", key)
		}
		if d.Allowed {
			ok++
		} else if d.RetryAfter <= 0 {
			t.Fatalf("refused without a retry delay: %+v", d)
		}
	}
	return ok
}

// Two replicas (two Backends, as two sidecars have) charge one bucket: a
// client cannot escape the limit by alternating between them.
func TestReplicasShareOneBucket(t *testing.T) {
	srv := redisserver.Start(t, redisserver.Options{})
	a, ma := backend(t, srv, nil)
	b, _ := backend(t, srv, nil)
	ra, rb := rule(a, 0.01, 5, false), rule(b, 0.01, 5, false)
	got := 0
	for range 10 {
		got += allowed(t, ra, "203.0.113.7", 1)
		got += allowed(t, rb, "203.0.113.7", 1)
	}
	if got != 5 {
		t.Fatalf("%d of 20 requests across two replicas allowed, want the burst of 5", got)
	}
	if n := allowed(t, rb, "198.51.100.1", 5); n != 5 {
		t.Fatalf("another client got %d of 5", n)
	}
	if v := testutil.ToFloat64(ma.LimitBackendCalls.WithLabelValues("ok")); v != 10 {
		t.Fatalf("ok calls on replica a = %v, want 10", v)
	}
	// A changed rate is a fresh key space, as a local limit starts fresh buckets.
	if n := allowed(t, rule(a, 0.01, 6, false), "203.0.113.7", 6); n != 6 {
		t.Fatalf("a changed burst kept the old bucket: %d of 6", n)
	}
}

func TestBlockedTakesNoToken(t *testing.T) {
	srv := redisserver.Start(t, redisserver.Options{})
	b, _ := backend(t, srv, nil)
	r := rule(b, 0.01, 3, false)
	ctx := context.Background()
	for range 10 {
		if d := r.Blocked(ctx, "client"); !d.Allowed {
			t.Fatalf("a fresh client is blocked: %+v", d)
		}
	}
	if n := allowed(t, r, "client", 2); n != 2 {
		t.Fatalf("Blocked took tokens: %d of 2 allowed after it", n)
	}
	if d := r.Blocked(ctx, "client"); !d.Allowed {
		t.Fatalf("blocked with one token left: %+v", d)
	}
	allowed(t, r, "client", 1)
	d := r.Blocked(ctx, "client")
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 100*time.Second {
		t.Fatalf("an empty bucket: %+v, want blocked with a retry of at most 100s", d)
	}
	// A local limiter of the same rule agrees (same rate, same burst).
	loc := ratelimit.New(0.01, 3, 10, nil)
	for range 3 {
		loc.Allow("client")
	}
	if blocked, _ := loc.Blocked("client"); !blocked {
		t.Fatal("the local limiter disagrees")
	}
}

// The rate refills: a rule of 20/s with a burst of 1 allows again after
// the refill (waited for, not timed).
func TestRefill(t *testing.T) {
	srv := redisserver.Start(t, redisserver.Options{})
	b, _ := backend(t, srv, nil)
	r := rule(b, 20, 1, false)
	if allowed(t, r, "k", 2) != 1 {
		t.Fatal("burst 1 allowed twice at once")
	}
	wait.For(t, 10*time.Second, func() bool {
		return r.Allow(context.Background(), "k").Allowed
	}, "the bucket refills")
}

// Redis stores only hashes of client keys, under the prefix.
func TestKeysAreHashed(t *testing.T) {
	srv := redisserver.Start(t, redisserver.Options{})
	b, _ := backend(t, srv, nil)
	secretish := "user:alice@example.com"
	allowed(t, rule(b, 1, 1, false), secretish, 1)
	keys, err := srv.Client(t).Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "rate:test:policy/orders:0:ip:1:1:") || strings.Contains(keys[0], "alice") {
		t.Fatalf("keys in Redis: %q, want one under the prefix holding no client value", keys)
	}
}

// Redis down: a limit with the local fallback answers from this replica's
// buckets, one that denies answers Unavailable; the breaker opens and
// stops calling; Redis back: calls resume.
func TestRedisKilledAndRestarted(t *testing.T) {
	srv := redisserver.Start(t, redisserver.Options{TCP: true})
	b, m := backend(t, srv, func(o *sharedlimit.Options) { o.BreakerOpen = 200 * time.Millisecond })
	local, deny := rule(b, 0.01, 2, false), rule(b, 0.01, 2, true)
	if allowed(t, local, "c", 1) != 1 {
		t.Fatal("healthy Redis refused")
	}
	srv.Kill()
	// This replica's own bucket has both tokens: the shared bucket's
	// history is not known while Redis is down.
	if n := allowed(t, local, "c", 3); n != 2 {
		t.Fatalf("local fallback allowed %d of 3, want its burst of 2", n)
	}
	for range 10 {
		if d := deny.Allow(context.Background(), "c"); !d.Unavailable || d.Allowed {
			t.Fatalf("deny rule with Redis down: %+v, want unavailable", d)
		}
	}
	if v := testutil.ToFloat64(m.LimitBackendFallbacks.WithLabelValues("local")); v != 3 {
		t.Fatalf("local fallbacks = %v, want 3", v)
	}
	if v := testutil.ToFloat64(m.LimitBackendFallbacks.WithLabelValues("deny")); v != 10 {
		t.Fatalf("deny fallbacks = %v, want 10", v)
	}
	if v := testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("breaker_open")); v < 1 {
		t.Fatalf("the breaker never opened (calls: error %v, timeout %v)",
			testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("error")), testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("timeout")))
	}
	failed := testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("error")) + testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("timeout"))
	if failed != sharedlimit.DefaultBreakerFailures {
		t.Fatalf("%v calls reached the dead Redis, want %d before the breaker opened", failed, sharedlimit.DefaultBreakerFailures)
	}
	if v := testutil.ToFloat64(m.LimitBackendBreakerState); v != 1 {
		t.Fatalf("breaker state gauge = %v, want 1 (open)", v)
	}
	srv.Restart()
	wait.For(t, 30*time.Second, func() bool {
		return !deny.Allow(context.Background(), "fresh").Unavailable
	}, "calls reach the restarted Redis")
	if v := testutil.ToFloat64(m.LimitBackendBreakerState); v != 0 {
		t.Fatalf("breaker state gauge = %v, want 0 (closed)", v)
	}
}

// A stalled Redis (DEBUG SLEEP) costs each call at most the timeout; no
// request waits for Redis to wake up.
func TestSlowRedisTimesOut(t *testing.T) {
	srv := redisserver.Start(t, redisserver.Options{})
	b, m := backend(t, srv, func(o *sharedlimit.Options) { o.Timeout = 50 * time.Millisecond })
	r := rule(b, 0.01, 100, true)
	if d := r.Allow(context.Background(), "c"); !d.Allowed {
		t.Fatalf("healthy: %+v", d)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := srv.Do("DEBUG", "SLEEP", "3"); err != nil {
			t.Errorf("DEBUG SLEEP: %v", err)
		}
	})
	defer wg.Wait()
	wait.For(t, 10*time.Second, func() bool {
		d := r.Allow(context.Background(), "c")
		return d.Unavailable
	}, "a call times out while Redis sleeps")
	if v := testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("timeout")); v < 1 {
		t.Fatalf("timeouts = %v (errors %v)", v, testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("error")))
	}
}

func TestPasswordFileAndRotation(t *testing.T) {
	srv := redisserver.Start(t, redisserver.Options{Password: "s3cr3t-redis-password"})
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, m := backend(t, srv, func(o *sharedlimit.Options) { o.PasswordFile = file; o.BreakerFailures = 1000 })
	r := rule(b, 0.01, 10, true)
	if d := r.Allow(context.Background(), "c"); !d.Unavailable {
		t.Fatalf("a wrong password was accepted: %+v", d)
	}
	if v := testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("error")); v != 1 {
		t.Fatalf("errors = %v, want 1", v)
	}
	// The Secret is updated: the next connection reads the new password.
	if err := os.WriteFile(file, []byte("s3cr3t-redis-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() bool {
		return r.Allow(context.Background(), "c").Allowed
	}, "the rotated password is used")
}

func TestTLS(t *testing.T) {
	srv := redisserver.Start(t, redisserver.Options{TLS: true, Password: "pw-over-tls"})
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("pw-over-tls"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := backend(t, srv, func(o *sharedlimit.Options) {
		o.PasswordFile = file
		o.TLS = &tls.Config{RootCAs: srv.CA.Pool(), MinVersion: tls.VersionTLS12}
	})
	if n := allowed(t, rule(b, 0.01, 2, true), "c", 3); n != 2 {
		t.Fatalf("over TLS %d of 3 allowed, want 2", n)
	}
	// A client that does not trust the server's CA never talks to it.
	untrusting, m := backend(t, srv, func(o *sharedlimit.Options) {
		o.PasswordFile = file
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	})
	if d := rule(untrusting, 0.01, 2, true).Allow(context.Background(), "c"); !d.Unavailable {
		t.Fatalf("an untrusted server certificate was accepted: %+v", d)
	}
	if v := testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("error")); v != 1 {
		t.Fatalf("errors = %v, want 1", v)
	}
}

// A proxy with no Redis configured: every shared limit is unavailable.
func TestNoBackend(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	r := sharedlimit.NewRule(nil, sharedlimit.RuleOptions{Name: "x", RequestsPerSecond: 1, Burst: 1, Local: ratelimit.New(1, 1, 10, nil), Metrics: m})
	if n := allowed(t, r, "c", 2); n != 1 {
		t.Fatalf("local fallback without Redis allowed %d of 2", n)
	}
	d := sharedlimit.NewRule(nil, sharedlimit.RuleOptions{Name: "x", RequestsPerSecond: 1, Burst: 1, Deny: true, Metrics: m}).Allow(context.Background(), "c")
	if !d.Unavailable {
		t.Fatalf("deny without Redis: %+v", d)
	}
	if v := testutil.ToFloat64(m.LimitBackendCalls.WithLabelValues("unconfigured")); v != 3 {
		t.Fatalf("unconfigured = %v, want 3", v)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []sharedlimit.Options{
		{},
		{Address: "x", Network: "udp"},
		{Address: "x", Timeout: -time.Second},
	} {
		if _, err := sharedlimit.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
