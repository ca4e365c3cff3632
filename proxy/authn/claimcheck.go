package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate/proxy/claims"
	"github.com/authgate/authgate/proxy/identity"
)

// registeredClaims are claim names go-oidc (or the proxy) reads by name. A
// payload key equal to one of them case-insensitively but not exactly is
// refused: Go's struct decoding would read it as the registered claim while
// the claims map keeps both.
var registeredClaims = [...]string{
	"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "nonce", "at_hash", "azp",
	"client_id", "scope", "scp", "roles", "_claim_names", "_claim_sources",
}

// decodeClaims decodes the verified payload once, numbers as json.Number.
func decodeClaims(payload []byte) (map[string]any, *Error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, failErr(ReasonInvalidClaims, "the token claims are not a JSON object", errors.Join(errNotObject, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail(ReasonInvalidClaims, "the token claims hold trailing data")
	}
	for k := range m {
		for _, r := range registeredClaims {
			if k != r && strings.EqualFold(k, r) {
				return nil, fail(ReasonInvalidClaims, "a claim name differs from a registered claim only in case")
			}
		}
	}
	return m, nil
}

// identity checks the claims against the issuer and builds the identity.
// The issuer itself was matched to pick this verifier and is checked on the
// verified token by go-oidc.
func (iv *issuerVerifier) identity(m map[string]any, raw []byte, now time.Time) (*identity.Identity, *Error) {
	if err := checkRegisteredTypes(m); err != nil {
		return nil, err
	}
	exp, err := iv.checkTimes(m, now)
	if err != nil {
		return nil, err
	}
	if err := iv.checkAudience(m); err != nil {
		return nil, err
	}
	sub, ok := m["sub"].(string)
	if !ok || sub == "" {
		return nil, fail(ReasonMissingClaim, "the token has no sub claim")
	}
	for _, rc := range iv.cfg.RequiredClaims {
		v, ok := claims.Lookup(m, rc.Claim)
		if !ok {
			return nil, fail(ReasonMissingClaim, "the token lacks a required claim")
		}
		if len(rc.Values) > 0 && !anyIn(claims.Strings(v), rc.Values) {
			return nil, fail(ReasonInvalidClaims, "a required claim does not hold an accepted value")
		}
	}
	id := &identity.Identity{
		Kind:      identity.KindJWT,
		Subject:   sub,
		Issuer:    iv.cfg.IssuerURL,
		Source:    iv.name,
		Claims:    m,
		RawClaims: raw,
		ExpiresAt: exp,
	}
	for _, sc := range iv.cfg.ScopeClaims {
		if v, ok := claims.Lookup(m, sc); ok {
			// Splitting on spaces would hide a CR or LF: check the raw values.
			if slices.ContainsFunc(claims.Strings(v), hasUnsafeChars) {
				return nil, fail(ReasonInvalidClaims, "a claim holds a control character")
			}
			for _, s := range claims.SpaceList(v) {
				if !slices.Contains(id.Scopes, s) {
					id.Scopes = append(id.Scopes, s)
				}
			}
		}
	}
	if v, ok := claims.Lookup(m, iv.cfg.RolesClaim); ok {
		id.Roles = claims.Strings(v)
	}
	if hasUnsafeChars(id.Subject) || hasUnsafeChars(id.Issuer) ||
		slices.ContainsFunc(id.Scopes, hasUnsafeChars) || slices.ContainsFunc(id.Roles, hasUnsafeChars) {
		return nil, fail(ReasonInvalidClaims, "a claim holds a control character")
	}
	return id, nil
}

// checkTimes applies exp (required), nbf, iat, RequireIAT and MaxTokenAge
// with the issuer's clock skew. It returns when the identity stops being
// valid: exp, or iat+MaxTokenAge when that comes first.
func (iv *issuerVerifier) checkTimes(m map[string]any, now time.Time) (time.Time, *Error) {
	skew := iv.cfg.ClockSkew.Duration
	exp, present, ok := claims.NumericDate(m, "exp")
	switch {
	case !present:
		return time.Time{}, fail(ReasonMissingClaim, "the token has no exp claim")
	case !ok:
		return time.Time{}, fail(ReasonInvalidClaims, "the exp claim is not a number")
	case !now.Before(exp.Add(skew)):
		return time.Time{}, fail(ReasonExpired, "the token has expired")
	}
	nbf, present, ok := claims.NumericDate(m, "nbf")
	switch {
	case present && !ok:
		return time.Time{}, fail(ReasonInvalidClaims, "the nbf claim is not a number")
	case present && now.Add(skew).Before(nbf):
		return time.Time{}, fail(ReasonNotYetValid, "the token is not valid yet")
	}
	iat, present, ok := claims.NumericDate(m, "iat")
	maxAge := iv.cfg.MaxTokenAge.Duration
	switch {
	case present && !ok:
		return time.Time{}, fail(ReasonInvalidClaims, "the iat claim is not a number")
	case !present && (iv.cfg.RequireIAT || maxAge > 0):
		return time.Time{}, fail(ReasonMissingClaim, "the token has no iat claim")
	case present && iat.After(now.Add(skew)):
		return time.Time{}, fail(ReasonIssuedInFuture, "the token was issued in the future")
	case present && maxAge > 0 && now.Sub(iat) > maxAge+skew:
		return time.Time{}, fail(ReasonTokenTooOld, "the token is older than allowed")
	}
	if maxAge > 0 && iat.Add(maxAge).Before(exp) {
		exp = iat.Add(maxAge)
	}
	return exp, nil
}

func (iv *issuerVerifier) checkAudience(m map[string]any) *Error {
	if len(iv.cfg.Audiences) > 0 {
		var auds []string
		switch v := m["aud"].(type) {
		case string:
			auds = []string{v}
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					auds = append(auds, s)
				}
			}
		}
		if !anyIn(auds, iv.cfg.Audiences) {
			return fail(ReasonInvalidAudience, "the token is not meant for this audience")
		}
	}
	if len(iv.cfg.ClientIDs) > 0 {
		cid, ok := m["client_id"].(string)
		if !ok || !slices.Contains(iv.cfg.ClientIDs, cid) {
			return fail(ReasonInvalidClientID, "the token is not meant for this client")
		}
	}
	return nil
}

func anyIn(have, accepted []string) bool {
	for _, h := range have {
		if slices.Contains(accepted, h) {
			return true
		}
	}
	return false
}

// checkRegisteredTypes refuses registered claims of the wrong JSON type
// (go-oidc would refuse them too, with a less precise error): iss, sub,
// nonce and at_hash strings, aud a string or an array of strings.
func checkRegisteredTypes(m map[string]any) *Error {
	for _, k := range [...]string{"iss", "sub", "nonce", "at_hash"} {
		if v, ok := m[k]; ok {
			if _, isString := v.(string); !isString {
				return fail(ReasonInvalidClaims, "the "+k+" claim is not a string")
			}
		}
	}
	switch v := m["aud"].(type) {
	case nil, string:
	case []any:
		for _, e := range v {
			if _, ok := e.(string); !ok {
				return fail(ReasonInvalidClaims, "the aud claim holds a value that is not a string")
			}
		}
	default:
		return fail(ReasonInvalidClaims, "the aud claim is neither a string nor an array of strings")
	}
	return nil
}
