package netguard

import (
	"net/netip"
	"testing"
)

// FuzzParseList: any input parses or fails without panicking, and what
// parses is valid, masked and never IPv4-mapped, so Check compares like
// with like.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.96.0.1, fd00::/8", "::ffff:10.0.0.0/104", "fe80::1%eth0", "1.2.3.4/33", ",,", "::/0", "64:ff9b::808:808/128"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseList(s)
		if err != nil {
			return
		}
		p, err := New(list, list)
		if err != nil {
			t.Fatalf("New refused what ParseList returned (%q): %v", s, err)
		}
		for _, pr := range list {
			if !pr.IsValid() || pr != pr.Masked() || (pr.Addr().Is6() && pr.Bits() >= 96 && (pr.Addr().Is4In6() || nat64.Contains(pr.Addr()))) {
				t.Fatalf("ParseList(%q) returned %v, want valid, masked and unmapped", s, pr)
			}
			// Every listed prefix is denied, whatever the allow list says.
			if p.Check(pr.Addr()) == nil && pr.Addr() != (netip.Addr{}) {
				t.Fatalf("address %v of a deny entry is allowed", pr.Addr())
			}
		}
	})
}
