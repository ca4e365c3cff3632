package controllers_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

func newNamespace(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "t-" + hex.EncodeToString(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

func policyFromYAML(t *testing.T, ns, doc string) *v1alpha1.AuthPolicy {
	t.Helper()
	var p v1alpha1.AuthPolicy
	if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
		t.Fatalf("policy yaml: %v", err)
	}
	p.Namespace = ns
	return &p
}

func get(t *testing.T, ns, name string) *v1alpha1.AuthPolicy {
	t.Helper()
	var p v1alpha1.AuthPolicy
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func condition(p *v1alpha1.AuthPolicy, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(p.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// waitCondition waits for a condition of the current generation.
func waitCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1alpha1.AuthPolicy {
	t.Helper()
	var p *v1alpha1.AuthPolicy
	wait.ForNil(t, settle, func() error {
		p = get(t, ns, name)
		c := condition(p, typ)
		if c.Status != status || (reason != "" && c.Reason != reason) ||
			c.ObservedGeneration != p.Generation || p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("generation %d, status %+v", p.Generation, p.Status)
		}
		return nil
	}, "%s=%s (%s) of %s/%s", typ, status, reason, ns, name)
	return p
}

// bundleConfig reads and parses the namespace's rendered bundle Secret.
func bundleConfig(t *testing.T, ns string) (*config.ProxyConfig, *corev1.Secret) {
	t.Helper()
	var s corev1.Secret
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: config.BundleSecret}, &s); err != nil {
		return nil, nil
	}
	c, err := config.Parse(s.Data[config.BundleKey])
	if err != nil {
		t.Fatalf("rendered bundle does not parse: %v", err)
	}
	return c, &s
}

func policyVersion(c *config.ProxyConfig, name string) string {
	if c == nil {
		return ""
	}
	for _, p := range c.Policies {
		if p.Name == name {
			return p.Version
		}
	}
	return ""
}

const apiKeyPolicy = `
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: partners}
spec:
  targets: {openFaaSFunction: orders}
  authentication:
    apiKeys: {secretNames: [partner-acme]}
  routes:
    - {name: health, paths: [/healthz], public: true}
    - {name: orders, methods: [GET], paths: ["/orders/**"], requireScopes: [orders:read]}
  rego:
    inline: |
      package authgate.authz

      import rego.v1

      default decision := false

      decision if input.identity.subject == "acme"
`

func apiKeySecret(ns, key string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "partner-acme", Labels: map[string]string{translate.LabelAPIKey: "true"}},
		StringData: map[string]string{"key": key, "subject": "acme", "scopes": "orders:read"},
	}
}

func TestPolicyLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	p := policyFromYAML(t, ns, apiKeyPolicy)
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}

	// A missing Secret: not accepted, nothing rendered.
	got := waitCondition(t, ns, "partners", v1alpha1.ConditionAccepted, metav1.ConditionFalse, "SecretNotFound")
	if msg := condition(got, v1alpha1.ConditionAccepted).Message; !strings.Contains(msg, "partner-acme") {
		t.Fatalf("got message %q, want it to name the missing Secret", msg)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionFalse, controllers.ReasonNotRendered)

	// The Secret appears: the watch picks it up.
	key := "agk_lifecycle_test_key_0001"
	if err := k8s.Create(ctx, apiKeySecret(ns, key)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionAccepted, metav1.ConditionTrue, controllers.ReasonValid)
	got = waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	cfg, bundleSecret := bundleConfig(t, ns)
	if cfg == nil || policyVersion(cfg, ns+"/partners") != "1" {
		t.Fatalf("got bundle %+v, want generation 1 of the policy rendered", cfg)
	}
	if strings.Contains(string(bundleSecret.Data[config.BundleKey]), key) {
		t.Fatal("the plaintext API key appears in the bundle")
	}
	if len(cfg.APIKeys.Keys) != 1 || cfg.APIKeys.Keys[0].Subject != "acme" {
		t.Fatalf("got keys %+v, want one key with subject acme", cfg.APIKeys.Keys)
	}
	if sel := cfg.Policies[0].Selector.MatchLabels; sel["faas_function"] != "orders" {
		t.Fatalf("got selector %v, want faas_function=orders", sel)
	}
	if got.Status.Bundle != config.BundleSecret {
		t.Fatalf("got status bundle %q", got.Status.Bundle)
	}

	// Key rotation: the hash in the bundle changes.
	oldHash := cfg.APIKeys.Keys[0].Hash
	var sec corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "partner-acme"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{"key": []byte("agk_lifecycle_rotated_key_02"), "subject": []byte("acme"), "scopes": []byte("orders:read")}
	if err := k8s.Update(ctx, &sec); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		if c, _ := bundleConfig(t, ns); c == nil || len(c.APIKeys.Keys) != 1 || c.APIKeys.Keys[0].Hash == oldHash {
			return errors.New("old hash still rendered")
		}
		return nil
	}, "the rotated key's hash in the bundle")

	// An update renders generation 2.
	updateSpec(t, ns, "partners", func(got *v1alpha1.AuthPolicy) {
		got.Spec.Routes = append(got.Spec.Routes, v1alpha1.Route{Name: "reports", Paths: []string{"/reports/**"}})
	})
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	wait.ForNil(t, settle, func() error {
		c, _ := bundleConfig(t, ns)
		if v := policyVersion(c, ns+"/partners"); v != "2" {
			return fmt.Errorf("version %q", v)
		}
		return nil
	}, "generation 2 rendered")

	// Invalid Rego: rejected with its line, the last good generation stays.
	updateSpec(t, ns, "partners", func(got *v1alpha1.AuthPolicy) {
		got.Spec.Rego.Inline = "package authgate.authz\n\nimport rego.v1\n\ndecision if {\n  input.request.method ==\n}\n"
	})
	got = waitCondition(t, ns, "partners", v1alpha1.ConditionAccepted, metav1.ConditionFalse, "RegoCompileError")
	if msg := condition(got, v1alpha1.ConditionAccepted).Message; !strings.Contains(msg, "line") {
		t.Fatalf("got message %q, want the Rego error's line", msg)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonLastGoodGeneration)
	if c, _ := bundleConfig(t, ns); policyVersion(c, ns+"/partners") != "2" {
		t.Fatalf("got version %q in the bundle, want the last good generation 2", policyVersion(c, ns+"/partners"))
	}

	// Delete: the bundle keeps no policy, so sidecars deny.
	if err := k8s.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		if c, _ := bundleConfig(t, ns); c == nil || len(c.Policies) != 0 || len(c.APIKeys.Keys) != 0 {
			return fmt.Errorf("bundle %+v", c)
		}
		return nil
	}, "the policy to leave the bundle")
}

func TestRegoFromConfigMap(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	p := policyFromYAML(t, ns, `
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: cm-rego}
spec:
  selector: {matchLabels: {app: fn}}
  routes: [{name: all, public: true}]
  rego: {configMapRef: {name: rules, key: policy.rego}}
`)
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "cm-rego", v1alpha1.ConditionAccepted, metav1.ConditionFalse, "ConfigMapNotFound")
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rules", Labels: map[string]string{translate.LabelRole: translate.RoleRego}},
		Data:       map[string]string{"policy.rego": "package authgate.authz\n\ndecision := true\n"},
	}
	if err := k8s.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "cm-rego", v1alpha1.ConditionAccepted, metav1.ConditionTrue, controllers.ReasonValid)
	cm.Data["policy.rego"] = "package authgate.authz\n\ndecision := \n"
	if err := k8s.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "cm-rego", v1alpha1.ConditionAccepted, metav1.ConditionFalse, "RegoCompileError")
}

func TestIssuerHealth(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	ts := faultidp.New(t)
	p := policyFromYAML(t, ns, fmt.Sprintf(`
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: jwt}
spec:
  targets: {knativeService: orders}
  authentication:
    jwt: [{issuerURL: %q, audiences: [orders]}]
  routes: [{name: all, paths: ["/**"]}]
`, ts.URL))
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, ns, "jwt", v1alpha1.ConditionIssuersReady, metav1.ConditionTrue, controllers.ReasonKeysFetched)
	if len(got.Status.Issuers) != 1 || got.Status.Issuers[0].Keys != 2 || got.Status.Issuers[0].LastRefresh == nil {
		t.Fatalf("got issuer status %+v, want 2 keys and a refresh time", got.Status.Issuers)
	}
	cfg, _ := bundleConfig(t, ns)
	if cfg == nil || len(cfg.Issuers) != 1 || cfg.Issuers[0].JWKS == nil || len(cfg.Issuers[0].JWKS.Keys) != 2 {
		t.Fatalf("got issuers %+v, want the keys inline in the bundle", cfg)
	}
	// Hang answers only after the fetch timed out.
	for _, m := range []faultidp.Fault{faultidp.Down, faultidp.Garbage, faultidp.Hang} {
		ts.Set(faultidp.All, m)
		got = waitCondition(t, ns, "jwt", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonRefreshFailed)
		if got.Status.Issuers[0].Keys != 2 {
			t.Fatalf("%s: got %d keys, want the last good 2 kept", m, got.Status.Issuers[0].Keys)
		}
		if c, _ := bundleConfig(t, ns); c == nil || c.Issuers[0].JWKS == nil || len(c.Issuers[0].JWKS.Keys) != 2 {
			t.Fatalf("%s: the bundle lost the last good keys", m)
		}
		ts.Set(faultidp.All, faultidp.None)
		waitCondition(t, ns, "jwt", v1alpha1.ConditionIssuersReady, metav1.ConditionTrue, controllers.ReasonKeysFetched)
	}
}

