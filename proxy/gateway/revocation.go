package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/authgate/authgate/proxy/authn"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// ReasonRevoked is the reason when the JWT verified but one of the
// policy's revocations names its jti, sub or sid. It is answered as an
// invalid token (401, error="invalid_token").
const ReasonRevoked = "revoked"

// errRevoked is the answer to a revoked token; it never names the value
// that matched. Shared and read-only.
var errRevoked = &authn.Error{Reason: ReasonRevoked, Status: http.StatusUnauthorized, Description: "the token has been revoked"}

// Indexes of revocations.byClaim.
const (
	revokeJTI = iota
	revokeSub
	revokeSID
	revokeClaims
)

var revokeClaimIndex = map[string]int{config.RevokeJTI: revokeJTI, config.RevokeSub: revokeSub, config.RevokeSID: revokeSID}

// revocations is one policy's revocations, indexed when the runtime is
// built: a request costs at most two map lookups per claim the policy
// revokes, and nothing at all for a policy without revocations (its
// *revocations is nil).
type revocations struct {
	// byClaim maps a revoked value and its issuer ("" for any issuer) to
	// when the entry ends.
	byClaim [revokeClaims]map[revocationKey]time.Time
	// trusted are the issuer URLs the policy accepts: an issuer-less entry
	// covers exactly these when cached identities are purged.
	trusted map[string]bool
}

type revocationKey struct{ value, issuer string }

// newRevocations indexes the policy's entries that have not ended at now;
// it returns nil when none is left. issuers are the config's.
func newRevocations(p *config.Policy, issuers []config.Issuer, now time.Time) (*revocations, error) {
	var r *revocations
	for i := range p.Revocations {
		e := &p.Revocations[i]
		c, ok := revokeClaimIndex[e.Claim]
		if !ok {
			return nil, fmt.Errorf("policy %s: revocations[%d]: unknown claim %q", p.Name, i, e.Claim)
		}
		exp, err := e.Expiry()
		if err != nil {
			return nil, fmt.Errorf("policy %s: revocations[%d]: expiresAt: %w", p.Name, i, err)
		}
		if !now.Before(exp) {
			continue // ended: ignored
		}
		if r == nil {
			r = &revocations{trusted: map[string]bool{}}
		}
		if r.byClaim[c] == nil {
			r.byClaim[c] = map[revocationKey]time.Time{}
		}
		k := revocationKey{value: e.Value, issuer: e.Issuer}
		if prev, ok := r.byClaim[c][k]; !ok || exp.After(prev) {
			r.byClaim[c][k] = exp
		}
	}
	if r == nil {
		return nil, nil
	}
	for _, n := range p.Authentication.Issuers {
		for i := range issuers {
			if issuers[i].Name == n {
				r.trusted[issuers[i].IssuerURL] = true
			}
		}
	}
	return r, nil
}

// revoked reports whether an entry that has not ended at now names the
// identity's jti, sub or sid (and its issuer, when the entry names one).
// Only JWT identities are ever revoked here; it does not allocate.
func (r *revocations) revoked(id *identity.Identity, now time.Time) bool {
	if id == nil || id.Kind != identity.KindJWT {
		return false
	}
	for c := range r.byClaim {
		m := r.byClaim[c]
		if len(m) == 0 {
			continue
		}
		v := revokedClaim(id, c)
		if v == "" {
			continue
		}
		if exp, ok := m[revocationKey{value: v}]; ok && now.Before(exp) {
			return true
		}
		if exp, ok := m[revocationKey{value: v, issuer: id.Issuer}]; ok && now.Before(exp) {
			return true
		}
	}
	return false
}

// purges reports whether a cached identity is one the policy revokes: an
// identity of an issuer the policy trusts (an issuer-less entry covers
// only those) that revoked matches.
func (r *revocations) purges(id *identity.Identity, now time.Time) bool {
	return id != nil && r.trusted[id.Issuer] && r.revoked(id, now)
}

// revokedClaim is the identity's value of claim c: sub is the identity's
// subject (the token's sub), jti and sid are read from the verified
// claims; a number counts as written in the token, any other type never
// matches.
func revokedClaim(id *identity.Identity, c int) string {
	name := config.RevokeJTI
	switch c {
	case revokeSub:
		return id.Subject
	case revokeSID:
		name = config.RevokeSID
	}
	switch v := id.Claims[name].(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	}
	return ""
}
