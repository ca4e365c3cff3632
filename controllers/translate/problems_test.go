package translate

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/proxy/config"
)

func TestTranslateProblems(t *testing.T) {
	t.Parallel()
	good := "package authgate.authz\n\ndecision := true\n"
	cms := map[string]*corev1.ConfigMap{"rules": {ObjectMeta: metav1.ObjectMeta{Name: "rules"}, Data: map[string]string{"a.rego": good, "bad.rego": "package authgate.authz\n\ndecision := )\n", "blank.rego": " \n"}}}
	secrets := []corev1.Secret{
		secret("ok", "0123456789abcdefGHIJKLmnop", map[string]string{"set": "ok"}),
		secret("short", "0123456789", nil),
		secret("newline", "0123456789abcdefGHIJKLmnop\n", nil),
		secret("space", "0123456789 abcdef", nil),
		secret("control", "0123456789\x00abcdef", nil),
		secret("binary", "0123456789abcdefGHIJKLmnop\xff", nil),
		secret("huge", strings.Repeat("k", MaxKeyBytes+1), nil),
		secret("nokey", "", nil, "subject", "x"),
		secret("badexp", "0123456789abcdefGHIJKLmnop-1", nil, "expiresAt", "tomorrow"),
		secret("badsubject", "0123456789abcdefGHIJKLmnop-2", nil, "subject", "two words"),
		secret("dup1", "0123456789abcdefGHIJKLmnop-3", map[string]string{"set": "dup"}),
		secret("dup2", "0123456789abcdefGHIJKLmnop-3", map[string]string{"set": "dup"}),
		secret("badscope", "0123456789abcdefGHIJKLmnop-4", nil, "scopes", "orders:read or\x00ders:write"),
	}
	keys := func(names string) string {
		return "selector: {}\nauthentication: {apiKeys: {secretNames: [" + names + "]}}\nroutes: [{}]"
	}
	tests := []struct {
		name       string
		spec       string
		wantReason string
		wantMsg    []string
	}{
		{"invalid path pattern", "selector: {}\nroutes: [{paths: [/a/**/b], public: true}]", ReasonInvalidSpec, []string{"spec.routes[0].paths[0]: ** is allowed only as the last segment"}},
		{"private route without authentication", "selector: {}\nroutes: [{name: x}]", ReasonInvalidSpec, []string{"spec.routes[0]: a non-public route needs"}},
		{"no routes", "selector: {}\nroutes: []", ReasonInvalidSpec, []string{"spec.routes: at least one route"}},
		{"bad apiKeys selector", "selector: {}\nauthentication: {apiKeys: {selector: {matchExpressions: [{key: a, operator: In}]}}}\nroutes: [{}]", ReasonInvalidSpec, []string{"spec.authentication.apiKeys.selector"}},
		{"missing named secrets", keys("ok, gone, also-gone"), ReasonSecretNotFound, []string{`"also-gone", "gone" not found in namespace team-a`, "authgate.dev/api-key"}},
		{"selector selects nothing", "selector: {}\nauthentication: {apiKeys: {selector: {matchLabels: {set: none}}}}\nroutes: [{}]", ReasonSecretNotFound, []string{"selects no Secret"}},
		{"short key", keys("short"), ReasonSecretInvalid, []string{`Secret "short": data "key" is too weak: about 33 bits estimated`}},
		{"trailing newline", keys("newline"), ReasonSecretInvalid, []string{`Secret "newline"`, "trailing newline"}},
		{"space in key", keys("space"), ReasonSecretInvalid, []string{`Secret "space"`, "whitespace"}},
		{"control character", keys("control"), ReasonSecretInvalid, []string{`Secret "control"`, "control characters"}},
		{"not UTF-8", keys("binary"), ReasonSecretInvalid, []string{`Secret "binary"`, "UTF-8"}},
		{"too long", keys("huge"), ReasonSecretInvalid, []string{`Secret "huge"`, "longer than"}},
		{"no key data", keys("nokey"), ReasonSecretInvalid, []string{`Secret "nokey" has no data "key"`}},
		{"bad expiry", keys("badexp"), ReasonSecretInvalid, []string{`Secret "badexp": data "expiresAt" must be an RFC 3339 time`}},
		{"every invalid secret listed", keys("short, space"), ReasonSecretInvalid, []string{`Secret "short"`, `Secret "space"`}},
		{"subject with a space", keys("badsubject"), ReasonSecretInvalid, []string{`Secret "badsubject" data "subject": must be a non-empty subject`}},
		{"scope with a control character", keys("badscope"), ReasonSecretInvalid, []string{`Secret "badscope" data "scopes": must be a non-empty scope without spaces`}},
		{"two secrets holding one key", "selector: {}\nauthentication: {apiKeys: {selector: {matchLabels: {set: dup}}}}\nroutes: [{}]", ReasonSecretInvalid, []string{`Secret "dup2" data "key": duplicate key hash`}},
		{"missing configmap", "selector: {}\nroutes: [{public: true}]\nrego: {configMapRef: {name: nope, key: a.rego}}", ReasonConfigMapNotFound, []string{`ConfigMap "nope" not found in namespace team-a`, "authgate.dev/role: rego"}},
		{"missing configmap key", "selector: {}\nroutes: [{public: true}]\nrego: {configMapRef: {name: rules, key: b.rego}}", ReasonRegoKeyNotFound, []string{`ConfigMap "rules" has no key "b.rego"`, "keys: a.rego"}},
		{"inline and configmap", "selector: {}\nroutes: [{public: true}]\nrego: {inline: x, configMapRef: {name: rules, key: a.rego}}", ReasonInvalidSpec, []string{"exactly one of inline or configMapRef"}},
		{"empty rego", "selector: {}\nroutes: [{public: true}]\nrego: {query: data.x}", ReasonInvalidSpec, []string{"spec.rego: set inline or configMapRef"}},
		{"rego compile error", "selector: {}\nroutes: [{public: true}]\nrego: {inline: \"package authgate.authz\\n\\ndecision if x == 1\\n\"}", ReasonRegoCompileError, []string{"line 3, column", "var x is unsafe"}},
		{"refused builtin", "selector: {}\nroutes: [{public: true}]\nrego: {inline: \"package authgate.authz\\ndecision if time.now_ns() > 0\\n\"}", ReasonRegoCompileError, []string{"line 2", "time.now_ns"}},
		{"blank rego in a configmap", "selector: {}\nroutes: [{public: true}]\nrego: {configMapRef: {name: rules, key: blank.rego}}", ReasonInvalidSpec, []string{`spec.rego.configMapRef (ConfigMap "rules", key "blank.rego"): is required`}},
		{"rego from configmap names it", "selector: {}\nroutes: [{public: true}]\nrego: {configMapRef: {name: rules, key: bad.rego}}", ReasonRegoCompileError, []string{`spec.rego.configMapRef (ConfigMap "rules", key "bad.rego") does not compile: line 3`}},
		{"rate of zero", "selector: {}\nroutes: [{public: true}]\nrateLimits: [{key: ip, requestsPerSecond: \"0\"}]", ReasonInvalidRateLimit, []string{`spec.rateLimits[0].requestsPerSecond: must be a positive decimal number`, `got 0`}},
		{"rate not a number", "selector: {}\nroutes: [{public: true}]\nrateLimits: [{key: ip, requestsPerSecond: \"1\"}, {key: ip, requestsPerSecond: fast}]", ReasonInvalidRateLimit, []string{`spec.rateLimits[1].requestsPerSecond: must be a decimal number`, `got "fast"`}},
		{"rate infinite", "selector: {}\nroutes: [{public: true}]\nrateLimits: [{key: ip, requestsPerSecond: \"Inf\"}]", ReasonInvalidRateLimit, []string{`got "Inf"`}},
		{"rate with a bad key", "selector: {}\nroutes: [{public: true}]\nrateLimits: [{key: planet, requestsPerSecond: \"1\"}]", ReasonInvalidRateLimit, []string{`spec.rateLimits[0].key: must be ip, subject, apikey or route`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := policyYAML(t, "prob", tt.spec)
			_, prob := Translate(context.Background(), Input{Policy: p, Secrets: secrets, ConfigMaps: cms})
			if tt.wantReason == "" {
				if prob != nil {
					t.Fatalf("got problem %v, want none", prob)
				}
				return
			}
			if prob == nil || prob.Reason != tt.wantReason {
				t.Fatalf("got problem %v, want reason %s", prob, tt.wantReason)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(prob.Message, w) {
					t.Fatalf("got message %q, want it to contain %q", prob.Message, w)
				}
			}
			if prob.Error() != prob.Reason+": "+prob.Message {
				t.Fatalf("got Error() %q, want reason and message", prob.Error())
			}
		})
	}
}

