// Package cabundle parses the PEM CA bundle that replaces the system roots
// for one issuer's discovery and JWKS fetches. It is the one parse of such a
// bundle: the controller reads it from a ConfigMap and the proxy from its
// configuration, and both must agree on what is acceptable. It depends on
// the standard library only, so the proxy links no Kubernetes client.
package cabundle

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// MaxBytes bounds a bundle; a ConfigMap holds at most 1 MiB anyway.
const MaxBytes = 1 << 20

// blockType is the only PEM block type read; other blocks are skipped.
const blockType = "CERTIFICATE"

// ErrNoCertificate means the bundle holds no PEM CERTIFICATE block.
var ErrNoCertificate = errors.New("holds no PEM CERTIFICATE block")

// Bundle is a parsed CA bundle.
type Bundle struct {
	// Pool holds every certificate of the bundle, and nothing else.
	Pool *x509.CertPool
	// PEM is the normalized bundle: each certificate re-encoded as one PEM
	// block, in the bundle's order, with text between and around blocks
	// and other block types dropped. Equal certificates give equal PEM.
	PEM string
	// Count is the number of certificates.
	Count int
}

// Parse reads a PEM bundle: at least one CERTIFICATE block, and every
// CERTIFICATE block must hold a valid X.509 certificate. Text outside
// blocks (comments) and blocks of other types are ignored. Error messages
// never quote the bundle.
func Parse(bundle string) (*Bundle, error) {
	if len(bundle) > MaxBytes {
		return nil, fmt.Errorf("CA bundle of %d bytes exceeds the %d byte limit", len(bundle), MaxBytes)
	}
	out := &Bundle{Pool: x509.NewCertPool()}
	var normalized []byte
	rest := []byte(bundle)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != blockType {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: certificate %d is not a valid X.509 certificate: %w", out.Count+1, err)
		}
		out.Pool.AddCert(cert)
		out.Count++
		normalized = append(normalized, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: block.Bytes})...)
	}
	if out.Count == 0 {
		return nil, fmt.Errorf("CA bundle %w", ErrNoCertificate)
	}
	out.PEM = string(normalized)
	return out, nil
}

// Digest is the hex SHA-256 of a normalized bundle (Bundle.PEM): what
// identifies a bundle in cache keys without carrying it.
func Digest(normalizedPEM string) string {
	sum := sha256.Sum256([]byte(normalizedPEM))
	return hex.EncodeToString(sum[:])
}
