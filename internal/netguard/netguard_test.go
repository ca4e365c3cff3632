package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func mustPolicy(t *testing.T, allow, deny string) Policy {
	t.Helper()
	a, err := ParseList(allow)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseList(deny)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(a, d)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string // prefixes as String()
		wantErr string   // the entry the error must name
	}{
		{in: "", want: nil},
		{in: " , ,", want: nil},
		{in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}}, // masked
		{in: "10.96.0.1", want: []string{"10.96.0.1/32"}},
		{in: " 10.96.0.1 , fd00::/8 ", want: []string{"10.96.0.1/32", "fd00::/8"}},
		{in: "::1", want: []string{"::1/128"}},
		{in: "::ffff:10.0.0.1", want: []string{"10.0.0.1/32"}},
		{in: "::ffff:10.0.0.0/104", want: []string{"10.0.0.0/8"}},
		{in: "::/0,0.0.0.0/0", want: []string{"::/0", "0.0.0.0/0"}},
		{in: "10.0.0.0/33", wantErr: `entry 1 "10.0.0.0/33"`},
		{in: "10.0.0.1,metadata.google.internal", wantErr: `entry 2 "metadata.google.internal"`},
		{in: "10.0.0.0/8/8", wantErr: `"10.0.0.0/8/8"`},
		{in: "fe80::1%eth0", wantErr: `"fe80::1%eth0"`},
		{in: "fe80::/10%eth0", wantErr: `"fe80::/10%eth0"`},
		{in: "1.2.3", wantErr: `"1.2.3"`},
		{in: "10.0.0.0/", wantErr: `"10.0.0.0/"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseList(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error naming %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, p := range got {
				s = append(s, p.String())
			}
			if strings.Join(s, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got %v, want %v", s, tt.want)
			}
		})
	}
}

func TestNewRefusesInvalidPrefixes(t *testing.T) {
	t.Parallel()
	if _, err := New([]netip.Prefix{{}}, nil); err == nil || !strings.Contains(err.Error(), "allow") {
		t.Fatalf("got %v, want an error about the allow list", err)
	}
	if _, err := New(nil, []netip.Prefix{{}}); err == nil || !strings.Contains(err.Error(), "deny") {
		t.Fatalf("got %v, want an error about the deny list", err)
	}
}

// The zero Policy refuses each default range, in either address family
// and in IPv4-mapped form, and allows public addresses.
func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr   string
		reason string // "" when allowed
	}{
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"169.254.169.254", "link-local"},
		{"169.254.0.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"}, // a zone must not hide it
		{"febf::1", "link-local"},
		{"10.0.0.1", "private"},
		{"10.96.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"fc00::1", "unique-local"},
		{"fd00:ec2::254", "unique-local"}, // AWS's IPv6 metadata address
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "reserved"},
		// IPv4-mapped IPv6 forms are the IPv4 address they carry.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:172.16.0.1", "private"},
		{"::ffff:192.168.0.1", "private"},
		{"::ffff:100.64.0.1", "carrier-grade NAT"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::ffff:224.0.0.1", "multicast"},
		// NAT64 addresses are the IPv4 address they translate to.
		{"64:ff9b::a9fe:a9fe", "link-local"},
		{"64:ff9b::10.0.0.1", "private"},
		{"64:ff9b::8.8.8.8", ""},
		// Public addresses, and the neighbours of the refused ranges.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.167.255.255", ""},
		{"192.169.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"169.253.255.255", ""},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		{"223.255.255.255", ""},
		{"::ffff:8.8.8.8", ""},
		{"2001:4860:4860::8888", ""},
		{"2606:4700::1111", ""},
		{"fec0::1", ""}, // site-local, deprecated, not in the table
	}
	var p Policy
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			err := p.Check(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want %s allowed", err, tt.addr)
				}
				return
			}
			var de *DeniedError
			if !errors.As(err, &de) || de.Reason != tt.reason {
				t.Fatalf("got %v, want %s refused as %s", err, tt.addr, tt.reason)
			}
			if !strings.Contains(err.Error(), "("+tt.reason+")") || !strings.Contains(err.Error(), "is not allowed") {
				t.Fatalf("got message %q, want it to name the reason", err)
			}
		})
	}
}

func TestAllowAndDenyEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, allow, deny, addr string
		reason                  string // "" when allowed
	}{
		{"allow overrides the default", "10.96.0.1", "", "10.96.0.1", ""},
		{"allow is exact", "10.96.0.1", "", "10.96.0.2", "private"},
		{"allow a range", "127.0.0.0/8,::1", "", "127.0.0.2", ""},
		{"allow v6 loopback", "127.0.0.0/8,::1", "", "::1", ""},
		{"allow applies to the mapped form", "127.0.0.0/8", "", "::ffff:127.0.0.1", ""},
		{"mapped allow entry applies to IPv4", "::ffff:10.0.0.0/104", "", "10.1.1.1", ""},
		{"deny wins over allow", "10.0.0.0/8", "10.96.0.0/12", "10.96.0.1", "denied by 10.96.0.0/12"},
		{"deny wins over an exact allow", "10.96.0.1", "10.96.0.1", "10.96.0.1", "denied by 10.96.0.1/32"},
		{"deny a public range", "", "203.0.113.0/24", "203.0.113.7", "denied by 203.0.113.0/24"},
		{"deny applies to the mapped form", "", "203.0.113.0/24", "::ffff:203.0.113.7", "denied by 203.0.113.0/24"},
		{"deny applies to NAT64", "", "203.0.113.0/24", "64:ff9b::203.0.113.7", "denied by 203.0.113.0/24"},
		{"NAT64 deny entry applies to IPv4", "", "64:ff9b::808:808", "8.8.8.8", "denied by 8.8.8.8/32"},
		{"deny v6", "", "2001:db8::/32", "2001:db8::1", "denied by 2001:db8::/32"},
		{"deny leaves others alone", "", "203.0.113.0/24", "198.51.100.1", ""},
		{"allow everything", "0.0.0.0/0,::/0", "", "169.254.169.254", ""},
		{"allowing v6 leaves v4 refused", "::/0", "", "169.254.169.254", "link-local"},
		{"other defaults stay", "10.0.0.0/8", "", "169.254.169.254", "link-local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := mustPolicy(t, tt.allow, tt.deny).Check(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want allowed", err)
				}
				return
			}
			var de *DeniedError
			if !errors.As(err, &de) || de.Reason != tt.reason {
				t.Fatalf("got %v, want refused as %q", err, tt.reason)
			}
		})
	}
}

// Control sees the resolved ip:port the dialer connects to; anything else
// is refused.
func TestControl(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, "127.0.0.1", "")
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "127.0.0.1:443", true},
		{"tcp6", "[::1]:443", false},
		{"tcp4", "169.254.169.254:80", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"unix", "/var/run/docker.sock", false},
		{"tcp", "localhost:443", false}, // never a name: the dialer resolves first
		{"tcp", "", false},
	}
	for _, tt := range tests {
		err := p.Control(context.Background(), tt.network, tt.address, nil)
		if (err == nil) != tt.ok {
			t.Errorf("Control(%s, %q) = %v, want ok=%v", tt.network, tt.address, err, tt.ok)
		}
	}
}

// Through a real dialer, a name is checked as the addresses it resolves
// to: "localhost" is refused as loopback, whichever address it has here.
func TestDialerChecksTheResolvedAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	var p Policy
	d := net.Dialer{ControlContext: p.Control}
	conn, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort("localhost", port))
	if err == nil {
		conn.Close()
		t.Fatal("dialled localhost, want the resolved loopback address refused")
	}
	var de *DeniedError
	if !errors.As(err, &de) || de.Reason != "loopback" {
		t.Fatalf("got %v, want a loopback refusal", err)
	}
	allowed := mustPolicy(t, "127.0.0.0/8,::1", "")
	d = net.Dialer{ControlContext: allowed.Control}
	conn, err = d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("got %v, want 127.0.0.1 allowed by the entry", err)
	}
	conn.Close()
}
