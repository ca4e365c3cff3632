package assertion

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/proxy/claims"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// Claims are the registered and authgate claims of an assertion, as a
// function decodes them.
type Claims struct {
	// Issuer is "authgate://<namespace>".
	Issuer string `json:"iss"`
	// Subject is the verified identity's subject (the token's sub, or the
	// API key's name).
	Subject string `json:"sub"`
	// Audience is the policy's identityAssertion.audience.
	Audience string `json:"aud"`
	// IssuedAt, NotBefore and Expiry are Unix seconds; Expiry is at most
	// the ttl after IssuedAt and never after the credential's expiry.
	IssuedAt  int64 `json:"iat"`
	NotBefore int64 `json:"nbf"`
	Expiry    int64 `json:"exp"`
	// ID is unique per assertion (128 random bits, base64url).
	ID string `json:"jti"`
	// Kind is the credential kind: jwt or apikey.
	Kind string `json:"kind"`
	// TokenIssuer is the verified token's iss; empty for API keys.
	TokenIssuer string `json:"token_iss,omitempty"`
	// Scope is the granted scopes, space-separated.
	Scope string `json:"scope,omitempty"`
	// Claims holds the policy's chosen claims of the credential, keyed by
	// their dotted path.
	Claims map[string]any `json:"claims,omitempty"`
}

// Assert signs the assertion of id under a, at the keys' clock.
func (k *Keys) Assert(a *config.IdentityAssertion, id *identity.Identity) (string, error) {
	now := k.now()
	c, err := newClaims(a, id, now)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode identity assertion: %w", err)
	}
	return k.sign(payload, now)
}

func newClaims(a *config.IdentityAssertion, id *identity.Identity, now time.Time) (*Claims, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return nil, fmt.Errorf("assertion id: %w", err)
	}
	iat := now.Unix()
	exp := now.Add(a.TTL.Duration).Unix()
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Unix() < exp {
		exp = id.ExpiresAt.Unix()
	}
	c := &Claims{
		Issuer: a.Issuer, Subject: id.Subject, Audience: a.Audience,
		IssuedAt: iat, NotBefore: iat, Expiry: exp,
		ID:   base64.RawURLEncoding.EncodeToString(jti[:]),
		Kind: string(id.Kind), TokenIssuer: id.Issuer, Scope: strings.Join(id.Scopes, " "),
	}
	for _, path := range a.Claims {
		if v, ok := claims.Lookup(id.Claims, path); ok {
			if c.Claims == nil {
				c.Claims = make(map[string]any, len(a.Claims))
			}
			c.Claims[path] = v
		}
	}
	return c, nil
}
