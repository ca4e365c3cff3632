package forwarded

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustTrust(t testing.TB, entries ...string) *Trust {
	t.Helper()
	tr, err := NewTrust(entries)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestNewTrust(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"not-an-ip", "10.0.0.0/33", "", " 10.0.0.1", "10.0.0.1:80"} {
		if _, err := NewTrust([]string{"10.0.0.1", bad}); err == nil {
			t.Errorf("NewTrust(%q): got no error, want one", bad)
		}
	}
	tr := mustTrust(t, "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.1")
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true}, {"11.0.0.1", false}, {"192.0.2.7", true}, {"192.0.2.8", false},
		{"2001:db8::1", true}, {"2001:db9::1", false}, {"::ffff:10.0.0.1", true}, {"198.51.100.1", true},
		{"fe80::1%eth0", false},
	}
	for _, tt := range tests {
		if got := tr.trusted(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("trusted(%s): got %v, want %v", tt.addr, got, tt.want)
		}
	}
	if tr := mustTrust(t); tr.trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Error("got loopback trusted by an empty list, want nobody trusted")
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	proxies := []string{"10.0.0.0/8", "fe80::/10"}
	tests := []struct {
		name    string
		trust   []string
		remote  string
		xff     []string
		conn    string
		want    string
		invalid bool
	}{
		{name: "no trust, spoofed XFF", remote: "203.0.113.9:4000", xff: []string{"1.1.1.1"}, want: "203.0.113.9"},
		{name: "untrusted peer", trust: proxies, remote: "203.0.113.9:4000", xff: []string{"1.1.1.1"}, want: "203.0.113.9"},
		{name: "trusted peer, no XFF", trust: proxies, remote: "10.0.0.1:4000", want: "10.0.0.1"},
		{name: "trusted peer, empty XFF", trust: proxies, remote: "10.0.0.1:4000", xff: []string{""}, want: "10.0.0.1"},
		{name: "one hop", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"1.1.1.1"}, want: "1.1.1.1"},
		{name: "spoofed left part ignored", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"6.6.6.6, 1.1.1.1"}, want: "1.1.1.1"},
		{name: "trusted hops skipped", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"6.6.6.6,1.1.1.1, 10.0.0.3 ,10.0.0.2"}, want: "1.1.1.1"},
		{name: "all trusted, leftmost wins", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"10.0.0.3, 10.0.0.2"}, want: "10.0.0.3"},
		{name: "several header lines", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"6.6.6.6", "1.1.1.1, 10.0.0.2"}, want: "1.1.1.1"},
		{name: "client in an earlier line", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"6.6.6.6, 1.1.1.1", "10.0.0.2"}, want: "1.1.1.1"},
		{name: "malformed before the client", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"1.1.1.1, unknown"}, want: "10.0.0.1"},
		{name: "empty element", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"1.1.1.1,,10.0.0.2"}, want: "10.0.0.1"},
		{name: "malformed left of the client", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"garbage, 1.1.1.1"}, want: "1.1.1.1"},
		{name: "port", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"1.1.1.1:443"}, want: "1.1.1.1"},
		{name: "bracketed v6 with port", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"[2001:db8::1]:443"}, want: "2001:db8::1"},
		{name: "bracketed v6", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"[2001:db8::1]"}, want: "2001:db8::1"},
		{name: "mapped v4 in XFF", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"::ffff:1.1.1.1"}, want: "1.1.1.1"},
		{name: "zone dropped", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"fe80::9%eth0, 10.0.0.2"}, want: "fe80::9"},
		{name: "mapped trusted peer", trust: proxies, remote: "[::ffff:10.0.0.1]:4000", xff: []string{"1.1.1.1"}, want: "1.1.1.1"},
		{name: "zoned trusted peer", trust: proxies, remote: "[fe80::1%eth0]:4000", xff: []string{"1.1.1.1"}, want: "1.1.1.1"},
		{name: "XFF declared hop-by-hop", trust: proxies, remote: "10.0.0.1:4000", xff: []string{"1.1.1.1"}, conn: "keep-alive, x-forwarded-for", want: "10.0.0.1"},
		{name: "unix socket peer", trust: proxies, remote: "@", xff: []string{"1.1.1.1"}, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := mustTrust(t, tt.trust...)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != nil {
				r.Header["X-Forwarded-For"] = tt.xff
			}
			if tt.conn != "" {
				r.Header.Set("Connection", tt.conn)
			}
			got := tr.ClientIP(r)
			if tt.invalid {
				if got.IsValid() {
					t.Fatalf("got %v, want the zero Addr", got)
				}
				return
			}
			if got.String() != tt.want {
				t.Fatalf("got %v, want %s", got, tt.want)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		trust  []string
		remote string
		ids    []string
		reuse  bool
	}{
		{name: "untrusted peer", remote: "203.0.113.9:1", ids: []string{"abc-123"}},
		{name: "untrusted peer with a list", trust: []string{"10.0.0.0/8"}, remote: "203.0.113.9:1", ids: []string{"abc-123"}},
		{name: "trusted, valid", trust: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", ids: []string{"Abc.1_2-3"}, reuse: true},
		{name: "trusted, 128 chars", trust: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", ids: []string{strings.Repeat("a", 128)}, reuse: true},
		{name: "trusted, too long", trust: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", ids: []string{strings.Repeat("a", 129)}},
		{name: "trusted, bad chars", trust: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", ids: []string{"a b"}},
		{name: "trusted, CRLF", trust: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", ids: []string{"a\r\nX-Evil: 1"}},
		{name: "trusted, empty", trust: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", ids: []string{""}},
		{name: "trusted, two values", trust: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", ids: []string{"a", "b"}},
		{name: "trusted, none", trust: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := mustTrust(t, tt.trust...)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			if tt.ids != nil {
				r.Header["X-Request-Id"] = tt.ids
			}
			got := tr.RequestID(r)
			if tt.reuse {
				if got != tt.ids[0] {
					t.Fatalf("got %q, want the trusted id %q reused", got, tt.ids[0])
				}
				return
			}
			if len(tt.ids) > 0 && got == tt.ids[0] {
				t.Fatalf("got the client's id %q, want a generated one", got)
			}
			if !validRequestID(got) || !strings.HasPrefix(got, tr.idPrefix+"-") {
				t.Fatalf("got %q, want a generated id", got)
			}
		})
	}
}

func TestGeneratedRequestIDsAreUnique(t *testing.T) {
	t.Parallel()
	a, b := mustTrust(t), mustTrust(t)
	if a.idPrefix == b.idPrefix {
		t.Fatalf("got the same prefix %q twice, want a random one per Trust", a.idPrefix)
	}
	seen := map[string]bool{}
	for range 10_000 {
		for _, tr := range []*Trust{a, b} {
			id := tr.NewRequestID()
			if seen[id] {
				t.Fatalf("got %q twice, want unique ids", id)
			}
			seen[id] = true
		}
	}
}

func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"1.1.1.1", "6.6.6.6, 1.1.1.1, 10.0.0.2", "", ",", "unknown", "[::1]:80", "1.1.1.1,,", "fe80::1%25eth0", "10.0.0.3, 10.0.0.2"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	trust := mustTrust(f, "10.0.0.0/8", "2001:db8::/32")
	f.Fuzz(func(t *testing.T, xff string, trustedPeer bool) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "203.0.113.9:1"
		if trustedPeer {
			r.RemoteAddr = "10.0.0.1:1"
		}
		r.Header["X-Forwarded-For"] = strings.Split(xff, "\n")
		peer := Peer(r)
		got := trust.ClientIP(r)
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("got %#v, want a valid unzoned unmapped address", got)
		}
		if !trustedPeer {
			if got != peer {
				t.Fatalf("got %v from an untrusted peer, want the peer %v", got, peer)
			}
			return
		}
		if got != peer && !containsAddr(xff, got) {
			t.Fatalf("got %v, which is neither the peer nor in %q", got, xff)
		}
		chain := trust.chain(r.Header, peer)
		first, _, _ := strings.Cut(chain, ", ")
		if first != got.String() {
			t.Fatalf("got forwarded chain %q starting with %q, want it to start with the client %v", chain, first, got)
		}
		if !strings.HasSuffix(chain, peer.String()) {
			t.Fatalf("got forwarded chain %q, want it to end with the peer %v", chain, peer)
		}
	})
}

// containsAddr reports whether any element of the chain parses to a.
func containsAddr(xff string, a netip.Addr) bool {
	for _, line := range strings.Split(xff, "\n") {
		for _, e := range strings.Split(line, ",") {
			if p, ok := parseHop(e); ok && p == a {
				return true
			}
		}
	}
	return false
}

func BenchmarkClientIP(b *testing.B) {
	for _, bc := range []struct {
		name   string
		remote string
		xff    string
	}{
		{"untrusted", "203.0.113.9:1234", "1.1.1.1"},
		{"trusted-3-hops", "10.0.0.1:1234", "6.6.6.6, 1.1.1.1, 10.0.0.3, 10.0.0.2"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := mustTrust(b, "10.0.0.0/8")
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = bc.remote
			r.Header.Set("X-Forwarded-For", bc.xff)
			b.ReportAllocs()
			for b.Loop() {
				tr.ClientIP(r)
			}
		})
	}
}

func BenchmarkRequestID(b *testing.B) {
	tr := mustTrust(b)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		tr.RequestID(r)
	}
}

func TestClassifyEverySpelling(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		want int
	}{
		{"X-Forwarded-For", kindClientAddr},
		{"X.Forwarded.For", kindClientAddr},
		{"x_forwarded_for", kindClientAddr},
		{"X-Forwarded-For-", kindClientAddr},
		{"XRealIp", kindClientAddr},
		{"True.Client.IP", kindClientAddr},
		{"X.Forwarded.Proto", kindForwarding},
		{"X.Original.Url", kindOverride},
		{"X-Http-Method-Override.", kindOverride},
		{"X-Forwarded-Fork", kindOther},
		{"Accept", kindOther},
	} {
		if got := classify(tt.name); got != tt.want {
			t.Errorf("classify(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
}
