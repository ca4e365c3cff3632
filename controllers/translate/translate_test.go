package translate

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/proxy/config"
)

const jwtSpec = `authentication:
  jwt: [{issuerURL: "https://idp.example.com/", audiences: [api]}]
`

func TestTranslateSelector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		workload string
		want     config.Selector
		wantErr  string
	}{
		{
			name:     "selector",
			workload: `selector: {matchLabels: {app: fn}, matchExpressions: [{key: env, operator: In, values: [prod]}]}`,
			want: config.Selector{MatchLabels: map[string]string{"app": "fn"},
				MatchExpressions: []config.SelectorRequirement{{Key: "env", Operator: "In", Values: []string{"prod"}}}},
		},
		{
			name:     "knative target",
			workload: `targets: {knativeService: orders}`,
			want:     config.Selector{MatchLabels: map[string]string{"serving.knative.dev/service": "orders"}},
		},
		{
			name:     "openfaas target",
			workload: `targets: {openFaaSFunction: orders}`,
			want:     config.Selector{MatchLabels: map[string]string{"faas_function": "orders"}},
		},
		{
			name: "selector and both targets are ANDed",
			workload: `selector: {matchLabels: {app: fn}, matchExpressions: [{key: tier, operator: Exists}]}
targets: {knativeService: orders, openFaaSFunction: orders-fn}`,
			want: config.Selector{
				MatchLabels:      map[string]string{"app": "fn", "serving.knative.dev/service": "orders", "faas_function": "orders-fn"},
				MatchExpressions: []config.SelectorRequirement{{Key: "tier", Operator: "Exists"}},
			},
		},
		{
			name:     "target agreeing with the selector",
			workload: "selector: {matchLabels: {faas_function: orders}}\ntargets: {openFaaSFunction: orders}",
			want:     config.Selector{MatchLabels: map[string]string{"faas_function": "orders"}},
		},
		{
			name:     "empty selector selects every workload",
			workload: `selector: {}`,
			want:     config.Selector{},
		},
		{
			name:     "target contradicting the selector",
			workload: "selector: {matchLabels: {faas_function: a}}\ntargets: {openFaaSFunction: b}",
			wantErr:  "spec.targets.openFaaSFunction",
		},
		// The API server refuses a spec without selector or targets (CEL,
		// TestAPIServerRejectsInvalidPolicies); translated anyway, an absent
		// selector means what an empty one does.
		{
			name:     "neither selector nor targets",
			workload: `mode: enforce`,
			want:     config.Selector{},
		},
		{
			name:     "empty targets",
			workload: `targets: {}`,
			want:     config.Selector{},
		},
		{
			name:     "invalid operator",
			workload: `selector: {matchExpressions: [{key: a, operator: Near}]}`,
			wantErr:  "spec.selector.matchExpressions[0].operator",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := policyYAML(t, "sel", tt.workload+"\nroutes: [{public: true}]")
			f, prob := Translate(context.Background(), Input{Policy: p})
			if tt.wantErr != "" {
				if prob == nil || prob.Reason != ReasonInvalidSpec || !strings.Contains(prob.Message, tt.wantErr) {
					t.Fatalf("got problem %v, want %s mentioning %q", prob, ReasonInvalidSpec, tt.wantErr)
				}
				return
			}
			if prob != nil {
				t.Fatalf("got problem %v, want none", prob)
			}
			if !reflect.DeepEqual(f.Policy.Selector, tt.want) {
				t.Fatalf("got selector %+v, want %+v", f.Policy.Selector, tt.want)
			}
		})
	}
}

