package config

import (
	"time"
	"unicode/utf8"
)

// Expiry parses ExpiresAt (RFC 3339).
func (r *Revocation) Expiry() (time.Time, error) { return time.Parse(time.RFC3339, r.ExpiresAt) }

// validateRevocations checks a policy's revocations: a known claim, a
// bounded non-empty value, a parseable expiry and, when an entry names an
// issuer, one of the policy's own. An entry that could never match (an
// issuer the policy does not trust, a policy that accepts no JWT) is
// refused rather than kept as a revocation that silently does nothing.
// Expired entries are valid: they are ignored.
func (c *ProxyConfig) validateRevocations(errs *ErrorList, p Path, pol *Policy) {
	if len(pol.Revocations) == 0 {
		return
	}
	rp := p.child("revocations")
	if len(pol.Revocations) > MaxRevocations {
		errs.add(rp, "at most %d entries, got %d", MaxRevocations, len(pol.Revocations))
	}
	trusted := c.issuerURLs(pol)
	if len(trusted) == 0 {
		errs.add(rp, "revocations apply to JWTs, and this policy accepts none (revoke an API key by removing it from apiKeys.keys, in a cluster by deleting its Secret)")
	}
	for j := range pol.Revocations {
		r := &pol.Revocations[j]
		ep := rp.index(j)
		switch r.Claim {
		case RevokeJTI, RevokeSub, RevokeSID:
		default:
			errs.add(ep.child("claim"), "must be jti, sub or sid, got %q", r.Claim)
		}
		switch n := utf8.RuneCountInString(r.Value); {
		case n == 0:
			errs.add(ep.child("value"), "must not be empty")
		case n > MaxRevocationValueLen:
			errs.add(ep.child("value"), "must be at most %d characters, got %d", MaxRevocationValueLen, n)
		}
		if r.Issuer != "" && len(trusted) > 0 && !trusted[r.Issuer] {
			errs.add(ep.child("issuer"), "%q is not the issuerURL of an issuer of this policy, so the entry would never match", r.Issuer)
		}
		if _, err := r.Expiry(); err != nil {
			errs.add(ep.child("expiresAt"), "must be an RFC 3339 time such as 2030-01-31T12:00:00Z, got %q", r.ExpiresAt)
		}
	}
}

// issuerURLs returns the issuer URLs of the issuers pol names.
func (c *ProxyConfig) issuerURLs(pol *Policy) map[string]bool {
	out := make(map[string]bool, len(pol.Authentication.Issuers))
	for _, n := range pol.Authentication.Issuers {
		for i := range c.Issuers {
			if c.Issuers[i].Name == n {
				out[c.Issuers[i].IssuerURL] = true
			}
		}
	}
	return out
}
