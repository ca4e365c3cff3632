// Package pathcanon canonicalises a request path once, so that the policy
// sees exactly the path that is forwarded to the function. Ambiguous
// encodings (an encoded slash, a backslash, matrix parameters, double
// encoding) are rejected rather than guessed.
package pathcanon

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits on accepted paths.
const (
	// MaxLen is the longest accepted escaped path, in bytes.
	MaxLen = 8 << 10
	// MaxSegments is the largest accepted number of non-empty segments.
	MaxSegments = 256
)

// Reasons carried by *Error. They never contain the path itself.
const (
	ReasonEmpty          = "empty path"
	ReasonNotOriginForm  = "path must start with /"
	ReasonTooLong        = "path too long"
	ReasonTooManySegs    = "too many path segments"
	ReasonBadEscape      = "invalid percent-encoding"
	ReasonEncodedSlash   = "encoded slash"
	ReasonBackslash      = "backslash"
	ReasonSemicolon      = "semicolon (matrix parameters)"
	ReasonDoubleEncoding = "double percent-encoding"
	ReasonDelimiter      = "encoded or raw ? or #"
	ReasonControl        = "control character"
	ReasonInvalidUTF8    = "invalid UTF-8"
	ReasonConfusable     = "character that Unicode normalisation turns into ASCII"
	ReasonAboveRoot      = "dot segment above the root"
)

// Error is a path that cannot be canonicalised unambiguously; the proxy
// answers 400.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return "invalid request path: " + e.Reason }

// Result is a canonical path.
type Result struct {
	// Path is the decoded canonical path: it starts with "/", has no empty,
	// "." or ".." segments and keeps a trailing slash.
	Path string
	// RawPath is the escaped form to forward, or "" when Path needs no
	// escaping. It is exactly what url.URL would produce from Path.
	RawPath string
	// Segments are the non-empty segments of Path; nil for "/".
	Segments []string
}

// Escaped returns the form forwarded on the wire.
func (r Result) Escaped() string {
	if r.RawPath != "" {
		return r.RawPath
	}
	return r.Path
}

// Apply sets u's path so that the forwarded URL carries exactly res.
func Apply(u *url.URL, res Result) {
	u.Opaque = ""
	u.Path = res.Path
	u.RawPath = res.RawPath
}

// Canonicalize validates and canonicalises an escaped path, normally
// r.URL.EscapedPath(). Errors are *Error.
//
// It decodes percent-encodings, removes dot segments (RFC 3986 5.2.4; a ".."
// above the root is an error), collapses repeated slashes and keeps a
// trailing slash and case. It rejects encoded "/", "\", "%", "?", "#", ";"
// and NUL, raw "\", ";", "#" and "?", control characters raw or decoded,
// invalid UTF-8, characters that Unicode compatibility normalisation turns
// into ASCII (fullwidth forms, one dot leader, ...), paths
// whose input or escaped canonical form is over MaxLen bytes and paths over
// MaxSegments segments.
func Canonicalize(escapedPath string) (Result, error) {
	s := escapedPath
	switch {
	case s == "":
		return Result{}, &Error{Reason: ReasonEmpty}
	case s[0] != '/':
		return Result{}, &Error{Reason: ReasonNotOriginForm}
	case len(s) > MaxLen:
		return Result{}, &Error{Reason: ReasonTooLong}
	}
	if n, ok := cleanSegments(s); ok {
		// Common case: nothing to decode, escape or normalise.
		if n > MaxSegments {
			return Result{}, &Error{Reason: ReasonTooManySegs}
		}
		return Result{Path: s, Segments: split(s, n)}, nil
	}
	buf, reason := decode(s)
	if reason != "" {
		return Result{}, &Error{Reason: reason}
	}
	if reason := checkDecoded(buf); reason != "" {
		return Result{}, &Error{Reason: reason}
	}
	buf, n, reason := removeDots(buf)
	if reason != "" {
		return Result{}, &Error{Reason: reason}
	}
	if n > MaxSegments {
		return Result{}, &Error{Reason: ReasonTooManySegs}
	}
	p := string(buf)
	res := Result{Path: p, Segments: split(p, n)}
	if esc := (&url.URL{Path: p}).EscapedPath(); esc != p {
		if len(esc) > MaxLen {
			// The forwarded form is bounded too (raw bytes that need
			// escaping grow threefold), which keeps Canonicalize idempotent.
			return Result{}, &Error{Reason: ReasonTooLong}
		}
		res.RawPath = esc
	}
	return res, nil
}