func TestTranslateFullPolicy(t *testing.T) {
	t.Parallel()
	p := policyYAML(t, "orders", `targets: {knativeService: orders}
mode: audit
authentication:
  jwt:
    - issuerURL: https://idp.example.com/
      jwksURL: https://idp.example.com/keys
      audiences: [orders]
      clientIDs: [web]
      algorithms: [ES256]
      clockSkew: 1m
      type: at+jwt
      requiredClaims: [{claim: org.tier, values: [gold]}]
      sources: [{type: cookie, name: session}]
      scopeClaims: [scp]
      rolesClaim: realm_access.roles
    - issuerURL: https://other.example.com/
      audiences: [orders]
routes:
  - {name: health, paths: [/healthz], public: true, skipRego: true}
  - methods: [GET, POST]
    paths: ["/orders/**", "/o/*/x"]
    requireScopes: [orders:read]
    requireRoles: [clerk]
    requireClaims: [{claim: dept, values: [a, b]}]
    requireMFA: {acr: [loa2]}
  - {paths: [/admin], requireMFA: {}}
rego:
  inline: "package authgate.authz\n\ndecision := true\n"
  query: data.authgate.authz.decision
  timeout: 200ms
headers:
  subject: X-Authgate-User
  claims: [{header: X-Authgate-Dept, claim: dept}]
  claimsJSON: X-Authgate-Claims
  forwardAuthorization: true
rateLimits:
  - {key: subject, requestsPerSecond: "0.5"}
  - {key: ip, requestsPerSecond: "100", burst: 150}`)
	f := mustTranslate(t, Input{Policy: p})
	want := &Fragment{
		Policy: config.Policy{
			Name: "team-a/orders", Version: "3", Mode: "audit",
			Selector: config.Selector{MatchLabels: map[string]string{"serving.knative.dev/service": "orders"}},
			Authentication: config.Authentication{
				Issuers: []string{"team-a/orders/jwt-0", "team-a/orders/jwt-1"},
			},
			Routes: []config.Route{
				{Name: "health", Paths: []string{"/healthz"}, Public: true, SkipRego: true},
				{Name: "route-1", Methods: []string{"GET", "POST"}, Paths: []string{"/orders/**", "/o/*/x"},
					RequireScopes: []string{"orders:read"}, RequireRoles: []string{"clerk"},
					RequireClaims: []config.ClaimRequirement{{Claim: "dept", Values: []string{"a", "b"}}},
					RequireMFA:    &config.MFA{ACR: []string{"loa2"}}},
				{Name: "route-2", Paths: []string{"/admin"}, RequireMFA: &config.MFA{}},
			},
			Rego: &config.Rego{
				Modules: []config.RegoModule{{Name: "orders.rego", Source: "package authgate.authz\n\ndecision := true\n"}},
				Query:   "data.authgate.authz.decision", Timeout: config.D(200 * time.Millisecond),
			},
			Headers: config.IdentityHeaders{Subject: "X-Authgate-User", ClaimsJSON: "X-Authgate-Claims", ForwardAuthorization: true,
				Claims: []config.ClaimHeader{{Header: "X-Authgate-Dept", Claim: "dept"}}},
			RateLimits: []config.RateLimit{{Key: "subject", RequestsPerSecond: 0.5}, {Key: "ip", RequestsPerSecond: 100, Burst: 150}},
		},
		Issuers: []config.Issuer{
			{Name: "team-a/orders/jwt-0", IssuerURL: "https://idp.example.com/", JWKSURL: "https://idp.example.com/keys",
				Audiences: []string{"orders"}, ClientIDs: []string{"web"}, Algorithms: []string{"ES256"},
				ClockSkew: config.D(time.Minute), Type: "at+jwt",
				RequiredClaims: []config.ClaimRequirement{{Claim: "org.tier", Values: []string{"gold"}}},
				Sources:        []config.CredentialSource{{Type: "cookie", Name: "session"}},
				ScopeClaims:    []string{"scp"}, RolesClaim: "realm_access.roles"},
			{Name: "team-a/orders/jwt-1", IssuerURL: "https://other.example.com/", Audiences: []string{"orders"}},
		},
	}
	if got, w := toJSON(t, f), toJSON(t, want); got != w {
		t.Fatalf("got fragment\n%s\nwant\n%s", got, w)
	}
}

