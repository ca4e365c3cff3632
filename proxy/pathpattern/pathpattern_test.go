package pathpattern

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		path    string
		want    bool
	}{
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b/", false},
		{"/a/b/", "/a/b/", true},
		{"/a/b/", "/a/b", false},
		{"/a/b", "/a", false},
		{"/a/b", "/a/b/c", false},
		{"/a/b", "/A/b", false},
		{"/a/b", "/a/bb", false},
		{"/", "/", true},
		{"/", "/a", false},
		{"/", "", false},
		{"/a/*/c", "/a/x/c", true},
		{"/a/*/c", "/a//c", false},
		{"/a/*/c", "/a/x/y/c", false},
		{"/a/*/c", "/a/x/c/", false},
		{"/a/*", "/a/", false},
		{"/a/*", "/a", false},
		{"/a/*", "/a/x", true},
		{"/*", "/", false},
		{"/*", "/x", true},
		{"/*/", "/x/", true},
		{"/a/**", "/a", true},
		{"/a/**", "/a/", true},
		{"/a/**", "/a/b/c", true},
		{"/a/**", "/a//", true},
		{"/a/**", "/ab", false},
		{"/a/**", "/", false},
		{"/a/**", "/b/a", false},
		{"/a/*/**", "/a/x", true},
		{"/a/*/**", "/a/x/y/z", true},
		{"/a/*/**", "/a", false},
		{"/a/*/**", "/a/", false},
		{"/**", "/", true},
		{"/**", "/anything/at/all", true},
		{"/**", "", false},
		{"/**", "relative", false},
		{"/a/b", "a/b", false},
		{"/...", "/...", true},
		{"/a.b/.c", "/a.b/.c", true},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			p, err := Parse(tc.pattern)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.pattern, err)
			}
			if got := p.Match(tc.path); got != tc.want {
				t.Errorf("got match %v, want %v", got, tc.want)
			}
			if got := refMatch(tc.pattern, tc.path); got != tc.want {
				t.Errorf("reference: got %v, want %v", got, tc.want)
			}
			if p.String() != tc.pattern {
				t.Errorf("got String() %q, want %q", p.String(), tc.pattern)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		reason  string
	}{
		{"", ReasonNotAbsolute},
		{"a/b", ReasonNotAbsolute},
		{"*", ReasonNotAbsolute},
		{"/a?b", ReasonCharacter},
		{"/a#b", ReasonCharacter},
		{"/a%2Fb", ReasonCharacter},
		{`/a\b`, ReasonCharacter},
		{"/a;b", ReasonCharacter},
		{"/.", ReasonDotSegment},
		{"/..", ReasonDotSegment},
		{"/a/../b", ReasonDotSegment},
		{"/a/./b", ReasonDotSegment},
		{"/a/..", ReasonDotSegment},
		{"//", ReasonEmptySegment},
		{"/a//b", ReasonEmptySegment},
		{"/a//**", ReasonEmptySegment},
		{"/a//", ReasonEmptySegment},
		{"/a/**/b", ReasonDoubleStarNotLast},
		{"/**/**", ReasonDoubleStarNotLast},
		{"/**/", ReasonDoubleStarNotLast},
		{"/a*", ReasonPartialStar},
		{"/a/b*c", ReasonPartialStar},
		{"/***", ReasonPartialStar},
		{"/a/**x", ReasonPartialStar},
		{"/" + strings.Repeat("a", MaxLen), ReasonTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			t.Parallel()
			p, err := Parse(tc.pattern)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if pe.Reason != tc.reason {
				t.Errorf("got reason %q, want %q", pe.Reason, tc.reason)
			}
			if want := tc.reason + ", got " + strconv.Quote(tc.pattern[:min(len(tc.pattern), MaxLen)]); err.Error() != want {
				t.Errorf("got message %q, want %q", err.Error(), want)
			}
			if p.Match("/") || p.Match(tc.pattern) {
				t.Errorf("got a match from the Pattern of a failed Parse, want none")
			}
		})
	}
}

