package headers

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/proxy/claims"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/headername"
	"github.com/authgate/authgate/proxy/identity"
)

// ErrUnsafeValue is wrapped by Inject's error when a value cannot be sent
// as a header without changing its meaning.
var ErrUnsafeValue = errors.New("unsafe header value")

// ErrInvalidName is wrapped by Inject's error when an extra header has an
// invalid or protected name.
var ErrInvalidName = errors.New("invalid header name")

// field is one header to set.
type field struct{ name, value string }

// Inject sets the identity headers m describes from id, then extra (header
// values decided by Rego, which override). It is atomic: every value is
// computed and checked first, and when any is unsafe (see SafeValue) it
// returns an error wrapping ErrUnsafeValue and leaves h untouched.
//
// Subject, Kind and Scopes (space-joined) are always set; Issuer only when
// not empty; each claim header only when the claim is present and a scalar
// or a list (elements joined with ","); ClaimsJSON, when named, carries
// id.RawClaims as unpadded base64url. A list element holding the separator
// (a scope with a space, a claim element with a comma) would be read back
// as two values, so it is refused as unsafe too. Errors name the header,
// never the value.
func Inject(h http.Header, m *config.IdentityHeaders, id *identity.Identity, extra map[string]string) error {
	var arr [16]field
	fs := add(arr[:0], m.Subject, id.Subject)
	if id.Issuer != "" {
		fs = add(fs, m.Issuer, id.Issuer)
	}
	fs = add(fs, m.Kind, string(id.Kind))
	scopes, err := join(id.Scopes, ' ')
	if err != nil {
		return fmt.Errorf("header %s: %w", m.Scopes, err)
	}
	fs = add(fs, m.Scopes, scopes)
	for _, c := range m.Claims {
		v, ok, err := claimValue(id.Claims, c.Claim)
		if err != nil {
			return fmt.Errorf("header %s: %w", c.Header, err)
		}
		if ok {
			fs = add(fs, c.Header, v)
		}
	}
	if m.ClaimsJSON != "" && len(id.RawClaims) > 0 {
		fs = add(fs, m.ClaimsJSON, base64.RawURLEncoding.EncodeToString(id.RawClaims))
	}
	for name, v := range extra {
		if !httpguts.ValidHeaderFieldName(name) || headername.Protected(name) {
			return fmt.Errorf("extra header %q: %w", name, ErrInvalidName)
		}
		fs = add(fs, name, v)
	}
	for _, f := range fs {
		if !SafeValue(f.value) {
			return fmt.Errorf("header %s: %w", f.name, ErrUnsafeValue)
		}
	}
	// One backing array for every value; each slice is capped so an append
	// by a later handler cannot overwrite its neighbour.
	vals := make([]string, len(fs))
	for i, f := range fs {
		vals[i] = f.value
		h[http.CanonicalHeaderKey(f.name)] = vals[i : i+1 : i+1]
	}
	return nil
}

// add appends a field unless its name is not configured.
func add(fs []field, name, value string) []field {
	if name == "" {
		return fs
	}
	return append(fs, field{name, value})
}

// claimValue formats the claim at path: a scalar as itself, a list joined
// with ",". Absent claims, nulls and objects yield ok == false.
func claimValue(cl map[string]any, path string) (string, bool, error) {
	v, ok := claims.Lookup(cl, path)
	if !ok {
		return "", false, nil
	}
	if s, ok := claims.Scalar(v); ok {
		return s, true, nil
	}
	switch v.(type) {
	case []any, []string:
		s, err := join(claims.Strings(v), ',')
		return s, err == nil, err
	}
	return "", false, nil
}

// join joins list with sep, refusing elements that contain sep.
func join(list []string, sep byte) (string, error) {
	switch len(list) {
	case 0:
		return "", nil
	case 1:
		if strings.IndexByte(list[0], sep) >= 0 {
			return "", fmt.Errorf("list element contains %q: %w", sep, ErrUnsafeValue)
		}
		return list[0], nil
	}
	n := len(list) - 1
	for _, s := range list {
		if strings.IndexByte(s, sep) >= 0 {
			return "", fmt.Errorf("list element contains %q: %w", sep, ErrUnsafeValue)
		}
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	for i, s := range list {
		if i > 0 {
			b.WriteByte(sep)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// SafeValue reports whether s can be sent as a header value unchanged: valid
// UTF-8 without control characters other than tab (no CR, LF or NUL, no
// DEL, no C1 controls, no Unicode line or paragraph separator).
func SafeValue(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r <= 0x9f || r == 0x2028 || r == 0x2029 {
			return false
		}
		i += size
	}
	return true
}
