// Package headers removes identity headers a client tried to spoof and
// injects the verified ones for the function.
package headers

import (
	"net/http"
	"strings"
)

// reservedPrefix is config.ReservedHeaderPrefix in normalised form (a test
// keeps them in step).
const reservedPrefix = "x-authgate-"

// Stripper removes identity headers from client requests in every spelling.
// It is immutable and safe for concurrent use.
type Stripper struct {
	managed []string // normalised, deduplicated
}

// NewStripper strips every header starting with X-Authgate- plus the managed
// names, compared case-insensitively with '_' equal to '-'.
func NewStripper(managed []string) *Stripper {
	s := &Stripper{}
	for _, m := range managed {
		n := normalize(m)
		if n == "" || strings.HasPrefix(n, reservedPrefix) || contains(s.managed, n) {
			continue
		}
		s.managed = append(s.managed, n)
	}
	return s
}

// Strip removes from h every header whose name, lower-cased with '_'
// replaced by '-', starts with "x-authgate-" or equals a managed name,
// whatever the spelling of the map key. It returns how many header names it
// removed.
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

// Matches reports whether name would be stripped.
func (s *Stripper) Matches(name string) bool {
	if len(name) >= len(reservedPrefix) && equalNorm(name[:len(reservedPrefix)], reservedPrefix) {
		return true
	}
	for _, m := range s.managed {
		if len(name) == len(m) && equalNorm(name, m) {
			return true
		}
	}
	return false
}

// equalNorm reports whether name equals the normalised want once name is
// lower-cased with '_' as '-'. Both have the same length.
func equalNorm(name, want string) bool {
	for i := 0; i < len(name); i++ {
		if normByte(name[i]) != want[i] {
			return false
		}
	}
	return true
}

func normByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

func normalize(name string) string {
	b := []byte(name)
	for i, c := range b {
		b[i] = normByte(c)
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
