package claims_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/authgate/authgate/proxy/claims"
)

// lookupCases is testdata/lookup.json: a claim set shaped like a projected
// Kubernetes ServiceAccount token's and paths with what they must read.
// policies' Rego claim() is checked against the same file.
type lookupCases struct {
	Claims map[string]any `json:"claims"`
	Cases  []struct {
		Path    string `json:"path"`
		Want    any    `json:"want"`
		Missing bool   `json:"missing"`
	} `json:"cases"`
}

func TestLookup(t *testing.T) {
	raw, err := os.ReadFile("testdata/lookup.json")
	if err != nil {
		t.Fatal(err)
	}
	var lc lookupCases
	if err := json.Unmarshal(raw, &lc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range lc.Cases {
		t.Run(tc.Path, func(t *testing.T) {
			got, ok := claims.Lookup(lc.Claims, tc.Path)
			if ok == tc.Missing || (ok && !reflect.DeepEqual(got, tc.Want)) {
				t.Fatalf("Lookup(%q) = %v, %v; want %v, %v", tc.Path, got, ok, tc.Want, !tc.Missing)
			}
		})
	}
}

func FuzzLookup(f *testing.F) {
	f.Add(`{"kubernetes.io":{"namespace":"a"}}`, "kubernetes.io.namespace")
	f.Add(`{"a":{"b":{"c":1}},"a.b":{"d":2}}`, "a.b.c")
	f.Add(`{"a.b":1}`, "a.b")
	f.Fuzz(func(t *testing.T, doc, path string) {
		var cl map[string]any
		if json.Unmarshal([]byte(doc), &cl) != nil || cl == nil {
			return
		}
		v, ok := claims.Lookup(cl, path)
		if !ok && v != nil {
			t.Fatalf("Lookup(%q) = %v, false", path, v)
		}
		// A top-level key always reads itself: it is the longest first key.
		if w, exists := cl[path]; exists && path != "" {
			if !ok || !reflect.DeepEqual(v, w) {
				t.Fatalf("Lookup(%q) = %v, %v; want the top-level value %v", path, v, ok, w)
			}
		}
	})
}
