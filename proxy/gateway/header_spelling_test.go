package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/proxy/config"
)

// Class 4: spellings of managed headers that a server or framework could map
// onto a managed name (CGI/WSGI/PHP/Rack turn '-' into '_' and upper-case,
// some fold or drop '.', Node lower-cases). net/http canonicalises only
// names made of letters, digits and '-'; names holding '_', '.' or other
// token characters reach the handler as sent, so they are sent raw here.

// spoofSpellings are names that must never reach the function.
func spoofSpellings() []string {
	return []string{
		"X-Authgate-Subject", "x-authgate-subject", "X-AUTHGATE-SUBJECT",
		"X_Authgate_Subject", "x_authgate_subject", "X_Authgate-Subject", "X-Authgate_Subject",
		"X.Authgate.Subject", "x.authgate.subject", "X.Authgate-Subject",
		"XAuthgateSubject", "xauthgatesubject", "X-Authgate--Subject", "X--Authgate-Subject",
		"-X-Authgate-Subject", "X-Authgate-Subject-", "_x_authgate_subject_", ".X-Authgate-Subject.",
		"X~Authgate~Subject", "X!Authgate#Subject", "X'Authgate'Subject", "X|Authgate|Subject",
		"X*Authgate+Subject", "X^Authgate`Subject", "X$Authgate%Subject&",
		"X-Authgate-Email.", "x_authgate_email", "X.Authgate.Scopes", "XAuthgateCredentialKind",
		"X-Authgate-Issuer_", "X-Authgate-Groups~", "X-Authgate-Anything", "X-Authgateway", "X-Authgate",
		"X-User-Email", "x_user_email", "X.User.Email", "XUserEmail", "X-User--Email", "-x-user-email-",
		"X-Other-User", "x_other_user", "X.Other.User", "XOtherUser",
	}
}

// keptSpellings are near misses that must reach the function unchanged.
func keptSpellings() []string {
	return []string{
		"X-Auth", "X-Authgat", "X-Authgat-Subject", "Authgate-Subject", "X-Subject",
		"X-User", "X-User-Emails", "X-User-Email-Verified", "X_User", "X-Other", "X-Other-User-Id",
	}
}

// withSpellingPolicies adds an identity header outside X-Authgate- to the
// selected policy and a second policy, not selecting this workload, whose
// subject header must be stripped too.
func withSpellingPolicies(c *configT) {
	p := &c.Policies[0]
	p.Headers.Claims = append(p.Headers.Claims, config.ClaimHeader{Header: "X-User-Email", Claim: "email"})
	other := c.Policies[0]
	other.Name = "other"
	other.Selector = config.Selector{MatchLabels: map[string]string{"app": "other"}}
	other.Headers = config.IdentityHeaders{Subject: "X-Other-User"}
	c.Policies = append(c.Policies, other)
}

// managedNorm reports whether name normalises onto a managed name of
// withSpellingPolicies: the test's own normalisation (ASCII letters lower
// case, digits, nothing else).
func managedNorm(name string) bool {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		}
	}
	n := b.String()
	return strings.HasPrefix(n, "xauthgate") || n == "xuseremail" || n == "xotheruser"
}

func TestHeaderSpellingsNeverReachTheFunction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSpellingPolicies)
	tok := e.mint(map[string]any{"groups": []string{"eng", "ops"}})
	jwt := map[string][]string{
		"X-Authgate-Subject": {"alice"}, "X-Authgate-Issuer": {e.idp.URL}, "X-Authgate-Credential-Kind": {"jwt"},
		"X-Authgate-Scopes": {"orders:read"}, "X-Authgate-Email": {"alice@example.com"}, "X-Authgate-Groups": {"eng,ops"},
		"X-User-Email": {"alice@example.com"},
	}
	apiKey := map[string][]string{
		"X-Authgate-Subject": {"partner"}, "X-Authgate-Credential-Kind": {"apikey"}, "X-Authgate-Scopes": {"orders:read"},
	}
	tests := []struct {
		name, path string
		cred       []string
		want       map[string][]string
	}{
		{"with a valid token", "/orders/1", bearer(tok), jwt},
		{"with a valid API key", "/orders/1", []string{"X-API-Key", partnerKey}, apiKey},
		{"on a public route without a token", "/healthz", nil, map[string][]string{}},
		{"on a public route with a valid token", "/healthz", bearer(tok), map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := append(slices.Clone(tt.cred), spellingHeaders()...)
			rec := e.rawGet(tt.path, hdr...).mustForward(t)
			assertOnlyGatewayHeaders(t, rec, tt.want)
		})
	}
	t.Run("with an invalid token the function is not called", func(t *testing.T) {
		e.rawGet("/orders/1", append(bearer("x.y.z"), spellingHeaders()...)...).mustDeny(t, http.StatusUnauthorized, "")
	})
}

