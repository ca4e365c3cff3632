package certs_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The RBAC generated from the markers (config/rbac/role.yaml, which the
// chart and config/default install) grants everything rotatorRules holds,
// the rules the envtest tests run the rotator with: the ClusterRole
// cluster-wide, the Role in its namespace.
func TestGeneratedRBACGrantsTheRotatorRules(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cluster, namespaced []rbacv1.PolicyRule
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj struct {
			Kind     string                     `json:"kind"`
			Metadata struct{ Namespace string } `json:"metadata"`
			Rules    []rbacv1.PolicyRule        `json:"rules"`
		}
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("config/rbac/role.yaml: %v", err)
		}
		switch {
		case obj.Kind == "ClusterRole":
			cluster = append(cluster, obj.Rules...)
		case obj.Kind == "Role" && obj.Metadata.Namespace == "authgate-system":
			namespaced = append(namespaced, obj.Rules...)
		}
	}
	if len(cluster) == 0 {
		t.Fatal("no ClusterRole in config/rbac/role.yaml")
	}
	wantNamespaced, wantCluster := rotatorRules("authgate-webhook-tls", "authgate-injector")
	for _, w := range wantNamespaced {
		for _, g := range expand(w) {
			if !grants(cluster, g) && !grants(namespaced, g) {
				t.Errorf("config/rbac/role.yaml does not grant %v in authgate-system", g)
			}
		}
	}
	for _, w := range wantCluster {
		for _, g := range expand(w) {
			if !grants(cluster, g) {
				t.Errorf("config/rbac/role.yaml does not grant %v cluster-wide", g)
			}
		}
	}
}

type grant struct{ group, resource, name, verb string }

func expand(r rbacv1.PolicyRule) []grant {
	var out []grant
	for _, g := range r.APIGroups {
		for _, res := range r.Resources {
			for _, n := range r.ResourceNames {
				for _, v := range r.Verbs {
					out = append(out, grant{g, res, n, v})
				}
			}
		}
	}
	return out
}

// grants reports whether rules allow g (a rule without resourceNames
// allows every name).
func grants(rules []rbacv1.PolicyRule, g grant) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, g.group) && slices.Contains(r.Resources, g.resource) && slices.Contains(r.Verbs, g.verb) &&
			(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, g.name)) {
			return true
		}
	}
	return false
}
