package authn

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/jwks"
)

// issuerVerifier verifies the tokens of one configured issuer.
type issuerVerifier struct {
	name     string
	id       string // verification settings and name: the token cache's verifier id
	cfg      config.Issuer
	typ      string // normalized Issuer.Type, "" when unchecked
	keys     *jwks.KeySet
	capture  *capturingKeySet
	verifier *oidc.IDTokenVerifier
}

func newIssuerVerifier(iss config.Issuer, keys *jwks.KeySet, now func() time.Time) *issuerVerifier {
	ks := &capturingKeySet{inner: keys}
	iv := &issuerVerifier{name: iss.Name, cfg: iss, keys: keys, capture: ks}
	if iss.Type != "" {
		iv.typ = normalizeType(iss.Type)
	}
	iv.verifier = oidc.NewVerifier(iss.IssuerURL, ks, &oidc.Config{
		SkipClientIDCheck:    true, // audiences and client ids: checkAudience
		SkipExpiryCheck:      true, // exp, nbf and iat are checked with the issuer's skew
		SupportedSigningAlgs: slices.Clone(iss.Algorithms),
		Now:                  now,
	})
	return iv
}

// checkHeader applies the issuer's algorithm allow-list (exact case) and
// its typ requirement.
func (iv *issuerVerifier) checkHeader(u unverifiedJWT) *Error {
	if !slices.Contains(iv.cfg.Algorithms, u.alg) {
		return fail(ReasonUnsupportedAlg, "the signing algorithm is not accepted for this issuer")
	}
	if iv.typ != "" && normalizeType(u.typ) != iv.typ {
		return fail(ReasonInvalidType, "the token type (typ) is not accepted")
	}
	return nil
}

// verify checks the signature with go-oidc over the issuer's key set, then
// every claim from one decoding of the verified payload.
func (iv *issuerVerifier) verify(ctx context.Context, tok string, now time.Time) (*identity.Identity, *Error) {
	c := &capture{}
	if _, err := iv.verifier.Verify(context.WithValue(ctx, captureKey{}, c), tok); err != nil {
		switch {
		case !c.called:
			// go-jose parse errors may quote token bytes: keep them out.
			return nil, fail(ReasonInvalidToken, "the token could not be parsed")
		case errors.Is(c.err, jwks.ErrNoKeys):
			return nil, failErr(ReasonKeysUnavailable, "no verification keys are available for this issuer", c.err)
		case c.err != nil:
			return nil, failErr(ReasonInvalidToken, "the token signature is not valid", c.err)
		default:
			return nil, failErr(ReasonInvalidClaims, "the token claims could not be decoded", err)
		}
	}
	claimSet, err := decodeClaims(c.payload)
	if err != nil {
		return nil, err
	}
	return iv.identity(claimSet, c.payload, now)
}

// captureKey carries a *capture through go-oidc to the key set.
type captureKey struct{}

// capture records what the key set returned, so the verified payload is
// read from the key set itself and its error keeps its type (go-oidc
// flattens it into a string).
type capture struct {
	called  bool
	payload []byte
	err     error
}

// capturingKeySet wraps the issuer's key set for go-oidc.
type capturingKeySet struct {
	inner         oidc.KeySet
	verifications atomic.Int64 // signature verifications attempted
}

// VerifySignature implements oidc.KeySet.
func (k *capturingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	k.verifications.Add(1)
	p, err := k.inner.VerifySignature(ctx, jwt)
	if c, ok := ctx.Value(captureKey{}).(*capture); ok {
		c.called, c.payload, c.err = true, p, err
	}
	return p, err
}

// hasUnsafeChars reports CR, LF or NUL, which must never reach a header.
func hasUnsafeChars(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}