// spellingHeaders is every spoofed spelling (value "spoof-<i>") and every
// near miss (value "keep-<i>"), as name/value pairs.
func spellingHeaders() []string {
	var out []string
	for i, n := range spoofSpellings() {
		out = append(out, n, fmt.Sprintf("spoof-%d", i))
	}
	for i, n := range keptSpellings() {
		out = append(out, n, fmt.Sprintf("keep-%d", i))
	}
	return out
}

// assertOnlyGatewayHeaders checks that every received header normalising
// onto a managed name is exactly one the gateway set, with its value, and
// that every near miss arrived unchanged.
func assertOnlyGatewayHeaders(t *testing.T, rec echo.Received, want map[string][]string) {
	t.Helper()
	for name, vals := range rec.Headers {
		for _, v := range vals {
			if strings.HasPrefix(v, "spoof-") {
				t.Errorf("function received spoofed %s: %q", name, v)
			}
		}
		if !managedNorm(name) {
			continue
		}
		if w, ok := want[name]; !ok || !slices.Equal(vals, w) {
			t.Errorf("function received %s: %q, want %q", name, vals, w)
		}
	}
	for name, w := range want {
		if got := rec.Headers[name]; !slices.Equal(got, w) {
			t.Errorf("function received %s: %q, want %q set by the gateway", name, got, w)
		}
	}
	for i, n := range keptSpellings() {
		if got, want := rec.Headers[http.CanonicalHeaderKey(n)], fmt.Sprintf("keep-%d", i); len(got) != 1 || got[0] != want {
			t.Errorf("function received %s: %q, want [%s] unchanged", n, got, want)
		}
	}
}

// Whitespace inside or around a name is not a token: the server refuses the
// request before the gateway sees it.
func TestHeaderNamesWithWhitespaceAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSpellingPolicies)
	for _, name := range []string{"X Authgate Subject", "X-Authgate-Subject ", "X-Authgate-Subject\t", "X-User Email"} {
		t.Run(name, func(t *testing.T) {
			r := e.rawGet("/healthz", name, "spoof")
			if r.status != http.StatusBadRequest || r.received != nil {
				t.Fatalf("got status %d and upstream call %v, want 400 and none", r.status, r.received != nil)
			}
		})
	}
}

// Rego may set X-Authgate-* headers, but never under a spelling of an
// identity header: verified identity always wins, in every spelling.
func TestRegoHeaderSpellingsCannotShadowIdentity(t *testing.T) {
	t.Parallel()
	src := `package authgate.authz

decision := {"allow": true, "headers": {
	"X-Authgate-Subject.": "root", "X-Authgate--Subject": "root", "X-Authgate-Subject-": "root",
	"X-Authgate-Sub.ject": "root", "x-authgate-SUBJECT": "root", "X-Authgate-Email~": "root@example.com",
	"X-Authgate-Team": "blue",
}}
`
	e := newEnv(t, withSpellingPolicies, withRego(src, 0))
	rec := e.get("/api/x", bearer(e.mint(nil))...).mustForward(t)
	want := map[string][]string{
		"X-Authgate-Subject": {"alice"}, "X-Authgate-Issuer": {e.idp.URL}, "X-Authgate-Credential-Kind": {"jwt"},
		"X-Authgate-Scopes": {"orders:read"}, "X-Authgate-Email": {"alice@example.com"},
		"X-User-Email": {"alice@example.com"}, "X-Authgate-Team": {"blue"},
	}
	for name, vals := range rec.Headers {
		if managedNorm(name) && !slices.Equal(vals, want[name]) {
			t.Errorf("function received %s: %q, want %q", name, vals, want[name])
		}
	}
	for name, w := range want {
		if got := rec.Headers[name]; !slices.Equal(got, w) {
			t.Errorf("function received %s: %q, want %q", name, got, w)
		}
	}
}

// TestForwardingHeaderSpellingsNeverReachTheFunction: an untrusted client's
// forwarding and override headers, in spellings a framework reads as the
// real ones, are removed like the canonical names.
func TestForwardingHeaderSpellingsNeverReachTheFunction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spoofs := []string{"X.Forwarded.For", "x_forwarded_for", "X-Forwarded-For-", "XRealIp", "True.Client.IP",
		"X.Forwarded.Host", "X.Original.Url", "X_HTTP_Method_Override"}
	hdr := bearer(e.mint(nil))
	for _, name := range spoofs {
		hdr = append(hdr, name, "10.6.6.6")
	}
	rec := e.get("/orders/1", hdr...).mustForward(t)
	for name := range rec.Headers {
		for _, s := range spoofs {
			if name == s {
				t.Errorf("the function got the client's %s", name)
			}
		}
		for _, v := range rec.Headers[name] {
			if strings.Contains(v, "10.6.6.6") {
				t.Errorf("the function got the spoofed value in %s: %q", name, v)
			}
		}
	}
}
