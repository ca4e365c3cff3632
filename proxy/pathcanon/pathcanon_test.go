package pathcanon

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, path, raw string
		segs          []string
	}{
		{in: "/", path: "/"},
		{in: "/api/v1/orders/42", path: "/api/v1/orders/42", segs: []string{"api", "v1", "orders", "42"}},
		{in: "/a/b/", path: "/a/b/", segs: []string{"a", "b"}},
		{in: "/Admin", path: "/Admin", segs: []string{"Admin"}},
		{in: "//evil/x", path: "/evil/x", segs: []string{"evil", "x"}},
		{in: "/a//b///c", path: "/a/b/c", segs: []string{"a", "b", "c"}},
		{in: "/a//", path: "/a/", segs: []string{"a"}},
		{in: "//", path: "/"},
		{in: "/a/./b", path: "/a/b", segs: []string{"a", "b"}},
		{in: "/a/../b", path: "/b", segs: []string{"b"}},
		{in: "/a/b/../../c", path: "/c", segs: []string{"c"}},
		{in: "/a/%2e%2e/b", path: "/b", segs: []string{"b"}},
		{in: "/a/%2E%2e/b", path: "/b", segs: []string{"b"}},
		{in: "/a/.%2e/b", path: "/b", segs: []string{"b"}},
		{in: "/a/%2e/b", path: "/a/b", segs: []string{"a", "b"}},
		{in: "/a/b/..", path: "/a/", segs: []string{"a"}},
		{in: "/a/b/.", path: "/a/b/", segs: []string{"a", "b"}},
		{in: "/a/..", path: "/"},
		{in: "/.", path: "/"},
		{in: "/a/../b/../c/", path: "/c/", segs: []string{"c"}},
		{in: "/.../..a/a..", path: "/.../..a/a..", segs: []string{"...", "..a", "a.."}},
		{in: "/%41dmin", path: "/Admin", segs: []string{"Admin"}},
		{in: "/a%7e", path: "/a~", segs: []string{"a~"}},
		{in: "/caf%C3%A9", path: "/café", raw: "/caf%C3%A9", segs: []string{"café"}},
		{in: "/café", path: "/café", raw: "/caf%C3%A9", segs: []string{"café"}},
		{in: "/a%20b", path: "/a b", raw: "/a%20b", segs: []string{"a b"}},
		{in: "/a(b)", path: "/a(b)", raw: "/a%28b%29", segs: []string{"a(b)"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := Canonicalize(tt.in)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			want := Result{Path: tt.path, RawPath: tt.raw, Segments: tt.segs}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestCanonicalizeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, reason string }{
		{"", ReasonEmpty},
		{"*", ReasonNotOriginForm},
		{"http://x/y", ReasonNotOriginForm},
		{"a/b", ReasonNotOriginForm},
		{"/a%2Fb", ReasonEncodedSlash},
		{"/a%2fb", ReasonEncodedSlash},
		{"/a%5Cb", ReasonBackslash},
		{"/a%5cb", ReasonBackslash},
		{"/a\\b", ReasonBackslash},
		{"/a\\..\\admin", ReasonBackslash},
		{"/a;b", ReasonSemicolon},
		{"/admin;jsessionid=x", ReasonSemicolon},
		{"/a%3Bb", ReasonSemicolon},
		{"/a/..;/admin", ReasonSemicolon},
		{"/a#b", ReasonDelimiter},
		{"/a%23b", ReasonDelimiter},
		{"/a%3Fb", ReasonDelimiter},
		{"/a?b", ReasonDelimiter},
		{"/a%00b", ReasonControl},
		{"/a%25", ReasonDoubleEncoding},
		{"/a%252F", ReasonDoubleEncoding},
		{"/a%252e%252e/x", ReasonDoubleEncoding},
		{"/a%", ReasonBadEscape},
		{"/a%2", ReasonBadEscape},
		{"/a%zz", ReasonBadEscape},
		{"/a%%41", ReasonBadEscape},
		{"/a%1F", ReasonControl},
		{"/a%0d%0aX: y", ReasonControl},
		{"/a\x01", ReasonControl},
		{"/a\tb", ReasonControl},
		{"/a\x7f", ReasonControl},
		{"/a%7F", ReasonControl},
		{"/a%C3", ReasonInvalidUTF8},
		{"/a%FF", ReasonInvalidUTF8},
		{"/a\xff", ReasonInvalidUTF8},
		{"/%C0%AE%C0%AE/x", ReasonInvalidUTF8}, // overlong "."
		{"/%C2%85", ReasonControl},             // NEL
		{"/%E2%80%A8", ReasonControl},          // line separator
		{"/%EF%BC%8E%EF%BC%8E/admin", ReasonConfusable},
		{"/a%EF%BC%8Fadmin", ReasonConfusable},
		{"/a\uff3cadmin", ReasonConfusable},
		{"/%EF%BD%81dmin", ReasonConfusable}, // fullwidth a
		{"/a%EF%B9%92%EF%B9%92/x", ReasonConfusable},
		{"/a\u2025/x", ReasonConfusable},
		{"/a\u037e", ReasonConfusable},
		{"/..", ReasonAboveRoot},
		{"/../x", ReasonAboveRoot},
		{"/a/../..", ReasonAboveRoot},
		{"/a/../../b", ReasonAboveRoot},
		{"/%2e%2e/x", ReasonAboveRoot},
		{"//../x", ReasonAboveRoot},
		{"/" + strings.Repeat("a", MaxLen), ReasonTooLong},
		{"/" + strings.Repeat(" ", MaxLen/2), ReasonTooLong}, // escaped form is 3x longer
		{strings.Repeat("/a", MaxSegments+1), ReasonTooManySegs},
		{strings.Repeat("/%61", MaxSegments+1), ReasonTooManySegs},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonicalize(tt.in)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got (%#v, %v), want *Error %q", got, err, tt.reason)
			}
			if pe.Reason != tt.reason {
				t.Fatalf("got reason %q, want %q", pe.Reason, tt.reason)
			}
			if !reflect.DeepEqual(got, Result{}) {
				t.Fatalf("got result %#v with an error, want the zero Result", got)
			}
		})
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("a", MaxLen-1)
	if _, err := Canonicalize(long); err != nil {
		t.Fatalf("got %v for a %d-byte path, want it accepted", err, len(long))
	}
	many := strings.Repeat("/a", MaxSegments)
	res, err := Canonicalize(many)
	if err != nil {
		t.Fatalf("got %v for %d segments, want them accepted", err, MaxSegments)
	}
	if len(res.Segments) != MaxSegments {
		t.Fatalf("got %d segments, want %d", len(res.Segments), MaxSegments)
	}
	// Dot segments that cancel out do not count.
	if _, err := Canonicalize(strings.Repeat("/a/..", MaxSegments+10) + "/b"); err != nil {
		t.Fatalf("got %v, want cancelled segments not counted", err)
	}
}

