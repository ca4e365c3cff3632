package keygen

import (
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestGenerateIsStrongAndAccepted(t *testing.T) {
	if GeneratedBits < MinBits {
		t.Fatalf("generated keys carry %d bits, fewer than the %d a key needs", GeneratedBits, MinBits)
	}
	seen := map[string]bool{}
	for range 100 {
		k, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k, Prefix) || len(k) != len(Prefix)+43 {
			t.Fatalf("key %q: want %s and 43 base64url characters", k, Prefix)
		}
		if why := Check([]byte(k), 4096); why != "" {
			t.Fatalf("a generated key is refused: %s", why)
		}
		if seen[k] {
			t.Fatal("Generate repeated a key")
		}
		seen[k] = true
	}
}

// random128 are keys of exactly 128 random bits in the encodings people
// use (openssl rand -hex 16, -base64 16, base64url without padding): each
// must be accepted, whatever characters the draw produced.
func TestRandom128BitKeysAccepted(t *testing.T) {
	// A fixed seed: the test must not depend on the draw. (A 22-character
	// base64url key with no upper case and no - or _, about 1 draw in
	// 300,000, counts as lower-case alphanumerics and is refused; Generate's
	// 43 characters have ample margin.)
	rnd := rand.NewChaCha8([32]byte{'a', 'u', 't', 'h', 'g', 'a', 't', 'e'})
	for range 2000 {
		b := make([]byte, 16)
		_, _ = rnd.Read(b)
		for _, k := range []string{hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)} {
			if why := Check([]byte(k), 4096); why != "" {
				t.Fatalf("128 random bits as %q refused: %s", k, why)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		want      string // "" accepted, else a part of the reason
	}{
		{"generated shape", "agk_3q2-7wEVEaB5_lLqk0bdmZJdy6TqPc3WsMIr7JCsfgU", ""},
		{"long passphrase", "correct-horse-battery-staple-2030", ""},
		{"the old 16-byte minimum", "0123456789abcdef", "about 64 bits"},
		{"short", "hunter2", "too weak"},
		{"long but repetitive", strings.Repeat("ab", 40), "about 0 bits"},
		{"seven distinct characters", strings.Repeat("abcdefg", 10), "too weak"},
		{"64 bits of hex", "0123456789abcdef", "too weak"},
		{"trailing newline", "agk_3q2-7wEVEaB5_lLqk0bdmZJdy6TqPc3WsMIr7JCsfgU\n", "whitespace or control"},
		{"inner space", "correct horse battery staple 2030", "whitespace or control"},
		{"NUL", "agk_3q2-7wEVEaB5\x00lLqk0bdmZJdy6TqPc3WsMIr7JCsfgU", "whitespace or control"},
		{"not UTF-8", "agk_3q2-7wEVEaB5_lLqk0bdmZJdy6TqPc3WsMIr7JCsfgU\xff", "not UTF-8"},
		{"too long", strings.Repeat("0123456789abcdefghijklmnopqrstuv", 200), "longer than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Check([]byte(tc.key), 4096)
			if tc.want == "" {
				if got != "" {
					t.Fatalf("refused: %s", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want it to contain %q", got, tc.want)
			}
			if len(tc.key) > 6 && strings.Contains(got, tc.key[:6]) {
				t.Fatalf("the reason quotes the key: %q", got)
			}
		})
	}
}

func TestBits(t *testing.T) {
	for _, tc := range []struct {
		key      string
		min, max float64
	}{
		{"0123456789abcdef0123456789abcdef", 128, 128}, // 32 × log2 16
		{"abcdefghijklmnopqrstuvwxyz0123", 155, 156},   // 30 × log2 36
		{"AbcdefghijklmnopqrstuV", 132, 132},           // 22 × log2 64
		{"example-plain-key-change-me-0001", 192, 192}, // 32 × log2 64 (base64url)
		{"correct horse!", 91, 92},                     // 14 × log2 95
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0},
	} {
		if b := Bits(tc.key); b < tc.min || b > tc.max {
			t.Errorf("Bits(%q) = %.1f, want %.0f..%.0f", tc.key, b, tc.min, tc.max)
		}
	}
}
