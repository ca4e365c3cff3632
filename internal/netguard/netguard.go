// Package netguard decides which IP addresses the controller's outgoing
// fetches (issuer discovery and key sets, named by AuthPolicy authors) may
// connect to, so a policy cannot turn the controller into a client of the
// cloud metadata service, the node, or other in-cluster services.
//
// A Policy is checked by Control, a net.Dialer ControlContext: it sees the
// address the socket is about to connect to, after DNS resolution, for
// every connection the dialer opens (every redirect hop, every address a
// name resolves to), so a name that resolves to a public address at check
// time and a private one at connect time (DNS rebinding) gains nothing.
//
// The zero Policy refuses the default ranges (loopback, link-local,
// private, unique-local, carrier-grade NAT, unspecified, multicast,
// reserved) and allows everything else.
// Allow entries override the defaults; deny entries win over both.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are checked as the IPv4
// address they carry, and so are NAT64 addresses of the well-known prefix
// 64:ff9b::/96 (RFC 6052), which a DNS64 resolver hands out for IPv4-only
// names and a NAT64 gateway translates back.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
)

// namedRange is one range the zero Policy refuses, with the name errors
// give.
type namedRange struct {
	prefix netip.Prefix
	name   string
}

// defaults are the ranges refused unless allowed: unspecified, loopback,
// link-local (the cloud metadata address 169.254.169.254 among them),
// private, unique-local, carrier-grade NAT, multicast and reserved.
var defaults = []namedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	// Class E and the limited broadcast address: never a server.
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052); its last 32 bits are an
// IPv4 address.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Policy decides which addresses may be connected to. The zero Policy
// refuses the default ranges. It is immutable and safe for concurrent use.
type Policy struct {
	allow []netip.Prefix
	deny  []netip.Prefix
}

// New returns a policy that refuses the default ranges except those in
// allow, and always refuses deny. Prefixes are masked; IPv4-mapped and
// NAT64 prefixes of /96 or longer become the IPv4 prefix they carry. An
// invalid prefix is an error.
func New(allow, deny []netip.Prefix) (Policy, error) {
	a, err := normalize(allow)
	if err != nil {
		return Policy{}, fmt.Errorf("allow: %w", err)
	}
	d, err := normalize(deny)
	if err != nil {
		return Policy{}, fmt.Errorf("deny: %w", err)
	}
	return Policy{allow: a, deny: d}, nil
}

func normalize(in []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if !p.IsValid() {
			return nil, fmt.Errorf("invalid prefix %s", p)
		}
		out = append(out, unmapPrefix(p))
	}
	return out, nil
}

// unmapPrefix turns ::ffff:a.b.c.d/n and 64:ff9b::a.b.c.d/n (n >= 96)
// into a.b.c.d/(n-96), so it matches the IPv4 addresses Check compares;
// other prefixes are only masked (an IPv6 prefix shorter than /96 never
// matches an IPv4 address).
func unmapPrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if p.Bits() >= 96 && (p.Addr().Is4In6() || nat64.Contains(p.Addr())) {
		return netip.PrefixFrom(embedded4(p.Addr()), p.Bits()-96)
	}
	return p
}

// embedded4 is the IPv4 address in the last 32 bits of an IPv6 address.
func embedded4(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom4([4]byte(b[12:]))
}

// ParseList parses a comma-separated list of IP addresses and CIDRs (an
// address is a prefix of its full length). Spaces around entries and empty
// entries are ignored. An error names the entry that does not parse.
func ParseList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, raw := range strings.Split(s, ",") {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		p, err := parseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d %q: %w", i+1, clip(e), err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseEntry(e string) (netip.Prefix, error) {
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return netip.Prefix{}, errors.New("not a CIDR (address/bits)")
		}
		return unmapPrefix(p), nil
	}
	a, err := netip.ParseAddr(e)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address or CIDR")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("must not carry an IPv6 zone")
	}
	return unmapPrefix(netip.PrefixFrom(a, a.BitLen())), nil
}

// clip shortens an entry quoted in an error.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}

// DeniedError is an address a Policy refuses.
type DeniedError struct {
	// Addr is the address refused, unmapped and without zone.
	Addr netip.Addr
	// Reason is the default range's name ("link-local", ...), or "denied
	// by <prefix>" for a deny entry.
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("address %s is not allowed by the fetch policy (%s)", e.Addr, e.Reason)
}

// Check returns a *DeniedError when addr may not be connected to, nil when
// it may. An invalid address is refused.
func (p Policy) Check(addr netip.Addr) error {
	if !addr.IsValid() {
		return &DeniedError{Addr: addr, Reason: "not an IP address"}
	}
	// A zoned address never matches a prefix (netip.Prefix.Contains), so
	// the zone must go before matching, or fe80::1%eth0 would pass.
	addr = addr.WithZone("").Unmap()
	if nat64.Contains(addr) {
		addr = embedded4(addr)
	}
	for _, d := range p.deny {
		if d.Contains(addr) {
			return &DeniedError{Addr: addr, Reason: "denied by " + d.String()}
		}
	}
	for _, a := range p.allow {
		if a.Contains(addr) {
			return nil
		}
	}
	for _, r := range defaults {
		if r.prefix.Contains(addr) {
			return &DeniedError{Addr: addr, Reason: r.name}
		}
	}
	return nil
}

// Control is a net.Dialer ControlContext: it refuses a connection whose
// remote address (ip:port, already resolved) the policy does not allow. An
// address that does not parse as ip:port (a unix socket) is refused.
func (p Policy) Control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("fetch policy: refusing %s connection to %q: not an IP address and port", network, clip(address))
	}
	return p.Check(ap.Addr())
}

// String describes the policy for logs.
func (p Policy) String() string {
	return fmt.Sprintf("allow %v, deny %v, refuse otherwise the default ranges", p.allow, p.deny)
}
