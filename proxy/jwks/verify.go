package jwks

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxKIDBytes is the longest key id accepted in a token header.
const MaxKIDBytes = 256

// forbiddenHeaders name keys or key locations a token must not carry (the
// key set never trusts or fetches anything a token points at), critical
// extensions and b64 (no JWT extension is supported), and the encryption
// and compression parameters that do not belong in a JWS. The one list:
// authn's structural pre-check refuses the same names (IsForbiddenHeader).
var forbiddenHeaders = [...]jose.HeaderKey{"jku", "x5u", "jwk", "x5c", "crit", "b64", "enc", "zip"}

// IsForbiddenHeader reports a JOSE header parameter no accepted token
// carries (exact spelling; authn refuses case variants of known names).
func IsForbiddenHeader(name string) bool {
	for _, f := range forbiddenHeaders {
		if string(f) == name {
			return true
		}
	}
	return false
}

// outcome of trying the cached keys.
type outcome uint8

const (
	verified   outcome = iota
	noKeys             // no usable key at all
	unknownKID         // the token's kid matches no key
	badSig             // keys matched (by kid, or all for a kid-less token) but none verified
)

// VerifySignature parses a compact JWS, verifies it with the issuer's keys
// and returns the payload. It implements oidc.KeySet. Only a token whose key
// is unknown (or that has no kid) may trigger a refetch, within the refetch
// limit (see the package documentation), after which verification is
// retried once. A bad signature under a known kid never fetches.
func (k *KeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, alg, kid, err := k.parse(jwt)
	if err != nil {
		return nil, err
	}
	payload, out := k.try(jws, alg, kid)
	if out == verified {
		return payload, nil
	}
	if (out == badSig && kid != "") || !k.hasRemote() {
		return nil, outcomeError(out)
	}
	if err := k.refetch(ctx); err != nil {
		return nil, fmt.Errorf("%w (refetch: %w)", outcomeError(out), err)
	}
	if payload, out = k.try(jws, alg, kid); out == verified {
		return payload, nil
	}
	return nil, outcomeError(out)
}

func outcomeError(o outcome) error {
	switch o {
	case noKeys:
		return ErrNoKeys
	case unknownKID:
		return ErrUnknownKey
	default:
		return ErrSignature
	}
}

// parse accepts one compact JWS with an allowed alg, a bounded kid and no
// header that names a key or key location.
func (k *KeySet) parse(jwt string) (*jose.JSONWebSignature, jose.SignatureAlgorithm, string, error) {
	if strings.Count(jwt, ".") != 2 {
		return nil, "", "", fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	jws, err := jose.ParseSignedCompact(jwt, k.algs)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, "", "", fmt.Errorf("%w: signature algorithm not allowed", ErrMalformed)
		}
		// go-jose errors can quote header bytes: keep them out of the message.
		return nil, "", "", fmt.Errorf("%w: cannot parse token", ErrMalformed)
	}
	if len(jws.Signatures) != 1 {
		return nil, "", "", fmt.Errorf("%w: want exactly one signature", ErrMalformed)
	}
	h := jws.Signatures[0].Protected
	if h.JSONWebKey != nil {
		return nil, "", "", fmt.Errorf("%w: header carries a key (jwk)", ErrMalformed)
	}
	if _, err := h.Certificates(x509.VerifyOptions{}); !errors.Is(err, jose.ErrMissingX5cHeader) {
		return nil, "", "", fmt.Errorf("%w: header carries certificates (x5c)", ErrMalformed)
	}
	for _, name := range forbiddenHeaders {
		if _, ok := h.ExtraHeaders[name]; ok {
			return nil, "", "", fmt.Errorf("%w: header parameter %s is not accepted", ErrMalformed, name)
		}
	}
	if len(h.KeyID) > MaxKIDBytes {
		return nil, "", "", fmt.Errorf("%w: key id longer than %d bytes", ErrMalformed, MaxKIDBytes)
	}
	return jws, jose.SignatureAlgorithm(h.Algorithm), h.KeyID, nil
}

// try verifies with the inline keys and the fresh remote keys. With a kid
// only keys carrying it are tried; a key's own alg must equal the header's.
func (k *KeySet) try(jws *jose.JSONWebSignature, alg jose.SignatureAlgorithm, kid string) ([]byte, outcome) {
	remote, _ := k.current(k.now())
	if len(k.inline) == 0 && len(remote) == 0 {
		return nil, noKeys
	}
	kidKnown := false
	for _, set := range [2][]jose.JSONWebKey{k.inline, remote} {
		for i := range set {
			key := &set[i]
			if kid != "" {
				if key.KeyID != kid {
					continue
				}
				kidKnown = true
			}
			if (key.Algorithm != "" && key.Algorithm != string(alg)) || !fits(key.Key, alg) {
				continue
			}
			if payload, err := jws.Verify(key.Key); err == nil {
				return payload, verified
			}
		}
	}
	if kid != "" && !kidKnown {
		return nil, unknownKID
	}
	return nil, badSig
}
