package authz

import (
	"time"

	"github.com/authgate/authgate/proxy/claims"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// Denial reasons returned by CheckRoute.
const (
	ReasonMissingScope    = "missing_scope"
	ReasonMissingRole     = "missing_role"
	ReasonClaimMismatch   = "claim_mismatch"
	ReasonMFARequired     = "mfa_required"
	ReasonMFATooOld       = "mfa_too_old"
	ReasonUnauthenticated = "unauthenticated"
)

// CheckRoute applies a route's declarative rules to a verified identity:
// every RequireScopes scope granted, at least one RequireRoles role held,
// every RequireClaims requirement met and, with RequireMFA, multi-factor
// evidence (with MaxAge, an auth_time within it of now). On failure it
// returns a stable reason (the Reason* constants). A nil identity passes
// only a route without requirements.
func CheckRoute(route *config.Route, id *identity.Identity, now time.Time) (ok bool, reason string) {
	hasRules := len(route.RequireScopes) > 0 || len(route.RequireRoles) > 0 ||
		len(route.RequireClaims) > 0 || route.RequireMFA != nil
	if !hasRules {
		return true, ""
	}
	if id == nil {
		return false, ReasonUnauthenticated
	}
	for _, s := range route.RequireScopes {
		if !id.HasScope(s) {
			return false, ReasonMissingScope
		}
	}
	if len(route.RequireRoles) > 0 && !anyIn(route.RequireRoles, id.Roles) {
		return false, ReasonMissingRole
	}
	for i := range route.RequireClaims {
		if !claimHolds(id.Claims, &route.RequireClaims[i]) {
			return false, ReasonClaimMismatch
		}
	}
	if m := route.RequireMFA; m != nil {
		if !mfaHolds(id.Claims, m) {
			return false, ReasonMFARequired
		}
		if m.MaxAge.Duration > 0 && !authRecent(id.Claims, m.MaxAge.Duration, now) {
			return false, ReasonMFATooOld
		}
	}
	return true, ""
}

// authClockSkew is how far in the future an auth_time may be (the IdP's
// clock ahead of ours) and still count as now.
const authClockSkew = time.Minute

// authRecent reports whether the claims' auth_time (OIDC: when the user
// last authenticated) is present, a valid date, not in the future beyond
// the skew, and within maxAge of now. A missing auth_time never passes:
// freshness that cannot be shown is not assumed.
func authRecent(cl map[string]any, maxAge time.Duration, now time.Time) bool {
	at, _, ok := claims.NumericDate(cl, "auth_time")
	if !ok || at.After(now.Add(authClockSkew)) {
		return false
	}
	return now.Sub(at) <= maxAge
}

// claimHolds reports whether the claim at req.Claim (a dotted path) is
// present and, when req.Values is not empty, equals one of them as a
// string; a list claim holds when any element does. A null claim counts as
// absent.
func claimHolds(cl map[string]any, req *config.ClaimRequirement) bool {
	v, ok := claims.Lookup(cl, req.Claim)
	if !ok || v == nil {
		return false
	}
	if len(req.Values) == 0 {
		return true
	}
	return claimHasAny(v, req.Values)
}

// mfaHolds reports whether the claims carry multi-factor evidence: an amr
// (list or string) containing one of m.AMR, or an acr equal to one of m.ACR.
func mfaHolds(cl map[string]any, m *config.MFA) bool {
	if amr, ok := cl["amr"]; ok && claimHasAny(amr, m.AMR) {
		return true
	}
	if acr, ok := cl["acr"].(string); ok {
		for _, want := range m.ACR {
			if acr == want {
				return true
			}
		}
	}
	return false
}

// claimHasAny reports whether a claim value (a scalar, or a list whose
// scalar elements are compared) equals one of want as a string. It avoids
// building the []string that claims.Strings would.
func claimHasAny(v any, want []string) bool {
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			if s, ok := claims.Scalar(e); ok && contains(want, s) {
				return true
			}
		}
		return false
	case []string:
		return anyIn(want, t)
	default:
		s, ok := claims.Scalar(v)
		return ok && contains(want, s)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// anyIn reports whether some element of want is in have.
func anyIn(want, have []string) bool {
	for _, w := range want {
		for _, h := range have {
			if w == h {
				return true
			}
		}
	}
	return false
}
