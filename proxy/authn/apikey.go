package authn

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// apiKeySource is the Identity.Source of API-key identities.
const apiKeySource = "apikey"

// apiKey is one accepted key with its prebuilt, shared identity.
type apiKey struct {
	hash    [32]byte
	expires time.Time // zero: never
	id      *identity.Identity
}

// apiKeyIndex finds keys by the SHA-256 of the presented value.
type apiKeyIndex struct {
	byHash map[[32]byte]*apiKey
}

func newAPIKeyIndex(keys []config.APIKey) (*apiKeyIndex, error) {
	idx := &apiKeyIndex{byHash: make(map[[32]byte]*apiKey, len(keys))}
	for _, k := range keys {
		hexPart, ok := strings.CutPrefix(k.Hash, "sha256:")
		raw, err := hex.DecodeString(hexPart)
		if !ok || err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("api key %q: hash must be sha256:<64 hex digits>", k.Name)
		}
		e := &apiKey{}
		copy(e.hash[:], raw)
		if _, dup := idx.byHash[e.hash]; dup {
			return nil, fmt.Errorf("api key %q: hash used by another key", k.Name)
		}
		if k.ExpiresAt != nil {
			e.expires = *k.ExpiresAt
		}
		scope := strings.Join(k.Scopes, " ")
		subject := k.Subject
		if subject == "" {
			subject = k.Name
		}
		claimSet := map[string]any{"sub": subject, "scope": scope}
		rawClaims, err := json.Marshal(claimSet)
		if err != nil {
			return nil, fmt.Errorf("api key %q: encode claims: %w", k.Name, err)
		}
		e.id = &identity.Identity{
			Kind:      identity.KindAPIKey,
			Subject:   subject,
			Source:    apiKeySource,
			KeyName:   k.Name,
			Scopes:    append([]string(nil), k.Scopes...),
			Claims:    claimSet,
			RawClaims: rawClaims,
			ExpiresAt: e.expires,
		}
		idx.byHash[e.hash] = e
	}
	return idx, nil
}

// authenticate looks the key up by hash and confirms it in constant time.
func (x *apiKeyIndex) authenticate(value string, now time.Time) (*identity.Identity, *Error) {
	sum := sumString(value)
	k, ok := x.byHash[sum]
	if !ok || subtle.ConstantTimeCompare(sum[:], k.hash[:]) != 1 {
		return nil, fail(ReasonUnknownAPIKey, "the API key is not valid")
	}
	if !k.expires.IsZero() && !now.Before(k.expires) {
		return nil, fail(ReasonExpiredAPIKey, "the API key has expired")
	}
	return k.id, nil
}

// sumString is sha256.Sum256 of s without copying s to the heap.
func sumString(s string) [32]byte {
	var buf [512]byte
	if len(s) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], s)])
	}
	h := sha256.New()
	for len(s) > 0 {
		n := copy(buf[:], s)
		_, _ = h.Write(buf[:n])
		s = s[n:]
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
