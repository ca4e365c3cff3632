// Package pathpattern is the grammar of route path patterns, defined once:
// the proxy's config validation reports Parse's errors, the router matches
// with the Patterns Parse returns, and the AuthPolicy CRD's regular
// expression (CRDRegexp) is a coarser filter the API server applies first.
//
// A pattern is matched against a canonical request path (proxy/pathcanon:
// decoded, starting with "/", without empty, "." or ".." segments except
// for a trailing slash), never against the query:
//
//	pattern  = "/" | "/**" | "/" segments [ "/" ] | "/" segments "/**"
//	segments = segment *( "/" segment )
//	segment  = "*" | literal
//	literal  = 1*char, neither "." nor ".."
//	char     = any byte but "/", "*", "?", "#", "%", "\" and ";"
//
// A literal matches that segment exactly (case-sensitive); "*" matches
// exactly one non-empty segment; a trailing "/" matches only paths with a
// trailing slash; a trailing "/**" matches the prefix itself, the prefix
// with a trailing slash and everything below it ("/a/**" matches "/a",
// "/a/" and "/a/b/c", not "/ab"); "/**" matches every path. A pattern is at
// most MaxLen bytes.
package pathpattern

import (
	"strconv"
	"strings"
)

// MaxLen is the longest pattern, in bytes (the CRD's maxLength).
const MaxLen = 512

// CRDRegexp is the pattern the AuthPolicy CRD applies to
// spec.routes[].paths[] (kubebuilder items:Pattern). Every pattern Parse
// accepts matches it; a string it matches that Parse rejects is reported by
// the controller in the policy's status.
const CRDRegexp = `^/[^?#%\\;]*$`

// Reasons carried by *Error.
const (
	ReasonTooLong           = "must be at most 512 bytes"
	ReasonNotAbsolute       = "must start with /"
	ReasonCharacter         = "must be a canonical path without ?, #, %, \\ or ;"
	ReasonDotSegment        = "must not contain dot segments"
	ReasonEmptySegment      = "must not contain empty segments"
	ReasonDoubleStarNotLast = "** is allowed only as the last segment"
	ReasonPartialStar       = "* must be a whole segment"
)

// Error is a string that is not a pattern.
type Error struct {
	// Pattern is the rejected string, cut to MaxLen bytes.
	Pattern string
	// Reason is one of the Reason constants.
	Reason string
}

// Error returns the reason and the quoted pattern.
func (e *Error) Error() string { return e.Reason + ", got " + strconv.Quote(e.Pattern) }

// Pattern is a parsed path pattern. It is immutable and safe for concurrent
// use; the zero Pattern matches nothing.
type Pattern struct {
	src    string
	segs   []segment // one per "/"-separated segment after the leading "/"
	prefix bool      // a trailing "/**"
}

type segment struct {
	lit  string
	star bool // "*": exactly one non-empty segment
}

// Parse parses a pattern. Errors are *Error.
func Parse(s string) (Pattern, error) {
	if reason := check(s); reason != "" {
		return Pattern{}, &Error{Pattern: s[:min(len(s), MaxLen)], Reason: reason}
	}
	return compile(s), nil
}

// check returns why s is not a pattern, or "".
func check(s string) string {
	switch {
	case len(s) > MaxLen:
		return ReasonTooLong
	case !strings.HasPrefix(s, "/"):
		return ReasonNotAbsolute
	case strings.ContainsAny(s, "?#%\\;"):
		return ReasonCharacter
	}
	segs := strings.Split(s[1:], "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		switch {
		case seg == "." || seg == "..":
			return ReasonDotSegment
		case seg == "" && !last:
			return ReasonEmptySegment
		case seg == "**" && !last:
			return ReasonDoubleStarNotLast
		case seg != "*" && seg != "**" && strings.Contains(seg, "*"):
			return ReasonPartialStar
		}
	}
	return ""
}

// compile builds the matcher of a pattern check accepted.
func compile(s string) Pattern {
	p := Pattern{src: s}
	body := s[1:]
	if body == "**" {
		p.prefix = true
		return p
	}
	if b, ok := strings.CutSuffix(body, "/**"); ok {
		body, p.prefix = b, true
	}
	parts := strings.Split(body, "/")
	p.segs = make([]segment, len(parts))
	for i, part := range parts {
		if part == "*" {
			p.segs[i].star = true
		} else {
			p.segs[i].lit = part
		}
	}
	return p
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.src }

// Match reports whether the canonical path matches. It walks path segment
// by segment without splitting it and does not allocate.
func (p *Pattern) Match(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	pos, more := 1, true // more: a segment starts at pos
	for _, s := range p.segs {
		if !more {
			return false
		}
		var cur string
		if end := strings.IndexByte(path[pos:], '/'); end < 0 {
			cur, pos, more = path[pos:], len(path), false
		} else {
			cur, pos = path[pos:pos+end], pos+end+1
		}
		if s.star {
			if cur == "" {
				return false
			}
		} else if cur != s.lit {
			return false
		}
	}
	return p.prefix || !more
}
