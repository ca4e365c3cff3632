package config

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/testca"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestDefaultsGolden(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	got, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "minimal.defaulted.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if string(want) != string(got)+"\n" {
		t.Fatalf("defaulted config differs from %s (run go test ./proxy/config -update to accept):\ngot:\n%s", golden, got)
	}
}

func TestDefaultIsIdempotent(t *testing.T) {
	t.Parallel()
	data, _ := os.ReadFile("testdata/minimal.yaml")
	c, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := json.Marshal(c)
	c.Default()
	second, _ := json.Marshal(c)
	if string(first) != string(second) {
		t.Fatalf("Default is not idempotent:\nfirst  %s\nsecond %s", first, second)
	}
}

// mutate loads the minimal config, applies f to the raw document and
// returns the validation errors.
func validateMutated(t *testing.T, f func(c *ProxyConfig)) ErrorList {
	t.Helper()
	data, err := os.ReadFile("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	f(c)
	return c.Validate()
}

func TestValidateReportsExactPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mutate   func(c *ProxyConfig)
		wantPath string
		wantMsg  string
	}{
		{"api version", func(c *ProxyConfig) { c.APIVersion = "v1" }, "apiVersion", "must be"},
		{"kind", func(c *ProxyConfig) { c.Kind = "Config" }, "kind", "must be"},
		{"negative revision", func(c *ProxyConfig) { c.Revision = -1 }, "revision", "must not be negative"},
		{"same admin port", func(c *ProxyConfig) { c.Listen.AdminAddress = c.Listen.Address }, "listen.adminAddress", "must differ"},
		{"upstream https", func(c *ProxyConfig) { c.Upstream.URL = "https://x:1" }, "upstream.url", "scheme must be http"},
		{"upstream path", func(c *ProxyConfig) { c.Upstream.URL = "http://x:1/p" }, "upstream.url", "must not carry a path"},
		{"issuer http non loopback", func(c *ProxyConfig) { c.Issuers[0].IssuerURL = "http://idp.example.com" }, "issuers[0].issuerURL", "must use https"},
		{"no audience", func(c *ProxyConfig) { c.Issuers[0].Audiences = nil }, "issuers[0].audiences", "at least one audience"},
		{"alg none", func(c *ProxyConfig) { c.Issuers[0].Algorithms = []string{"none"} }, "issuers[0].algorithms[0]", "unsupported algorithm"},
		{"alg hs256", func(c *ProxyConfig) { c.Issuers[0].Algorithms = []string{"RS256", "HS256"} }, "issuers[0].algorithms[1]", "unsupported algorithm"},
		{"skew too large", func(c *ProxyConfig) { c.Issuers[0].ClockSkew = D(10 * 60e9) }, "issuers[0].clockSkew", "between 0 and 5m"},
		{"bad source", func(c *ProxyConfig) { c.Issuers[0].Sources = []CredentialSource{{Type: "body"}} }, "issuers[0].sources[0].type", "must be bearer"},
		{"host as credential header", func(c *ProxyConfig) {
			c.Issuers[0].Sources = []CredentialSource{{Type: SourceHeader, Name: "Host"}}
		}, "issuers[0].sources[0].name", "cannot carry a credential"},
		{"authorization spelled otherwise as credential header", func(c *ProxyConfig) {
			c.Issuers[0].Sources = []CredentialSource{{Type: SourceHeader, Name: "Author_ization"}}
		}, "issuers[0].sources[0].name", "cannot carry a credential"},
		{"credential header in the reserved namespace", func(c *ProxyConfig) {
			c.Issuers[0].Sources = []CredentialSource{{Type: SourceHeader, Name: "X-Authgate-Token"}}
		}, "issuers[0].sources[0].name", "X-Authgate- namespace"},
		{"identity header read as the credential header", func(c *ProxyConfig) {
			c.Policies[0].Authentication.APIKeys.Sources = []CredentialSource{{Type: SourceHeader, Name: "X-Partner-Key"}}
			c.Policies[0].Headers.Claims = []ClaimHeader{{Header: "X_Partner_Key", Claim: "sub"}}
		}, "policies[0].headers.claims[0].header", "read as the credential header"},
		{"plaintext key", func(c *ProxyConfig) { c.APIKeys.Keys[0].Hash = "s3cr3t" }, "apiKeys.keys[0].hash", "sha256"},
		{"unknown issuer ref", func(c *ProxyConfig) { c.Policies[0].Authentication.Issuers = []string{"nope"} }, "policies[0].authentication.issuers[0]", "no issuer named"},
		{"unknown key ref", func(c *ProxyConfig) { c.Policies[0].Authentication.APIKeys.Keys = []string{"nope"} }, "policies[0].authentication.apiKeys.keys[0]", "no API key named"},
		{"key scope outside the policy's bound", func(c *ProxyConfig) {
			c.APIKeys.Keys[0].Scopes = []string{"orders:read", "admin"}
			c.Policies[0].Authentication.APIKeys.AllowedScopes = []string{"orders:read"}
		}, "apiKeys.keys[0].scopes", `carries scope(s) ["admin"]`},
		{"key scope under an empty bound", func(c *ProxyConfig) {
			c.APIKeys.Keys[0].Scopes = []string{"orders:read"}
			c.Policies[0].Authentication.APIKeys.AllowedScopes = []string{}
		}, "apiKeys.keys[0].scopes", "it allows none"},
		{"bad bound", func(c *ProxyConfig) { c.Policies[0].Authentication.APIKeys.AllowedScopes = []string{""} },
			"policies[0].authentication.apiKeys.allowedScopes[0]", "non-empty scope"},
		{"bad mode", func(c *ProxyConfig) { c.Policies[0].Mode = "shadow" }, "policies[0].mode", "enforce or audit"},
		{"double star middle", func(c *ProxyConfig) { c.Policies[0].Routes[1].Paths = []string{"/a/**/b"} }, "policies[0].routes[1].paths[0]", "last segment"},
		{"encoded pattern", func(c *ProxyConfig) { c.Policies[0].Routes[1].Paths = []string{"/a%2Fb"} }, "policies[0].routes[1].paths[0]", "canonical path"},
		{"dot pattern", func(c *ProxyConfig) { c.Policies[0].Routes[1].Paths = []string{"/a/../b"} }, "policies[0].routes[1].paths[0]", "dot segments"},
		{"public with scopes", func(c *ProxyConfig) { c.Policies[0].Routes[0].RequireScopes = []string{"x"} }, "policies[0].routes[0].public", "cannot require"},
		{"lower method", func(c *ProxyConfig) { c.Policies[0].Routes[2].Methods = []string{"get"} }, "policies[0].routes[2].methods[0]", "upper-case"},
		{"protected identity header", func(c *ProxyConfig) { c.Policies[0].Headers.Subject = "Authorization" }, "policies[0].headers.subject", "cannot be used"},
		{"rego query", func(c *ProxyConfig) { c.Policies[0].Rego.Query = "allow" }, "policies[0].rego.query", "data."},
		{"assertion header outside the reserved namespace", func(c *ProxyConfig) {
			c.Policies[0].IdentityAssertion = &IdentityAssertion{Header: "X-Assertion", TTL: D(time.Minute), Issuer: "authgate://ns", Audience: "f"}
		}, "policies[0].identityAssertion.header", "must start with X-Authgate-"},
		{"assertion header that is an identity header", func(c *ProxyConfig) {
			c.Policies[0].IdentityAssertion = &IdentityAssertion{Header: "x_authgate_subject", TTL: D(time.Minute), Issuer: "authgate://ns", Audience: "f"}
		}, "policies[0].identityAssertion.header", "also an identity header"},
		{"assertion ttl too long", func(c *ProxyConfig) {
			c.Policies[0].IdentityAssertion = &IdentityAssertion{Header: DefaultAssertionHeader, TTL: D(10 * time.Minute), Issuer: "authgate://ns", Audience: "f"}
		}, "policies[0].identityAssertion.ttl", "between 10s and 5m0s"},
		{"assertion without audience", func(c *ProxyConfig) {
			c.Policies[0].IdentityAssertion = &IdentityAssertion{Header: DefaultAssertionHeader, TTL: D(time.Minute), Issuer: "authgate://ns"}
		}, "policies[0].identityAssertion.audience", "is required"},
		{"assertion claim path", func(c *ProxyConfig) {
			c.Policies[0].IdentityAssertion = &IdentityAssertion{Header: DefaultAssertionHeader, TTL: D(time.Minute), Issuer: "authgate://ns", Audience: "f", Claims: []string{"a..b"}}
		}, "policies[0].identityAssertion.claims[0]", "dotted claim path"},
		{"rate key", func(c *ProxyConfig) {
			c.Policies[0].RateLimits = []RateLimit{{Key: "user", RequestsPerSecond: 1, Burst: 1}}
		}, "policies[0].rateLimits[0].key", "must be ip"},
		{"rate of zero", func(c *ProxyConfig) {
			c.Policies[0].RateLimits = []RateLimit{{Key: RateKeyIP, RequestsPerSecond: 0, Burst: 1}}
		}, "policies[0].rateLimits[0].requestsPerSecond", "must be a positive decimal number such as 10 or 0.5, got 0"},
		{"mfa max age", func(c *ProxyConfig) {
			c.Policies[0].Routes[0].RequireMFA = &MFA{AMR: []string{"otp"}, MaxAge: D(48 * time.Hour)}
		}, "policies[0].routes[0].requireMFA.maxAge", "must be between 1s and 24h0m0s"},
		{"mfa acr quoted", func(c *ProxyConfig) {
			c.Policies[0].Routes[0].RequireMFA = &MFA{ACR: []string{`gold", error="x`}}
		}, "policies[0].routes[0].requireMFA.acr[0]", "without spaces, quotes or backslashes"},
		{"shared limits fallback", func(c *ProxyConfig) {
			c.Policies[0].SharedLimits = &SharedLimits{OnUnavailable: "open"}
		}, "policies[0].sharedLimits.onUnavailable", `must be local or deny, got "open"`},
		{"proxy-wide shared limits fallback", func(c *ProxyConfig) {
			c.Limits.SharedLimits = &SharedLimits{OnUnavailable: "allow"}
		}, "limits.sharedLimits.onUnavailable", `must be local or deny, got "allow"`},
		{"api key source prefix differs from the issuer's", func(c *ProxyConfig) {
			c.Issuers[0].Sources = []CredentialSource{{Type: SourceHeader, Name: "X-Token", Prefix: "Bearer "}}
			c.Policies[0].Authentication.APIKeys.Sources = []CredentialSource{{Type: SourceHeader, Name: "x-token"}}
		}, "policies[0].authentication.apiKeys.sources[0]", `header "x-token" is also read by another credential source of this policy, with prefix "Bearer "`},
		{"global api key source prefix differs from the issuer's", func(c *ProxyConfig) {
			c.Issuers[0].Sources = []CredentialSource{{Type: SourceHeader, Name: "X-API-Key", Prefix: "Key "}}
		}, "apiKeys.sources[0]", "also read by another credential source"},
		{"two issuers of a policy disagree on a prefix", func(c *ProxyConfig) {
			other := c.Issuers[0]
			other.Name = "other"
			other.Sources = []CredentialSource{{Type: SourceCookie, Name: "tok", Prefix: ""}}
			c.Issuers[0].Sources = []CredentialSource{{Type: SourceCookie, Name: "tok"}, {Type: SourceHeader, Name: "X-Tok", Prefix: "A "}}
			other.Sources = append(other.Sources, CredentialSource{Type: SourceHeader, Name: "x-tok", Prefix: "B "})
			c.Issuers = append(c.Issuers, other)
			c.Policies[0].Authentication.Issuers = []string{"corp", "other"}
		}, "issuers[1].sources[1]", `with prefix "A "`},
		{"trusted proxy", func(c *ProxyConfig) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "trustedProxies[0]", "IP address or CIDR"},
		{"trusted proxy trusts everyone", func(c *ProxyConfig) { c.TrustedProxies = []string{"0.0.0.0/0"} }, "trustedProxies[0]", "trusts every address"},
		{"policy trusted proxy", func(c *ProxyConfig) {
			c.Policies[0].ClientIdentity = &ClientIdentity{TrustedProxies: []string{"127.0.0.1/32", "::/0"}}
		}, "policies[0].clientIdentity.trustedProxies[1]", "trusts every address"},
		{"revocation claim", func(c *ProxyConfig) { c.Policies[0].Revocations = []Revocation{revocation("email", "a@example.com")} },
			"policies[0].revocations[0].claim", `must be jti, sub or sid, got "email"`},
		{"revocation claim case", func(c *ProxyConfig) { c.Policies[0].Revocations = []Revocation{revocation("JTI", "t-1")} },
			"policies[0].revocations[0].claim", "must be jti, sub or sid"},
		{"revocation value empty", func(c *ProxyConfig) {
			c.Policies[0].Revocations = []Revocation{revocation(RevokeJTI, "t-1"), revocation(RevokeSub, "")}
		},
			"policies[0].revocations[1].value", "must not be empty"},
		{"revocation value too long", func(c *ProxyConfig) {
			c.Policies[0].Revocations = []Revocation{revocation(RevokeSID, strings.Repeat("é", MaxRevocationValueLen+1))}
		}, "policies[0].revocations[0].value", "at most 512 characters, got 513"},
		{"revocation expiry not RFC 3339", func(c *ProxyConfig) {
			r := revocation(RevokeJTI, "t-1")
			r.ExpiresAt = "tomorrow"
			c.Policies[0].Revocations = []Revocation{r}
		}, "policies[0].revocations[0].expiresAt", `must be an RFC 3339 time such as 2030-01-31T12:00:00Z, got "tomorrow"`},
		{"revocation expiry without zone", func(c *ProxyConfig) {
			r := revocation(RevokeJTI, "t-1")
			r.ExpiresAt = "2030-01-01T00:00:00"
			c.Policies[0].Revocations = []Revocation{r}
		}, "policies[0].revocations[0].expiresAt", "RFC 3339"},
		{"revocation expiry missing", func(c *ProxyConfig) {
			r := revocation(RevokeJTI, "t-1")
			r.ExpiresAt = ""
			c.Policies[0].Revocations = []Revocation{r}
		}, "policies[0].revocations[0].expiresAt", "RFC 3339"},
		{"revocation issuer the policy does not trust", func(c *ProxyConfig) {
			r := revocation(RevokeSub, "alice")
			r.Issuer = "https://idp.example.com" // the policy's issuer has a trailing slash
			c.Policies[0].Revocations = []Revocation{r}
		}, "policies[0].revocations[0].issuer", "is not the issuerURL of an issuer of this policy"},
		{"too many revocations", func(c *ProxyConfig) {
			for i := range MaxRevocations + 1 {
				c.Policies[0].Revocations = append(c.Policies[0].Revocations, revocation(RevokeJTI, "t-"+strconv.Itoa(i)))
			}
		}, "policies[0].revocations", "at most 1000 entries, got 1001"},
		{"revocations in a policy without JWT issuers", func(c *ProxyConfig) {
			c.Policies[0].Authentication.Issuers = nil
			c.Policies[0].Revocations = []Revocation{revocation(RevokeSub, "partner-a")}
		}, "policies[0].revocations", "revoke an API key by removing it"},
		{"policy upstream timeout too long", func(c *ProxyConfig) { c.Policies[0].Limits = &PolicyLimits{UpstreamTimeout: D(2 * time.Hour)} }, "policies[0].limits.upstreamTimeout", "between 0"},
		{"policy read timeout negative", func(c *ProxyConfig) { c.Policies[0].Limits = &PolicyLimits{ReadTimeout: D(-time.Second)} }, "policies[0].limits.readTimeout", "between 0"},
		{"policy body limit too large", func(c *ProxyConfig) { c.Policies[0].Limits = &PolicyLimits{MaxBodyBytes: 11 << 30} }, "policies[0].limits.maxBodyBytes", "between 0"},
		{"policy body limit unlimited", func(c *ProxyConfig) { c.Policies[0].Limits = &PolicyLimits{MaxBodyBytes: -1} }, "policies[0].limits.maxBodyBytes", "between 0"},
		{"selector op", func(c *ProxyConfig) {
			c.Policies[0].Selector.MatchExpressions = []SelectorRequirement{{Key: "a", Operator: "Like"}}
		}, "policies[0].selector.matchExpressions[0].operator", "must be In"},
		{"no auth for private route", func(c *ProxyConfig) { c.Policies[0].Authentication = Authentication{} }, "policies[0].routes[1]", "needs the policy's authentication"},
		{"ca bundle without a certificate", func(c *ProxyConfig) { c.Issuers[0].CABundle = "not PEM" }, "issuers[0].caBundle", "CA bundle holds no PEM CERTIFICATE block"},
		{"ca bundle of a key only", func(c *ProxyConfig) {
			c.Issuers[0].CABundle = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		}, "issuers[0].caBundle", "CA bundle holds no PEM CERTIFICATE block"},
		{"ca bundle with a broken certificate", func(c *ProxyConfig) {
			c.Issuers[0].CABundle = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
		}, "issuers[0].caBundle", "certificate 1 is not a valid X.509 certificate"},
		{"private jwks key", func(c *ProxyConfig) {
			c.Issuers[0].JWKS = &JSONWebKeySet{Keys: []RawJSON{RawJSON(`{"kty":"oct","k":"c2VjcmV0"}`)}}
		}, "issuers[0].jwks.keys[0]", "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := validateMutated(t, tt.mutate)
			for _, e := range errs {
				if e.Path.String() == tt.wantPath && strings.Contains(e.Message, tt.wantMsg) {
					return
				}
			}
			t.Fatalf("got errors %v, want one at %q containing %q", errs, tt.wantPath, tt.wantMsg)
		})
	}
}

