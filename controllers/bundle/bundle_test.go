package bundle

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
)

const ns = "team-a"

func apiKeySecret(name, key string, labels map[string]string) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Data:       map[string][]byte{translate.SecretKeyKey: []byte(key), translate.SecretKeyScopes: []byte("orders:read")},
	}
}

// frag translates a policy of namespace team-a written as a YAML spec.
func frag(t *testing.T, name, spec string, secrets ...corev1.Secret) *translate.Fragment {
	t.Helper()
	var p v1alpha1.AuthPolicy
	doc := fmt.Sprintf("metadata: {name: %s, namespace: %s, generation: 2}\nspec:\n  %s", name, ns, strings.ReplaceAll(spec, "\n", "\n  "))
	if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
		t.Fatalf("fixture: %v\n%s", err, doc)
	}
	f, prob := translate.Translate(context.Background(), translate.Input{Policy: &p, Secrets: secrets, Keys: testKeys(t)})
	if prob != nil {
		t.Fatalf("fixture %s: %v", name, prob)
	}
	return f
}

// assertRoundTrip splits a bundle into fragments and renders them again:
// the bytes must not change (the controller compares bytes before writing).
func assertRoundTrip(t *testing.T, data []byte) {
	t.Helper()
	frags, err := Fragments(data)
	if err != nil {
		t.Fatalf("fragments: %v", err)
	}
	again, err := Render(slices.Collect(maps.Values(frags)))
	if err != nil {
		t.Fatalf("render fragments: %v", err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("got a different bundle after Fragments and Render:\n%s\nwant:\n%s", again, data)
	}
}

func TestRenderEmpty(t *testing.T) {
	t.Parallel()
	data, err := Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Policies) != 0 || cfg.DefaultAction != "deny" || cfg.Upstream.URL != translate.Upstream {
		t.Fatalf("got %+v, want no policies, deny and the placeholder upstream", cfg)
	}
	frags, err := Fragments(data)
	if err != nil || len(frags) != 0 {
		t.Fatalf("got %v, %v; want no fragments", frags, err)
	}
}

