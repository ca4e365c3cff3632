package cluster

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/authgate/authgate/test/wait"
)

// lifeYAML is a Knative Service that the autoscaler scales on requests
// per second (20 a pod, up to 3 pods), with the activator always in the
// path (target-burst-capacity -1): the traffic below goes through it, as
// it does in a cluster, and it reports the load the autoscaler acts on.
const lifeYAML = `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: life, namespace: knative-demo}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/metric: rps
        autoscaling.knative.dev/target: "20"
        autoscaling.knative.dev/target-utilization-percentage: "100"
        autoscaling.knative.dev/max-scale: "3"
        autoscaling.knative.dev/target-burst-capacity: "-1"
    spec:
      containers:
        - image: dev.local/authgate/authgate:e2e
          args: [echo, --listen, ":8080"]
          ports: [{containerPort: 8080}]
---
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: life, namespace: knative-demo}
spec:
  targets:
    knativeService: life
  authentication:
    apiKeys:
      secretNames: [hello-partner]
      sources: [{type: header, name: X-API-Key}]
  routes:
    - name: read
      methods: [GET]
      paths: ["/hello/**"]
      requireScopes: [hello:read]
`

var serviceGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// TestKnativeLifecycle: steady traffic with a valid key through the
// activator while Knative scales a protected revision from zero, up, down,
// and replaces it with a new revision; each phase's failed requests are a
// figure (goal 0). Each client sends about 9 requests a second (paced
// 100 ms), so 2 clients fit one pod and 8 need the 3 of max-scale.
//
// No Knative networking layer runs here (see docs/real-cluster.md), so the
// test does the one thing the ingress would: it sends to the revision that
// the Knative Service reports as its latest ready one, switching when the
// new revision becomes Ready, as the ingress switches when its route does.
func TestKnativeLifecycle(t *testing.T) {
	dumpOnFailure(t, "knative-demo")
	dumpOnFailure(t, knativeNS)
	installKnative(t)
	apply(t, filepath.Join(repoRoot, "examples", "knative-service.yaml"))
	applyYAML(t, []byte(lifeYAML))
	const rev1, rev2 = "life-00001", "life-00002"
	waitRevisionReady(t, "knative-demo", rev1)
	activator := serviceURL(t, knativeNS, "activator-service")
	var rev atomic.Pointer[string]
	rev.Store(ptrTo(rev1))
	target := func() (string, map[string]string) {
		return activator + "/hello/x", map[string]string{"X-API-Key": knativeKey,
			"Knative-Serving-Namespace": "knative-demo", "Knative-Serving-Revision": *rev.Load()}
	}
	c := httpClientFrom("")
	url, hdr := target()
	waitEnforced(t, c, url, hdr)
	l := newLoad(t, c, 100*time.Millisecond, target)

	// Each phase waits for what Knative does, then for some traffic
	// served in the new state, so the figure covers the change and after.
	servedSince := func(n int64) func() bool {
		base := l.ok.Load()
		return func() bool { return l.ok.Load()-base >= n }
	}
	t.Run("scale from zero under load", func(t *testing.T) {
		wait.For(t, 5*time.Minute, func() bool { return len(allRevisionPods(t, "knative-demo", rev1)) == 0 }, "revision %s to scale to zero", rev1)
		l.phase()
		l.clients(2)
		wait.For(t, podReadyTimeout, func() bool { return readyCount(t, rev1) >= 1 }, "a pod of %s ready", rev1)
		wait.For(t, podReadyTimeout, servedSince(100), "100 requests served after the scale from zero")
		l.record(t, "knative_scale_from_zero_under_load_failed_requests", "scale from zero under load")
	})
	t.Run("scale up", func(t *testing.T) {
		l.clients(8)
		wait.For(t, podReadyTimeout, func() bool { return readyCount(t, rev1) == 3 }, "%s to scale up to 3 ready pods", rev1)
		wait.For(t, podReadyTimeout, servedSince(200), "200 requests served at 3 pods")
		l.record(t, "knative_scale_up_failed_requests", "scale up 1 -> 3")
	})
	t.Run("scale down", func(t *testing.T) {
		l.clients(1)
		wait.For(t, 6*time.Minute, func() bool { return len(allRevisionPods(t, "knative-demo", rev1)) == 1 },
			"%s to scale down to 1 pod, terminating ones gone", rev1)
		wait.For(t, podReadyTimeout, servedSince(20), "20 requests served at 1 pod")
		l.record(t, "knative_scale_down_failed_requests", "scale down 3 -> 1")
	})
	t.Run("new revision", func(t *testing.T) {
		l.clients(2)
		newRevision(t, "knative-demo", "life")
		waitRevisionReady(t, "knative-demo", rev2)
		rev.Store(ptrTo(rev2)) // what the ingress does once the route moves
		wait.For(t, 6*time.Minute, func() bool { return len(allRevisionPods(t, "knative-demo", rev1)) == 0 },
			"the old revision %s to scale to zero", rev1)
		wait.For(t, podReadyTimeout, servedSince(20), "20 requests served by %s", rev2)
		l.record(t, "knative_new_revision_failed_requests", "new revision "+rev1+" -> "+rev2)
	})
}

func ptrTo[T any](v T) *T { return &v }

// readyCount is the number of ready, not terminating pods of a revision.
func readyCount(t *testing.T, rev string) int {
	n := 0
	for _, p := range revisionPods(t, "knative-demo", rev) {
		if podReady(&p) {
			n++
		}
	}
	return n
}

// newRevision changes a Knative Service's template (an environment
// variable), which makes Knative create its next revision.
func newRevision(t *testing.T, ns, name string) {
	t.Helper()
	ksvc := &unstructured.Unstructured{}
	ksvc.SetGroupVersionKind(serviceGVK)
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, ksvc); err != nil {
		t.Fatal(err)
	}
	containers, _, _ := unstructured.NestedSlice(ksvc.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		t.Fatalf("knative service %s/%s has no containers", ns, name)
	}
	c := containers[0].(map[string]any)
	c["env"] = []any{map[string]any{"name": "AUTHGATE_E2E_REVISION", "value": fmt.Sprint(time.Now().UnixNano())}}
	if err := unstructured.SetNestedSlice(ksvc.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Update(t.Context(), ksvc); err != nil {
		t.Fatal(err)
	}
}