// revocation is a valid entry of the minimal config's policy.
func revocation(claim, value string) Revocation {
	return Revocation{Claim: claim, Value: value, ExpiresAt: "2030-01-31T12:00:00Z"}
}

// Entries past their expiry stay valid (the proxy ignores them), and an
// issuer-restricted entry names one of the policy's issuers.
func TestValidateAcceptsRevocations(t *testing.T) {
	t.Parallel()
	errs := validateMutated(t, func(c *ProxyConfig) {
		expired := revocation(RevokeSID, "s-1")
		expired.ExpiresAt = "2001-01-01T00:00:00Z"
		scoped := revocation(RevokeSub, "alice")
		scoped.Issuer = c.Issuers[0].IssuerURL
		fractional := revocation(RevokeJTI, "t-2")
		fractional.ExpiresAt = "2030-01-31T12:00:00.5+02:00"
		c.Policies[0].Revocations = []Revocation{revocation(RevokeJTI, "t-1"), expired, scoped, fractional}
		for i := len(c.Policies[0].Revocations); i < MaxRevocations; i++ {
			c.Policies[0].Revocations = append(c.Policies[0].Revocations, revocation(RevokeJTI, "bulk-"+strconv.Itoa(i)))
		}
	})
	if len(errs) != 0 {
		t.Fatalf("got errors %v, want none", errs)
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	t.Parallel()
	errs := validateMutated(t, func(c *ProxyConfig) {
		c.APIVersion = ""
		c.Policies[0].Mode = "x"
		c.Upstream.URL = ""
	})
	if len(errs) != 3 {
		t.Fatalf("got %d errors (%v), want 3", len(errs), errs)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"empty":         "",
		"unknown field": "apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:1'}\nbogus: 1\n",
		"bad duration":  "apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:1', timeout: 5}\n",
		"not yaml":      "{{{",
		"invalid":       "apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\n",
		"two documents": "apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:1'}\n---\npolicies: []\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if c, err := Parse([]byte(in)); err == nil {
				t.Fatalf("got config %+v, want error", c)
			}
		})
	}
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`{"apiVersion":"authgate.dev/v1alpha1","kind":"ProxyConfig","upstream":{"url":"http://127.0.0.1:9"},"defaultAction":"allow"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultAction != "allow" || c.Listen.Address != DefaultAddress {
		t.Fatalf("got %+v, want defaults applied", c)
	}
}

func TestSelectorMatches(t *testing.T) {
	t.Parallel()
	lbl := map[string]string{"app": "orders", "tier": "gold"}
	tests := []struct {
		name string
		sel  Selector
		want bool
	}{
		{"empty", Selector{}, true},
		{"labels", Selector{MatchLabels: map[string]string{"app": "orders"}}, true},
		{"labels miss", Selector{MatchLabels: map[string]string{"app": "users"}}, false},
		{"in", Selector{MatchExpressions: []SelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"gold", "silver"}}}}, true},
		{"notin", Selector{MatchExpressions: []SelectorRequirement{{Key: "tier", Operator: "NotIn", Values: []string{"gold"}}}}, false},
		{"exists", Selector{MatchExpressions: []SelectorRequirement{{Key: "app", Operator: "Exists"}}}, true},
		{"doesnotexist", Selector{MatchExpressions: []SelectorRequirement{{Key: "app", Operator: "DoesNotExist"}}}, false},
		{"unknown op", Selector{MatchExpressions: []SelectorRequirement{{Key: "app", Operator: "Like"}}}, false},
	}
	for _, tt := range tests {
		if got := tt.sel.Matches(lbl); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/minimal.yaml")
	f.Add(seed)
	f.Add([]byte(`{"apiVersion":"authgate.dev/v1alpha1","kind":"ProxyConfig"}`))
	f.Add([]byte("policies: [{routes: [{paths: ['/**']}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		// Anything accepted must be valid, and stay valid when defaulted again.
		c.Default()
		if errs := c.Validate(); len(errs) != 0 {
			t.Fatalf("accepted config fails validation after re-defaulting: %v", errs)
		}
	})
}

func TestValidateAcceptsCABundle(t *testing.T) {
	t.Parallel()
	errs := validateMutated(t, func(c *ProxyConfig) { c.Issuers[0].CABundle = testca.New(t).PEM })
	if len(errs) != 0 {
		t.Fatalf("got errors %v, want none", errs)
	}
}