func TestTranslateDefaultsNothingButRouteNamesAndMode(t *testing.T) {
	t.Parallel()
	p := policyYAML(t, "min", "selector: {matchLabels: {app: fn}}\n"+jwtSpec+"routes: [{}]")
	f := mustTranslate(t, Input{Policy: p})
	if f.Policy.Mode != config.ModeEnforce || f.Policy.Routes[0].Name != "route-0" {
		t.Fatalf("got mode %q route %q, want enforce and route-0", f.Policy.Mode, f.Policy.Routes[0].Name)
	}
	// Headers, algorithms and the like stay empty: the proxy defaults them.
	if !reflect.DeepEqual(f.Policy.Headers, config.IdentityHeaders{}) || f.Issuers[0].Algorithms != nil || f.Issuers[0].Discovery != nil {
		t.Fatalf("got headers %+v, issuer %+v; want unset fields left to the proxy's defaults", f.Policy.Headers, f.Issuers[0])
	}
}

func TestTranslateDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	p := policyYAML(t, "p", "selector: {matchLabels: {app: fn}}\n"+jwtSpec+"routes: [{requireMFA: {}}]\nrego: {inline: \"package authgate.authz\\n\\ndecision := true\\n\"}")
	before := p.DeepCopy()
	keys := config.JSONWebKeySet{Keys: []config.RawJSON{testJWK(t, "b"), testJWK(t, "a")}}
	keysBefore := toJSON(t, keys)
	f := mustTranslate(t, Input{Policy: p, Keys: keysFor("https://idp.example.com/", keys)})
	if !reflect.DeepEqual(p, before) {
		t.Fatal("Translate modified the policy")
	}
	if toJSON(t, keys) != keysBefore {
		t.Fatal("Translate modified the fetched keys")
	}
	// Validation defaults a copy: the fragment keeps requireMFA as written.
	if mfa := f.Policy.Routes[0].RequireMFA; mfa == nil || mfa.AMR != nil {
		t.Fatalf("got requireMFA %+v, want it as written (defaults are the proxy's)", mfa)
	}
}

