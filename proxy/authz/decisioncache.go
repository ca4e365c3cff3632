package authz

import (
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/identity"
)

// DecisionCache remembers one policy version's Rego decisions for
// policies whose Rego reads only what the key fixes (Engine.Cacheable).
// The key is the verified identity itself: the token cache hands out one
// *identity.Identity per verifier and token (keyed by their SHA-256), and
// an API key's identity is built once per configuration, so no other
// credential, and no other verifier's view of the same token, can share an
// entry. With the method and canonical path it fixes the whole input a
// cacheable policy can read (the route is the router's answer for them).
// A cache belongs to one built configuration, so a configuration change,
// a revocation among them, starts empty. An entry never outlives the
// credential's expiry nor the TTL. It is safe for concurrent use.
type DecisionCache struct {
	entries      *lru.Cache[decisionKey, cachedDecision]
	ttl          time.Duration
	hits, misses prometheus.Counter
}

type decisionKey struct {
	id           *identity.Identity
	method, path string
}

type cachedDecision struct {
	dec     Decision
	expires time.Time
}

// NewDecisionCache returns a cache of at most maxEntries decisions, each
// kept at most ttl. hits and misses may be nil.
func NewDecisionCache(maxEntries int, ttl time.Duration, hits, misses prometheus.Counter) (*DecisionCache, error) {
	if maxEntries <= 0 || ttl <= 0 {
		return nil, fmt.Errorf("decision cache needs positive bounds, got %d entries and ttl %s", maxEntries, ttl)
	}
	c, err := lru.New[decisionKey, cachedDecision](maxEntries)
	if err != nil {
		return nil, fmt.Errorf("decision cache: %w", err)
	}
	return &DecisionCache{entries: c, ttl: ttl, hits: hits, misses: misses}, nil
}

// Get returns the decision stored for id, method and path at now. The
// decision's Headers are shared: read them, never modify them.
func (c *DecisionCache) Get(id *identity.Identity, method, path string, now time.Time) (Decision, bool) {
	k := decisionKey{id: id, method: method, path: path}
	e, ok := c.entries.Get(k)
	if ok && !now.Before(e.expires) {
		c.entries.Remove(k)
		ok = false
	}
	if ok {
		inc(c.hits)
		return e.dec, true
	}
	inc(c.misses)
	return Decision{}, false
}

// Put stores a decision evaluated without error for id, method and path.
// Its Headers must not be modified afterwards.
func (c *DecisionCache) Put(id *identity.Identity, method, path string, dec Decision, now time.Time) {
	expires := now.Add(c.ttl)
	if x := id.ExpiresAt; !x.IsZero() && x.Before(expires) {
		expires = x
	}
	if !now.Before(expires) {
		return
	}
	c.entries.Add(decisionKey{id: id, method: method, path: path}, cachedDecision{dec: dec, expires: expires})
}

// Len is the number of entries, expired ones included until looked up or
// evicted.
func (c *DecisionCache) Len() int { return c.entries.Len() }

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}
