// Package keygen makes and judges API keys: Generate is what `authgate
// gen-key` and the demos use (256 random bits, base64url, with an "agk_"
// prefix that makes a leaked key easy to recognise in secret scanners), and
// Check is the one rule the controller applies to every key a Secret holds.
package keygen

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"
)

// Prefix starts every generated key.
const Prefix = "agk_"

// GeneratedBits is the randomness of a generated key.
const GeneratedBits = 256

// MinBits is the least estimated strength (Bits) of an accepted key: a
// hash of a weaker key can be reversed offline by whoever reads it.
const MinBits = 128

// MinDistinct is the least number of distinct characters of an accepted
// key: a long key made of a few repeated characters scores well on length
// alone.
const MinDistinct = 8

// alphabets are the standard key alphabets Bits recognises, smallest
// first: a key counts as drawn from the first that holds all of its
// characters (the last, printable ASCII, also stands for anything else).
var alphabets = []struct {
	size  float64
	holds func(r rune) bool
}{
	{10, func(r rune) bool { return isDigit(r) }},
	{16, func(r rune) bool { return isDigit(r) || (r >= 'a' && r <= 'f') }},
	{16, func(r rune) bool { return isDigit(r) || (r >= 'A' && r <= 'F') }},
	{36, func(r rune) bool { return isDigit(r) || isLower(r) }},
	{36, func(r rune) bool { return isDigit(r) || isUpper(r) }},
	{64, func(r rune) bool { return isDigit(r) || isLower(r) || isUpper(r) || r == '-' || r == '_' }},
	{64, func(r rune) bool { return isDigit(r) || isLower(r) || isUpper(r) || r == '+' || r == '/' || r == '=' }},
}

// printableASCII is the alphabet of a key no smaller alphabet holds.
const printableASCII = 95

func isDigit(r rune) bool { return r >= '0' && r <= '9' }
func isLower(r rune) bool { return r >= 'a' && r <= 'z' }
func isUpper(r rune) bool { return r >= 'A' && r <= 'Z' }

// Generate returns a new random API key.
func Generate() (string, error) {
	b := make([]byte, GeneratedBits/8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Bits estimates a key's strength the way a password meter does without a
// dictionary: its length in characters times log2 of the smallest standard
// alphabet holding all its characters (digits, hex, lower- or upper-case
// alphanumerics, base64 or base64url, printable ASCII). So 128 random bits
// pass in any of the usual encodings: 32 hex digits (128), 22 base64url
// characters (132), 24 of padded base64 (157). It is an upper bound: it
// cannot tell a random key from a patterned one of the same characters,
// which is why keys should come from Generate. A key of fewer than
// MinDistinct distinct characters scores 0.
func Bits(key string) float64 {
	runes := []rune(key)
	seen := make(map[rune]struct{}, len(runes))
	for _, r := range runes {
		seen[r] = struct{}{}
	}
	if len(seen) < MinDistinct {
		return 0
	}
	size := float64(printableASCII)
	for _, a := range alphabets {
		if all(runes, a.holds) {
			size = a.size
			break
		}
	}
	return float64(len(runes)) * math.Log2(size)
}

func all(runes []rune, holds func(rune) bool) bool {
	for _, r := range runes {
		if !holds(r) {
			return false
		}
	}
	return true
}

// Check says what is wrong with a key presented as an API key's secret
// ("" when nothing is), without quoting it: not UTF-8 text, whitespace or
// control characters, longer than maxBytes, or weaker than MinBits.
func Check(key []byte, maxBytes int) string {
	switch {
	case !utf8.Valid(key):
		return "is not UTF-8 text"
	case len(key) > maxBytes:
		return fmt.Sprintf("is longer than %d bytes, more than a proxy accepts in a credential", maxBytes)
	}
	for _, r := range string(key) {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "contains whitespace or control characters (a trailing newline is a common cause)"
		}
	}
	if b := Bits(string(key)); b < MinBits {
		return fmt.Sprintf("is too weak: about %.0f bits estimated, at least %d needed "+
			"(at least %d distinct characters; e.g. 22 random base64url or 32 random hex characters); "+
			"make one with `authgate gen-key`", b, MinBits, MinDistinct)
	}
	return ""
}
