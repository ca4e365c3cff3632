package tokencache

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/test/fakeclock"
)

// fakeClock is the shared manual test clock.
type fakeClock = fakeclock.Clock

func newClock() *fakeClock { return fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

func TestKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		a, b      [2]string
		wantEqual bool
	}{
		{"same verifier and token", [2]string{"iss-a", "tok"}, [2]string{"iss-a", "tok"}, true},
		{"same token under two verifiers", [2]string{"iss-a", "tok"}, [2]string{"iss-b", "tok"}, false},
		{"different tokens", [2]string{"iss-a", "tok1"}, [2]string{"iss-a", "tok2"}, false},
		{"separator prevents shifting bytes", [2]string{"ab", "c"}, [2]string{"a", "bc"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Key(tt.a[0], tt.a[1]) == Key(tt.b[0], tt.b[1])
			if got != tt.wantEqual {
				t.Fatalf("got keys equal=%v, want %v", got, tt.wantEqual)
			}
		})
	}
}

func TestGetPutExpiry(t *testing.T) {
	t.Parallel()
	const ttl = 5 * time.Minute
	tests := []struct {
		name      string
		expiresIn time.Duration
		noExp     bool
		advance   time.Duration
		wantHit   bool
	}{
		{name: "fresh entry hits", expiresIn: time.Hour, advance: time.Minute, wantHit: true},
		{name: "token exp bounds entry: just before", expiresIn: 2 * time.Minute, advance: 2*time.Minute - time.Nanosecond, wantHit: true},
		{name: "token exp bounds entry: at exp", expiresIn: 2 * time.Minute, advance: 2 * time.Minute},
		{name: "token exp bounds entry: after exp", expiresIn: 2 * time.Minute, advance: 3 * time.Minute},
		{name: "ttl bounds entry of long-lived token", expiresIn: time.Hour, advance: ttl},
		{name: "ttl bounds entry without exp", noExp: true, advance: ttl},
		{name: "no exp within ttl hits", noExp: true, advance: ttl - time.Second, wantHit: true},
		{name: "already expired is not stored", expiresIn: -time.Second},
		{name: "expiring now is not stored", expiresIn: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			c := New(100, ttl, clk.Now, nil)
			id := &identity.Identity{Subject: "alice"}
			if !tt.noExp {
				id.ExpiresAt = clk.Now().Add(tt.expiresIn)
			}
			k := Key("iss", tt.name)
			c.Put(k, "v", id)
			clk.Advance(tt.advance)
			got, ok := c.Get(k)
			if ok != tt.wantHit {
				t.Fatalf("got hit=%v, want %v", ok, tt.wantHit)
			}
			if ok && got != id {
				t.Fatalf("got identity %p, want %p", got, id)
			}
			if !ok && got != nil {
				t.Fatalf("got identity %v on a miss, want nil", got)
			}
		})
	}
}

func TestExpiredEntryIsRemoved(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := New(10, time.Minute, clk.Now, nil)
	c.Put(Key("v", "t"), "v", &identity.Identity{})
	clk.Advance(time.Minute)
	if _, ok := c.Get(Key("v", "t")); ok {
		t.Fatal("got hit after ttl, want miss")
	}
	if got := c.Len(); got != 0 {
		t.Fatalf("got Len %d after expired Get, want 0", got)
	}
}

func TestBoundedLRU(t *testing.T) {
	t.Parallel()
	for _, max := range []int{1, 3, 255, 256, 1000, 1001} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			c := New(max, time.Hour, clk.Now, nil)
			for i := range max * 3 {
				c.Put(Key("v", fmt.Sprint(i)), "v", &identity.Identity{})
				if got := c.Len(); got > max {
					t.Fatalf("got Len %d after %d puts, want at most %d", got, i+1, max)
				}
			}
		})
	}
}

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := New(3, time.Hour, clk.Now, nil) // one shard below the threshold
	a, b, d, e := Key("v", "a"), Key("v", "b"), Key("v", "d"), Key("v", "e")
	c.Put(a, "v", &identity.Identity{Subject: "a"})
	c.Put(b, "v", &identity.Identity{Subject: "b"})
	c.Put(d, "v", &identity.Identity{Subject: "d"})
	if _, ok := c.Get(a); !ok { // a becomes most recent; b is now the oldest
		t.Fatal("got miss for a, want hit")
	}
	c.Put(e, "v", &identity.Identity{Subject: "e"})
	for _, tc := range []struct {
		name string
		k    [32]byte
		want bool
	}{{"a", a, true}, {"b", b, false}, {"d", d, true}, {"e", e, true}} {
		if _, ok := c.Get(tc.k); ok != tc.want {
			t.Errorf("%s: got hit=%v, want %v", tc.name, ok, tc.want)
		}
	}
}

