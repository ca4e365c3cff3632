package authn

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/proxy/config"
)

// bearerScheme is "Bearer " as sent on the wire; the scheme compares
// case-insensitively and exactly one space must follow it.
const bearerScheme = "bearer "

// source is one place a credential may be read from, shared by the issuers
// and API keys configured for it.
type source struct {
	cfg     config.CredentialSource // Name canonical for headers
	issuers []*issuerVerifier       // issuers accepting tokens from here
	apiKeys bool                    // API keys accepted from here
}

// srcKey identifies a source: header names compare case-insensitively,
// cookie and query names exactly.
type srcKey struct{ typ, name string }

func sourceKey(s config.CredentialSource) srcKey {
	if s.Type == config.SourceHeader {
		return srcKey{s.Type, http.CanonicalHeaderKey(s.Name)}
	}
	return srcKey{s.Type, s.Name}
}

// extractor reads the one credential of a request.
type extractor struct {
	sources  []*source
	byKey    map[srcKey]*source
	maxBytes int
}

// extract returns the request's only credential. Every configured source is
// read so a credential presented twice is refused rather than guessed.
func (x *extractor) extract(r *http.Request) (Credential, error) {
	var found Credential
	n := 0
	for _, s := range x.sources {
		v, ok, err := x.read(r, s)
		if err != nil {
			return Credential{}, err
		}
		if !ok {
			continue
		}
		n++
		if n > 1 {
			return Credential{}, fail(ReasonAmbiguousCredential, "credentials were presented in more than one place")
		}
		found = Credential{Value: v, Source: s.cfg}
	}
	if n == 0 {
		return Credential{}, fail(ReasonMissingCredential, "no credential was presented")
	}
	if err := unreadCredential(r, found.Source); err != nil {
		return Credential{}, err
	}
	return found, nil
}

// standardQueryName is RFC 6750 2.3's access_token query parameter.
const standardQueryName = "access_token"

// unreadCredential refuses a request that, besides the credential found in
// src, carries one in a standard place the config does not read (RFC 6750
// allows one method per request): an Authorization header of any scheme,
// or an access_token query parameter. Form bodies are checked by
// FormCredential once the credential verified, so a bad credential never
// makes the gateway read a body.
func unreadCredential(r *http.Request, src config.CredentialSource) *Error {
	if src.Type != config.SourceBearer && len(r.Header["Authorization"]) > 0 {
		return fail(ReasonAmbiguousCredential, "credentials were presented in more than one place (Authorization header)")
	}
	if r.URL == nil || r.URL.RawQuery == "" || (src.Type == config.SourceQuery && src.Name == standardQueryName) {
		return nil
	}
	if hasParam(r.URL.RawQuery, standardQueryName) {
		return fail(ReasonAmbiguousCredential, "credentials were presented in more than one place (access_token query parameter)")
	}
	return nil
}

// hasParam reports whether a query string or form body holds a parameter
// named name in any spelling its parsers accept ("&" or ";" separators,
// an escaped name).
func hasParam(raw, name string) bool {
	for rest := raw; rest != ""; {
		var part string
		part, rest = cutQuery(rest)
		k, _, _ := strings.Cut(part, "=")
		if queryNameIs(k, name) {
			return true
		}
	}
	return false
}

func (x *extractor) read(r *http.Request, s *source) (string, bool, error) {
	switch s.cfg.Type {
	case config.SourceBearer:
		return x.readBearer(r.Header["Authorization"])
	case config.SourceHeader:
		return x.readHeader(r.Header[s.cfg.Name], s.cfg.Name, s.cfg.Prefix)
	case config.SourceCookie:
		return x.readCookie(r.Header["Cookie"], s.cfg.Name)
	case config.SourceQuery:
		if r.URL == nil {
			return "", false, nil
		}
		return x.readQuery(r.URL.RawQuery, s.cfg.Name)
	}
	return "", false, nil
}

// readBearer parses "Authorization: Bearer <b64token>" (RFC 6750 2.1). Other
// schemes are not bearer credentials.
func (x *extractor) readBearer(vals []string) (string, bool, error) {
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, fail(ReasonAmbiguousCredential, "more than one Authorization header")
	}
	v := vals[0]
	if strings.EqualFold(v, bearerScheme[:len(bearerScheme)-1]) {
		return "", false, fail(ReasonMalformedCredential, "empty bearer token")
	}
	if len(v) < len(bearerScheme) || !strings.EqualFold(v[:len(bearerScheme)], bearerScheme) {
		return "", false, nil
	}
	tok := v[len(bearerScheme):]
	if len(tok) > x.maxBytes {
		return "", false, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	if tok == "" {
		return "", false, fail(ReasonMalformedCredential, "empty bearer token")
	}
	if !isB64Token(tok) {
		return "", false, fail(ReasonMalformedCredential, "the bearer token must be one b64token after exactly one space")
	}
	return tok, true, nil
}

