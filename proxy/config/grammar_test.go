package config

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/pathpattern"
	"github.com/authgate/authgate/proxy/urlrule"
)

// errorAt returns the message of the error at path, or "" with ok false.
func errorAt(errs ErrorList, path string) (string, bool) {
	for _, e := range errs {
		if e.Path.String() == path {
			return e.Message, true
		}
	}
	return "", false
}

// TestValidateReportsPathPatternErrors: validation reports exactly
// pathpattern.Parse's error at the pattern's path, and nothing for what
// Parse accepts.
func TestValidateReportsPathPatternErrors(t *testing.T) {
	t.Parallel()
	for _, pat := range []string{"/", "/**", "/a/*/b/", "/a/**", "a", "/a/**/b", "/a//b", "/a/../b", "/a%2Fb", "/a*", "/" + strings.Repeat("x", pathpattern.MaxLen)} {
		t.Run(pat[:min(len(pat), 32)], func(t *testing.T) {
			t.Parallel()
			errs := validateMutated(t, func(c *ProxyConfig) { c.Policies[0].Routes[1].Paths = []string{pat} })
			msg, found := errorAt(errs, "policies[0].routes[1].paths[0]")
			_, perr := pathpattern.Parse(pat)
			switch {
			case perr == nil && found:
				t.Fatalf("got error %q, want none (Parse accepts %q)", msg, pat)
			case perr != nil && msg != perr.Error():
				t.Fatalf("got errors %v, want %q at policies[0].routes[1].paths[0]", errs, perr)
			}
		})
	}
}

// TestValidateReportsURLRuleErrors: issuer, JWKS and upstream URLs are
// checked by urlrule, whose message is reported at the field's path and,
// like urlrule's, never quotes the URL (user info or a JWKS URL's query may
// carry a credential, and these messages reach logs and status). The cases
// marked tightened were accepted before the rules were shared.
func TestValidateReportsURLRuleErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(c *ProxyConfig, raw string)
		path   string
		raw    string
		reason string
	}{
		{"issuer ok", setIssuerURL, "issuers[0].issuerURL", "http://[::1]:5556/dex", ""},
		{"issuer empty", setIssuerURL, "issuers[0].issuerURL", "", urlrule.ReasonEmpty},
		{"issuer plain http", setIssuerURL, "issuers[0].issuerURL", "http://idp.example.com", urlrule.ReasonPlainHTTP},
		{"issuer query", setIssuerURL, "issuers[0].issuerURL", "https://idp.example.com/?a=b", urlrule.ReasonQuery},
		{"tightened: issuer other loopback", setIssuerURL, "issuers[0].issuerURL", "http://127.0.0.2/", urlrule.ReasonPlainHTTP},
		{"tightened: issuer empty query", setIssuerURL, "issuers[0].issuerURL", "https://idp.example.com/?", urlrule.ReasonQuery},
		{"tightened: issuer empty fragment", setIssuerURL, "issuers[0].issuerURL", "https://idp.example.com/#", urlrule.ReasonFragment},
		{"tightened: issuer upper-case scheme", setIssuerURL, "issuers[0].issuerURL", "HTTPS://idp.example.com/", urlrule.ReasonSchemeCase},
		{"tightened: issuer space", setIssuerURL, "issuers[0].issuerURL", "https://idp.example.com/a b", urlrule.ReasonWhitespace},
		{"tightened: issuer too long", setIssuerURL, "issuers[0].issuerURL", "https://idp.example.com/" + strings.Repeat("a", urlrule.MaxLen), urlrule.ReasonTooLong},
		{"jwks query ok", setJWKSURL, "issuers[0].jwksURL", "https://idp.example.com/keys?x=1", ""},
		{"jwks user info", setJWKSURL, "issuers[0].jwksURL", "https://sekrit:p@idp.example.com/keys", urlrule.ReasonUserInfo},
		{"jwks plain http", setJWKSURL, "issuers[0].jwksURL", "http://idp.example.com/keys?access_token=sekrit", urlrule.ReasonPlainHTTP},
		{"issuer user info", setIssuerURL, "issuers[0].issuerURL", "https://sekrit@idp.example.com/", urlrule.ReasonUserInfo},
		{"jwks fragment", setJWKSURL, "issuers[0].jwksURL", "https://idp.example.com/keys#k", urlrule.ReasonFragment},
		{"upstream empty", setUpstreamURL, "upstream.url", "", urlrule.ReasonEmpty},
		{"upstream https", setUpstreamURL, "upstream.url", "https://x:1", urlrule.ReasonUpstreamScheme},
		{"tightened: upstream empty query", setUpstreamURL, "upstream.url", "http://x:1/?", urlrule.ReasonUpstreamExtra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := validateMutated(t, func(c *ProxyConfig) { tt.mutate(c, tt.raw) })
			msg, found := errorAt(errs, tt.path)
			if tt.reason == "" {
				if found {
					t.Fatalf("got error %q at %s, want none", msg, tt.path)
				}
				return
			}
			if !found || msg != tt.reason {
				t.Fatalf("got errors %v, want %q at %s", errs, tt.reason, tt.path)
			}
		})
	}
}

func setIssuerURL(c *ProxyConfig, raw string)   { c.Issuers[0].IssuerURL = raw }
func setJWKSURL(c *ProxyConfig, raw string)     { c.Issuers[0].JWKSURL = raw }
func setUpstreamURL(c *ProxyConfig, raw string) { c.Upstream.URL = raw }
