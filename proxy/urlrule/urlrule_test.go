package urlrule

import (
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Cases both Issuer and JWKS decide alike.
var sharedCases = []struct {
	raw    string
	reason string // "" = accepted
}{
	{"https://idp.example.com", ""},
	{"https://idp.example.com/", ""},
	{"https://idp.example.com:8443/realms/a", ""},
	{"https://[2001:db8::1]/x", ""},
	{"http://localhost", ""},
	{"http://localhost:8080/realms/dev", ""},
	{"http://127.0.0.1:5556/dex", ""},
	{"http://[::1]:9/", ""},
	{"", ReasonEmpty},
	{"https://idp.example.com/" + strings.Repeat("a", MaxLen), ReasonTooLong},
	{"https://idp.example.com/a b", ReasonWhitespace},
	{"https://idp.example.com/\t", ReasonWhitespace},
	{"https://idp.example.com/\x7f", ReasonWhitespace},
	{"https://idp.example.com/#x", ReasonFragment},
	{"https://idp.example.com/#", ReasonFragment},
	{"https://idp.example.com/%zz", ReasonParse},
	{"ftp://idp.example.com", ReasonScheme},
	{"/realms/x", ReasonScheme},
	{"idp.example.com", ReasonScheme},
	{"HTTPS://idp.example.com", ReasonSchemeCase},
	{"Http://localhost", ReasonSchemeCase},
	{"https:idp.example.com", ReasonNotAbsolute},
	{"https:/idp.example.com", ReasonNotAbsolute},
	{"https:///path", ReasonNotAbsolute},
	{"https://u:p@idp.example.com", ReasonUserInfo},
	{"https://u@idp.example.com", ReasonUserInfo},
	{"https://idp.example.com:/x", ReasonEmptyPort},
	{"http://localhost:", ReasonEmptyPort},
	{"http://idp.example.com", ReasonPlainHTTP},
	{"http://127.0.0.2", ReasonPlainHTTP},
	{"http://[::ffff:127.0.0.1]/", ReasonPlainHTTP},
	{"http://[0:0:0:0:0:0:0:1]/", ReasonPlainHTTP},
	{"http://LOCALHOST/", ReasonPlainHTTP},
	{"http://%6cocalhost/", ReasonParse},
	{"http://localhost.example.com/", ReasonPlainHTTP},
	{"http://127.0.0.1.example.com/", ReasonPlainHTTP},
}

func TestIssuer(t *testing.T) {
	t.Parallel()
	cases := append(sharedCases[:len(sharedCases):len(sharedCases)],
		struct{ raw, reason string }{"https://idp.example.com/?tenant=a", ReasonQuery},
		struct{ raw, reason string }{"https://idp.example.com/?", ReasonQuery},
		struct{ raw, reason string }{"http://localhost?x", ReasonQuery},
	)
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			assertReason(t, Issuer(tc.raw), tc.reason)
		})
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	cases := append(sharedCases[:len(sharedCases):len(sharedCases)],
		struct{ raw, reason string }{"https://idp.example.com/keys?access_token=sekrit", ""},
		struct{ raw, reason string }{"https://idp.example.com?x", ""},
		struct{ raw, reason string }{"http://localhost?x", ""},
		struct{ raw, reason string }{"http://localhost:8080/keys?x=1", ""},
		struct{ raw, reason string }{"https://sekrit:p@idp.example.com/jwks", ReasonUserInfo},
		struct{ raw, reason string }{"http://idp.example.com/jwks?access_token=sekrit", ReasonPlainHTTP},
	)
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			assertReason(t, JWKS(tc.raw), tc.reason)
		})
	}
}

func assertReason(t *testing.T, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("got %v, want the URL accepted", err)
		}
		return
	}
	var ue *Error
	if !errors.As(err, &ue) || ue.Reason != reason {
		t.Fatalf("got %v, want reason %q", err, reason)
	}
	if strings.Contains(err.Error(), "sekrit") {
		t.Fatalf("got %q, want no part of the URL in the message", err)
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw    string
		reason string
	}{
		{"https://idp.example.com/jwks", ""},
		{"https://idp.example.com/jwks?x#y", ""},
		{"http://127.0.0.1:8080/jwks", ""},
		{"http://localhost/jwks", ""},
		{"http://[::1]:9/jwks", ""},
		{"http://idp.example.com/jwks", ReasonFetchPlainHTTP},
		{"http://127.0.0.2/jwks", ReasonFetchPlainHTTP},
		{"ftp://idp.example.com/jwks", ReasonFetchScheme},
		{"https://user:pw@idp.example.com/jwks", ReasonFetchNotAbsolute},
		{"/jwks", ReasonFetchNotAbsolute},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(tc.raw)
			if err != nil {
				t.Fatalf("url.Parse: %v", err)
			}
			assertReason(t, Fetch(u), tc.reason)
		})
	}
}

