package certs

import (
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// plan returns the material to store given the current one (nil: missing
// or unusable) and why it differs (no reasons: store nothing). trusted
// reports whether a CA was in every webhook's caBundle when the round
// started.
//
// The rules, in order:
//   - no usable CA: create one;
//   - drop CAs that have expired (a serving certificate never outlives
//     its CA, so nothing still served needs them);
//   - the newest CA has less than CARenewBefore left: create a new one
//     and trust both; the serving certificate stays as it is;
//   - re-issue the serving certificate, signed by the newest CA, when it is
//     missing, does not verify for every DNS name, has less than
//     RenewBefore left, or was signed by an older CA while the newest has
//     been trusted for CAOverlap and was already published.
func (m *Manager) plan(cur *material, trusted func(*x509.Certificate) bool, now time.Time) (*material, []string, error) {
	o := &m.o
	var reasons []string
	next := &material{}
	if cur == nil {
		ca, key, err := newCA(now, o.CAValidity)
		if err != nil {
			return nil, nil, err
		}
		next.cas, next.caKey = []*x509.Certificate{ca}, key
		reasons = append(reasons, "no usable CA")
	} else {
		*next = *cur
		next.cas = slices.Clone(cur.cas)
		if kept := slices.DeleteFunc(next.cas[1:], func(c *x509.Certificate) bool { return !now.Before(c.NotAfter) }); len(kept) != len(cur.cas)-1 {
			next.cas = next.cas[:1+len(kept)]
			reasons = append(reasons, "expired CA dropped")
		}
	}
	if next.cas[0].NotAfter.Sub(now) < o.CARenewBefore {
		ca, key, err := newCA(now, o.CAValidity)
		if err != nil {
			return nil, nil, err
		}
		next.cas, next.caKey = append([]*x509.Certificate{ca}, next.cas...), key
		reasons = append(reasons, "CA renewal")
	}
	if why := m.leafStale(next, trusted, now); why != "" {
		leaf, key, err := newLeaf(now, o.CertValidity, o.dnsNames(), next.cas[0], next.caKey)
		if err != nil {
			return nil, nil, err
		}
		next.leaf, next.leafKey = leaf, key
		reasons = append(reasons, why)
	}
	return next, reasons, nil
}

// leafStale says why the serving certificate must be re-issued, or "".
func (m *Manager) leafStale(next *material, trusted func(*x509.Certificate) bool, now time.Time) string {
	o := &m.o
	if next.leaf == nil {
		return "no usable serving certificate"
	}
	if err := verifies(next.leaf, next.cas, o.dnsNames(), now); err != nil {
		return fmt.Sprintf("serving certificate does not verify (%v)", err)
	}
	if next.leaf.NotAfter.Sub(now) < o.RenewBefore {
		return "serving certificate renewal"
	}
	newest := next.cas[0]
	if next.leaf.CheckSignatureFrom(newest) != nil && !now.Before(newest.NotBefore.Add(backdate+o.CAOverlap)) && trusted(newest) {
		return "serving certificate moves to the new CA"
	}
	return ""
}
