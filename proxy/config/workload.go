package config

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Bounds of the policy-level overrides (Policy.ClientIdentity and
// Policy.Limits). The AuthPolicy CRD states the same bounds in its CEL rules
// so that kubectl reports them at once; these are the authoritative ones.
const (
	// MaxPolicyTimeout bounds limits.upstreamTimeout and limits.readTimeout.
	MaxPolicyTimeout = time.Hour
	// MaxPolicyBodyBytes bounds limits.maxBodyBytes (10 GiB).
	MaxPolicyBodyBytes int64 = 10 << 30
	// MaxTrustedProxies bounds a trusted-proxy list.
	MaxTrustedProxies = 64
)

// ParseTrustedProxy parses one trusted-proxy entry: an IP address or CIDR
// (ParsePrefix), refusing a prefix of length 0, which would let every
// address choose the client it reports.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	p, err := ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, errors.New("a /0 prefix trusts every address, so any client could choose its own address")
	}
	return p, nil
}

// validateTrustedProxies checks a trusted-proxy list at p.
func validateTrustedProxies(errs *ErrorList, p Path, entries []string) {
	if len(entries) > MaxTrustedProxies {
		errs.add(p, "at most %d entries, got %d", MaxTrustedProxies, len(entries))
	}
	for i, e := range entries {
		if _, err := ParseTrustedProxy(e); err != nil {
			errs.add(p.index(i), "must be an IP address or CIDR, got %q: %v", e, err)
		}
	}
}

// validateOverrides checks a policy's clientIdentity and limits.
func (pol *Policy) validateOverrides(errs *ErrorList, p Path) {
	if ci := pol.ClientIdentity; ci != nil {
		validateTrustedProxies(errs, p.child("clientIdentity").child("trustedProxies"), ci.TrustedProxies)
	}
	l := pol.Limits
	if l == nil {
		return
	}
	lp := p.child("limits")
	for _, d := range []struct {
		name string
		v    Duration
	}{{"upstreamTimeout", l.UpstreamTimeout}, {"readTimeout", l.ReadTimeout}} {
		if d.v.Duration < 0 || d.v.Duration > MaxPolicyTimeout {
			errs.add(lp.child(d.name), "must be between 0 (inherit) and %s, got %s", MaxPolicyTimeout, d.v.Duration)
		}
	}
	if l.MaxBodyBytes < 0 || l.MaxBodyBytes > MaxPolicyBodyBytes {
		errs.add(lp.child("maxBodyBytes"), "must be between 0 (inherit) and %d, got %d", MaxPolicyBodyBytes, l.MaxBodyBytes)
	}
}

// TrustedProxySet parses entries into a sorted set of prefixes without
// duplicates, so that two lists naming the same addresses compare equal.
func TrustedProxySet(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for i, e := range entries {
		p, err := ParseTrustedProxy(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i, e, err)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}