func TestTranslateSpecPathsRewritten(t *testing.T) {
	t.Parallel()
	secrets := []corev1.Secret{secret("partner", "0123456789abcdefGHIJKLmnop", nil, "scopes", "ok")}
	tests := []struct {
		name string
		spec string
		want string
	}{
		{"route method", "routes: [{public: true, methods: [get]}]", "spec.routes[0].methods[0]: must be an upper-case HTTP method"},
		{"route name", "routes: [{public: true, name: a}, {public: true, name: a}]", `spec.routes[1].name: duplicate route name "a"`},
		{"header", "routes: [{public: true}]\nheaders: {subject: Authorization}", `spec.headers.subject: "Authorization" cannot be used as an identity header`},
		{"claim header", "routes: [{public: true}]\nheaders: {claims: [{header: X-Authgate-A, claim: .a}]}", "spec.headers.claims[0].claim: must be a dotted claim path"},
		{"rego timeout", "routes: [{public: true}]\nrego: {inline: \"package a\\n\\nb := true\\n\", timeout: 10s}", "spec.rego.timeout: must be between 0 and 5s"},
		{"rego query", "routes: [{public: true}]\nrego: {inline: \"package a\\n\\nb := true\\n\", query: input.x}", "spec.rego.query: must be a reference starting with data."},
		{"rego source", "routes: [{public: true}]\nrego: {inline: \"  \"}", "spec.rego.inline: is required"},
		{"issuer url", "authentication: {jwt: [{issuerURL: \"http://idp.example.com\", audiences: [a]}]}\nroutes: [{}]", "spec.authentication.jwt[0].issuerURL: must use https"},
		{"second issuer skew", "authentication: {jwt: [{issuerURL: \"https://a.example.com\", audiences: [a]}, {issuerURL: \"https://b.example.com\", audiences: [a], clockSkew: 1h}]}\nroutes: [{}]", "spec.authentication.jwt[1].clockSkew: must be between 0 and 5m"},
		{"issuer roles claim", "authentication: {jwt: [{issuerURL: \"https://a.example.com\", audiences: [a], rolesClaim: a..b}]}\nroutes: [{}]", "spec.authentication.jwt[0].rolesClaim: must be a dotted claim path"},
		{"issuer source", "authentication: {jwt: [{issuerURL: \"https://a.example.com\", audiences: [a], sources: [{type: header, name: Cookie}]}]}\nroutes: [{}]", `spec.authentication.jwt[0].sources[0].name: "Cookie" cannot carry a credential`},
		{"api key source", "authentication: {apiKeys: {secretNames: [partner], sources: [{type: bearer}]}}\nroutes: [{}]", "spec.authentication.apiKeys.sources[0].type: bearer is not allowed here"},
		{"source prefixes disagree", "authentication:\n  jwt: [{issuerURL: \"https://a.example.com\", audiences: [a], sources: [{type: header, name: X-Token, prefix: \"Bearer \"}]}]\n  apiKeys: {secretNames: [partner], sources: [{type: header, name: x-token}]}\nroutes: [{}]",
			`spec.authentication.apiKeys.sources[0]: header "x-token" is also read by another credential source of this policy, with prefix "Bearer "`},
		{"two issuers disagree on a prefix", "authentication: {jwt: [{issuerURL: \"https://a.example.com\", audiences: [a], sources: [{type: header, name: X-Token}]}, {issuerURL: \"https://b.example.com\", audiences: [a], sources: [{type: header, name: X-Token, prefix: \"Token \"}]}]}\nroutes: [{}]",
			`spec.authentication.jwt[1].sources[0]: header "X-Token" is also read by another credential source of this policy, with prefix ""`},
		{"issuer audience", "authentication: {jwt: [{issuerURL: \"https://a.example.com\", audiences: [\" \"]}]}\nroutes: [{}]", "spec.authentication.jwt[0].audiences[0]: must not be empty"},
		{"issuer required claim", "authentication: {jwt: [{issuerURL: \"https://a.example.com\", audiences: [a], requiredClaims: [{claim: a..b}]}]}\nroutes: [{}]", "spec.authentication.jwt[0].requiredClaims[0].claim: must be a dotted claim path"},
		{"issuer scope claim", "authentication: {jwt: [{issuerURL: \"https://a.example.com\", audiences: [a], scopeClaims: [.scope]}]}\nroutes: [{}]", "spec.authentication.jwt[0].scopeClaims[0]: must be a dotted claim path"},
		{"route claim", "routes: [{public: true}, {requireClaims: [{claim: \"a b\"}]}]\nauthentication: {apiKeys: {secretNames: [partner]}}", "spec.routes[1].requireClaims[0].claim: must be a dotted claim path"},
		{"identity header read as the credential", "authentication: {apiKeys: {secretNames: [partner]}}\nroutes: [{}]\nheaders: {claims: [{header: X-API-Key, claim: sub}]}",
			`spec.headers.claims[0].header: "X-API-Key" is read as the credential header "X-API-Key"`},
		{"rate limit burst", "routes: [{public: true}]\nrateLimits: [{key: ip, requestsPerSecond: \"1\", burst: -1}]", "spec.rateLimits[0].burst: must be at least 1"},
		{"selector", "selector: {matchExpressions: [{key: a, operator: In, values: []}]}\nroutes: [{public: true}]", "spec.selector.matchExpressions[0].values: must not be empty for In"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := tt.spec
			if !strings.HasPrefix(spec, "selector:") {
				spec = "selector: {}\n" + spec
			}
			p := policyYAML(t, "paths", spec)
			_, prob := Translate(context.Background(), Input{Policy: p, Secrets: secrets})
			if prob == nil || !strings.Contains(prob.Message, tt.want) {
				t.Fatalf("got problem %v, want a message containing %q", prob, tt.want)
			}
			for _, internal := range []string{"policies[0]", "issuers[", "apiKeys.keys[", "jwt-0"} {
				if strings.Contains(prob.Message, internal) {
					t.Fatalf("got message %q, want no config path %q", prob.Message, internal)
				}
			}
		})
	}
}

