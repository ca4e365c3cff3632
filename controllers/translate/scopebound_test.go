package translate

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/proxy/config"
)

// TestAPIKeyScopesBounded: an API key's scopes come from its Secret, which
// anyone allowed to create labelled Secrets in the namespace can write. A
// policy bounds them with allowedScopes: a key claiming more is left out
// (the policy is accepted without it, and says so), never accepted with the
// extra scope. Messages name the Secret and the scope, never the key.
func TestAPIKeyScopesBounded(t *testing.T) {
	t.Parallel()
	const keyA, keyB = "bound-key-a-0123456789-ABCDEFGH", "bound-key-b-0123456789-ABCDEFGH"
	const jwt = "jwt: [{issuerURL: \"https://a.example.com\", audiences: [a]}]\n  "
	for _, tc := range []struct {
		name, authn      string
		scopesA, scopesB string
		wantKeys         []string // kept, by Secret name
		wantBound        []string // nil: none rendered
		wantExcluded     []string // parts of Fragment.Excluded
		wantProblem      string   // "" accepted
	}{
		{name: "no bound: every key", authn: "apiKeys: {secretNames: [a, b]}", scopesA: "orders:read", scopesB: "admin",
			wantKeys: []string{"a", "b"}},
		{name: "within the bound", authn: "apiKeys: {secretNames: [a, b], allowedScopes: [orders:write, orders:read]}", scopesA: "orders:read", scopesB: "orders:read orders:write",
			wantKeys: []string{"a", "b"}, wantBound: []string{"orders:read", "orders:write"}},
		{name: "a key claiming more is left out", authn: "apiKeys: {secretNames: [a, b], allowedScopes: [orders:read]}", scopesA: "orders:read", scopesB: "orders:read admin",
			wantKeys: []string{"a"}, wantBound: []string{"orders:read"}, wantExcluded: []string{`Secret "b" (scopes "admin")`}},
		{name: "empty bound keeps keys without scopes", authn: "apiKeys: {secretNames: [a, b], allowedScopes: []}", scopesA: "", scopesB: "orders:read",
			wantKeys: []string{"a"}, wantBound: []string{}, wantExcluded: []string{`Secret "b" (scopes "orders:read")`}},
		{name: "every key left out of a keys-only policy", authn: "apiKeys: {secretNames: [a, b], allowedScopes: [reports:read]}", scopesA: "orders:read", scopesB: "admin",
			wantProblem: `every selected API-key Secret claims scopes outside spec.authentication.apiKeys.allowedScopes "reports:read": Secret "a" (scopes "orders:read"), Secret "b" (scopes "admin")`},
		{name: "every key left out, JWT still accepted", authn: jwt + "apiKeys: {secretNames: [a, b], allowedScopes: [reports:read]}", scopesA: "orders:read", scopesB: "admin",
			wantExcluded: []string{`Secret "a"`, `Secret "b"`}},
		{name: "bad bound entry", authn: "apiKeys: {secretNames: [a], allowedScopes: [\"a\\u0000b\"]}", scopesA: "",
			wantProblem: "spec.authentication.apiKeys.allowedScopes[0]: must be a non-empty scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := policyYAML(t, "p", "selector: {}\nauthentication:\n  "+tc.authn+"\nroutes: [{}]")
			secrets := []corev1.Secret{
				secret("a", keyA, nil, SecretKeyScopes, tc.scopesA),
				secret("b", keyB, nil, SecretKeyScopes, tc.scopesB),
			}
			f, prob := Translate(t.Context(), Input{Policy: p, Secrets: secrets})
			if tc.wantProblem != "" {
				if prob == nil {
					t.Fatalf("accepted, want a problem containing %q", tc.wantProblem)
				}
				if !strings.Contains(prob.Message, tc.wantProblem) || strings.Contains(prob.Message, keyA) || strings.Contains(prob.Message, keyB) {
					t.Fatalf("got %s: %s, want it to contain %q and never a key", prob.Reason, prob.Message, tc.wantProblem)
				}
				return
			}
			if prob != nil {
				t.Fatalf("got problem %s: %s", prob.Reason, prob.Message)
			}
			var kept []string
			for _, k := range f.APIKeys {
				kept = append(kept, strings.TrimPrefix(k.Name, testNS+"/"))
			}
			if !slices.Equal(kept, tc.wantKeys) {
				t.Fatalf("kept keys %v, want %v", kept, tc.wantKeys)
			}
			acc := f.Policy.Authentication.APIKeys
			switch {
			case len(tc.wantKeys) == 0 && acc != nil:
				t.Fatalf("the policy still accepts API keys (%+v), want none", acc)
			case len(tc.wantKeys) > 0 && (acc == nil || !slices.Equal(acc.AllowedScopes, tc.wantBound) || (acc.AllowedScopes == nil) != (tc.wantBound == nil)):
				t.Fatalf("got access %+v, want bound %#v", acc, tc.wantBound)
			}
			joined := strings.Join(f.Excluded, ", ")
			for _, w := range tc.wantExcluded {
				if !strings.Contains(joined, w) {
					t.Fatalf("excluded %q, want it to mention %q", joined, w)
				}
			}
			if len(tc.wantExcluded) == 0 && len(f.Excluded) > 0 {
				t.Fatalf("excluded %q, want none", joined)
			}
			if strings.Contains(joined, keyA) || strings.Contains(joined, keyB) {
				t.Fatal("Excluded quotes a key")
			}
		})
	}
}

