// Package identity is the verified identity of a request's caller, shared by
// authentication, authorization and header injection.
package identity

import "time"

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
