// Package ratelimit keeps a token bucket per key (client IP, subject, API
// key, route) in bounded memory.
package ratelimit

import (
	"crypto/sha256"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	// MaxKeyLen is the longest key stored as is; longer keys are stored as
	// their SHA-256 so a key's memory is bounded too.
	MaxKeyLen = 64
	// maxRetry caps a computed retry delay (a rate of zero never refills).
	maxRetry = time.Hour
	// evictSample is how many entries are looked at to pick a victim.
	evictSample = 8
	// maxShards and minPerShard size the lock striping.
	maxShards   = 64
	minPerShard = 64
)

// Limiter holds one token bucket per key. It is safe for concurrent use.
type Limiter struct {
	limit    rate.Limit
	burst    int
	now      func() time.Time
	seed     maphash.Seed
	perShard int
	shards   []shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]entry
}

type entry struct {
	lim  *rate.Limiter
	seen int64 // Unix nanoseconds of the last Allow or Blocked
}

// New returns a limiter refilling rps tokens per second into buckets of
// burst tokens, holding at most maxKeys keys. When full, adding a key evicts
// one from a small random sample: the fullest bucket, then the one idle for
// longest. burst and maxKeys below 1 are
// raised to 1; an rps of zero or below never refills; a nil now is
// time.Now.
func New(rps float64, burst int, maxKeys int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	burst = max(burst, 1)
	maxKeys = max(maxKeys, 1)
	limit := rate.Limit(rps)
	switch {
	case math.IsInf(rps, 1):
		limit = rate.Inf
	case !(rps > 0): // also NaN
		limit = 0
	}
	n := 1
	for n < maxShards && n*2*minPerShard <= maxKeys {
		n *= 2
	}
	l := &Limiter{
		limit: limit, burst: burst, now: now, seed: maphash.MakeSeed(),
		perShard: maxKeys / n, shards: make([]shard, n),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[string]entry)
	}
	return l
}

// Allow consumes one token from key's bucket. When the bucket is empty it
// returns false and how long until a token is available (always > 0).
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	key = storedKey(key)
	sh := l.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := l.now()
	e, found := sh.m[key]
	if !found {
		if len(sh.m) >= l.perShard {
			sh.evict(now, l.burst)
		}
		e.lim = rate.NewLimiter(l.limit, l.burst)
		// Never pin a larger buffer the key was sliced from.
		key = strings.Clone(key)
	}
	e.seen = now.UnixNano()
	sh.m[key] = e
	if e.lim.AllowN(now, 1) {
		return true, 0
	}
	return false, l.retryAfter(e.lim, now)
}

// Blocked reports, without consuming a token, whether Allow would refuse
// key now. It is for throttling authentication failures: check Blocked
// before authenticating and call Allow only when authentication fails. A
// key never seen is not blocked and is not stored.
func (l *Limiter) Blocked(key string) (blocked bool, retryAfter time.Duration) {
	key = storedKey(key)
	sh := l.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, found := sh.m[key]
	if !found {
		return false, 0
	}
	now := l.now()
	if e.lim.TokensAt(now) >= 1 {
		return false, 0
	}
	// A client hammering while blocked stays the most recently seen, so it
	// is the last candidate for eviction.
	e.seen = now.UnixNano()
	sh.m[key] = e
	return true, l.retryAfter(e.lim, now)
}

// Len returns the number of keys held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// RetryAfterSeconds formats d for a Retry-After header: whole seconds,
// rounded up, at least "1".
func RetryAfterSeconds(d time.Duration) string {
	secs := int64(d / time.Second)
	if d%time.Second > 0 {
		secs++
	}
	if secs < 1 {
		return "1"
	}
	return strconv.FormatInt(secs, 10)
}

func (l *Limiter) shard(key string) *shard {
	if len(l.shards) == 1 {
		return &l.shards[0]
	}
	return &l.shards[maphash.String(l.seed, key)&uint64(len(l.shards)-1)]
}

// retryAfter is the time until lim holds one token, never 0.
func (l *Limiter) retryAfter(lim *rate.Limiter, now time.Time) time.Duration {
	if l.limit <= 0 {
		return maxRetry
	}
	secs := (1 - lim.TokensAt(now)) / float64(l.limit)
	if secs >= maxRetry.Seconds() {
		return maxRetry
	}
	return max(time.Duration(math.Ceil(secs*float64(time.Second))), time.Nanosecond)
}

// evict removes one entry from a random sample (map iteration starts at a
// random place): the one whose eviction gives back the fewest whole tokens,
// that is the fullest bucket, and among equally full ones the one seen
// longest ago. A full bucket is as good as absent and is taken at once. So a
// throttled client is the last to be evicted by a flood of fresh keys.
func (sh *shard) evict(now time.Time, burst int) {
	victim, most, oldest, n := "", -1.0, int64(math.MaxInt64), 0
	for k, e := range sh.m {
		// Whole tokens: a fraction is no reason to spare a stale entry.
		tokens := math.Floor(e.lim.TokensAt(now))
		if tokens >= float64(burst) {
			victim = k
			break
		}
		if tokens > most || tokens == most && e.seen < oldest {
			victim, most, oldest = k, tokens, e.seen
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(sh.m, victim)
}

// storedKey bounds a key's size.
func storedKey(key string) string {
	if len(key) <= MaxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "\xffsha256:" + string(sum[:])
}