// TestRefreshKeysKeepsTheBound: a policy's current generation is rejected
// and its last good fragment kept. A Secret edited to claim a scope the
// kept generation does not allow has its key dropped, as a revoked one
// would be; so does a key outside the bound the current spec sets, so
// narrowing allowedScopes applies even while that generation is rejected.
func TestRefreshKeysKeepsTheBound(t *testing.T) {
	t.Parallel()
	p := policyYAML(t, "p", "selector: {}\nauthentication: {apiKeys: {secretNames: [a, b], allowedScopes: [orders:read, orders:write]}}\nroutes: [{}]")
	a := secret("a", "bound-key-a-0123456789-ABCDEFGH", nil, SecretKeyScopes, "orders:read")
	b := secret("b", "bound-key-b-0123456789-ABCDEFGH", nil, SecretKeyScopes, "orders:write")
	f := mustTranslate(t, Input{Policy: p, Secrets: []corev1.Secret{a, b}})
	only := func(t *testing.T, got *Fragment, name string) {
		t.Helper()
		if got == nil || len(got.APIKeys) != 1 || got.APIKeys[0].Name != testNS+"/"+name {
			t.Fatalf("got %+v, want only key %s", got, name)
		}
		if keys := got.Policy.Authentication.APIKeys.Keys; !slices.Equal(keys, []string{testNS + "/" + name}) {
			t.Fatalf("got accepted keys %v, want [%s/%s]", keys, testNS, name)
		}
	}
	t.Run("secret claims more", func(t *testing.T) {
		b2 := *b.DeepCopy()
		b2.Data[SecretKeyScopes] = []byte("orders:write admin")
		only(t, RefreshKeys(f, testNS, []corev1.Secret{a, b2}, nil), "a")
	})
	t.Run("current spec narrows", func(t *testing.T) {
		only(t, RefreshKeys(f, testNS, []corev1.Secret{a, b}, []string{"orders:read"}), "a")
	})
	t.Run("no bound anywhere", func(t *testing.T) {
		unbounded := *f
		acc := *f.Policy.Authentication.APIKeys
		acc.AllowedScopes = nil
		unbounded.Policy.Authentication.APIKeys = &acc
		b2 := *b.DeepCopy()
		b2.Data[SecretKeyScopes] = []byte("admin")
		if got := RefreshKeys(&unbounded, testNS, []corev1.Secret{a, b2}, nil); got == nil || len(got.APIKeys) != 2 {
			t.Fatalf("got %+v, want both keys", got)
		}
	})
	if out := config.ScopesOutside([]string{"a", "b"}, []string{"a"}); !slices.Equal(out, []string{"b"}) {
		t.Fatalf("ScopesOutside: got %v", out)
	}
}
