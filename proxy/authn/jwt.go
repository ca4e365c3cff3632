package authn

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/jwks"
)

// maxHeaderB64 bounds the encoded JOSE header, checked before any decoding.
const maxHeaderB64 = 2048

// knownHeaders are header names that must be spelled exactly.
var knownHeaders = [...]string{"alg", "kid", "typ", "cty", "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "enc", "zip", "b64"}

// unverifiedJWT is what the structural pre-check learns from a compact JWS
// without verifying it: the header fields, and the payload decoded once
// (claims). The claims are checked before the signature (cheap refusals
// first) and become the identity only after go-oidc verified the very same
// payload bytes.
type unverifiedJWT struct {
	alg, typ, kid string
	iss           string
	payload       []byte
	claims        map[string]any
	claimsErr     *Error
}

// errNotObject: the payload is not a JSON object at all.
var errNotObject = errors.New("claims are not a JSON object")

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
	out.payload = payload
	out.claims, out.claimsErr = decodeClaims(payload)
	if out.claimsErr != nil {
		if errors.Is(out.claimsErr, errNotObject) {
			return unverifiedJWT{}, fail(ReasonInvalidToken, "the payload is not a JSON object with a string iss")
		}
		return unverifiedJWT{}, out.claimsErr
	}
	iss, present := out.claims["iss"]
	if !present {
		return unverifiedJWT{}, fail(ReasonMissingClaim, "the token has no iss claim")
	}
	if out.iss, present = iss.(string); !present {
		return unverifiedJWT{}, fail(ReasonInvalidToken, "the payload is not a JSON object with a string iss")
	}
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
		if jwks.IsForbiddenHeader(k) {
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
		if out.kid, ok = v.(string); !ok || len(out.kid) > jwks.MaxKIDBytes {
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
		if !base64URLChar[s[i]] {
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
