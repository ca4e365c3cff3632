package cluster

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	gw, pods := openFaaSEchoFn(t)
	c := httpClientFrom("")
	if !hasContainer(&pods[0], "authgate-proxy") {
		t.Fatalf("function pod %s has no authgate-proxy sidecar", pods[0].Name)
	}
	figs.add("openfaas_pod_start_to_ready_with_sidecar", readySince(&pods[0]).Seconds(), "s")
	base := gw + "/function/echo-fn.openfaas-fn"
	key := openFaaSKey
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
	// Inbound capture sends the watchdog's own port to the proxy
	// (TestInboundCapture has the other platforms and the call from a pod).
	if err != nil || status != http.StatusUnauthorized || r.received != nil {
		t.Errorf("a call without credentials to the watchdog's port on the pod IP got %d (err %v), want the proxy's 401", status, err)
	}
	figs.add("openfaas_direct_pod_port_status", float64(status), "http_status")

	// The same function opted out of injection (the pod label, which
	// faas-netes copies from the deployment's labels), for the figure.
	deployed := time.Now()
	deployFunction(t, c, gw, `{"service":"bare-fn","image":"dev.local/openfaas-repro/echo-fn:e2e","labels":{"authgate.dev/inject":"false"}}`)
	firstOK(t, c, gw+"/function/bare-fn.openfaas-fn/hello/x", nil, deployed, "openfaas_deploy_to_first_200_without_sidecar")
	bare := readyPods(t, "openfaas-fn", map[string]string{"faas_function": "bare-fn"}, 1)
	if hasContainer(&bare[0], "authgate-proxy") {
		t.Fatalf("opted-out function pod %s has the sidecar", bare[0].Name)
	}
	figs.add("openfaas_pod_start_to_ready_without_sidecar", readySince(&bare[0]).Seconds(), "s")
}

const openFaaSKey = "example-openfaas-key-change-me-01"

// openFaaSEchoFn sets up the (reproduced) OpenFaaS gateway and
// examples/openfaas-function.yaml, deploys echo-fn through the gateway
// unless it is deployed already, and returns the gateway's URL and the
// function's ready pods.
func openFaaSEchoFn(t *testing.T) (string, []corev1.Pod) {
	t.Helper()
	apply(t, filepath.Join(repoRoot, "test", "cluster", "openfaas", "deploy.yaml"))
	apply(t, filepath.Join(repoRoot, "examples", "openfaas-function.yaml"))
	readyPods(t, "openfaas", map[string]string{"app": "gateway"}, 1)
	gw := openFaaSGateway(t)
	var d appsv1.Deployment
	err := k8s.Get(t.Context(), types.NamespacedName{Namespace: "openfaas-fn", Name: "echo-fn"}, &d)
	switch {
	case apierrors.IsNotFound(err):
		c, deployed := httpClientFrom(""), time.Now()
		deployFunction(t, c, gw, `{"service":"echo-fn","image":"dev.local/openfaas-repro/echo-fn:e2e"}`)
		firstOK(t, c, gw+"/function/echo-fn.openfaas-fn/hello/x", map[string]string{"X-API-Key": openFaaSKey}, deployed,
			"openfaas_deploy_to_first_200_with_sidecar")
	case err != nil:
		t.Fatal(err)
	}
	return gw, readyPods(t, "openfaas-fn", map[string]string{"faas_function": "echo-fn"}, 1)
}

// deployFunction deploys a function the OpenFaaS way: POST /system/functions
// on the gateway.
func deployFunction(t *testing.T, c *http.Client, gw, body string) {
	t.Helper()
	wait.ForNil(t, podReadyTimeout, func() error {
		resp, err := c.Post(gw+"/system/functions", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("deploy: %s", resp.Status)
		}
		return nil
	}, "deploy %s through the gateway", body)
}

// firstOK waits for the first 200 from url and records the time since
// start (a deploy or a scale from zero) as the figure name: the cold start
// as a caller sees it.
func firstOK(t *testing.T, c *http.Client, url string, hdr map[string]string, start time.Time, name string) {
	t.Helper()
	waitEnforced(t, c, url, hdr)
	figs.add(name, time.Since(start).Seconds(), "s")
}

// openFaaSGateway is the (reproduced) OpenFaaS gateway's URL.
func openFaaSGateway(t *testing.T) string {
	t.Helper()
	var svc corev1.Service
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: "openfaas", Name: "gateway"}, &svc); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://%s:8080", svc.Spec.ClusterIP)
}