func TestTranslateIssuerKeys(t *testing.T) {
	t.Parallel()
	const iss = "https://idp.example.com/"
	a, b := testJWK(t, "a"), testJWK(t, "b")
	encKey := []byte(strings.Replace(string(testJWK(t, "enc")), `"use":"sig"`, `"use":"enc"`, 1))
	tests := []struct {
		name          string
		jwksURL       string
		keys          func(string) (config.JSONWebKeySet, bool)
		wantKeys      []config.RawJSON
		wantDiscovery *bool
	}{
		{name: "no keys func", keys: nil},
		{name: "no keys fetched", keys: keysFor("https://other.example.com/", config.JSONWebKeySet{Keys: []config.RawJSON{a}})},
		{name: "empty key set", keys: keysFor(iss, config.JSONWebKeySet{})},
		{name: "keys inlined, sorted, discovery kept", keys: keysFor(iss, config.JSONWebKeySet{Keys: []config.RawJSON{b, a}}),
			wantKeys: []config.RawJSON{a, b}, wantDiscovery: new(true)},
		{name: "keys inlined next to jwksURL", jwksURL: "https://idp.example.com/jwks", keys: keysFor(iss, config.JSONWebKeySet{Keys: []config.RawJSON{a}}),
			wantKeys: []config.RawJSON{a}},
		{name: "encryption keys dropped", keys: keysFor(iss, config.JSONWebKeySet{Keys: []config.RawJSON{encKey, a, []byte(`{"kty":"oct","k":"c2VjcmV0"}`), []byte(`not json`)}}),
			wantKeys: []config.RawJSON{a}, wantDiscovery: new(true)},
		{name: "no usable key", keys: keysFor(iss, config.JSONWebKeySet{Keys: []config.RawJSON{encKey}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := "selector: {}\nauthentication: {jwt: [{issuerURL: \"" + iss + "\", audiences: [api]"
			if tt.jwksURL != "" {
				spec += ", jwksURL: \"" + tt.jwksURL + "\""
			}
			p := policyYAML(t, "keys", spec+"}]}\nroutes: [{}]")
			f := mustTranslate(t, Input{Policy: p, Keys: tt.keys})
			is := f.Issuers[0]
			var got []config.RawJSON
			if is.JWKS != nil {
				got = is.JWKS.Keys
			}
			if toJSON(t, got) != toJSON(t, tt.wantKeys) {
				t.Fatalf("got inline keys %s, want %s", toJSON(t, got), toJSON(t, tt.wantKeys))
			}
			if !reflect.DeepEqual(is.Discovery, tt.wantDiscovery) {
				t.Fatalf("got discovery %v, want %v", is.Discovery, tt.wantDiscovery)
			}
			if is.JWKSURL != tt.jwksURL {
				t.Fatalf("got jwksURL %q, want %q", is.JWKSURL, tt.jwksURL)
			}
		})
	}
}

func TestTranslateAPIKeys(t *testing.T) {
	t.Parallel()
	partner := map[string]string{"role": "partner"}
	secrets := []corev1.Secret{
		secret("zeta", "zeta-key-0123456789-ABCDEFGHIJ", partner, "scopes", "a  b\n", "subject", "zeta-corp\n", "expiresAt", "2030-01-02T03:04:05+02:00"),
		secret("alpha", "alpha-key-0123456789-ABCDEFGHIJ", nil),
		secret("beta", "beta-key-0123456789-ABCDEFGHIJ", partner),
		secret("other", "other-key-0123456789-ABCDEFGHIJ", map[string]string{"role": "internal"}),
	}
	// A Secret of another namespace with a selected name and label is ignored.
	foreign := secret("gamma", "gamma-key-0123456789-ABCDEFGHIJ", partner)
	foreign.Namespace = "team-b"
	secrets = append(secrets, foreign)
	p := policyYAML(t, "keys", `selector: {}
authentication:
  apiKeys:
    secretNames: [alpha, beta]
    selector: {matchLabels: {role: partner}}
routes: [{requireScopes: [b, a]}]`)
	f := mustTranslate(t, Input{Policy: p, Secrets: secrets})
	exp := time.Date(2030, 1, 2, 1, 4, 5, 0, time.UTC)
	want := []config.APIKey{
		{Name: "team-a/alpha", Subject: "alpha", Hash: hashKey([]byte("alpha-key-0123456789-ABCDEFGHIJ"))},
		{Name: "team-a/beta", Subject: "beta", Hash: hashKey([]byte("beta-key-0123456789-ABCDEFGHIJ"))},
		{Name: "team-a/zeta", Subject: "zeta-corp", Hash: hashKey([]byte("zeta-key-0123456789-ABCDEFGHIJ")), Scopes: []string{"a", "b"}, ExpiresAt: &exp},
	}
	if got, w := toJSON(t, f.APIKeys), toJSON(t, want); got != w {
		t.Fatalf("got keys\n%s\nwant\n%s", got, w)
	}
	wantNames := []string{"team-a/alpha", "team-a/beta", "team-a/zeta"}
	if ak := f.Policy.Authentication.APIKeys; ak == nil || !slices.Equal(ak.Keys, wantNames) {
		t.Fatalf("got policy key access %+v, want exactly %v", ak, wantNames)
	}
	wantSources := []config.CredentialSource{{Type: config.SourceHeader, Name: config.DefaultAPIKeyHeader}}
	if got := f.Policy.Authentication.APIKeys.Sources; !reflect.DeepEqual(got, wantSources) {
		t.Fatalf("got sources %+v, want the explicit default %+v", got, wantSources)
	}
	if !strings.HasPrefix(want[0].Hash, "sha256:") || len(want[0].Hash) != len("sha256:")+64 {
		t.Fatalf("got hash %q, want sha256:<64 hex>", want[0].Hash)
	}

	// The order in which the caller lists Secrets does not matter.
	slices.Reverse(secrets)
	if again := mustTranslate(t, Input{Policy: p, Secrets: secrets}); toJSON(t, again) != toJSON(t, f) {
		t.Fatal("got a different fragment for a reordered Secret list")
	}
}

func TestTranslateAPIKeySources(t *testing.T) {
	t.Parallel()
	p := policyYAML(t, "src", `selector: {}
authentication:
  apiKeys:
    secretNames: [k]
    sources: [{type: header, name: Authorization-Key, prefix: "Key "}, {type: query, name: api_key}]
routes: [{}]`)
	f := mustTranslate(t, Input{Policy: p, Secrets: []corev1.Secret{secret("k", "0123456789abcdefGHIJKLmnopgh", nil)}})
	want := []config.CredentialSource{{Type: "header", Name: "Authorization-Key", Prefix: "Key "}, {Type: "query", Name: "api_key"}}
	if got := f.Policy.Authentication.APIKeys.Sources; !reflect.DeepEqual(got, want) {
		t.Fatalf("got sources %+v, want %+v", got, want)
	}
}

func TestTranslateRegoFromConfigMap(t *testing.T) {
	t.Parallel()
	src := "package authgate.authz\n\ndecision := true\n"
	cms := map[string]*corev1.ConfigMap{
		"rules": {ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "rules"}, Data: map[string]string{"policy.rego": src}},
	}
	p := policyYAML(t, "cm", "selector: {}\nroutes: [{public: true}]\nrego: {configMapRef: {name: rules, key: policy.rego}, timeout: 1s}")
	f := mustTranslate(t, Input{Policy: p, ConfigMaps: cms})
	want := &config.Rego{Modules: []config.RegoModule{{Name: "cm.rego", Source: src}}, Timeout: config.D(time.Second)}
	if !reflect.DeepEqual(f.Policy.Rego, want) {
		t.Fatalf("got rego %+v, want %+v", f.Policy.Rego, want)
	}
}