func TestMaxLen(t *testing.T) {
	t.Parallel()
	longest := "/" + strings.Repeat("a", MaxLen-1)
	if _, err := Parse(longest); err != nil {
		t.Fatalf("Parse of %d bytes: got %v, want success", len(longest), err)
	}
	if want := "must be at most " + strconv.Itoa(MaxLen) + " bytes"; ReasonTooLong != want {
		t.Fatalf("got ReasonTooLong %q, want %q", ReasonTooLong, want)
	}
}

func TestZeroPatternMatchesNothing(t *testing.T) {
	t.Parallel()
	var p Pattern
	for _, path := range []string{"", "/", "/a", "//"} {
		if p.Match(path) {
			t.Errorf("zero Pattern: got a match for %q, want none", path)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	ps := make([]Pattern, 0, 3)
	for _, s := range []string{"/x/*/y", "/api/v1/**", "/"} {
		p, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		ps = append(ps, p)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range ps {
			ps[i].Match("/api/v1/orders/42/items")
			ps[i].Match("/x/1/y")
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per Match, want 0", allocs)
	}
}

// TestCRDRegexp checks the CRD filter against the grammar on fixed cases:
// every pattern matches it, and strings it lets through are rejected by
// Parse (the controller reports them in status).
func TestCRDRegexp(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(CRDRegexp)
	for _, s := range []string{"/", "/**", "/a/*/b/", "/a b/\x01", "/é/*"} {
		if _, err := Parse(s); err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if !re.MatchString(s) {
			t.Errorf("%q parses but does not match the CRD regexp", s)
		}
	}
	for _, s := range []string{"/a/../b", "//", "/a/**/b", "/a*"} {
		if !re.MatchString(s) {
			t.Errorf("%q: got no CRD match, want one (the controller rejects it)", s)
		}
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q): got success, want an error", s)
		}
	}
}

// refMatch is a straightforward reference implementation of the matching
// rules, used to cross-check Match.
func refMatch(pattern, path string) bool {
	if !strings.HasPrefix(path, "/") {
		return false
	}
	if pattern == "/**" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		pSegs := strings.Split(prefix[1:], "/")
		segs := strings.Split(path[1:], "/")
		return len(segs) >= len(pSegs) && segsMatch(pSegs, segs[:len(pSegs)])
	}
	pSegs := strings.Split(pattern[1:], "/")
	segs := strings.Split(path[1:], "/")
	return len(pSegs) == len(segs) && segsMatch(pSegs, segs)
}

func segsMatch(pattern, segs []string) bool {
	for i, p := range pattern {
		if p == "*" {
			if segs[i] == "" {
				return false
			}
		} else if p != segs[i] {
			return false
		}
	}
	return true
}

func knownReason(r string) bool {
	switch r {
	case ReasonTooLong, ReasonNotAbsolute, ReasonCharacter, ReasonDotSegment,
		ReasonEmptySegment, ReasonDoubleStarNotLast, ReasonPartialStar:
		return true
	}
	return false
}

// FuzzParse: Parse never panics; what it accepts matches the CRD regexp,
// fits MaxLen and matches as the reference does; what it rejects gets an
// *Error with a known reason, which config validation reports at the
// field's path (and the controller in status).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/", "/**", "/a/b", "/a/b/", "/a/*/c", "/a/**", "/a/*/**", "/a/**/b", "/a//b", "/a/../b", "/a%2f", "a", "", "/*x", "/\x00/\xff"} {
		f.Add(s, "/a/b")
		f.Add(s, s)
	}
	re := regexp.MustCompile(CRDRegexp)
	f.Fuzz(func(t *testing.T, s, path string) {
		p, err := Parse(s)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || !knownReason(pe.Reason) {
				t.Fatalf("Parse(%q): got %v, want an *Error with a known reason", s, err)
			}
			if p.Match(path) {
				t.Fatalf("Parse(%q) failed but its Pattern matched %q", s, path)
			}
			return
		}
		if !re.MatchString(s) || len(s) > MaxLen {
			t.Fatalf("Parse(%q) succeeded but the CRD would reject it", s)
		}
		if got, want := p.Match(path), refMatch(s, path); got != want {
			t.Fatalf("pattern %q path %q: got %v, want %v (reference)", s, path, got, want)
		}
	})
}
