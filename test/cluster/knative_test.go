package cluster

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/test/wait"
)

const (
	knativeNS  = "knative-serving"
	knativeKey = "example-knative-key-change-me-01"
)

var (
	revisionGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Revision"}
	knativeUp   bool
)

// installKnative applies Knative Serving's own manifests (assembled from
// its module by hack/cluster/knative/manifests: the CRDs, then
// config/core with the locally built images) and waits for its controller,
// webhook, autoscaler and activator. Idempotent: later callers find it up.
func installKnative(t *testing.T) {
	t.Helper()
	if knativeUp {
		return
	}
	dir := os.Getenv(envKnative)
	if dir == "" {
		t.Fatalf("%s is unset: run under make e2e", envKnative)
	}
	start := time.Now()
	apply(t, filepath.Join(dir, "crds.yaml"))
	apply(t, filepath.Join(dir, "core.yaml"))
	for _, d := range []string{"controller", "webhook", "autoscaler", "activator"} {
		waitAvailable(t, knativeNS, d)
	}
	figs.add("knative_install_to_ready", time.Since(start).Seconds(), "s")
	knativeUp = true
}

// waitAvailable waits until a Deployment has an available replica.
func waitAvailable(t *testing.T, ns, name string) {
	t.Helper()
	wait.ForNil(t, podReadyTimeout, func() error {
		var d appsv1.Deployment
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
			return err
		}
		if d.Status.AvailableReplicas < 1 {
			return fmt.Errorf("deployment %s/%s: %d available", ns, name, d.Status.AvailableReplicas)
		}
		return nil
	}, "deployment %s/%s available", ns, name)
}

// waitRevisionReady waits for a Knative Revision's Ready condition.
func waitRevisionReady(t *testing.T, ns, name string) {
	t.Helper()
	wait.ForNil(t, podReadyTimeout, func() error {
		rev := &unstructured.Unstructured{}
		rev.SetGroupVersionKind(revisionGVK)
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, rev); err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(rev.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Ready" {
				if m["status"] == "True" {
					return nil
				}
				return fmt.Errorf("revision %s/%s Ready=%v: %v %v", ns, name, m["status"], m["reason"], m["message"])
			}
		}
		return fmt.Errorf("revision %s/%s has no Ready condition yet", ns, name)
	}, "revision %s/%s ready", ns, name)
}

// serviceURL is http://<ClusterIP>:<port named http> of a Service.
func serviceURL(t *testing.T, ns, name string) string {
	t.Helper()
	var svc corev1.Service
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			return fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, p.Port)
		}
	}
	t.Fatalf("service %s/%s has no port named http: %+v", ns, name, svc.Spec.Ports)
	return ""
}

// withHeaders is a client that adds headers to every request, as an ingress
// adds Knative-Serving-Namespace and -Revision for the activator.
func withHeaders(c *http.Client, hdr map[string]string) *http.Client {
	out := *c
	base := c.Transport
	out.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return base.RoundTrip(r)
	})
	return &out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// allRevisionPods lists the pods of a revision, terminating ones included.