func TestPutReplaces(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := New(10, time.Hour, clk.Now, nil)
	k := Key("v", "t")
	first, second := &identity.Identity{Subject: "1"}, &identity.Identity{Subject: "2"}
	c.Put(k, "v", first)
	c.Put(k, "v", second)
	if got, _ := c.Get(k); got != second {
		t.Fatalf("got %v, want the second identity", got)
	}
	if got := c.Len(); got != 1 {
		t.Fatalf("got Len %d, want 1", got)
	}
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		max  int
		ttl  time.Duration
	}{{"negative size", -1, time.Minute}, {"zero size", 0, time.Minute}, {"zero ttl", 10, 0}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := New(tt.max, tt.ttl, nil, nil)
			c.Put(Key("v", "t"), "v", &identity.Identity{})
			if _, ok := c.Get(Key("v", "t")); ok {
				t.Fatal("got hit from a disabled cache, want miss")
			}
			if got := c.Len(); got != 0 {
				t.Fatalf("got Len %d, want 0", got)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	clk := newClock()
	c := New(2, time.Hour, clk.Now, m)
	c.Get(Key("v", "a"))                            // miss
	c.Put(Key("v", "a"), "v", &identity.Identity{}) // 1 entry
	c.Get(Key("v", "a"))                            // hit
	c.Put(Key("v", "b"), "v", &identity.Identity{}) // 2 entries
	c.Put(Key("v", "c"), "v", &identity.Identity{}) // evicts: 2 entries
	want := `
# HELP authgate_token_cache_entries Tokens currently in the verified-token cache.
# TYPE authgate_token_cache_entries gauge
authgate_token_cache_entries 2
# HELP authgate_token_cache_requests_total Verified-token cache lookups by result (hit, miss).
# TYPE authgate_token_cache_requests_total counter
authgate_token_cache_requests_total{result="hit"} 1
authgate_token_cache_requests_total{result="miss"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"authgate_token_cache_entries", "authgate_token_cache_requests_total"); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := New(512, time.Hour, clk.Now, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := Key("v", fmt.Sprint((g*7+i)%1000))
				if id, ok := c.Get(k); ok && id == nil {
					t.Error("got nil identity on a hit")
					return
				}
				c.Put(k, "v", &identity.Identity{})
				if i%500 == 0 {
					clk.Advance(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	if got := c.Len(); got > 512 {
		t.Fatalf("got Len %d, want at most 512", got)
	}
}

func BenchmarkGetHit(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry())
	c := New(10000, time.Hour, time.Now, m)
	keys := make([][32]byte, 1000)
	for i := range keys {
		keys[i] = Key("issuer", fmt.Sprint("token-", i))
		c.Put(keys[i], "v", &identity.Identity{ExpiresAt: time.Now().Add(time.Hour)})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := c.Get(keys[i%len(keys)]); !ok {
				b.Fatal("got miss, want hit")
			}
			i++
		}
	})
}

func BenchmarkKey(b *testing.B) {
	tok := strings.Repeat("x", 900)
	b.ReportAllocs()
	for b.Loop() {
		_ = Key("issuer", tok)
	}
}

func TestRetainDropsOnlyRemovedVerifiers(t *testing.T) {
	t.Parallel()
	m := metrics.New(prometheus.NewRegistry())
	c := New(100, time.Hour, nil, m)
	c.Put(Key("kept", "t1"), "kept", &identity.Identity{})
	c.Put(Key("kept", "t2"), "kept", &identity.Identity{})
	c.Put(Key("gone", "t1"), "gone", &identity.Identity{})
	if n := c.Retain(func(v string) bool { return v == "kept" }); n != 1 {
		t.Fatalf("got %d removed, want 1", n)
	}
	if _, ok := c.Get(Key("gone", "t1")); ok {
		t.Fatal("got an entry of a removed verifier, want it gone")
	}
	if _, ok := c.Get(Key("kept", "t2")); !ok {
		t.Fatal("got no entry of a kept verifier, want it kept")
	}
	if got := testutil.ToFloat64(m.TokenCacheEntries); got != 2 {
		t.Fatalf("got gauge %v, want 2 (the entries left)", got)
	}
}

// Remove drops exactly the identities it is asked to, in every shard, and
// the entries gauge follows.
func TestRemoveDropsMatchingIdentities(t *testing.T) {
	t.Parallel()
	for _, size := range []int{100, shardThreshold * 4} { // one shard, several
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			m := metrics.New(prometheus.NewRegistry())
			c := New(size, time.Hour, nil, m)
			for i := range 50 {
				sub := "kept"
				if i%5 == 0 {
					sub = "revoked"
				}
				c.Put(Key("v", fmt.Sprint("t", i)), "v", &identity.Identity{Kind: identity.KindJWT, Subject: sub})
			}
			n := c.Remove(func(v string, id *identity.Identity) bool { return v == "v" && id.Subject == "revoked" })
			if n != 10 {
				t.Fatalf("got %d removed, want 10", n)
			}
			for i := range 50 {
				_, ok := c.Get(Key("v", fmt.Sprint("t", i)))
				if want := i%5 != 0; ok != want {
					t.Fatalf("token %d: got cached %v, want %v", i, ok, want)
				}
			}
			if got := testutil.ToFloat64(m.TokenCacheEntries); got != 40 {
				t.Fatalf("got gauge %v, want 40 (the entries left)", got)
			}
			if n := c.Remove(func(string, *identity.Identity) bool { return false }); n != 0 {
				t.Fatalf("got %d removed by a predicate matching nothing, want 0", n)
			}
		})
	}
}