// TestSpecPath maps typed config paths of a checked fragment to the
// AuthPolicy fields (or Secrets) they came from.
func TestSpecPath(t *testing.T) {
	t.Parallel()
	pm := pathMap{keySecrets: []string{"alpha", "beta"}, regoSource: `spec.rego.configMapRef (ConfigMap "rules", key "a.rego")`,
		revocations: []revocationOrigin{{index: 3, claim: "sub"}}}
	tests := []struct {
		in   config.Path
		want string
	}{
		{steps("policies", 0, "routes", 2, "paths", 1), "spec.routes[2].paths[1]"},
		{steps("policies", 0, "name"), "metadata.name"},
		{steps("policies", 0, "mode"), "spec.mode"},
		{steps("policies", 0), "spec"},
		{steps("policies", 0, "rateLimits", 1, "burst"), "spec.rateLimits[1].burst"},
		{steps("policies", 0, "headers", "claims", 0, "header"), "spec.headers.claims[0].header"},
		{steps("policies", 0, "rego", "modules", 0, "source"), `spec.rego.configMapRef (ConfigMap "rules", key "a.rego")`},
		{steps("policies", 0, "rego", "timeout"), "spec.rego.timeout"},
		{steps("policies", 0, "authentication", "issuers", 1), "spec.authentication.jwt[1]"},
		{steps("policies", 0, "authentication", "apiKeys", "keys", 0), "spec.authentication.apiKeys"},
		{steps("policies", 0, "authentication", "apiKeys", "sources", 1, "prefix"), "spec.authentication.apiKeys.sources[1].prefix"},
		{steps("policies", 0, "revocations", 0, "value"), "spec.revocations[3].sub"},
		{steps("policies", 0, "revocations", 0, "claim"), "spec.revocations[3]"},
		{steps("policies", 0, "revocations", 0, "issuer"), "spec.revocations[3].issuer"},
		{steps("policies", 0, "revocations", 0, "expiresAt"), "spec.revocations[3].expiresAt"},
		{steps("policies", 0, "revocations", 0), "spec.revocations[3]"},
		{steps("policies", 0, "revocations"), "spec.revocations"},
		{steps("policies", 0, "revocations", 5, "value"), "spec.revocations"},
		{steps("issuers", 3, "audiences", 0), "spec.authentication.jwt[3].audiences[0]"},
		{steps("issuers", 0, "jwks", "keys", 1), "spec.authentication.jwt[0] (keys fetched from the issuer).keys[1]"},
		{steps("issuers", 0, "fetch", "timeout"), "spec.authentication.jwt[0]"},
		{steps("issuers", 0, "name"), "spec.authentication.jwt[0]"},
		{steps("issuers", 0), "spec.authentication.jwt[0]"},
		{steps("apiKeys", "keys", 1, "subject"), `Secret "beta" data "subject"`},
		{steps("apiKeys", "keys", 0, "scopes", 2), `Secret "alpha" data "scopes"`},
		{steps("apiKeys", "keys", 0, "hash"), `Secret "alpha" data "key"`},
		{steps("apiKeys", "keys", 0, "name"), `Secret "alpha" (its name)`},
		{steps("apiKeys", "keys", 0), `Secret "alpha"`},
		{steps("apiKeys", "keys", 7, "name"), "apiKeys.keys[7].name"},
		{steps("apiKeys", "sources", 0, "name"), "spec.authentication.apiKeys.sources[0].name"},
		{steps("upstream", "url"), "upstream.url"},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			t.Parallel()
			if got := pm.specPath(tt.in); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// steps builds a config path: a string is a field, an int a list index.
func steps(elems ...any) config.Path {
	var p config.Path
	for _, e := range elems {
		switch v := e.(type) {
		case string:
			p = append(p, config.Step{Field: v})
		case int:
			p = append(p, config.Step{Index: v})
		}
	}
	return p
}

func TestTranslateRejectsIncompleteInput(t *testing.T) {
	t.Parallel()
	if _, prob := Translate(context.Background(), Input{}); prob == nil || prob.Reason != ReasonInvalidSpec {
		t.Fatalf("got %v, want InvalidSpec for no policy", prob)
	}
	p := policyYAML(t, "p", "selector: {}\nroutes: [{public: true}]")
	p.Namespace = ""
	if _, prob := Translate(context.Background(), Input{Policy: p}); prob == nil || !strings.Contains(prob.Message, "namespace") {
		t.Fatalf("got %v, want a problem naming the namespace", prob)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = policyYAML(t, "p", "selector: {}\nroutes: [{public: true}]")
	if _, prob := Translate(ctx, Input{Policy: p}); prob == nil {
		t.Fatal("got no problem for a cancelled context")
	}
}

// TestNoPlaintextKey checks that an API key never leaves Translate: not in
// a fragment, not in any problem, whatever is wrong with the Secret.
func TestNoPlaintextKey(t *testing.T) {
	t.Parallel()
	const key = "agk_never_show_this_key_0001"
	variants := map[string]string{
		"valid":           key,
		"trailing space":  key + " ",
		"newline":         key + "\n",
		"control":         key + "\x01",
		"long":            key + strings.Repeat("x", MaxKeyBytes),
		"invalid utf8":    key + "\xfe",
		"inner space":     "agk_never show_this_key_0001",
		"short (a stub)":  "agk_never",
		"same as another": key,
	}
	for name, k := range variants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			secrets := []corev1.Secret{secret("s", k, nil, "subject", "sub", "expiresAt", "soon")}
			if name == "valid" {
				secrets = []corev1.Secret{secret("s", k, nil)}
			}
			if name == "same as another" {
				secrets = []corev1.Secret{secret("s", k, map[string]string{"a": "b"}), secret("t", k, map[string]string{"a": "b"})}
			}
			p := policyYAML(t, "p", "selector: {}\nauthentication: {apiKeys: {selector: {}}}\nroutes: [{}]")
			f, prob := Translate(context.Background(), Input{Policy: p, Secrets: secrets})
			dump := toJSON(t, f)
			if prob != nil {
				dump += prob.Error()
			}
			for _, leak := range []string{k, strings.TrimSpace(k), "never_show", "never show"} {
				if strings.Contains(dump, leak) {
					t.Fatalf("the key (or part of it) appears in %s", dump)
				}
			}
		})
	}
}
