package translate

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTranslateProblems(t *testing.T) {
	t.Parallel()
	good := "package authgate.authz\n\ndecision := true\n"
	cms := map[string]*corev1.ConfigMap{"rules": {ObjectMeta: metav1.ObjectMeta{Name: "rules"}, Data: map[string]string{"a.rego": good, "bad.rego": "package authgate.authz\n\ndecision := )\n"}}}
	secrets := []corev1.Secret{
		secret("ok", "0123456789abcdef", map[string]string{"set": "ok"}),
		secret("short", "0123456789", nil),
		secret("newline", "0123456789abcdef\n", nil),
		secret("space", "0123456789 abcdef", nil),
		secret("control", "0123456789\x00abcdef", nil),
		secret("binary", "0123456789abcdef\xff", nil),
		secret("huge", strings.Repeat("k", MaxKeyBytes+1), nil),
		secret("nokey", "", nil, "subject", "x"),
		secret("badexp", "0123456789abcdef-1", nil, "expiresAt", "tomorrow"),
		secret("badsubject", "0123456789abcdef-2", nil, "subject", "two words"),
		secret("dup1", "0123456789abcdef-3", map[string]string{"set": "dup"}),
		secret("dup2", "0123456789abcdef-3", map[string]string{"set": "dup"}),
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
		{"short key", keys("short"), ReasonSecretInvalid, []string{`Secret "short": data "key" is shorter than 16 bytes`}},
		{"trailing newline", keys("newline"), ReasonSecretInvalid, []string{`Secret "newline"`, "trailing newline"}},
		{"space in key", keys("space"), ReasonSecretInvalid, []string{`Secret "space"`, "whitespace"}},
		{"control character", keys("control"), ReasonSecretInvalid, []string{`Secret "control"`, "control characters"}},
		{"not UTF-8", keys("binary"), ReasonSecretInvalid, []string{`Secret "binary"`, "UTF-8"}},
		{"too long", keys("huge"), ReasonSecretInvalid, []string{`Secret "huge"`, "longer than"}},
		{"no key data", keys("nokey"), ReasonSecretInvalid, []string{`Secret "nokey" has no data "key"`}},
		{"bad expiry", keys("badexp"), ReasonSecretInvalid, []string{`Secret "badexp": data "expiresAt" must be an RFC 3339 time`}},
		{"every invalid secret listed", keys("short, space"), ReasonSecretInvalid, []string{`Secret "short"`, `Secret "space"`}},
		{"subject with a space", keys("badsubject"), ReasonSecretInvalid, []string{`Secret "badsubject" data "subject": must be a non-empty subject`}},
		{"two secrets holding one key", "selector: {}\nauthentication: {apiKeys: {selector: {matchLabels: {set: dup}}}}\nroutes: [{}]", ReasonSecretInvalid, []string{`Secret "dup2" data "key": duplicate key hash`}},
		{"missing configmap", "selector: {}\nroutes: [{public: true}]\nrego: {configMapRef: {name: nope, key: a.rego}}", ReasonConfigMapNotFound, []string{`ConfigMap "nope" not found in namespace team-a`, "authgate.dev/role: rego"}},
		{"missing configmap key", "selector: {}\nroutes: [{public: true}]\nrego: {configMapRef: {name: rules, key: b.rego}}", ReasonRegoKeyNotFound, []string{`ConfigMap "rules" has no key "b.rego"`, "keys: a.rego"}},
		{"inline and configmap", "selector: {}\nroutes: [{public: true}]\nrego: {inline: x, configMapRef: {name: rules, key: a.rego}}", ReasonInvalidSpec, []string{"exactly one of inline or configMapRef"}},
		{"empty rego", "selector: {}\nroutes: [{public: true}]\nrego: {query: data.x}", ReasonInvalidSpec, []string{"spec.rego: set inline or configMapRef"}},
		{"rego compile error", "selector: {}\nroutes: [{public: true}]\nrego: {inline: \"package authgate.authz\\n\\ndecision if x == 1\\n\"}", ReasonRegoCompileError, []string{"line 3, column", "var x is unsafe"}},
		{"refused builtin", "selector: {}\nroutes: [{public: true}]\nrego: {inline: \"package authgate.authz\\ndecision if time.now_ns() > 0\\n\"}", ReasonRegoCompileError, []string{"line 2", "time.now_ns"}},
		{"rego from configmap names it", "selector: {}\nroutes: [{public: true}]\nrego: {configMapRef: {name: rules, key: bad.rego}}", ReasonRegoCompileError, []string{`spec.rego.configMapRef (ConfigMap "rules", key "bad.rego") does not compile: line 3`}},
		{"rate of zero", "selector: {}\nroutes: [{public: true}]\nrateLimits: [{key: ip, requestsPerSecond: \"0\"}]", ReasonInvalidRateLimit, []string{`spec.rateLimits[0].requestsPerSecond: must be a positive decimal number`, `got "0"`}},
		{"rate not a number", "selector: {}\nroutes: [{public: true}]\nrateLimits: [{key: ip, requestsPerSecond: \"1\"}, {key: ip, requestsPerSecond: fast}]", ReasonInvalidRateLimit, []string{`spec.rateLimits[1]`, `got "fast"`}},
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
	secrets := []corev1.Secret{secret("partner", "0123456789abcdef", nil, "scopes", "ok")}
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
			`spec.authentication: api keys: source header "x-token" is configured with two different prefixes`},
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

func TestSpecPath(t *testing.T) {
	t.Parallel()
	secrets := []string{"alpha", "beta"}
	tests := []struct{ in, want string }{
		{"policies[0].routes[2].paths[1]", "spec.routes[2].paths[1]"},
		{"policies[0].name", "metadata.name"},
		{"policies[0].mode", "spec.mode"},
		{"policies[0].rego.modules[0].source", "spec.rego.inline"},
		{"policies[0].authentication.issuers[1]", "spec.authentication.jwt[1]"},
		{"policies[0].authentication.apiKeys.keys[0]", "spec.authentication.apiKeys"},
		{"issuers[3].audiences[0]", "spec.authentication.jwt[3].audiences[0]"},
		{"issuers[0].jwks.keys[1]", "spec.authentication.jwt[0] (keys fetched from the issuer).keys[1]"},
		{"issuers[0].jwksURL", "spec.authentication.jwt[0].jwksURL"},
		{"issuers[0].fetch.timeout", "spec.authentication.jwt[0]"},
		{"issuers[0]", "spec.authentication.jwt[0]"},
		{"apiKeys.keys[1].subject", `Secret "beta" data "subject"`},
		{"apiKeys.keys[0].scopes[2]", `Secret "alpha" data "scopes"`},
		{"apiKeys.keys[0].hash", `Secret "alpha" data "key"`},
		{"apiKeys.keys[0]", `Secret "alpha"`},
		{"apiKeys.keys[7].name", "apiKeys.keys[7].name"},
		{"apiKeys.sources[0].name", "spec.authentication.apiKeys.sources[0].name"},
		{"upstream.url", "upstream.url"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := specPath(tt.in, secrets, "spec.rego.inline"); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
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
