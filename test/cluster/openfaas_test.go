package cluster

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/authgate/authgate/test/wait"
)

// TestOpenFaaSFunction: a function deployed the way OpenFaaS users deploy
// one (POST /system/functions on the gateway), through the gateway and
// faas-netes' endpoint resolution to podIP:8080. Those components are the
// reproduction in test/cluster/openfaas, not OpenFaaS (no OpenFaaS module
// can be downloaded here); the webhook, kubelet, kube-proxy and authgate are
// real.
func TestOpenFaaSFunction(t *testing.T) {
	dumpOnFailure(t, "openfaas")
	dumpOnFailure(t, "openfaas-fn")
	apply(t, filepath.Join(repoRoot, "test", "cluster", "openfaas", "deploy.yaml"))
	apply(t, filepath.Join(repoRoot, "examples", "openfaas-function.yaml"))
	readyPods(t, "openfaas", map[string]string{"app": "gateway"}, 1)
	var svc corev1.Service
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: "openfaas", Name: "gateway"}, &svc); err != nil {
		t.Fatal(err)
	}
	gw := fmt.Sprintf("http://%s:8080", svc.Spec.ClusterIP)
	c := httpClientFrom("")
	body := []byte(`{"service":"echo-fn","image":"dev.local/openfaas-repro/echo-fn:e2e"}`)
	wait.ForNil(t, podReadyTimeout, func() error {
		resp, err := c.Post(gw+"/system/functions", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("deploy: %s", resp.Status)
		}
		return nil
	}, "deploy echo-fn through the gateway")
	pods := readyPods(t, "openfaas-fn", map[string]string{"faas_function": "echo-fn"}, 1)
	if !hasContainer(&pods[0], "authgate-proxy") {
		t.Fatalf("function pod %s has no authgate-proxy sidecar", pods[0].Name)
	}
	figs.add("openfaas_pod_start_to_ready_with_sidecar", readySince(&pods[0]).Seconds(), "s")
	base := gw + "/function/echo-fn.openfaas-fn"
	key := "example-openfaas-key-change-me-01"
	waitEnforced(t, c, base+"/hello/x", map[string]string{"X-API-Key": key})
	cases := []decision{
		{"no credential", http.MethodGet, "/hello/x", nil, http.StatusUnauthorized, ""},
		{"missing scope", http.MethodPost, "/hello/x", map[string]string{"X-API-Key": key}, http.StatusForbidden, ""},
		{"allowed", http.MethodGet, "/hello/x", map[string]string{"X-API-Key": key}, http.StatusOK, "partner"},
		{"spoofed identity stripped", http.MethodGet, "/hello/x", map[string]string{"X-API-Key": key, "X-Authgate-Subject": "admin"}, http.StatusOK, "partner"},
	}
	checkDecisions(t, c, base, cases)
	r, err := do(t.Context(), c, http.MethodGet, fmt.Sprintf("http://%s:8082/hello/x", pods[0].Status.PodIP), nil)
	status := 0
	if err == nil {
		status = r.status
	}
	t.Logf("a call without credentials to the watchdog's port on the pod IP got %d (err %v)", status, err)
	figs.add("openfaas_direct_pod_port_status", float64(status), "http_status")
}
