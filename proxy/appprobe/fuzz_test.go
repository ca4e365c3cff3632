package appprobe_test

import (
	"net"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/appprobe"
)

// FuzzParse: a parsed probe always targets loopback with a port and a
// known scheme, has a path-safe name, and prints back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"fn-liveness=http://127.0.0.1:8082/_/health", "fn=tcp://[::1]:80", "fn=https://127.0.0.1:1/x?y=z",
		"fn=http://127.0.0.2:80/", "fn=http://[::ffff:127.0.0.1]:80/", "fn=http://169.254.169.254:80/", "x=y", "=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := appprobe.Parse(s)
		if err != nil {
			return
		}
		if ip := net.ParseIP(p.Target.Hostname()); ip == nil || !ip.IsLoopback() {
			t.Fatalf("Parse(%q) targets %q, not loopback", s, p.Target.Host)
		}
		if p.Target.Port() == "" || strings.ContainsAny(p.Name, "/?#%. ") {
			t.Fatalf("Parse(%q) = %+v", s, p)
		}
		switch p.Target.Scheme {
		case "http", "https", "tcp":
		default:
			t.Fatalf("Parse(%q) scheme %q", s, p.Target.Scheme)
		}
		if back, err := appprobe.Parse(p.String()); err != nil || back.String() != p.String() {
			t.Fatalf("Parse(%q).String() = %q does not parse back: %v", s, p.String(), err)
		}
	})
}