func TestRenderAndFragmentsRoundTrip(t *testing.T) {
	t.Parallel()
	shared := apiKeySecret("shared", "shared-key-0123456789-ABCDEFGHIJ", map[string]string{"tier": "gold"})
	own := apiKeySecret("own", "own-key-0123456789-ABCDEFGHIJab", nil)
	a := frag(t, "a", `targets: {knativeService: a}
authentication:
  jwt: [{issuerURL: "https://idp.example.com/", audiences: [a]}, {issuerURL: "https://other.example.com/", clientIDs: [c], sources: [{type: cookie, name: tok}]}]
  apiKeys: {allowedScopes: [orders:read], selector: {matchLabels: {tier: gold}}, sources: [{type: header, name: X-API-Key}, {type: query, name: api_key}]}
routes: [{name: r, requireMFA: {}}]
rego: {inline: "package authgate.authz\n\ndecision := true\n", timeout: 20ms}`, shared)
	b := frag(t, "b", `mode: audit
selector: {matchExpressions: [{key: env, operator: NotIn, values: [dev]}]}
authentication: {apiKeys: {allowedScopes: [orders:read], secretNames: [own, shared]}}
routes: [{public: true, paths: [/healthz]}, {paths: ["/**"]}]
rateLimits: [{key: apikey, requestsPerSecond: "0.25", burst: 2}]`, shared, own)
	c := frag(t, "c", `selector: {matchLabels: {app: c}}
routes: [{public: true}]`)

	// The input order does not matter.
	data, err := Render([]*translate.Fragment{c, a, b})
	if err != nil {
		t.Fatal(err)
	}
	data2, err := Render([]*translate.Fragment{b, c, a})
	if err != nil || !bytes.Equal(data, data2) {
		t.Fatalf("got a different bundle for another order (%v)", err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range cfg.Policies {
		names = append(names, p.Name)
	}
	if want := []string{"team-a/a", "team-a/b", "team-a/c"}; !slices.Equal(names, want) {
		t.Fatalf("got policies %v, want %v", names, want)
	}
	var keyNames []string
	for _, k := range cfg.APIKeys.Keys {
		keyNames = append(keyNames, k.Name)
	}
	if want := []string{"team-a/own", "team-a/shared"}; !slices.Equal(keyNames, want) {
		t.Fatalf("got keys %v, want the shared key once: %v", keyNames, want)
	}
	// Key sources stay with each policy: nothing is merged namespace-wide.
	for _, p := range cfg.Policies {
		for _, f := range []*translate.Fragment{a, b, c} {
			if f.Policy.Name != p.Name || f.Policy.Authentication.APIKeys == nil {
				continue
			}
			if got, want := p.Authentication.APIKeys.Sources, f.Policy.Authentication.APIKeys.Sources; !slices.Equal(got, want) {
				t.Fatalf("policy %s: got key sources %+v, want its own %+v", p.Name, got, want)
			}
		}
	}
	for _, p := range cfg.Policies {
		if p.Name == "team-a/a" && !slices.Equal(p.Authentication.APIKeys.Keys, []string{"team-a/shared"}) {
			t.Fatalf("got policy a accepting %v, want only its own selection", p.Authentication.APIKeys.Keys)
		}
	}

	frags, err := Fragments(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []*translate.Fragment{a, b, c} {
		got := frags[want.Policy.Name]
		if got == nil {
			t.Fatalf("got no fragment for %s", want.Policy.Name)
		}
		if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
			t.Fatalf("got fragment\n%s\nwant\n%s", g, w)
		}
	}
	assertRoundTrip(t, data)
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRenderOmitsZeroValues: durations of 0s and empty objects would read
// as settings; pointer fields whose presence matters are kept.
func TestRenderOmitsZeroValues(t *testing.T) {
	t.Parallel()
	f := frag(t, "z", `selector: {matchLabels: {"0s": "0s", empty: ""}}
authentication: {jwt: [{issuerURL: "https://idp.example.com/", audiences: [a]}]}
routes: [{requireMFA: {}}]`)
	data, err := Render([]*translate.Fragment{f})
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if zero := regexp.MustCompile(`(?m)^\s+(clockSkew|maxTokenAge|timeout|ttl|\w+Timeout|refresh\w+|maxStaleness): 0s$`).FindString(s); zero != "" {
		t.Fatalf("got %q in\n%s", zero, s)
	}
	for _, unwanted := range []string{"listen:", "limits:", "tokenCache:", "decisionLog:", "fetch:", "headers:"} {
		if strings.Contains(s, unwanted) {
			t.Fatalf("got %q in\n%s", unwanted, s)
		}
	}
	for _, wanted := range []string{"requireMFA: {}", "0s: 0s", `empty: ""`} {
		if !strings.Contains(s, wanted) {
			t.Fatalf("got no %q in\n%s", wanted, s)
		}
	}
	assertRoundTrip(t, data)
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	gold := map[string]string{"tier": "gold"}
	k1 := apiKeySecret("k1", "key-number-one-0123-ABCDEFGH", gold)
	ok := frag(t, "ok", "selector: {}\nauthentication: {apiKeys: {allowedScopes: [orders:read], secretNames: [k1]}}\nroutes: [{}]", k1)
	tests := []struct {
		name  string
		frags func() []*translate.Fragment
		want  string
	}{
		{"nil fragment", func() []*translate.Fragment { return []*translate.Fragment{ok, nil} }, "fragment 1 is nil"},
		{"policy twice", func() []*translate.Fragment { return []*translate.Fragment{ok, ok} }, `policy "team-a/ok" is given twice`},
		{"same key under two names", func() []*translate.Fragment {
			other := frag(t, "other", "selector: {}\nauthentication: {apiKeys: {allowedScopes: [orders:read], secretNames: [k2]}}\nroutes: [{}]", apiKeySecret("k2", "key-number-one-0123-ABCDEFGH", nil))
			return []*translate.Fragment{ok, other}
		}, `api keys "team-a/k1" and "team-a/k2" hold the same key`},
		{"one key name, two definitions", func() []*translate.Fragment {
			rotated := frag(t, "rotated", "selector: {}\nauthentication: {apiKeys: {allowedScopes: [orders:read], secretNames: [k1]}}\nroutes: [{}]", apiKeySecret("k1", "key-number-one-rotated-ABCDEFGH", gold))
			return []*translate.Fragment{ok, rotated}
		}, `api key "team-a/k1" is defined differently`},
		{"source prefixes disagree", func() []*translate.Fragment {
			p := frag(t, "prefix", "selector: {}\nauthentication: {apiKeys: {allowedScopes: [orders:read], secretNames: [k1], sources: [{type: header, name: x-api-key, prefix: \"Key \"}]}}\nroutes: [{}]", k1)
			return []*translate.Fragment{ok, p}
		}, `may select the same pod: authn: api keys: source header "x-api-key" is configured with two different prefixes`},
		{"issuer and key sources disagree", func() []*translate.Fragment {
			p := frag(t, "jwt", "selector: {}\nauthentication: {jwt: [{issuerURL: \"https://idp.example.com/\", audiences: [a], sources: [{type: header, name: X-API-Key, prefix: \"Bearer \"}]}]}\nroutes: [{}]")
			return []*translate.Fragment{ok, p}
		}, "rejected by the proxy"},
		{"policy accepting every key", func() []*translate.Fragment {
			bad := ptr(*ok)
			bad.Policy.Authentication.APIKeys = &config.APIKeyAccess{}
			return []*translate.Fragment{bad}
		}, "names none"},
		{"conflicting issuers", func() []*translate.Fragment {
			x := frag(t, "x", "selector: {}\nauthentication: {jwt: [{issuerURL: \"https://idp.example.com/\", audiences: [a]}]}\nroutes: [{}]")
			y := ptr(*x)
			y.Policy.Name = "team-a/y"
			y.Issuers = []config.Issuer{x.Issuers[0]}
			y.Issuers[0].Audiences = []string{"b"}
			return []*translate.Fragment{x, y}
		}, `issuer "team-a/x/jwt-0" is defined differently`},
		// Only the merged bundle shows these: each fragment alone is valid.
		{"identity header read as another policy's credential", func() []*translate.Fragment {
			p := frag(t, "claims", "selector: {matchLabels: {app: other}}\nroutes: [{public: true}]\nheaders: {claims: [{header: X-API-Key, claim: sub}]}")
			return []*translate.Fragment{ok, p}
		}, `rendered bundle is invalid: policy "team-a/claims": headers.claims[0].header: "X-API-Key" is read as the credential header`},
		{"last good key no longer valid", func() []*translate.Fragment {
			stale := ptr(*ok)
			stale.APIKeys = []config.APIKey{ok.APIKeys[0]}
			stale.APIKeys[0].Subject = "two words"
			return []*translate.Fragment{stale}
		}, `rendered bundle is invalid: api key "team-a/k1": subject: must be a non-empty subject`},
		{"invalid fragment", func() []*translate.Fragment {
			bad := ptr(*ok)
			bad.Policy.Routes = nil
			return []*translate.Fragment{bad}
		}, "rendered bundle is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(tt.frags())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "key-number-one") {
				t.Fatalf("the plaintext key appears in %v", err)
			}
		})
	}
}

func TestRenderSharesIdenticalIssuers(t *testing.T) {
	t.Parallel()
	x := frag(t, "x", "selector: {}\nauthentication: {jwt: [{issuerURL: \"https://idp.example.com/\", audiences: [a]}]}\nroutes: [{}]")
	y := ptr(*x)
	y.Policy.Name = "team-a/y"
	data, err := Render([]*translate.Fragment{x, y})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil || len(cfg.Issuers) != 1 {
		t.Fatalf("got %v issuers (%v), want the identical issuer once", cfg, err)
	}
}

func TestFragmentsErrors(t *testing.T) {
	t.Parallel()
	valid, err := Render([]*translate.Fragment{frag(t, "a", "selector: {}\nroutes: [{public: true}]")})
	if err != nil {
		t.Fatal(err)
	}
	keyed, err := Render([]*translate.Fragment{frag(t, "k", "selector: {}\nauthentication: {apiKeys: {allowedScopes: [orders:read], secretNames: [s]}}\nroutes: [{}]",
		apiKeySecret("s", "0123456789abcdefGHIJKLmnopgh", nil))})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, data, want string
	}{
		{"not yaml", "{{{", "bundle is invalid"},
		{"unknown field", string(valid) + "surprise: true\n", "bundle is invalid"},
		{"wrong kind", strings.Replace(string(valid), "kind: ProxyConfig", "kind: Other", 1), "bundle is invalid"},
		{"missing issuer", strings.Replace(string(valid), "routes:", "authentication: {issuers: [ghost]}\n  routes:", 1), "bundle is invalid"},
		{"policy accepting every key", strings.Replace(string(keyed), "      keys:\n      - team-a/s\n", "      keys: []\n", 1), "accepts API keys without naming them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Fragments([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, empty := range []string{"", " \n\t"} {
		if frags, err := Fragments([]byte(empty)); err != nil || len(frags) != 0 {
			t.Fatalf("got %v, %v for %q; want no fragments", frags, err, empty)
		}
	}
}

func TestFragmentsDefaultSources(t *testing.T) {
	t.Parallel()
	data := []byte(`apiVersion: authgate.dev/v1alpha1
kind: ProxyConfig
upstream: {url: "http://127.0.0.1:8080"}
apiKeys:
  keys: [{name: k, hash: "sha256:` + strings.Repeat("ab", 32) + `"}]
policies:
- name: p
  authentication: {apiKeys: {allowedScopes: [orders:read], keys: [k]}}
  routes: [{name: r}]
`)
	frags, err := Fragments(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []config.CredentialSource{{Type: config.SourceHeader, Name: config.DefaultAPIKeyHeader}}
	if got := frags["p"].Policy.Authentication.APIKeys.Sources; !slices.Equal(got, want) {
		t.Fatalf("got sources %+v, want the explicit default %+v", got, want)
	}
}

// TestNoPlaintextKeyInBundle: the key is hashed by Translate and the bundle
// holds only the hash.
func TestNoPlaintextKeyInBundle(t *testing.T) {
	t.Parallel()
	const key = "agk_bundle_must_not_hold_me_42"
	f := frag(t, "p", "selector: {}\nauthentication: {apiKeys: {allowedScopes: [orders:read], secretNames: [s]}}\nroutes: [{}]", apiKeySecret("s", key, nil))
	data, err := Render([]*translate.Fragment{f})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), key) {
		t.Fatal("the plaintext key appears in the bundle")
	}
	if !strings.Contains(string(data), "sha256:") {
		t.Fatal("got no key hash in the bundle")
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	if got, want := Hash([]byte("abc")), config.Hash([]byte("abc")); got != want || len(got) != 64 {
		t.Fatalf("got %q, want the proxy's config hash %q", got, want)
	}
	if Hash([]byte("a")) == Hash([]byte("b")) {
		t.Fatal("got equal hashes for different data")
	}
}

// FuzzFragments: a bundle Secret can be edited by anyone allowed to edit
// the namespace's Secrets (and a legacy bundle ConfigMap, read once on
// upgrade, by anyone allowed to edit its ConfigMaps); parsing it must never
// panic, and whatever it accepts must render.
func FuzzFragments(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.golden.yaml")
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: \"http://127.0.0.1:8080\"}\n"))
	f.Add([]byte("policies: [{name: x, authentication: {apiKeys: {}}}]"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		frags, err := Fragments(data)
		if err != nil {
			return
		}
		if _, err := Render(slices.Collect(maps.Values(frags))); err != nil {
			// Hand-written bundles may hold what Render refuses (a key hash
			// under two names in different policies is caught by Parse;
			// source prefix conflicts only by the proxy), but never a panic.
			return
		}
	})
}

func ptr[T any](v T) *T { return &v }