func (x *extractor) readHeader(vals []string, name, prefix string) (string, bool, error) {
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, fail(ReasonAmbiguousCredential, "more than one "+name+" header")
	}
	v := vals[0]
	if len(v) > x.maxBytes+len(prefix) {
		return "", false, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	if prefix != "" {
		if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
			return "", false, fail(ReasonMalformedCredential, "the "+name+" header lacks its expected prefix")
		}
		v = v[len(prefix):]
	}
	if len(v) > x.maxBytes {
		return "", false, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	if v == "" || !isVisibleASCII(v) {
		return "", false, fail(ReasonMalformedCredential, "the "+name+" header must hold one credential of visible ASCII characters")
	}
	return v, true, nil
}

// readCookie finds the named cookie in every Cookie line. Any cookie-pair
// with that name counts, valid or not, so a second copy is always noticed.
func (x *extractor) readCookie(lines []string, name string) (string, bool, error) {
	var val string
	n := 0
	for _, line := range lines {
		for rest := line; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ";")
			k, v, _ := strings.Cut(trimOWS(part), "=")
			if trimOWS(k) != name {
				continue
			}
			n++
			if n > 1 {
				return "", false, fail(ReasonAmbiguousCredential, "more than one "+name+" cookie")
			}
			val = trimOWS(v)
		}
	}
	if n == 0 {
		return "", false, nil
	}
	if len(val) > x.maxBytes+2 {
		return "", false, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
	}
	if len(val) > x.maxBytes {
		return "", false, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	if val == "" || !isCookieValue(val) {
		return "", false, fail(ReasonMalformedCredential, "the "+name+" cookie must hold one credential")
	}
	return val, true, nil
}

// readQuery finds the named parameter. Both "&" and ";" separate pairs, and
// names are compared after unescaping, so no spelling hides a second copy.
func (x *extractor) readQuery(raw, name string) (string, bool, error) {
	var rawVal string
	n := 0
	for rest := raw; rest != ""; {
		var part string
		part, rest = cutQuery(rest)
		k, v, _ := strings.Cut(part, "=")
		if !queryNameIs(k, name) {
			continue
		}
		n++
		if n > 1 {
			return "", false, fail(ReasonAmbiguousCredential, "more than one "+name+" query parameter")
		}
		rawVal = v
	}
	if n == 0 {
		return "", false, nil
	}
	if len(rawVal) > 3*x.maxBytes {
		return "", false, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	val, err := url.QueryUnescape(rawVal)
	if err != nil {
		return "", false, fail(ReasonMalformedCredential, "the "+name+" query parameter is not correctly escaped")
	}
	if len(val) > x.maxBytes {
		return "", false, fail(ReasonOversizedCredential, "the credential is longer than allowed")
	}
	if val == "" || !isVisibleASCII(val) {
		return "", false, fail(ReasonMalformedCredential, "the "+name+" query parameter must hold one credential")
	}
	return val, true, nil
}

// cutQuery splits off the first query pair at "&" or ";".
func cutQuery(s string) (part, rest string) {
	if i := strings.IndexAny(s, "&;"); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func queryNameIs(rawKey, name string) bool {
	if !strings.ContainsAny(rawKey, "%+") {
		return rawKey == name
	}
	k, err := url.QueryUnescape(rawKey)
	return err == nil && k == name
}

// isB64Token reports RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s) && b64TokenChar[s[i]]; i++ {
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64TokenChar and base64URLChar are the character classes of
// b64token (RFC 6750 2.1, before any "=") and of base64url without padding
// (RFC 7515 2), as tables: a token's every byte is checked on every
// request.
var b64TokenChar, base64URLChar = func() (tok, url [256]bool) {
	for c := 0; c < 256; c++ {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		url[c] = alnum || c == '-' || c == '_'
		tok[c] = url[c] || c == '.' || c == '~' || c == '+' || c == '/'
	}
	return tok, url
}()

// isVisibleASCII reports VCHAR only: no spaces, controls or non-ASCII.
func isVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isCookieValue reports RFC 6265 cookie-octets.
func isCookieValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}
