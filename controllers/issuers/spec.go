package issuers

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/authgate/authgate/proxy/cabundle"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/urlrule"
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
	// CABundle, when set, is the normalized PEM (cabundle.Bundle.PEM) of
	// the CAs that verify the issuer's TLS certificate instead of the
	// system roots.
	CABundle string
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
	return Spec{IssuerURL: s.IssuerURL, JWKSURL: s.JWKSURL, Algorithms: slices.Compact(algs), CABundle: s.CABundle}
}

// Key is the cache key: the issuer URL, the JWKS URL, the sorted,
// defaulted algorithms and the SHA-256 of the CA bundle. Specs that differ
// only in algorithm order (or that list the defaults explicitly) have
// equal keys; specs trusting different CAs never do, so a fetch made
// trusting one CA is never served to a policy that trusts another.
func (s Spec) Key() string {
	n := s.normalized()
	key := n.IssuerURL + "\x00" + n.JWKSURL + "\x00" + strings.Join(n.Algorithms, ",")
	if n.CABundle != "" {
		key += "\x00ca:" + cabundle.Digest(n.CABundle)
	}
	return key
}

// name is the fetcher's name in its logs: the issuer URL with a short hash
// of the key, so specs sharing an issuer URL stay apart.
func (s Spec) name() string {
	sum := sha256.Sum256([]byte(s.Key()))
	return s.IssuerURL + "#" + hex.EncodeToString(sum[:4])
}

// validate checks a normalized spec before anything is fetched: specs come
// from policies, so the controller must not fetch what the proxy would
// refuse to. The URL rules are the proxy's (proxy/urlrule), whose messages
// never quote the URL: a JWKS URL may carry a credential in its query.
func (s Spec) validate() error {
	if err := urlrule.Issuer(s.IssuerURL); err != nil {
		return fmt.Errorf("issuerURL: %w", err)
	}
	if s.JWKSURL != "" {
		if err := urlrule.JWKS(s.JWKSURL); err != nil {
			return fmt.Errorf("jwksURL: %w", err)
		}
	}
	if s.CABundle != "" {
		b, err := cabundle.Parse(s.CABundle)
		if err != nil {
			return fmt.Errorf("caBundle: %w", err)
		}
		if b.PEM != s.CABundle {
			return errors.New("caBundle: not normalized (use cabundle.Bundle.PEM)")
		}
	}
	for _, a := range s.Algorithms {
		if !config.IsSupportedAlgorithm(a) {
			return fmt.Errorf("unsupported algorithm %q (supported: %s)", truncate(a, 64), strings.Join(config.SupportedAlgorithms(), ", "))
		}
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
