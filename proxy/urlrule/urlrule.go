// Package urlrule holds the rules each kind of URL in a configuration
// obeys, defined once for the proxy's config validation, the key fetcher,
// the controller's issuer refresher and the proxy's flags. The AuthPolicy
// CRD's regular expressions (IssuerCRDRegexp, JWKSCRDRegexp) are coarser
// filters the API server applies first: every URL a rule accepts matches
// them.
//
// Errors are *Error and never quote the URL: a JWKS URL may carry a
// credential in its query. Callers add it where that is safe.
package urlrule

import (
	"net/url"
	"strings"
)

// MaxLen is the longest issuer or JWKS URL, in bytes (the CRD's maxLength).
const MaxLen = 512

// IssuerCRDRegexp is the pattern the AuthPolicy CRD applies to
// spec.authentication.jwt[].issuerURL: https, or http on a loopback host;
// no whitespace, query or fragment.
const IssuerCRDRegexp = `^(https://[^\s?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?(/[^\s?#]*)?)$`

// JWKSCRDRegexp is the pattern the AuthPolicy CRD applies to
// spec.authentication.jwt[].jwksURL: as IssuerCRDRegexp, but a query is
// allowed.
const JWKSCRDRegexp = `^(https://[^\s#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?([/?][^\s#]*)?)$`

// Reasons carried by *Error.
const (
	ReasonEmpty       = "is required"
	ReasonTooLong     = "must be at most 512 bytes"
	ReasonWhitespace  = "must not contain whitespace or control characters"
	ReasonFragment    = "must not carry a fragment"
	ReasonQuery       = "must not carry a query (the iss claim is matched exactly)"
	ReasonParse       = "does not parse as a URL"
	ReasonNotAbsolute = "must be an absolute URL with a host"
	ReasonScheme      = "scheme must be https"
	ReasonSchemeCase  = "scheme must be written in lower case"
	ReasonUserInfo    = "must not carry user info"
	ReasonEmptyPort   = "must not have an empty port"
	ReasonPlainHTTP   = "must use https (http is allowed only for loopback development issuers: localhost, 127.0.0.1 or [::1])"

	ReasonFetchNotAbsolute = "key URL must be absolute and carry no user info"
	ReasonFetchPlainHTTP   = "key URL must use https (http only on loopback)"
	ReasonFetchScheme      = "key URL must use https"

	ReasonUpstreamScheme = "scheme must be http (the function listens on localhost)"
	ReasonUpstreamHost   = "must name a host and port"
	ReasonUpstreamExtra  = "must not carry a path, query, fragment or user info"
)

// Error is a URL a rule refuses. It never holds the URL.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
}

// Error returns the reason.
func (e *Error) Error() string { return e.Reason }

func fail(reason string) error { return &Error{Reason: reason} }

// Issuer checks an issuer URL. It must equal the token's iss claim exactly
// and is the base of OIDC discovery: https (http only on localhost,
// 127.0.0.1 or [::1], written so), absolute, without user info, query,
// fragment or whitespace, at most MaxLen bytes.
func Issuer(raw string) error { return check(raw, false) }

// JWKS checks a configured JWKS URL: as Issuer, but a query is allowed.
func JWKS(raw string) error { return check(raw, true) }

func check(raw string, query bool) error {
	switch {
	case raw == "":
		return fail(ReasonEmpty)
	case len(raw) > MaxLen:
		return fail(ReasonTooLong)
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fail(ReasonWhitespace)
	case strings.Contains(raw, "#"):
		return fail(ReasonFragment)
	case !query && strings.Contains(raw, "?"):
		return fail(ReasonQuery)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fail(ReasonParse)
	case u.Scheme != "https" && u.Scheme != "http":
		return fail(ReasonScheme)
	case !strings.HasPrefix(raw, u.Scheme+"://"):
		if strings.HasPrefix(strings.ToLower(raw), u.Scheme+"://") {
			return fail(ReasonSchemeCase)
		}
		return fail(ReasonNotAbsolute)
	case u.Host == "":
		return fail(ReasonNotAbsolute)
	case u.User != nil:
		return fail(ReasonUserInfo)
	case strings.HasSuffix(u.Host, ":"):
		return fail(ReasonEmptyPort)
	case u.Scheme == "http" && !loopbackAuthority(authority(raw[len("http://"):])):
		return fail(ReasonPlainHTTP)
	}
	return nil
}

// authority returns the authority of what follows "scheme://".
func authority(rest string) string {
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return rest[:i]
	}
	return rest
}

// loopbackAuthority reports whether a, as written, is a loopback host
// (localhost, 127.0.0.1 or [::1]) with an optional numeric port.
func loopbackAuthority(a string) bool {
	for _, h := range [...]string{"localhost", "127.0.0.1", "[::1]"} {
		if port, ok := strings.CutPrefix(a, h); ok && (port == "" || isPort(port)) {
			return true
		}
	}
	return false
}

func isPort(s string) bool {
	digits, ok := strings.CutPrefix(s, ":")
	return ok && digits != "" && strings.Trim(digits, "0123456789") == ""
}

// isLoopbackHost reports whether host (a URL's Hostname) is one a key URL
// may reach over plain http: localhost, 127.0.0.1 or ::1.
func isLoopbackHost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// Fetch checks a URL the key fetcher is about to follow that no
// configuration spelled: a redirect target or a discovered jwks_uri. It is
// the part of Issuer and JWKS that keeps keys on a verified channel:
// absolute, without user info, https, or http only on a loopback host.
func Fetch(u *url.URL) error {
	if u.User != nil || u.Host == "" {
		return fail(ReasonFetchNotAbsolute)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fail(ReasonFetchPlainHTTP)
	default:
		return fail(ReasonFetchScheme)
	}
}

// Upstream checks the URL of the function behind the proxy (upstream.url,
// --upstream): http to a host and port, with no path, query, fragment or
// user info.
func Upstream(raw string) error {
	if raw == "" {
		return fail(ReasonEmpty)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fail(ReasonParse)
	case u.Scheme != "http":
		return fail(ReasonUpstreamScheme)
	case u.Host == "":
		return fail(ReasonUpstreamHost)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#"):
		return fail(ReasonUpstreamExtra)
	}
	return nil
}