func TestTranslateRegoCompileErrorNamesLine(t *testing.T) {
	t.Parallel()
	p := policyYAML(t, "bad", `selector: {}
routes: [{public: true}]
rego:
  inline: |
    package authgate.authz

    decision if {
      input.request.method ==
    }`)
	_, prob := Translate(context.Background(), Input{Policy: p})
	if prob == nil || prob.Reason != ReasonRegoCompileError {
		t.Fatalf("got %v, want %s", prob, ReasonRegoCompileError)
	}
	for _, want := range []string{"spec.rego.inline does not compile", "line 5, column 1: unexpected } token"} {
		if !strings.Contains(prob.Message, want) {
			t.Fatalf("got message %q, want it to contain %q", prob.Message, want)
		}
	}
	if strings.Contains(prob.Message, "bad.rego") {
		t.Fatalf("got message %q, want no generated module name", prob.Message)
	}
}

func TestTranslateIdentityAssertion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, spec string
		want       *config.IdentityAssertion
	}{
		{"off", "", nil},
		{"defaults", "identityAssertion: {}\n",
			&config.IdentityAssertion{Issuer: "authgate://team-a", Audience: "fn"}},
		{"all set", "identityAssertion: {header: X-Authgate-Proof, ttl: 30s, audience: orders, claims: [email, org.tier]}\n",
			&config.IdentityAssertion{Header: "X-Authgate-Proof", TTL: config.D(30 * time.Second), Issuer: "authgate://team-a",
				Audience: "orders", Claims: []string{"email", "org.tier"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := policyYAML(t, "fn", "selector: {matchLabels: {app: fn}}\n"+jwtSpec+tc.spec+"routes: [{}]")
			p.Namespace = "team-a"
			f := mustTranslate(t, Input{Policy: p})
			if got, w := toJSON(t, f.Policy.IdentityAssertion), toJSON(t, tc.want); got != w {
				t.Fatalf("got %s, want %s", got, w)
			}
		})
	}
}
