package issuers

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/jwks"
)

// Spec identifies an issuer's key source. Two specs with the same Key share
// one cache entry and one fetcher.
type Spec struct {
	// IssuerURL is the issuer; with no JWKSURL its OIDC discovery document
	// names the key set, and the document's issuer must equal it exactly.
	IssuerURL string
	// JWKSURL, when set, is fetched instead of discovery.
	JWKSURL string
	// Algorithms the keys are filtered for; empty means RS256 and ES256.
	Algorithms []string
}

// normalized returns the spec with its algorithms defaulted, sorted and
// deduplicated.
func (s Spec) normalized() Spec {
	algs := s.Algorithms
	if len(algs) == 0 {
		algs = config.DefaultAlgorithms()
	}
	algs = slices.Clone(algs)
	slices.Sort(algs)
	return Spec{IssuerURL: s.IssuerURL, JWKSURL: s.JWKSURL, Algorithms: slices.Compact(algs)}
}

// Key is the cache key: the issuer URL, the JWKS URL and the sorted,
// defaulted algorithms. Specs that differ only in algorithm order (or that
// list the defaults explicitly) have equal keys.
func (s Spec) Key() string {
	n := s.normalized()
	return n.IssuerURL + "\x00" + n.JWKSURL + "\x00" + strings.Join(n.Algorithms, ",")
}

// name is the fetcher's name in its logs: the issuer URL with a short hash
// of the key, so specs sharing an issuer URL stay apart.
func (s Spec) name() string {
	sum := sha256.Sum256([]byte(s.Key()))
	return s.IssuerURL + "#" + hex.EncodeToString(sum[:4])
}

// validate checks a normalized spec before anything is fetched: specs come
// from policies, so the controller must not fetch what the proxy would
// refuse to.
func (s Spec) validate() error {
	if err := checkURL(s.IssuerURL, true); err != nil {
		return fmt.Errorf("issuerURL: %w", err)
	}
	if s.JWKSURL != "" {
		if err := checkURL(s.JWKSURL, false); err != nil {
			return fmt.Errorf("jwksURL: %w", err)
		}
	}
	for _, a := range s.Algorithms {
		if !config.IsSupportedAlgorithm(a) {
			return fmt.Errorf("unsupported algorithm %q (supported: %s)", truncate(a, 64), strings.Join(config.SupportedAlgorithms(), ", "))
		}
	}
	return nil
}

// checkURL applies the key set's fetch rule (https, or http on loopback;
// no user info) and refuses fragments, and queries on issuer URLs (the iss
// claim is matched exactly). Messages never quote the URL: a JWKS URL may
// carry a credential in its query.
func checkURL(raw string, issuer bool) error {
	if err := jwks.CheckURL(raw); err != nil {
		return fmt.Errorf("invalid: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("invalid: does not parse")
	}
	switch {
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("invalid: must not carry a fragment")
	case issuer && (u.RawQuery != "" || u.ForceQuery):
		return errors.New("invalid: must not carry a query")
	}
	return nil
}

// truncate shortens s to at most limit bytes of valid UTF-8 plus "...".
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "..."
}
