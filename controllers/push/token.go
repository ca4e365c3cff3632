package push

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// maxTokenBytes bounds a bearer token. A ServiceAccount token is 1-2 KiB.
const maxTokenBytes = 8 << 10

// bearerToken returns the token of the request's one Authorization header
// ("Bearer <token>", the scheme in any case). Two headers, another scheme,
// an empty token or one holding white space are no credential.
func bearerToken(r *http.Request) (string, bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxTokenBytes {
		return "", false
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}

// jwsShaped reports whether token looks like what the API server issues
// (a JWS in compact serialization: three non-empty base64url segments, the
// first two JSON objects). It decides nothing about validity; it spares
// the API server a TokenReview of what cannot be a ServiceAccount token.
func jwsShaped(token string) bool {
	if len(token) == 0 || len(token) > maxTokenBytes {
		return false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || len(b) == 0 {
			return false
		}
		if i < 2 && !jsonObject(b) {
			return false
		}
	}
	return true
}

func jsonObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// tokenExpiry is the exp claim of a token the API server authenticated
// (so its claims are the issuer's), or the zero time when it has none.
func tokenExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}
