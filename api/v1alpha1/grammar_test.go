package v1alpha1_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/pathpattern"
	"github.com/authgate/authgate/proxy/urlrule"
)

// The CRD's validation markers are literals (controller-gen cannot read Go
// constants), so this test keeps them equal to the grammar packages the
// proxy and the controller validate with: the pattern and maxLength of
// every field the API server checks first, and the enum of algorithms.
func TestCRDMatchesGrammarPackages(t *testing.T) {
	t.Parallel()
	for _, crd := range []string{
		filepath.Join("..", "..", "config", "crd", "bases", "authgate.dev_authpolicies.yaml"),
		filepath.Join("..", "..", "charts", "authgate", "crds", "authgate.dev_authpolicies.yaml"),
	} {
		spec := crdSpecSchema(t, crd)
		tests := []struct {
			field     string
			path      []string
			pattern   string
			maxLength int
		}{
			{"spec.routes[].paths[]", []string{"routes", "items", "paths", "items"}, pathpattern.CRDRegexp, pathpattern.MaxLen},
			{"spec.authentication.jwt[].issuerURL", []string{"authentication", "jwt", "items", "issuerURL"}, urlrule.IssuerCRDRegexp, urlrule.MaxLen},
			{"spec.authentication.jwt[].jwksURL", []string{"authentication", "jwt", "items", "jwksURL"}, urlrule.JWKSCRDRegexp, urlrule.MaxLen},
			{"spec.revocations[].issuer", []string{"revocations", "items", "issuer"}, urlrule.IssuerCRDRegexp, urlrule.MaxLen},
		}
		for _, tt := range tests {
			s := schemaAt(t, spec, tt.path)
			if got, _ := s["pattern"].(string); got != tt.pattern {
				t.Errorf("%s: %s pattern: got %q, want %q", crd, tt.field, got, tt.pattern)
			}
			if got, _ := s["maxLength"].(float64); int(got) != tt.maxLength {
				t.Errorf("%s: %s maxLength: got %v, want %d", crd, tt.field, s["maxLength"], tt.maxLength)
			}
		}
		algs := schemaAt(t, spec, []string{"authentication", "jwt", "items", "algorithms", "items"})
		var got []string
		enum, _ := algs["enum"].([]any)
		for _, e := range enum {
			a, _ := e.(string)
			got = append(got, a)
		}
		if want := config.SupportedAlgorithms(); !slices.Equal(got, want) {
			t.Errorf("%s: spec.authentication.jwt[].algorithms[] enum: got %v, want %v", crd, got, want)
		}
	}
}

// crdSpecSchema returns the openAPIV3Schema of .spec of the CRD's only
// version.
func crdSpecSchema(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("%s: got %d versions, want 1", file, len(crd.Spec.Versions))
	}
	return schemaAt(t, crd.Spec.Versions[0].Schema.OpenAPIV3Schema, []string{"spec"})
}

// schemaAt walks properties by name; "items" steps into an array's items.
func schemaAt(t *testing.T, s map[string]any, path []string) map[string]any {
	t.Helper()
	for _, name := range path {
		var next any
		if name == "items" {
			next = s["items"]
		} else {
			props, _ := s["properties"].(map[string]any)
			next = props[name]
		}
		m, ok := next.(map[string]any)
		if !ok {
			t.Fatalf("no schema at %v (missing %q)", path, name)
		}
		s = m
	}
	return s
}
