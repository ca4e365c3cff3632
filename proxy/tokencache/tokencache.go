// Package tokencache is a bounded, sharded LRU cache of verified identities
// keyed by a hash of the verifier's identity and the token. An entry never
// outlives the credential's expiry nor the cache TTL.
package tokencache

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/metrics"
)

// shardThreshold is the capacity from which the cache is split into shards;
// smaller caches use a single shard so the bound stays exact and useful.
const (
	shardThreshold = 256
	maxShards      = 16
)

// Cache maps token keys to verified identities. It is safe for concurrent
// use. The zero value is not usable; call New.
type Cache struct {
	shards   []shard
	mask     uint64
	ttl      time.Duration
	now      func() time.Time
	disabled bool
	closed   atomic.Bool

	hits, misses prometheus.Counter
	entries      prometheus.Gauge
}

type shard struct {
	mu    sync.Mutex
	items map[[32]byte]*entry
	// head.next is the most recently used entry, head.prev the least.
	head entry
	max  int
}

type entry struct {
	key        [32]byte
	verifier   string // who verified it, for Retain
	id         *identity.Identity
	expires    time.Time
	prev, next *entry
}

// New returns a cache holding at most maxEntries identities, each for at most
// ttl. maxEntries <= 0 or ttl <= 0 disables the cache: Get always misses and
// Put stores nothing. now is the clock (time.Now when nil); m may be nil.
func New(maxEntries int, ttl time.Duration, now func() time.Time, m *metrics.Metrics) *Cache {
	if now == nil {
		now = time.Now
	}
	c := &Cache{ttl: ttl, now: now, disabled: maxEntries <= 0 || ttl <= 0}
	if m != nil {
		c.hits = m.TokenCache.WithLabelValues("hit")
		c.misses = m.TokenCache.WithLabelValues("miss")
		c.entries = m.TokenCacheEntries
	}
	if c.disabled {
		return c
	}
	n := 1
	if maxEntries >= shardThreshold {
		n = maxShards
	}
	c.shards = make([]shard, n)
	c.mask = uint64(n - 1)
	for i := range c.shards {
		s := &c.shards[i]
		s.max = maxEntries / n
		if i < maxEntries%n {
			s.max++
		}
		s.items = make(map[[32]byte]*entry, min(s.max, 1024))
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return c
}

// Key derives the cache key of token as verified by verifierID: SHA-256 over
// verifierID, a zero byte and the token. The same token under two verifiers
// yields two keys.
func Key(verifierID, token string) [32]byte {
	// Hashing from a stack buffer avoids allocating []byte(token).
	var buf [2048]byte
	if n := len(verifierID) + 1 + len(token); n <= len(buf) {
		copy(buf[copy(buf[:], verifierID)+1:], token)
		return sha256.Sum256(buf[:n])
	}
	h := sha256.New()
	write := func(s string) {
		for len(s) > 0 {
			n := copy(buf[:], s)
			_, _ = h.Write(buf[:n])
			s = s[n:]
		}
	}
	write(verifierID)
	_, _ = h.Write([]byte{0})
	write(token)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *Cache) shardFor(k *[32]byte) *shard {
	return &c.shards[binary.LittleEndian.Uint64(k[:8])&c.mask]
}

// Get returns the identity stored under k. It never returns an entry at or
// after its expiry; an expired entry is removed.
func (c *Cache) Get(k [32]byte) (*identity.Identity, bool) {
	if c.disabled {
		c.count(c.misses)
		return nil, false
	}
	now := c.now()
	s := c.shardFor(&k)
	s.mu.Lock()
	e, ok := s.items[k]
	if ok && !now.Before(e.expires) {
		s.remove(e)
		s.mu.Unlock()
		c.gaugeAdd(-1)
		c.count(c.misses)
		return nil, false
	}
	if !ok {
		s.mu.Unlock()
		c.count(c.misses)
		return nil, false
	}
	s.moveToFront(e)
	id := e.id
	s.mu.Unlock()
	c.count(c.hits)
	return id, true
}

// Put stores id under k until min(id.ExpiresAt, now+ttl); a zero ExpiresAt
// means only the TTL applies. An identity already expired is not stored. The
// least recently used entry of the shard is evicted when it is full.
// verifier names who verified the identity (the verifierID of Key), so that
// Retain can drop the entries of verifiers that no longer exist.
func (c *Cache) Put(k [32]byte, verifier string, id *identity.Identity) {
	if c.disabled || id == nil || c.closed.Load() {
		return
	}
	now := c.now()
	exp := now.Add(c.ttl)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(exp) {
		exp = id.ExpiresAt
	}
	if !now.Before(exp) {
		return
	}
	s := c.shardFor(&k)
	delta := 0
	s.mu.Lock()
	if e, ok := s.items[k]; ok {
		e.id, e.expires, e.verifier = id, exp, verifier
		s.moveToFront(e)
		s.mu.Unlock()
		return
	}
	if len(s.items) >= s.max {
		s.remove(s.head.prev)
		delta--
	}
	e := &entry{key: k, verifier: verifier, id: id, expires: exp}
	s.items[k] = e
	s.pushFront(e)
	delta++
	s.mu.Unlock()
	c.gaugeAdd(float64(delta))
}

// Retain removes every entry whose verifier keep rejects (a verifier that
// a new configuration dropped or changed) and returns how many it removed.
func (c *Cache) Retain(keep func(verifier string) bool) int {
	return c.Remove(func(verifier string, _ *identity.Identity) bool { return !keep(verifier) })
}

// Remove removes every entry for which drop reports true (an identity a
// new configuration revokes) and returns how many it removed. drop is
// called with a shard locked: it must not use the cache.
func (c *Cache) Remove(drop func(verifier string, id *identity.Identity) bool) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, e := range s.items {
			if drop(e.verifier, e.id) {
				s.remove(e)
				n++
			}
		}
		s.mu.Unlock()
	}
	c.gaugeAdd(-float64(n))
	return n
}

// Close empties the cache for good: a replaced cache stores nothing more,
// so the entries gauge counts only the cache in use.
func (c *Cache) Close() {
	c.closed.Store(true)
	c.Retain(func(string) bool { return false })
}

// Len returns the number of stored entries, expired ones not yet removed
// included.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

func (c *Cache) count(ctr prometheus.Counter) {
	if ctr != nil {
		ctr.Inc()
	}
}

func (c *Cache) gaugeAdd(d float64) {
	if c.entries != nil && d != 0 {
		c.entries.Add(d)
	}
}

func (s *shard) remove(e *entry) {
	delete(s.items, e.key)
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (s *shard) pushFront(e *entry) {
	e.prev = &s.head
	e.next = s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *shard) moveToFront(e *entry) {
	if s.head.next == e {
		return
	}
	e.prev.next = e.next
	e.next.prev = e.prev
	s.pushFront(e)
}