// isPlain reports bytes that need neither decoding nor escaping and are
// never rejected: url.URL leaves them as they are in a path.
func isPlain(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '$', '&', '+', ',', ':', '=', '@', '/':
		return true
	}
	return false
}

// cleanSegments reports whether s is already canonical and needs no
// escaping, and counts its non-empty segments. s starts with "/".
func cleanSegments(s string) (int, bool) {
	n := 0
	start := 1
	for i := 1; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if !isPlain(c) {
				return 0, false
			}
			if c != '/' {
				continue
			}
		}
		seg := s[start:i]
		switch {
		case seg == "" && i == len(s):
			// A trailing slash (or the root) is kept.
		case seg == "" || seg == "." || seg == "..":
			return 0, false
		default:
			n++
		}
		start = i + 1
	}
	return n, true
}

// split returns the n non-empty segments of the canonical path p.
func split(p string, n int) []string {
	if n == 0 {
		return nil
	}
	segs := make([]string, 0, n)
	rest := p[1:]
	for rest != "" {
		seg, tail, _ := strings.Cut(rest, "/")
		if seg != "" {
			segs = append(segs, seg)
		}
		rest = tail
	}
	return segs
}

// decode percent-decodes s into a new buffer, rejecting what is ambiguous.
func decode(s string) ([]byte, string) {
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return nil, ReasonBadEscape
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
			switch c {
			case '/':
				return nil, ReasonEncodedSlash
			case '\\':
				return nil, ReasonBackslash
			case '%':
				return nil, ReasonDoubleEncoding
			case '?', '#':
				return nil, ReasonDelimiter
			case ';':
				return nil, ReasonSemicolon
			}
		case c == '\\':
			return nil, ReasonBackslash
		case c == ';':
			return nil, ReasonSemicolon
		case c == '?' || c == '#':
			return nil, ReasonDelimiter
		}
		if c < 0x20 || c == 0x7f {
			return nil, ReasonControl
		}
		buf = append(buf, c)
	}
	return buf, ""
}

// checkDecoded validates the non-ASCII part of a decoded path.
func checkDecoded(b []byte) string {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return ReasonInvalidUTF8
		}
		if r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 {
			return ReasonControl
		}
		if confusable(r) {
			return ReasonConfusable
		}
		i += size
	}
	return ""
}

// confusable reports runes that Unicode compatibility normalisation (NFKC,
// which some frameworks apply before routing) turns into ASCII path
// characters: the fullwidth ASCII forms ("／", "．", "ａｄｍｉｎ"), the small
// form variants ("﹒", "﹨", "﹔"), the dot leaders and ellipsis, and the
// Greek question mark (";" even under NFC).
func confusable(r rune) bool {
	switch {
	case r >= 0xFF01 && r <= 0xFF5E, // fullwidth ASCII
		r >= 0xFE50 && r <= 0xFE6B, // small form variants
		r >= 0x2024 && r <= 0x2026, // one and two dot leader, ellipsis
		r == 0x037E:                // Greek question mark
		return true
	}
	return false
}

// removeDots removes dot segments and empty segments in place, keeping a
// trailing slash, and counts the remaining segments. b starts with "/".
func removeDots(b []byte) ([]byte, int, string) {
	out := b[:1] // "/"; writes never overtake reads
	n := 0
	trailing := false
	start := 1
	for i := 1; i <= len(b); i++ {
		if i < len(b) && b[i] != '/' {
			continue
		}
		seg := b[start:i]
		last := i == len(b)
		start = i + 1
		switch {
		case len(seg) == 0 || len(seg) == 1 && seg[0] == '.':
			trailing = last
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if n == 0 {
				return nil, 0, ReasonAboveRoot
			}
			n--
			// Drop the last segment and the slash before it.
			j := len(out) - 1
			for j > 0 && out[j] != '/' {
				j--
			}
			out = out[:max(j, 1)]
			trailing = last
		default:
			if n > 0 {
				out = append(out, '/')
			}
			out = append(out, seg...)
			n++
			trailing = false
		}
	}
	if trailing && n > 0 {
		out = append(out, '/')
	}
	return out, n, ""
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// RequestPath returns the path of a server request exactly as the client
// escaped it. Prefer it to u.EscapedPath(): when the client's escaping holds
// a byte url.URL would have escaped (a '"', a raw non-ASCII byte),
// EscapedPath re-escapes the decoded Path and so turns "%2F" into "/", hiding
// an ambiguous encoding from Canonicalize.
func RequestPath(u *url.URL) string {
	if u.RawPath != "" {
		if p, err := url.PathUnescape(u.RawPath); err == nil && p == u.Path {
			return u.RawPath
		}
	}
	return u.EscapedPath()
}
