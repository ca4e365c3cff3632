package authn

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"

	"github.com/authgate/authgate/proxy/config"
)

// Structural limits applied before any signature work.
const (
	maxHeaderB64 = 2048 // encoded JOSE header
	maxKIDBytes  = 256
)

// forbiddenHeaders are JOSE header parameters never accepted: keys or key
// locations chosen by the sender, critical extensions, and encryption or
// compression parameters that do not belong in a JWS.
var forbiddenHeaders = [...]string{"jwk", "jku", "x5u", "x5c", "crit", "enc", "zip", "b64"}

// knownHeaders are header names that must be spelled exactly.
var knownHeaders = [...]string{"alg", "kid", "typ", "cty", "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "enc", "zip", "b64"}

// unverifiedJWT is what the structural pre-check learns from a compact JWS
// without verifying it. Only used to pick the issuer and refuse early.
type unverifiedJWT struct {
	alg, typ, kid string
	iss           string
}

// parseJWT runs the cheap checks on a compact JWS: three base64url parts, a
// bounded header that is a JSON object with a supported alg and no forbidden
// parameter, and a payload that is a JSON object whose iss is read
// unverified.
func parseJWT(tok string) (unverifiedJWT, *Error) {
	if strings.HasPrefix(tok, "{") {
		return unverifiedJWT{}, fail(ReasonInvalidToken, "JWS JSON serialization is not accepted")
	}
	switch strings.Count(tok, ".") {
	case 2:
	case 4:
		return unverifiedJWT{}, fail(ReasonInvalidToken, "encrypted tokens (JWE) are not accepted")
	default:
		return unverifiedJWT{}, fail(ReasonInvalidToken, "a JWT has exactly three parts")
	}
	h, rest, _ := strings.Cut(tok, ".")
	p, s, _ := strings.Cut(rest, ".")
	switch {
	case h == "" || p == "":
		return unverifiedJWT{}, fail(ReasonInvalidToken, "empty JWT part")
	case s == "":
		return unverifiedJWT{}, fail(ReasonInvalidToken, "the token is not signed")
	case len(h) > maxHeaderB64:
		return unverifiedJWT{}, fail(ReasonInvalidToken, "the JOSE header is too large")
	case !isBase64URL(h) || !isBase64URL(p) || !isBase64URL(s):
		return unverifiedJWT{}, fail(ReasonInvalidToken, "JWT parts must be unpadded base64url")
	}
	out, err := parseHeader(h)
	if err != nil {
		return unverifiedJWT{}, err
	}
	payload, derr := base64.RawURLEncoding.DecodeString(p)
	if derr != nil {
		return unverifiedJWT{}, fail(ReasonInvalidToken, "the payload is not base64url")
	}
	var claims struct {
		Iss *string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return unverifiedJWT{}, fail(ReasonInvalidToken, "the payload is not a JSON object with a string iss")
	}
	if claims.Iss == nil {
		return unverifiedJWT{}, fail(ReasonMissingClaim, "the token has no iss claim")
	}
	out.iss = *claims.Iss
	return out, nil
}

func parseHeader(h string) (unverifiedJWT, *Error) {
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return unverifiedJWT{}, fail(ReasonInvalidToken, "the JOSE header is not base64url")
	}
	var hdr map[string]any
	if err := json.Unmarshal(raw, &hdr); err != nil || hdr == nil {
		return unverifiedJWT{}, fail(ReasonInvalidToken, "the JOSE header is not a JSON object")
	}
	for k := range hdr {
		if slices.Contains(forbiddenHeaders[:], k) {
			return unverifiedJWT{}, fail(ReasonInvalidToken, "the JOSE header parameter "+k+" is not accepted")
		}
		for _, known := range knownHeaders {
			if k != known && strings.EqualFold(k, known) {
				return unverifiedJWT{}, fail(ReasonInvalidToken, "JOSE header names must be spelled exactly")
			}
		}
	}
	var out unverifiedJWT
	var ok bool
	if out.alg, ok = hdr["alg"].(string); !ok || out.alg == "" {
		return unverifiedJWT{}, fail(ReasonInvalidToken, "the JOSE header has no alg")
	}
	if !config.IsSupportedAlgorithm(out.alg) {
		return unverifiedJWT{}, fail(ReasonUnsupportedAlg, "the signing algorithm is not accepted")
	}
	if v, present := hdr["kid"]; present {
		if out.kid, ok = v.(string); !ok || len(out.kid) > maxKIDBytes {
			return unverifiedJWT{}, fail(ReasonInvalidToken, "the kid header must be a short string")
		}
	}
	if v, present := hdr["typ"]; present {
		if out.typ, ok = v.(string); !ok {
			return unverifiedJWT{}, fail(ReasonInvalidToken, "the typ header must be a string")
		}
	}
	return out, nil
}

// isBase64URL reports unpadded base64url characters only.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// normalizeType lower-cases a media type and drops an "application/"
// prefix (RFC 7515 4.1.9).
func normalizeType(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}