func TestIssuerDownFromTheStart(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	ts := faultidp.New(t)
	ts.Set(faultidp.All, faultidp.Down)
	p := policyFromYAML(t, ns, fmt.Sprintf(`
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: jwt-down}
spec:
  selector: {matchLabels: {app: x}}
  authentication: {jwt: [{issuerURL: %q, audiences: [x]}]}
  routes: [{name: all}]
`, ts.URL))
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, ns, "jwt-down", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonFetchFailed)
	if got.Status.Issuers[0].Error == "" {
		t.Fatal("got no issuer error in status")
	}
	// Still rendered: the sidecars can fetch keys themselves once the issuer is back.
	waitCondition(t, ns, "jwt-down", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
}

// CEL and schema rejections come from the API server itself.
func TestAPIServerRejectsInvalidPolicies(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	tests := []struct {
		name, spec, want string
	}{
		{"no workload", `routes: [{name: a, public: true}]`, "set selector or targets"},
		{"empty targets", `targets: {}
routes: [{name: a, public: true}]`, "name a knativeService or an openFaaSFunction"},
		{"private route without authentication", `selector: {matchLabels: {a: b}}
routes: [{name: a, paths: ["/x"]}]`, "needs authentication.jwt or authentication.apiKeys"},
		{"public route with scopes", `selector: {matchLabels: {a: b}}
authentication: {apiKeys: {secretNames: [k]}}
routes: [{name: a, public: true, requireScopes: [x]}]`, "a public route cannot require"},
		{"issuer without audience", `selector: {matchLabels: {a: b}}
authentication: {jwt: [{issuerURL: "https://idp.example.com"}]}
routes: [{name: a}]`, "set audiences or clientIDs"},
		{"plain http issuer", `selector: {matchLabels: {a: b}}
authentication: {jwt: [{issuerURL: "http://idp.example.com", audiences: [a]}]}
routes: [{name: a}]`, "issuerURL"},
		{"alg none", `selector: {matchLabels: {a: b}}
authentication: {jwt: [{issuerURL: "https://idp.example.com", audiences: [a], algorithms: [none]}]}
routes: [{name: a}]`, "Unsupported value"},
		{"rego inline and configmap", `selector: {matchLabels: {a: b}}
routes: [{name: a, public: true}]
rego: {inline: "package x", configMapRef: {name: c, key: k}}`, "exactly one of inline or configMapRef"},
		{"skew too large", `selector: {matchLabels: {a: b}}
authentication: {jwt: [{issuerURL: "https://idp.example.com", audiences: [a], clockSkew: 1h}]}
routes: [{name: a}]`, "clockSkew must be between"},
		{"bearer with a name", `selector: {matchLabels: {a: b}}
authentication: {jwt: [{issuerURL: "https://idp.example.com", audiences: [a], sources: [{type: bearer, name: x}]}]}
routes: [{name: a}]`, "bearer takes no name"},
		{"no routes", `selector: {matchLabels: {a: b}}
routes: []`, "routes"},
		{"bad mode", `selector: {matchLabels: {a: b}}
mode: shadow
routes: [{name: a, public: true}]`, "Unsupported value"},
		{"query in path pattern", `selector: {matchLabels: {a: b}}
routes: [{name: a, public: true, paths: ["/a?b"]}]`, "paths"},
		{"api keys without secrets", `selector: {matchLabels: {a: b}}
authentication: {apiKeys: {}}
routes: [{name: a}]`, "name Secrets or give a selector"},
		{"revocation of two claims", revocationsSpec(`{jti: t, sub: alice, expiresAt: "2099-01-01T00:00:00Z"}`), "set exactly one of jti, sub or sid"},
		{"revocation of all three claims", revocationsSpec(`{jti: t, sub: alice, sid: s, expiresAt: "2099-01-01T00:00:00Z"}`), "set exactly one of jti, sub or sid"},
		{"revocation of no claim", revocationsSpec(`{issuer: "https://idp.example.com", expiresAt: "2099-01-01T00:00:00Z"}`), "set exactly one of jti, sub or sid"},
		{"revocation without expiresAt", revocationsSpec(`{jti: t}`), "spec.revocations[0].expiresAt: Required value"},
		{"revocation value too long", revocationsSpec(`{sid: ` + strings.Repeat("s", 513) + `, expiresAt: "2099-01-01T00:00:00Z"}`), "spec.revocations[0].sid: Too long"},
		{"revocation issuer on plain http", revocationsSpec(`{sub: alice, issuer: "http://idp.example.com", expiresAt: "2099-01-01T00:00:00Z"}`), "spec.revocations[0].issuer"},
		{"revocation reason too long", revocationsSpec(`{sub: alice, reason: ` + strings.Repeat("r", 257) + `, expiresAt: "2099-01-01T00:00:00Z"}`), "spec.revocations[0].reason: Too long"},
		{"too many revocations", revocationsSpec(manyRevocations(1001)...), "spec.revocations: Too many"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := fmt.Sprintf("apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: bad-%d}\nspec:\n%s\n", i, indent(tt.spec))
			var p v1alpha1.AuthPolicy
			if err := yaml.Unmarshal([]byte(doc), &p); err != nil {
				t.Fatal(err)
			}
			p.Namespace = ns
			err := k8s.Create(ctx, &p)
			if err == nil {
				t.Fatalf("the API server accepted %s", tt.name)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tt.want)
			}
		})
	}
}

