package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/config"
)

// revocationOrigin says which spec entry a rendered revocation came from,
// so that the proxy's field errors name it.
type revocationOrigin struct {
	index int    // in spec.revocations
	claim string // jti, sub or sid: also the spec field holding the value
}

// revocations renders spec.revocations. Entries that have ended at now are
// left out (the proxy would ignore them); the rest are sorted by claim,
// value and issuer, and an entry repeated keeps its latest expiresAt, so
// the bundle depends on what is revoked and not on how the list is
// written. The reason never leaves the AuthPolicy. An entry with no
// ProxyConfig form (not exactly one of jti, sub and sid, or no expiresAt:
// the API server refuses both) is a problem.
func revocations(in []v1alpha1.Revocation, now time.Time) ([]config.Revocation, []revocationOrigin, *Problem) {
	type entry struct {
		r      config.Revocation
		exp    time.Time
		origin revocationOrigin
	}
	var entries []entry
	var bad []string
	for i := range in {
		claim, value, ok := revokedValue(&in[i])
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("spec.revocations[%d]: set exactly one of jti, sub or sid", i))
			continue
		case in[i].ExpiresAt.IsZero():
			bad = append(bad, fmt.Sprintf("spec.revocations[%d].expiresAt: is required", i))
			continue
		}
		exp := in[i].ExpiresAt.UTC()
		if !now.Before(exp) {
			continue
		}
		entries = append(entries, entry{
			r:      config.Revocation{Claim: claim, Value: value, Issuer: in[i].Issuer, ExpiresAt: exp.Format(time.RFC3339)},
			exp:    exp,
			origin: revocationOrigin{index: i, claim: claim},
		})
	}
	if len(bad) > 0 {
		return nil, nil, problem(ReasonInvalidSpec, "%s", strings.Join(bad, "; "))
	}
	slices.SortStableFunc(entries, func(a, b entry) int {
		return cmp.Or(strings.Compare(a.r.Claim, b.r.Claim), strings.Compare(a.r.Value, b.r.Value),
			strings.Compare(a.r.Issuer, b.r.Issuer), b.exp.Compare(a.exp)) // latest end first
	})
	if len(entries) == 0 {
		return nil, nil, nil
	}
	out := make([]config.Revocation, 0, len(entries))
	origins := make([]revocationOrigin, 0, len(entries))
	for i, e := range entries {
		if i > 0 && sameRevocation(entries[i-1].r, e.r) {
			continue // a repeated entry: the first kept ends last
		}
		out = append(out, e.r)
		origins = append(origins, e.origin)
	}
	return out, origins, nil
}

// revokedValue returns the claim an entry names and its value; ok is false
// unless exactly one of jti, sub and sid is set.
func revokedValue(r *v1alpha1.Revocation) (claim, value string, ok bool) {
	n := 0
	for _, c := range []struct{ claim, value string }{{config.RevokeJTI, r.JTI}, {config.RevokeSub, r.Sub}, {config.RevokeSID, r.Sid}} {
		if c.value != "" {
			claim, value = c.claim, c.value
			n++
		}
	}
	return claim, value, n == 1
}

func sameRevocation(a, b config.Revocation) bool {
	return a.Claim == b.Claim && a.Value == b.Value && a.Issuer == b.Issuer
}

// RefreshRevocations gives a last good fragment (one kept while the
// policy's current generation is rejected) the revocations of the current
// spec in place of its own, so that a token revoked meanwhile is refused
// although the generation that revokes it is not in force: keeping an old
// generation never keeps a revoked token (and an entry removed from the
// spec stops applying, as it would with the current generation). Entries
// the kept generation cannot carry are left out: one naming an issuer it
// does not trust (it accepts none of that issuer's tokens anyway), one
// with no ProxyConfig form, one that has ended at now. f is not modified.
func RefreshRevocations(f *Fragment, p *v1alpha1.AuthPolicy, now time.Time) *Fragment {
	if f == nil {
		return nil
	}
	trusted := map[string]bool{}
	for _, is := range f.Issuers {
		trusted[is.IssuerURL] = true
	}
	if len(trusted) == 0 {
		return f // accepts no JWT: nothing to revoke
	}
	var current []v1alpha1.Revocation
	for _, r := range p.Spec.Revocations {
		if _, _, ok := revokedValue(&r); ok && !r.ExpiresAt.IsZero() && (r.Issuer == "" || trusted[r.Issuer]) {
			current = append(current, r)
		}
	}
	// Every entry was checked above: revocations finds no problem.
	rendered, _, _ := revocations(current, now)
	if len(rendered) > config.MaxRevocations {
		return f // more than the API server admits
	}
	out := *f
	out.Policy.Revocations = rendered
	return &out
}
