package cluster

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/authgate/authgate/test/wait"
)

// TestPlainDeployment: examples/plain-deployment.yaml applied as a user
// would; the real webhook injects the sidecar, the real kubelet runs it, and
// requests through the Service's ClusterIP (kube-proxy) are decided by it.
func TestPlainDeployment(t *testing.T) {
	dumpOnFailure(t, "plain-demo")
	apply(t, filepath.Join(repoRoot, "examples", "plain-deployment.yaml"))
	pods := readyPods(t, "plain-demo", map[string]string{"app": "hello"}, 1)
	if !hasContainer(&pods[0], "authgate-proxy") {
		t.Fatalf("pod %s has no authgate-proxy sidecar", pods[0].Name)
	}
	var svc corev1.Service
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: "plain-demo", Name: "hello"}, &svc); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://%s", svc.Spec.ClusterIP)
	c := httpClientFrom("")
	waitEnforced(t, c, base+"/hello/x", map[string]string{"X-API-Key": "example-plain-key-change-me-0001"})

	key := "example-plain-key-change-me-0001"
	cases := []decision{
		{"public health", http.MethodGet, "/healthz", nil, http.StatusOK, ""},
		{"no credential", http.MethodGet, "/hello/x", nil, http.StatusUnauthorized, ""},
		{"wrong key", http.MethodGet, "/hello/x", map[string]string{"X-API-Key": "not-a-key-of-this-function-00"}, http.StatusUnauthorized, ""},
		{"missing scope", http.MethodPost, "/hello/x", map[string]string{"X-API-Key": key}, http.StatusForbidden, ""},
		{"allowed", http.MethodGet, "/hello/x", map[string]string{"X-API-Key": key}, http.StatusOK, "partner"},
		{"spoofed identity stripped", http.MethodGet, "/hello/x", map[string]string{"X-API-Key": key, "X-Authgate-Subject": "admin"}, http.StatusOK, "partner"},
		{"no route", http.MethodGet, "/other", map[string]string{"X-API-Key": key}, http.StatusForbidden, ""},
	}
	checkDecisions(t, c, base, cases)
}

// decision is one request and what the sidecar must make of it: the status,
// and for a 200 the subject the function must see.
type decision struct {
	name, method, path string
	hdr                map[string]string
	want               int
	subject            string
}

// checkDecisions sends each request to base and checks the status and, when
// the function answered, that it saw the verified subject and never the API
// key.
func checkDecisions(t *testing.T, c *http.Client, base string, cases []decision) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, c, tc.method, base+tc.path, tc.hdr)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want != http.StatusOK {
				return
			}
			if r.received == nil {
				t.Fatalf("200 without the function's answer: %s", r.body)
			}
			if got := r.header1("X-Authgate-Subject"); got != tc.subject {
				t.Fatalf("function saw X-Authgate-Subject %q, want %q", got, tc.subject)
			}
			if r.header1("X-API-Key") != "" {
				t.Fatal("function received the API key")
			}
		})
	}
}

// waitEnforced waits until the sidecar enforces a policy: the pod can be Ready
// before the kubelet has projected the rendered config, and then the proxy
// answers 503 (no config for this workload) rather than the policy's answer.
func waitEnforced(t *testing.T, c *http.Client, url string, hdr map[string]string) {
	t.Helper()
	wait.ForNil(t, podReadyTimeout, func() error {
		r, err := do(t.Context(), c, http.MethodGet, url, hdr)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("status %d: %s", r.status, r.body)
		}
		return nil
	}, "policy enforced at %s", url)
}
