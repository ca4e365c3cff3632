// Package keygen generates API keys for authgate's tools (authgate gen-key,
// the demos): 256 random bits, base64url, with an "agk_" prefix that makes
// a leaked key easy to recognise in secret scanners.
package keygen

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// Generate returns a new random API key.
func Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return "agk_" + base64.RawURLEncoding.EncodeToString(b), nil
}