func TestErrorNeverHoldsThePath(t *testing.T) {
	t.Parallel()
	_, err := Canonicalize("/secret-token-value%2F")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("got error %v, want one without the path", err)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, wantEscaped string }{
		{"/a/./b/../c", "/a/c"},
		{"//evil/x", "/evil/x"},
		{"/caf%c3%a9/%41", "/caf%C3%A9/A"},
		{"/a(b)", "/a%28b%29"},
		{"/a%20b/", "/a%20b/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			u, err := url.ParseRequestURI(tt.in + "?q=1")
			if err != nil {
				t.Fatal(err)
			}
			res, err := Canonicalize(RequestPath(u))
			if err != nil {
				t.Fatalf("got %v, want none", err)
			}
			Apply(u, res)
			if got := u.EscapedPath(); got != tt.wantEscaped {
				t.Fatalf("got escaped path %q, want %q", got, tt.wantEscaped)
			}
			if got := res.Escaped(); got != tt.wantEscaped {
				t.Fatalf("got Escaped() %q, want %q", got, tt.wantEscaped)
			}
			if u.Path != res.Path {
				t.Fatalf("got Path %q, want %q", u.Path, res.Path)
			}
			if got, want := u.RequestURI(), tt.wantEscaped+"?q=1"; got != want {
				t.Fatalf("got request URI %q, want %q", got, want)
			}
		})
	}
}

func TestRequestPathKeepsTheClientEscaping(t *testing.T) {
	t.Parallel()
	// A '"' makes EscapedPath re-escape Path and lose the %2F.
	u, err := url.ParseRequestURI(`/a%2Fb/"x`)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.EscapedPath(); got != "/a/b/%22x" {
		t.Fatalf("got EscapedPath %q, want the lossy /a/b/%%22x this guards against", got)
	}
	if got := RequestPath(u); got != `/a%2Fb/"x` {
		t.Fatalf("got RequestPath %q, want the client's escaping", got)
	}
	if _, err := Canonicalize(RequestPath(u)); err == nil {
		t.Fatal("got no error, want the encoded slash rejected")
	}
	// A stale RawPath (Path changed afterwards) is ignored.
	u.Path = "/other"
	if got := RequestPath(u); got != "/other" {
		t.Fatalf("got %q, want /other", got)
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		"/", "/api/v1/orders/42", "//evil/x", "/a/../b", "/a/%2e%2e/b", "/a%2fb", "/a;b",
		"/caf%C3%A9", "/a(b)/", "/a/./b/", "/..", "/%41", "/a%20b", "/a//b/", "/%EF%BC%8E",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		res, err := Canonicalize(in)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got error %T, want *Error", err)
			}
			return
		}
		p := res.Path
		if !strings.HasPrefix(p, "/") {
			t.Fatalf("got path %q, want a leading /", p)
		}
		for _, bad := range []string{"//", "/./", "/../", "\\", ";", "%", "?", "#"} {
			if strings.Contains(p, bad) {
				t.Fatalf("got path %q containing %q", p, bad)
			}
		}
		if strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
			t.Fatalf("got path %q ending in a dot segment", p)
		}
		for i := 0; i < len(p); i++ {
			if p[i] < 0x20 || p[i] == 0x7f {
				t.Fatalf("got path %q with a control character", p)
			}
		}
		if len(res.Segments) > MaxSegments {
			t.Fatalf("got %d segments, want at most %d", len(res.Segments), MaxSegments)
		}
		if want := strings.Join(res.Segments, "/"); strings.Trim(p, "/") != want {
			t.Fatalf("got segments %q for path %q", res.Segments, p)
		}
		again, err := Canonicalize(res.Escaped())
		if err != nil {
			t.Fatalf("canonical form %q rejected: %v", res.Escaped(), err)
		}
		if !reflect.DeepEqual(again, res) {
			t.Fatalf("not idempotent: got %#v, want %#v", again, res)
		}
		u := &url.URL{}
		Apply(u, res)
		if got, err := url.PathUnescape(u.EscapedPath()); err != nil || got != p {
			t.Fatalf("forwarded %q decodes to %q (%v), want %q", u.EscapedPath(), got, err, p)
		}
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	for _, in := range []string{"/api/v1/orders/42", "/api/v1/orders/42/", "/api//v1/./orders/%34%32"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Canonicalize(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