func TestUpstream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw    string
		reason string
	}{
		{"http://127.0.0.1:8080", ""},
		{"http://127.0.0.1:8080/", ""},
		{"http://fn:8080", ""},
		{"", ReasonEmpty},
		{"http://x:1/%zz", ReasonParse},
		{"https://x:1", ReasonUpstreamScheme},
		{"ftp://x:1", ReasonUpstreamScheme},
		{"127.0.0.1:8080", ReasonParse},
		{"http:///p", ReasonUpstreamHost},
		{"http://x:1/p", ReasonUpstreamExtra},
		{"http://x:1?q", ReasonUpstreamExtra},
		{"http://x:1/?", ReasonUpstreamExtra},
		{"http://x:1#f", ReasonUpstreamExtra},
		{"http://x:1/#", ReasonUpstreamExtra},
		{"http://u:p@x:1", ReasonUpstreamExtra},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			assertReason(t, Upstream(tc.raw), tc.reason)
		})
	}
}

func TestTooLongReason(t *testing.T) {
	t.Parallel()
	if want := "must be at most " + strconv.Itoa(MaxLen) + " bytes"; ReasonTooLong != want {
		t.Fatalf("got ReasonTooLong %q, want %q", ReasonTooLong, want)
	}
	longest := "https://idp.example.com/" + strings.Repeat("a", MaxLen-len("https://idp.example.com/"))
	if err := Issuer(longest); err != nil {
		t.Fatalf("Issuer of %d bytes: got %v, want it accepted", len(longest), err)
	}
}

// TestCRDRegexps: on fixed cases, what the rules accept matches the CRD's
// filters, and some of what the filters let through the rules refuse (the
// controller reports those in status).
func TestCRDRegexps(t *testing.T) {
	t.Parallel()
	for _, rc := range []struct {
		name string
		rule func(string) error
		re   *regexp.Regexp
	}{{"issuer", Issuer, regexp.MustCompile(IssuerCRDRegexp)}, {"jwks", JWKS, regexp.MustCompile(JWKSCRDRegexp)}} {
		for _, tc := range sharedCases {
			if err := rc.rule(tc.raw); err == nil && !rc.re.MatchString(tc.raw) {
				t.Errorf("%s: %q is accepted but does not match the CRD regexp", rc.name, tc.raw)
			}
		}
		for _, raw := range []string{"https://u:p@idp.example.com", "https://idp.example.com/%zz", "https:///x", "https://idp.example.com:/"} {
			if !rc.re.MatchString(raw) || rc.rule(raw) == nil {
				t.Errorf("%s: %q: want a CRD match that the rule refuses", rc.name, raw)
			}
		}
	}
}

func knownReason(r string) bool {
	switch r {
	case ReasonEmpty, ReasonTooLong, ReasonWhitespace, ReasonFragment, ReasonQuery, ReasonParse,
		ReasonNotAbsolute, ReasonScheme, ReasonSchemeCase, ReasonUserInfo, ReasonEmptyPort, ReasonPlainHTTP:
		return true
	}
	return false
}

// fuzzRule: the rule never panics; what it accepts matches the CRD
// regexp, fits MaxLen and passes Fetch; what it refuses gets an *Error
// with a known reason that does not quote the URL.
func fuzzRule(f *testing.F, rule func(string) error, pattern string) {
	for _, tc := range sharedCases {
		f.Add(tc.raw)
	}
	for _, s := range []string{"https://a/?q", "http://[::1]?q", "http://localhost:1?a#b", "https://a\\b/", "http://localhost\\@x/"} {
		f.Add(s)
	}
	re := regexp.MustCompile(pattern)
	f.Fuzz(func(t *testing.T, raw string) {
		err := rule(raw)
		if err != nil {
			var ue *Error
			if !errors.As(err, &ue) || !knownReason(ue.Reason) {
				t.Fatalf("%q: got %v, want an *Error with a known reason", raw, err)
			}
			if len(raw) > 12 && strings.Contains(err.Error(), raw) {
				t.Fatalf("%q: got message %q quoting the URL", raw, err)
			}
			return
		}
		if !re.MatchString(raw) || len(raw) > MaxLen {
			t.Fatalf("%q is accepted but the CRD would reject it", raw)
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("%q is accepted but does not parse: %v", raw, perr)
		}
		if ferr := Fetch(u); ferr != nil {
			t.Fatalf("%q is accepted but Fetch refuses it: %v", raw, ferr)
		}
	})
}

func FuzzIssuer(f *testing.F) { fuzzRule(f, Issuer, IssuerCRDRegexp) }

func FuzzJWKS(f *testing.F) { fuzzRule(f, JWKS, JWKSCRDRegexp) }

// FuzzUpstream: never a panic; an accepted URL is plain http to a host.
func FuzzUpstream(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080", "http://x:1/", "https://x:1", "http://x:1/p", "http://u@x:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if Upstream(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil || u.RawQuery != "" || strings.Contains(raw, "#") {
			t.Fatalf("%q is accepted, want only http://host[:port][/]", raw)
		}
	})
}
