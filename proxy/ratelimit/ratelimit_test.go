package ratelimit

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fakeclock"
)

// clock is the shared manual test clock.
type clock = fakeclock.Clock

func newClock() *clock { return fakeclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) }

func TestAllowBurstAndRefill(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := New(1, 3, 100, c.Now)
	for i := range 3 {
		if ok, retry := l.Allow("a"); !ok || retry != 0 {
			t.Fatalf("request %d: got (%v, %v), want (true, 0)", i, ok, retry)
		}
	}
	steps := []struct {
		advance   time.Duration
		wantOK    bool
		wantRetry time.Duration
	}{
		{0, false, time.Second},
		{400 * time.Millisecond, false, 600 * time.Millisecond},
		{600 * time.Millisecond, true, 0},
		{0, false, time.Second},
		{10 * time.Second, true, 0}, // refilled to burst, not beyond
		{0, true, 0},
		{0, true, 0},
		{0, false, time.Second},
	}
	for i, s := range steps {
		c.Advance(s.advance)
		ok, retry := l.Allow("a")
		if ok != s.wantOK || retry != s.wantRetry {
			t.Fatalf("step %d: got (%v, %v), want (%v, %v)", i, ok, retry, s.wantOK, s.wantRetry)
		}
	}
}

func TestKeysAreIndependent(t *testing.T) {
	t.Parallel()
	l := New(1, 1, 100, newClock().Now)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("got a refused, want allowed")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("got a allowed twice, want refused")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("got b refused, want its own bucket")
	}
}

func TestBlockedPeeksWithoutConsuming(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := New(0.5, 2, 100, c.Now)
	if blocked, retry := l.Blocked("new"); blocked || retry != 0 {
		t.Fatalf("got (%v, %v) for an unknown key, want (false, 0)", blocked, retry)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("got %d keys after Blocked, want 0: peeking must not store", n)
	}
	l.Allow("k")
	for range 10 {
		if blocked, _ := l.Blocked("k"); blocked {
			t.Fatal("got blocked with one token left, want not blocked")
		}
	}
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("got the second token refused, want Blocked to have consumed nothing")
	}
	blocked, retry := l.Blocked("k")
	if !blocked || retry != 2*time.Second {
		t.Fatalf("got (%v, %v), want (true, 2s)", blocked, retry)
	}
	c.Advance(2 * time.Second)
	if blocked, _ := l.Blocked("k"); blocked {
		t.Fatal("got blocked after the refill, want not blocked")
	}
}

func TestRetryAfterIsNeverZero(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := New(1000, 1, 10, c.Now)
	for i := range 2000 {
		ok, retry := l.Allow("k")
		if !ok && retry <= 0 {
			t.Fatalf("step %d: got retry %v on refusal, want > 0", i, retry)
		}
		if ok && retry != 0 {
			t.Fatalf("step %d: got retry %v on success, want 0", i, retry)
		}
		c.Advance(time.Duration(i%7) * 100 * time.Microsecond)
	}
}

func TestZeroRateNeverRefills(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := New(0, 0, 0, c.Now) // burst and maxKeys raised to 1
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("got the first request refused, want the burst of 1")
	}
	c.Advance(24 * time.Hour)
	if ok, retry := l.Allow("k"); ok || retry != maxRetry {
		t.Fatalf("got (%v, %v), want (false, %v)", ok, retry, maxRetry)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	t.Parallel()
	for _, maxKeys := range []int{1, 7, 100, 1000, 10_000} {
		t.Run(fmt.Sprint(maxKeys), func(t *testing.T) {
			t.Parallel()
			c := newClock()
			l := New(1, 1, maxKeys, c.Now)
			for i := range 5 * maxKeys {
				l.Allow(fmt.Sprintf("key-%d", i))
				c.Advance(time.Millisecond)
			}
			if n := l.Len(); n > maxKeys || n < maxKeys/2 {
				t.Fatalf("got %d keys, want between %d and %d", n, maxKeys/2, maxKeys)
			}
		})
	}
}

func TestLongKeysAreHashed(t *testing.T) {
	t.Parallel()
	l := New(1, 1, 10, newClock().Now)
	long := strings.Repeat("x", 10_000)
	l.Allow(long)
	if ok, _ := l.Allow(long); ok {
		t.Fatal("got a long key allowed twice, want its bucket found again")
	}
	if ok, _ := l.Allow(long + "y"); !ok {
		t.Fatal("got another long key refused, want its own bucket")
	}
	for k := range l.shards[0].m {
		if len(k) > MaxKeyLen {
			t.Fatalf("got a stored key of %d bytes, want at most %d", len(k), MaxKeyLen)
		}
	}
}

// A throttled client that keeps knocking is never the eviction victim, so a
// flood of fresh keys cannot reset its bucket.
func TestFloodDoesNotEvictAThrottledKey(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := New(0.001, 1, 64, c.Now)
	l.Allow("attacker")
	for i := range 10_000 {
		c.Advance(time.Millisecond)
		if blocked, _ := l.Blocked("attacker"); !blocked {
			t.Fatalf("after %d fresh keys: got attacker unblocked, want its bucket kept", i)
		}
		l.Allow(fmt.Sprintf("fresh-%d", i))
	}
}

func TestEvictionPrefersFullBuckets(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := New(1, 2, 2, c.Now)
	l.Allow("hot")
	l.Allow("hot") // empty, seen first
	c.Advance(100 * time.Millisecond)
	l.Allow("idle") // one token left, seen later
	c.Advance(time.Second)
	// Now idle is full again (harmless to drop) while hot is not.
	l.Allow("new")
	m := l.shards[0].m
	if _, ok := m["hot"]; !ok {
		t.Fatalf("got hot evicted, want the full bucket evicted; keys %v", keys(m))
	}
	if _, ok := m["idle"]; ok {
		t.Fatalf("got idle kept, want it evicted; keys %v", keys(m))
	}
}

func keys(m map[string]entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestConcurrentAllowNeverExceedsBurst(t *testing.T) {
	t.Parallel()
	l := New(1, 25, 1000, newClock().Now) // frozen clock: no refill
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprintf("g%d-%d", g, i))
				l.Blocked("shared")
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 25 {
		t.Fatalf("got %d allowed, want exactly the burst of 25", got)
	}
	if n := l.Len(); n > 1000 {
		t.Fatalf("got %d keys, want at most 1000", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{-time.Second, "1"}, {0, "1"}, {time.Nanosecond, "1"}, {time.Second, "1"},
		{time.Second + time.Nanosecond, "2"}, {1500 * time.Millisecond, "2"}, {59 * time.Second, "59"},
		{time.Hour, "3600"}, {time.Duration(1<<63 - 1), "9223372037"},
	}
	for _, tt := range tests {
		if got := RetryAfterSeconds(tt.in); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(1e9, 1<<30, 100_000, time.Now)
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("203.0.113.7")
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(1e9, 1<<30, 100_000, time.Now)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i%len(keys)])
			i++
		}
	})
}

func BenchmarkBlocked(b *testing.B) {
	l := New(1, 20, 100_000, time.Now)
	l.Allow("203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		l.Blocked("203.0.113.7")
	}
}

func BenchmarkAllowNewKeysAtCapacity(b *testing.B) {
	l := New(10, 10, 10_000, time.Now)
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}
