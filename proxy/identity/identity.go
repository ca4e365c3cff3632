// Package identity is the verified identity of a request's caller, shared by
// authentication, authorization and header injection.
package identity

import (
	"sync/atomic"
	"time"
)

// Kind is the credential kind that produced an identity.
type Kind string

// Credential kinds.
const (
	KindJWT    Kind = "jwt"
	KindAPIKey Kind = "apikey"
)

// Identity is built only from verified data. It is immutable once built:
// cached identities are shared between requests.
type Identity struct {
	// Kind of credential.
	Kind Kind
	// Subject is the token's sub, or the API key's name.
	Subject string
	// Issuer is the token's iss; empty for API keys.
	Issuer string
	// Source is the config name of the issuer, or "apikey".
	Source string
	// KeyName is the API key's name; empty for tokens.
	KeyName string
	// Scopes granted.
	Scopes []string
	// Roles held (from the issuer's rolesClaim).
	Roles []string
	// Claims are the verified claims, decoded once with json.Number for
	// numbers. For API keys: sub and scope.
	Claims map[string]any
	// RawClaims is the verified JSON payload the Claims were decoded from.
	RawClaims []byte
	// ExpiresAt is when the credential stops being valid; zero for API keys
	// without expiry.
	ExpiresAt time.Time

	// Derived caches one value computed from the fields above by a consumer
	// (authz keeps its Rego input value here), so a cached identity is
	// converted once and not on every request. It is computed at most once
	// and read-only after; it is not part of the identity and is never set
	// by hand. Build identities with a composite literal, never by copying
	// one: a copy does not see the original's cached value.
	Derived Derived
}

// Derived is a lazily filled, write-once slot for a value derived from an
// Identity. The zero value is empty. It is safe for concurrent use; it must
// not be copied after first use (go vet reports copies).
type Derived struct {
	p atomic.Pointer[derived]
}

type derived struct {
	owner *Identity
	value any
}

// Load returns the value stored for owner, or nil when there is none. A
// value stored through another Identity (the slot was copied along with a
// struct) is not returned.
func (d *Derived) Load(owner *Identity) any {
	if e := d.p.Load(); e != nil && e.owner == owner {
		return e.value
	}
	return nil
}

// LoadOrStore stores v for owner unless the slot is already filled, and
// returns the value now in the slot for owner: v, or the value stored by an
// earlier or concurrent call. When the slot holds a value for another
// Identity (it was copied), v is returned and not stored. The stored value
// must be immutable, as every request using the identity reads it.
func (d *Derived) LoadOrStore(owner *Identity, v any) any {
	e := &derived{owner: owner, value: v}
	if d.p.CompareAndSwap(nil, e) {
		return v
	}
	if cur := d.p.Load(); cur.owner == owner {
		return cur.value
	}
	return v
}

// HasScope reports whether s was granted.
func (id *Identity) HasScope(s string) bool {
	for _, v := range id.Scopes {
		if v == s {
			return true
		}
	}
	return false
}
