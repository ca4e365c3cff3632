package cluster

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/authgate/authgate/test/wait"
)

// TestInboundCapture is the bypass of issue 11: every platform leaves the
// function listening on the pod IP (Knative's user port, the OpenFaaS
// watchdog moved to 8082, a plain pod's application port), so any pod
// could call it around the proxy with its own identity headers. With the
// injector's capture init container, a call to the function's own port --
// from another pod (the caller pod) and from the node (where the kubelet
// probes from) -- is answered by the proxy: 401 without a credential, and
// the function never sees the spoofed subject. The same pods becoming
// Ready shows that the kubelet's probes of the captured port still reach
// the function (through the proxy's admin port).
func TestInboundCapture(t *testing.T) {
	for _, ns := range []string{"plain-demo", "openfaas-fn", saNS, callersNS} {
		dumpOnFailure(t, ns)
	}
	callerURL, activator := saTopology(t)
	apply(t, filepath.Join(repoRoot, "examples", "plain-deployment.yaml"))
	plain := readyPods(t, "plain-demo", map[string]string{"app": "hello"}, 1)
	_, faas := openFaaSEchoFn(t)
	// Wake the revision (it may have gone to zero) through the activator.
	callFromPod(t, callerURL, activator+"/hello/x", "orders", revisionHeaders(ordersRev))
	orders := readyPods(t, saNS, map[string]string{"serving.knative.dev/revision": ordersRev}, 1)

	spoof := map[string]string{"X-Authgate-Subject": "admin", "X-Authgate-Scopes": "admin"}
	for _, tc := range []struct {
		platform string
		pod      *corev1.Pod
		port     int
	}{
		{"plain", &plain[0], 8081},
		{"openfaas", &faas[0], 8082},
		{"knative", &orders[0], 8080},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			if !hasContainer(tc.pod, "authgate-proxy") || !hasInitContainer(tc.pod, "authgate-capture") {
				t.Fatalf("pod %s: want the authgate-proxy sidecar and the authgate-capture init container", tc.pod.Name)
			}
			if got := tc.pod.Annotations["authgate.dev/inbound-capture"]; got != "true" {
				t.Errorf("pod %s: annotation authgate.dev/inbound-capture=%q, want \"true\"", tc.pod.Name, got)
			}
			url := fmt.Sprintf("http://%s/hello/x", net.JoinHostPort(tc.pod.Status.PodIP, strconv.Itoa(tc.port)))
			fromPod := callFromPod(t, callerURL, url, "", spoof)
			t.Logf("from the caller pod, GET %s with a spoofed subject and no credential: %d", url, fromPod.status)
			figs.add("direct_call_function_port_status_"+tc.platform, float64(fromPod.status), "http_status")
			fromNode := send(t, httpClientFrom(""), http.MethodGet, url, spoof)
			for who, r := range map[string]reply{"another pod": fromPod, "the node": fromNode} {
				if r.status != http.StatusUnauthorized || r.received != nil {
					t.Errorf("from %s, a direct call to the function's port %d got %d (function answered: %v), want the proxy's 401",
						who, tc.port, r.status, r.received != nil)
				}
			}
		})
	}
}

// TestNetworkPolicy: the controller keeps a NetworkPolicy for the plain
// example's AuthPolicy that selects its injected pod and opens only named
// ports the function's own port is not among. The node's bridge CNI does
// not enforce NetworkPolicies, so only the object and what it selects are
// checked here; inbound capture (above) is what closes the port on this
// node.
func TestNetworkPolicy(t *testing.T) {
	apply(t, filepath.Join(repoRoot, "examples", "plain-deployment.yaml"))
	pod := readyPods(t, "plain-demo", map[string]string{"app": "hello"}, 1)[0]
	var np networkingv1.NetworkPolicy
	wait.ForNil(t, podReadyTimeout, func() error {
		return k8s.Get(t.Context(), types.NamespacedName{Namespace: "plain-demo", Name: "authgate-hello"}, &np)
	}, "NetworkPolicy plain-demo/authgate-hello")
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("NetworkPolicy selector %s does not select the function pod (labels %v)", sel, pod.Labels)
	}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.Type != intstr.String {
				t.Errorf("NetworkPolicy opens port %v, want named ports only", p.Port)
			}
		}
	}
	if len(np.OwnerReferences) != 1 || np.OwnerReferences[0].Kind != "AuthPolicy" {
		t.Errorf("owner references %+v, want the AuthPolicy", np.OwnerReferences)
	}
}

func hasInitContainer(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}
