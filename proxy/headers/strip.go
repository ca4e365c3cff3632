// Package headers removes identity headers a client tried to spoof and
// injects the verified ones for the function.
//
// # Header name normalisation
//
// Servers and frameworks in front of a function do not agree on what a
// header name is: CGI, WSGI, PHP and Rack turn '-' into '_' and upper-case
// the name, some fold or drop '.', Node lower-cases, others strip
// punctuation to build an identifier. A client could otherwise send a
// spelling the gateway does not recognise (X.Authgate.Subject,
// x_authgate_subject, XAuthgateSubject, X-Authgate--Subject,
// -X-Authgate-Subject-) that the function reads as X-Authgate-Subject.
//
// So every comparison of a header name with a managed name uses one
// normalisation: ASCII letters are folded to lower case, ASCII digits are
// kept and every other byte (punctuation, whitespace, non-ASCII) is ignored.
// X-Authgate-Subject, x_authgate_subject and XAuthgateSubject all normalise
// to "xauthgatesubject". Unicode case folding is never applied (the Kelvin
// sign is not K); names holding non-ASCII bytes never get this far through
// net/http, which refuses them, as it refuses whitespace in a name.
//
// A client header is stripped when its normalised name
//
//   - starts with "xauthgate", the normalised X-Authgate- prefix: the whole
//     X-Authgate-* namespace belongs to the gateway, and once separators are
//     ignored "X-Authgateway", "X-Authgate" and "X-A-Uthgate-Foo" are
//     indistinguishable from names in it, so they are stripped too; or
//   - equals the normalised form of a managed name (every identity header of
//     every policy in the bundle): "X-User-Id" strips x_user_id, X.User.Id
//     and XUserId, but not X-User, X-User-Ids or X-User-Id-Extra.
//
// Nothing else is touched: X-Auth, X-Authgat-Subject, Authgate-Subject and
// Authorization normalise to names outside both rules.
package headers

import (
	"net/http"
)

// reservedPrefix is config.ReservedHeaderPrefix in normalised form (a test
// keeps them in step).
const reservedPrefix = "xauthgate"

// Stripper removes identity headers from client requests in every spelling.
// It is immutable and safe for concurrent use.
type Stripper struct {
	managed []string // normalised, deduplicated, outside reservedPrefix
}

// NewStripper strips every header in the X-Authgate- namespace plus the
// managed names, compared in normalised form (see the package doc).
func NewStripper(managed []string) *Stripper {
	s := &Stripper{}
	for _, m := range managed {
		n := normalize(m)
		if n == "" || hasNormPrefix(n, reservedPrefix) || contains(s.managed, n) {
			continue
		}
		s.managed = append(s.managed, n)
	}
	return s
}

// Strip removes from h every header whose name, normalised, starts with
// "xauthgate" or equals a managed name, whatever the spelling of the map
// key. It returns how many header names it removed. It does not allocate.
func (s *Stripper) Strip(h http.Header) int {
	n := 0
	for k := range h {
		if s.Matches(k) {
			delete(h, k)
			n++
		}
	}
	return n
}

// Matches reports whether name would be stripped. Most names are told apart
// by their first significant byte, before any comparison loop runs.
func (s *Stripper) Matches(name string) bool {
	i := nextNorm(name, 0)
	if i == len(name) {
		return false
	}
	name = name[i:]
	c := normByte(name[0])
	if c == reservedPrefix[0] && hasNormPrefix(name, reservedPrefix) {
		return true
	}
	for _, m := range s.managed {
		if c == m[0] && len(name) >= len(m) && equalNorm(name, m) {
			return true
		}
	}
	return false
}

// Equivalent reports whether a and b normalise to the same non-empty name:
// whether some server or framework could read one as the other.
func Equivalent(a, b string) bool {
	i, j := nextNorm(a, 0), nextNorm(b, 0)
	if i == len(a) {
		return false
	}
	for i < len(a) && j < len(b) {
		if normByte(a[i]) != normByte(b[j]) {
			return false
		}
		i, j = nextNorm(a, i+1), nextNorm(b, j+1)
	}
	return i == len(a) && j == len(b)
}

// nextNorm returns the index of the first byte of s at or after i that
// survives normalisation, or len(s).
func nextNorm(s string, i int) int {
	for i < len(s) && normByte(s[i]) == 0 {
		i++
	}
	return i
}

// hasNormPrefix reports whether name, normalised, starts with the
// normalised prefix.
func hasNormPrefix(name, prefix string) bool {
	j := 0
	for i := 0; i < len(name) && j < len(prefix); i++ {
		c := normByte(name[i])
		if c == 0 {
			continue
		}
		if c != prefix[j] {
			return false
		}
		j++
	}
	return j == len(prefix)
}

// equalNorm reports whether name, normalised, equals the normalised want.
func equalNorm(name, want string) bool {
	j := 0
	for i := 0; i < len(name); i++ {
		c := normByte(name[i])
		if c == 0 {
			continue
		}
		if j == len(want) || c != want[j] {
			return false
		}
		j++
	}
	return j == len(want)
}

// normTable is the normalisation of one byte: ASCII letters in lower case,
// digits as themselves, 0 (ignored) for everything else. A constant, so the
// hot path is a lookup rather than branches (TestNormTable checks it).
const normTable = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x00-0x0f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x10-0x1f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x20-0x2f: space and punctuation
	"0123456789" + "\x00\x00\x00\x00\x00\x00" + // 0x30-0x3f: digits, then : ; < = > ?
	"\x00abcdefghijklmno" + // 0x40-0x4f: @, A-O
	"pqrstuvwxyz" + "\x00\x00\x00\x00\x00" + // 0x50-0x5f: P-Z, then [ \ ] ^ _
	"\x00abcdefghijklmno" + // 0x60-0x6f: `, a-o
	"pqrstuvwxyz" + "\x00\x00\x00\x00\x00" + // 0x70-0x7f: p-z, then { | } ~ DEL
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" // 0x80-0xff: non-ASCII

// normByte maps one byte of a name (see normTable).
func normByte(c byte) byte { return normTable[c] }

// normalize returns name in normalised form (see the package doc).
func normalize(name string) string {
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		if c := normByte(name[i]); c != 0 {
			b = append(b, c)
		}
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
