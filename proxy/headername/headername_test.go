package headername

import "testing"

func TestTable(t *testing.T) {
	t.Parallel()
	if len(normTable) != 256 {
		t.Fatalf("got a table of %d bytes, want 256", len(normTable))
	}
	for i := range 256 {
		c := byte(i)
		var want byte
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			want = c
		case 'A' <= c && c <= 'Z':
			want = c + 'a' - 'A'
		}
		if got := Byte(c); got != want {
			t.Errorf("Byte(%#x): got %#x, want %#x", c, got, want)
		}
	}
}

func TestEquivalentAndProtected(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"X-Authgate-Subject", "x_authgate_subject", true},
		{"X-Authgate-Subject", "XAuthgateSubject", true},
		{"X-Authgate-Subject", "X.Authgate.Subject.", true},
		{"X-User", "X-User-Id", false},
		{"-", "_", false},
	} {
		if got := Equivalent(tt.a, tt.b); got != tt.want {
			t.Errorf("Equivalent(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	for _, n := range []string{"Authorization", "author_ization", "X.Forwarded.For", "XRealIP", "cookie"} {
		if !Protected(n) {
			t.Errorf("Protected(%q) = false, want true", n)
		}
	}
	for _, n := range []string{"X-API-Key", "X-Authgate-Subject", "Authorizations"} {
		if Protected(n) {
			t.Errorf("Protected(%q) = true, want false", n)
		}
	}
}