func allRevisionPods(t *testing.T, ns, rev string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := k8s.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels{"serving.knative.dev/revision": rev}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// revisionPods lists the pods of a revision that are not terminating.
func revisionPods(t *testing.T, ns, rev string) []corev1.Pod {
	t.Helper()
	var out []corev1.Pod
	for _, p := range allRevisionPods(t, ns, rev) {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// TestKnativeService: real Knative Serving (hack/cluster/knative) runs
// examples/knative-service.yaml: Knative's controller creates the revision's
// Deployment, the authgate webhook injects the sidecar into its pod, the
// revision becomes Ready, and requests sent the way the ingress sends them
// -- to queue-proxy (the revision's private Service) and through the
// activator -- are decided by the sidecar. Then the revision scales to zero
// and the activator brings it back for a request.
func TestKnativeService(t *testing.T) {
	dumpOnFailure(t, "knative-demo")
	dumpOnFailure(t, knativeNS)
	installKnative(t)
	apply(t, filepath.Join(repoRoot, "examples", "knative-service.yaml"))
	const rev = "hello-00001"
	waitRevisionReady(t, "knative-demo", rev)
	pods := readyPods(t, "knative-demo", map[string]string{"serving.knative.dev/revision": rev}, 1)
	for _, c := range []string{"authgate-proxy", "queue-proxy"} {
		if !hasContainer(&pods[0], c) {
			t.Fatalf("revision pod %s has no %s container", pods[0].Name, c)
		}
	}
	figs.add("knative_pod_start_to_ready_with_sidecar", readySince(&pods[0]).Seconds(), "s")

	hdr := map[string]string{"X-API-Key": knativeKey}
	cases := []decision{
		{"public health", http.MethodGet, "/healthz", nil, http.StatusOK, ""},
		{"no credential", http.MethodGet, "/hello/x", nil, http.StatusUnauthorized, ""},
		{"wrong key", http.MethodGet, "/hello/x", map[string]string{"X-API-Key": "not-a-key-of-this-function-00"}, http.StatusUnauthorized, ""},
		{"missing scope", http.MethodPost, "/hello/x", hdr, http.StatusForbidden, ""},
		{"allowed", http.MethodGet, "/hello/x", hdr, http.StatusOK, "partner"},
		{"spoofed identity stripped", http.MethodGet, "/hello/x", map[string]string{"X-API-Key": knativeKey, "X-Authgate-Subject": "admin"}, http.StatusOK, "partner"},
		{"no route", http.MethodGet, "/other", hdr, http.StatusForbidden, ""},
	}
	// The ingress sends to the revision's public Service; when the activator
	// is not in the path its endpoints are the pods' queue-proxy, which the
	// private Service targets directly.
	queue := serviceURL(t, "knative-demo", rev+"-private")
	c := httpClientFrom("")
	waitEnforced(t, c, queue+"/hello/x", hdr)
	t.Run("through queue-proxy", func(t *testing.T) { checkDecisions(t, c, queue, cases) })

	activator := serviceURL(t, knativeNS, "activator-service")
	viaActivator := withHeaders(c, map[string]string{"Knative-Serving-Namespace": "knative-demo", "Knative-Serving-Revision": rev})
	t.Run("through the activator", func(t *testing.T) { checkDecisions(t, viaActivator, activator, cases) })

	t.Run("scale to zero and back", func(t *testing.T) {
		// hack/cluster/images.sh shortens config-autoscaler's stable window
		// and scale-to-zero grace period, so an idle revision goes to zero
		// in well under a minute.
		// Zero means no pod at all: a terminating pod still serves what
		// the activator sends it while it drains.
		wait.For(t, 5*time.Minute, func() bool { return len(allRevisionPods(t, "knative-demo", rev)) == 0 }, "revision %s to scale to zero", rev)
		start := time.Now()
		r := send(t, viaActivator, http.MethodGet, activator+"/hello/x", hdr)
		if r.status != http.StatusOK || r.header1("X-Authgate-Subject") != "partner" {
			t.Fatalf("first request after scale to zero: status %d, subject %q: %s", r.status, r.header1("X-Authgate-Subject"), r.body)
		}
		figs.add("knative_scale_from_zero_first_request_with_sidecar", time.Since(start).Seconds(), "s")
		pods := revisionPods(t, "knative-demo", rev)
		if len(pods) == 0 || !hasContainer(&pods[0], "authgate-proxy") {
			t.Fatalf("after scale from zero: %d pods, sidecar in the first: %v", len(pods), len(pods) > 0 && hasContainer(&pods[0], "authgate-proxy"))
		}
		checkDecisions(t, viaActivator, activator, cases[1:4])
	})

	t.Run("pod start without the sidecar", func(t *testing.T) {
		// The same function, its pods opted out of injection.
		applyYAML(t, []byte(`apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello-bare, namespace: knative-demo}
spec:
  template:
    metadata:
      labels: {authgate.dev/inject: "false"}
    spec:
      containers:
        - image: dev.local/authgate/authgate:e2e
          args: [echo, --listen, ":8080"]
          ports: [{containerPort: 8080}]
`))
		waitRevisionReady(t, "knative-demo", "hello-bare-00001")
		bare := readyPods(t, "knative-demo", map[string]string{"serving.knative.dev/revision": "hello-bare-00001"}, 1)
		if hasContainer(&bare[0], "authgate-proxy") {
			t.Fatalf("opted-out revision pod %s has the sidecar", bare[0].Name)
		}
		figs.add("knative_pod_start_to_ready_without_sidecar", readySince(&bare[0]).Seconds(), "s")
		// The cold start a caller sees, to compare with the sidecar's.
		const bareRev = "hello-bare-00001"
		wait.For(t, 5*time.Minute, func() bool { return len(allRevisionPods(t, "knative-demo", bareRev)) == 0 }, "revision %s to scale to zero", bareRev)
		viaActivator := withHeaders(c, map[string]string{"Knative-Serving-Namespace": "knative-demo", "Knative-Serving-Revision": bareRev})
		start := time.Now()
		if r := send(t, viaActivator, http.MethodGet, activator+"/hello/x", nil); r.status != http.StatusOK {
			t.Fatalf("first request after scale to zero: status %d: %s", r.status, r.body)
		}
		figs.add("knative_scale_from_zero_first_request_without_sidecar", time.Since(start).Seconds(), "s")
	})
}
