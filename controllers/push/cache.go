package push

import (
	"container/list"
	"sync"
	"time"
)

// tokenKey is the SHA-256 of a token: the caches never hold a token.
type tokenKey [32]byte

// ttlCache is a map bounded in size and in time, safe for concurrent use:
// an entry is gone after its expiry, and when the cache is full the oldest
// entry gives way to a new one.
type ttlCache[V any] struct {
	mu    sync.Mutex
	max   int
	items map[tokenKey]*list.Element
	order *list.List // of *ttlEntry[V], oldest first
}

type ttlEntry[V any] struct {
	key     tokenKey
	val     V
	expires time.Time
}

func newTTLCache[V any](maxEntries int) *ttlCache[V] {
	return &ttlCache[V]{max: max(maxEntries, 1), items: map[tokenKey]*list.Element{}, order: list.New()}
}

// get returns the value stored under k unless it expired by now.
func (c *ttlCache[V]) get(k tokenKey, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*ttlEntry[V])
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, k)
		return zero, false
	}
	return e.val, true
}

// put stores v under k until expires, evicting the oldest entries while
// the cache is full.
func (c *ttlCache[V]) put(k tokenKey, v V, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
	for c.order.Len() >= c.max {
		oldest := c.order.Front()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*ttlEntry[V]).key)
	}
	c.items[k] = c.order.PushBack(&ttlEntry[V]{key: k, val: v, expires: expires})
}

// len is the number of entries, expired ones not yet dropped included.
func (c *ttlCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
