package config

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestErrorPathsAreTyped(t *testing.T) {
	t.Parallel()
	errs := validateMutated(t, func(c *ProxyConfig) { c.Policies[0].Routes[2].Paths = []string{"/a", "a"} })
	if len(errs) != 1 {
		t.Fatalf("got errors %v, want one", errs)
	}
	want := Path{{Field: "policies"}, {Index: 0}, {Field: "routes"}, {Index: 2}, {Field: "paths"}, {Index: 1}}
	if got := errs[0].Path; !slices.Equal(got, want) {
		t.Fatalf("got path %#v, want %#v", got, want)
	}
	if got, want := errs[0].Error(), "policies[0].routes[2].paths[1]: must start with /, got \"a\""; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPathCut(t *testing.T) {
	t.Parallel()
	p := Path{{Field: "issuers"}, {Index: 3}, {Field: "sources"}, {Index: 0}, {Field: "name"}}
	rest, ok := p.CutField("issuers")
	if !ok {
		t.Fatal("got no issuers prefix")
	}
	i, rest, ok := rest.CutIndex()
	if !ok || i != 3 {
		t.Fatalf("got index %d (%v), want 3", i, ok)
	}
	if got, want := rest.Under("spec.authentication.jwt[3]"), "spec.authentication.jwt[3].sources[0].name"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, ok := rest.CutField("name"); ok {
		t.Fatal("got a cut of a field that is not first")
	}
	if _, _, ok := rest.CutIndex(); ok {
		t.Fatal("got an index cut of a field step")
	}
	if got := (Path{{Index: 2}}).Under("spec.routes"); got != "spec.routes[2]" {
		t.Fatalf("got %q, want spec.routes[2]", got)
	}
	if got := Path(nil).Under("spec"); got != "spec" {
		t.Fatalf("got %q, want spec", got)
	}
	if i, rest, ok := p.CutElem("issuers"); !ok || i != 3 || rest.String() != "sources[0].name" {
		t.Fatalf("got %d, %q, %v; want issuers[3] cut", i, rest, ok)
	}
	if _, _, ok := p.CutElem("policies"); ok {
		t.Fatal("got policies cut from an issuers path")
	}
	if got := p.String(); got != "issuers[3].sources[0].name" {
		t.Fatalf("got %q", got)
	}
}

// Sources disagreeing on a prefix conflict only within what one policy
// accepts: policies that never share a pod may read one header
// differently (the controller checks pods two policies may share).
func TestValidateSourcePrefixesPerPolicy(t *testing.T) {
	t.Parallel()
	errs := validateMutated(t, func(c *ProxyConfig) {
		c.Issuers[0].Sources = []CredentialSource{{Type: SourceHeader, Name: "X-Token", Prefix: "Bearer "}}
		keys := c.Policies[0]
		keys.Name, keys.Authentication = "keys", Authentication{APIKeys: &APIKeyAccess{Sources: []CredentialSource{{Type: SourceHeader, Name: "x-token"}}}}
		c.Policies[0].Authentication.APIKeys = nil
		c.Policies = append(c.Policies, keys)
	})
	if len(errs) != 0 {
		t.Fatalf("got %v, want no errors", errs)
	}
}

// Zero values are left out by the types themselves (omitzero): an empty
// struct or a 0s duration would read as a setting.
func TestMarshalOmitsZeroValues(t *testing.T) {
	t.Parallel()
	off := false
	c := ProxyConfig{
		APIVersion: APIVersion, Kind: Kind, Upstream: Upstream{URL: "http://127.0.0.1:1"},
		Issuers:  []Issuer{{Name: "i", IssuerURL: "https://idp.example.com", Discovery: &off}},
		Policies: []Policy{{Name: "p", Authentication: Authentication{APIKeys: &APIKeyAccess{}}, Routes: []Route{{Name: "r", RequireMFA: &MFA{}}}}},
	}
	raw, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, unwanted := range []string{`"listen"`, `"limits"`, `"tokenCache"`, `"decisionLog"`, `"selector"`, `"headers"`, `"fetch"`, `"0s"`} {
		if strings.Contains(s, unwanted) {
			t.Fatalf("got %s in %s", unwanted, s)
		}
	}
	if n := strings.Count(s, `"apiKeys"`); n != 1 {
		t.Fatalf("got %d apiKeys in %s, want only the policy's (its presence accepts keys)", n, s)
	}
	for _, wanted := range []string{`"requireMFA":{}`, `"apiKeys":{}`, `"discovery":false`} {
		if !strings.Contains(s, wanted) {
			t.Fatalf("got no %s in %s", wanted, s)
		}
	}
}
