package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/authgate/authgate/test/wait"
)

const (
	assertionNS       = "assertion-demo"
	assertionKey      = "example-assertion-key-change-me-0001"
	assertionImage    = "dev.local/authgate-e2e/assertion-verifier:e2e"
	assertionExample  = "registry.example.com/authgate/assertion-verifier:latest"
	assertionJWKSName = "authgate-assertion-jwks"
)

// TestIdentityAssertion: examples/assertion-verifier.yaml as a user applies
// it (only the image name replaced by the locally built one). The controller
// creates the namespace's signing key, the sidecar signs an assertion for
// each authenticated request, and the example function (go-oidc against the
// sidecar's loopback JWKS) accepts only that: what it answers is what it
// verified. A forged assertion next to a real key is replaced by the
// sidecar's; a forged one sent to the function's own port on the pod IP
// never reaches the function (inbound capture: the proxy's 401). The same
// public keys are served by the controller's in-cluster JWKS Service.
func TestIdentityAssertion(t *testing.T) {
	dumpOnFailure(t, assertionNS)
	raw, err := os.ReadFile(filepath.Join(repoRoot, "examples", "assertion-verifier.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(assertionExample)) {
		t.Fatalf("examples/assertion-verifier.yaml no longer names the image %s", assertionExample)
	}
	applyYAML(t, bytes.ReplaceAll(raw, []byte(assertionExample), []byte(assertionImage)))
	pod := readyPods(t, assertionNS, map[string]string{"app": "verifier"}, 1)[0]
	if !hasContainer(&pod, "authgate-proxy") {
		t.Fatalf("pod %s has no authgate-proxy sidecar", pod.Name)
	}
	var svc corev1.Service
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: assertionNS, Name: "verifier"}, &svc); err != nil {
		t.Fatal(err)
	}
	base := "http://" + svc.Spec.ClusterIP
	c := httpClientFrom("")
	withKey := map[string]string{"X-API-Key": assertionKey}
	// The signing key Secret is projected into the sidecar by the kubelet,
	// possibly after the pod is Ready: until then the sidecar refuses (fail
	// closed) and the function is never called.
	waitEnforced(t, c, base+"/x", withKey)

	forged := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
	for _, tc := range []struct {
		name string
		url  string
		hdr  map[string]string
		want int
		sub  string
	}{
		{"verified", base + "/x", withKey, http.StatusOK, "partner"},
		{"forged assertion replaced", base + "/x", merge(withKey, map[string]string{"X-Authgate-Assertion": forged, "X-Authgate-Subject": "admin"}), http.StatusOK, "partner"},
		{"no credential", base + "/x", nil, http.StatusUnauthorized, ""},
		{"around the proxy on the pod IP", "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(8081)) + "/x",
			map[string]string{"X-Authgate-Assertion": forged, "X-Authgate-Subject": "admin"}, http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, c, http.MethodGet, tc.url, tc.hdr)
			if r.status != tc.want {
				t.Fatalf("GET %s: status %d, want %d: %s", tc.url, r.status, tc.want, r.body)
			}
			if tc.want != http.StatusOK {
				// The function's own refusals say "identity assertion": a
				// 401 without it is the proxy's.
				if strings.Contains(r.body, "identity assertion") {
					t.Fatalf("the function answered (it was reached without the proxy): %s", r.body)
				}
				return
			}
			var got struct {
				Subject string `json:"subject"`
				Kind    string `json:"kind"`
				Scope   string `json:"scope"`
			}
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("the function's answer %q: %v", r.body, err)
			}
			if got.Subject != tc.sub || got.Kind != "apikey" || !slices.Contains(strings.Fields(got.Scope), "verifier:read") {
				t.Fatalf("the function verified %+v, want subject %q, kind apikey, scope verifier:read", got, tc.sub)
			}
			if tc.name == "verified" {
				figs.add("assertion_verified_by_function_status", float64(r.status), "http_status")
			}
		})
	}

	t.Run("controller JWKS service", func(t *testing.T) {
		var cm corev1.ConfigMap
		wait.ForNil(t, podReadyTimeout, func() error {
			return k8s.Get(t.Context(), types.NamespacedName{Namespace: assertionNS, Name: assertionJWKSName}, &cm)
		}, "ConfigMap %s/%s", assertionNS, assertionJWKSName)
		want := kids(t, []byte(cm.Data["jwks.json"]))
		if len(want) == 0 {
			t.Fatalf("ConfigMap %s holds no keys: %q", assertionJWKSName, cm.Data["jwks.json"])
		}
		var jsvc corev1.Service
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: releaseNS, Name: "authgate-controller-assertion-jwks"}, &jsvc); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://%s/namespaces/%s/jwks.json", jsvc.Spec.ClusterIP, assertionNS)
		var served []string
		wait.ForNil(t, podReadyTimeout, func() error {
			r, err := do(t.Context(), c, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			if r.status != http.StatusOK {
				return fmt.Errorf("status %d: %s", r.status, r.body)
			}
			served = kids(t, []byte(r.body))
			if !slices.Equal(served, want) {
				return fmt.Errorf("served kids %v, ConfigMap kids %v", served, want)
			}
			return nil
		}, "GET %s", url)
		t.Logf("GET %s: kids %v", url, served)
	})
}

// kids are the sorted key IDs of a JWKS document.
func kids(t *testing.T, doc []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS %q: %v", doc, err)
	}
	out := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	slices.Sort(out)
	return out
}