// revocationsSpec is a valid spec but for the revocations (YAML flow
// mappings) under test.
func revocationsSpec(items ...string) string {
	return `selector: {matchLabels: {a: b}}
authentication: {jwt: [{issuerURL: "https://idp.example.com", audiences: [a]}]}
routes: [{name: a}]
revocations: [` + strings.Join(items, ", ") + `]`
}

func manyRevocations(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{jti: t-%d, expiresAt: "2099-01-01T00:00:00Z"}`, i)
	}
	return out
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n")
}

func TestEventsOnTransitions(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	p := policyFromYAML(t, ns, apiKeyPolicy)
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionAccepted, metav1.ConditionFalse, "SecretNotFound")
	wait.ForNil(t, settle, func() error {
		var evs eventsList
		if err := k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == "SecretNotFound" && e.Type == corev1.EventTypeWarning && e.Regarding.Name == "partners" {
				return nil
			}
		}
		return fmt.Errorf("%d events", len(evs.Items))
	}, "a warning event")
}

// A rejected generation keeps the last good one in force, but a key revoked
// meanwhile must not stay accepted.
func TestRevokedKeyIsDroppedFromLastGoodGeneration(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, apiKeySecret(ns, "agk_revoke_test_key_000001")); err != nil {
		t.Fatal(err)
	}
	p := policyFromYAML(t, ns, apiKeyPolicy)
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)

	updateSpec(t, ns, "partners", func(got *v1alpha1.AuthPolicy) {
		got.Spec.Rego.Inline = "package authgate.authz\n\ndecision := \n"
	})
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonLastGoodGeneration)

	if err := k8s.Delete(ctx, apiKeySecret(ns, "")); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		if c, _ := bundleConfig(t, ns); c == nil || len(c.APIKeys.Keys) != 0 || len(c.Policies) != 0 {
			return fmt.Errorf("bundle %+v", c)
		}
		return nil
	}, "the revoked key to leave the bundle")
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionFalse, controllers.ReasonNotRendered)
}

// Every sample is applied to the real API server (schema and CEL) and
// accepted and rendered by the controller. Issuers of the samples are public
// identity providers that cannot be reached here, so IssuersReady may be
// False; the policy is still accepted and rendered.
func TestSamplesAreAcceptedAndRendered(t *testing.T) {
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join("..", "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ns := newNamespace(t)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var policies []string
			for _, doc := range strings.Split(string(data), "\n---") {
				if strings.TrimSpace(doc) == "" {
					continue
				}
				obj := &unstructured.Unstructured{}
				if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil || len(obj.Object) == 0 {
					continue
				}
				obj.SetNamespace(ns)
				if err := k8s.Create(ctx, obj); err != nil {
					t.Fatalf("the API server refused %s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
				if obj.GetKind() == "AuthPolicy" {
					policies = append(policies, obj.GetName())
				}
			}
			if len(policies) == 0 {
				t.Fatal("sample holds no AuthPolicy")
			}
			for _, name := range policies {
				waitCondition(t, ns, name, v1alpha1.ConditionAccepted, metav1.ConditionTrue, controllers.ReasonValid)
				waitCondition(t, ns, name, v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
			}
		})
	}
}
