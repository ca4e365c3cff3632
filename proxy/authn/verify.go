package authn

import (
	"bytes"
	"context"
	"encoding/json"
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

// issuerVerifier verifies the tokens of one configured issuer: go-oidc
// checks the signature (through the issuer's hardened key set), the issuer
// and the expiry (with the issuer's clock skew); checkClaims adds what
// go-oidc does not check (audiences, client ids, nbf and iat with the skew,
// typ, required claims) on the verified payload, decoded once.
type issuerVerifier struct {
	name     string
	id       string // verification settings and name: the token cache's verifier id
	cfg      config.Issuer
	typ      string // normalized Issuer.Type, "" when unchecked
	keys     *jwks.KeySet
	counted  *countingKeySet
	verifier *oidc.IDTokenVerifier
}

func newIssuerVerifier(iss config.Issuer, keys *jwks.KeySet, now func() time.Time) *issuerVerifier {
	ks := &countingKeySet{inner: keys}
	iv := &issuerVerifier{name: iss.Name, cfg: iss, keys: keys, counted: ks}
	if iss.Type != "" {
		iv.typ = normalizeType(iss.Type)
	}
	skew := iss.ClockSkew.Duration
	iv.verifier = oidc.NewVerifier(iss.IssuerURL, ks, &oidc.Config{
		SkipClientIDCheck:    true, // several audiences and client ids: checkAudience
		SupportedSigningAlgs: slices.Clone(iss.Algorithms),
		// go-oidc refuses exp before Now: shifting Now back by the skew
		// tolerates exactly the configured skew on exp.
		Now: func() time.Time { return now().Add(-skew) },
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

// verify checks the claims the pre-check decoded (so a token that fails on
// its claims costs no signature work), has go-oidc verify the token, and
// returns the identity once the payload go-oidc verified is the one those
// claims came from.
func (iv *issuerVerifier) verify(ctx context.Context, tok string, u unverifiedJWT, now time.Time) (*identity.Identity, *Error) {
	id, cerr := iv.identity(u.claims, u.payload, now)
	if cerr != nil {
		return nil, cerr
	}
	t, err := iv.verifier.Verify(ctx, tok)
	if err != nil {
		return nil, iv.verifyError(err)
	}
	var verified json.RawMessage
	if err := t.Claims(&verified); err != nil || !bytes.Equal(verified, u.payload) {
		return nil, fail(ReasonInvalidToken, "the token could not be verified")
	}
	return id, nil
}

// verifyError classifies a go-oidc failure. go-oidc flattens the key set's
// errors into text, so the key set is asked directly whether it has keys.
// No error text reaches the client: go-jose errors may quote token bytes.
func (iv *issuerVerifier) verifyError(err error) *Error {
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired) && expired.Expiry.IsZero():
		return fail(ReasonMissingClaim, "the token has no exp claim")
	case errors.As(err, &expired):
		return fail(ReasonExpired, "the token has expired")
	case !iv.keys.HasKey(""):
		return failErr(ReasonKeysUnavailable, "no verification keys are available for this issuer", jwks.ErrNoKeys)
	}
	return fail(ReasonInvalidToken, "the token could not be verified")
}

// countingKeySet counts signature verifications for tests and diagnostics.
type countingKeySet struct {
	inner         oidc.KeySet
	verifications atomic.Int64
}

// VerifySignature implements oidc.KeySet.
func (k *countingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	k.verifications.Add(1)
	return k.inner.VerifySignature(ctx, jwt)
}

// hasUnsafeChars reports CR, LF or NUL, which must never reach a header.
func hasUnsafeChars(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}
