package authz

import (
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/identity"
)

// An entry ends at the credential's expiry or the TTL, whichever is first;
// a credential already expired is not stored; the bound evicts the least
// recently used entry; every part of the key is compared.
func TestDecisionCacheBounds(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	allow := Decision{Allow: true}
	tests := []struct {
		name    string
		expires time.Time // the credential's; zero: none (API key)
		at      time.Duration
		want    bool
	}{
		{name: "before exp", expires: now.Add(time.Minute), at: 59 * time.Second, want: true},
		{name: "at exp", expires: now.Add(time.Minute), at: time.Minute},
		{name: "after exp", expires: now.Add(time.Minute), at: 2 * time.Minute},
		{name: "exp past the TTL, before the TTL", expires: now.Add(time.Hour), at: 4 * time.Minute, want: true},
		{name: "exp past the TTL, at the TTL", expires: now.Add(time.Hour), at: 5 * time.Minute},
		{name: "no exp, at the TTL", at: 5 * time.Minute},
		{name: "no exp, before the TTL", at: time.Second, want: true},
		{name: "expired when stored", expires: now, at: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewDecisionCache(8, 5*time.Minute, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			id := &identity.Identity{Subject: "alice", ExpiresAt: tc.expires}
			c.Put(id, "GET", "/a", allow, now)
			if _, got := c.Get(id, "GET", "/a", now.Add(tc.at)); got != tc.want {
				t.Fatalf("got hit %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("key", func(t *testing.T) {
		t.Parallel()
		c, err := NewDecisionCache(8, time.Minute, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		alice := &identity.Identity{Subject: "alice"}
		twin := &identity.Identity{Subject: "alice"} // same fields, another credential
		c.Put(alice, "GET", "/a", allow, now)
		for _, k := range []struct {
			id           *identity.Identity
			method, path string
		}{{twin, "GET", "/a"}, {alice, "POST", "/a"}, {alice, "GET", "/a/"}, {alice, "get", "/a"}, {alice, "GET", "/A"}} {
			if _, hit := c.Get(k.id, k.method, k.path, now); hit {
				t.Fatalf("hit for %s %s of %p, want only %p GET /a", k.method, k.path, k.id, alice)
			}
		}
		if _, hit := c.Get(alice, "GET", "/a", now); !hit {
			t.Fatal("missed the stored key")
		}
	})
	t.Run("bound", func(t *testing.T) {
		t.Parallel()
		c, err := NewDecisionCache(2, time.Minute, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		id := &identity.Identity{}
		c.Put(id, "GET", "/1", allow, now)
		c.Put(id, "GET", "/2", allow, now)
		c.Get(id, "GET", "/1", now)
		c.Put(id, "GET", "/3", allow, now)
		if c.Len() != 2 {
			t.Fatalf("got %d entries, want 2", c.Len())
		}
		if _, hit := c.Get(id, "GET", "/2", now); hit {
			t.Fatal("the least recently used entry was kept")
		}
	})
	if _, err := NewDecisionCache(0, time.Minute, nil, nil); err == nil {
		t.Fatal("got a cache of 0 entries, want an error")
	}
}
