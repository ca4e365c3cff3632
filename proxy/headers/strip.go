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

	"github.com/authgate/authgate/proxy/headername"
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
		n := headername.Normalize(m)
		if n == "" || headername.HasPrefix(n, reservedPrefix) || contains(s.managed, n) {
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
	i := headername.Next(name, 0)
	if i == len(name) {
		return false
	}
	name = name[i:]
	c := headername.Byte(name[0])
	if c == reservedPrefix[0] && headername.HasPrefix(name, reservedPrefix) {
		return true
	}
	for _, m := range s.managed {
		if c == m[0] && len(name) >= len(m) && headername.Equal(name, m) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Equivalent reports whether a and b normalise to the same non-empty name:
// whether some server or framework could read one as the other.
func Equivalent(a, b string) bool { return headername.Equivalent(a, b) }
