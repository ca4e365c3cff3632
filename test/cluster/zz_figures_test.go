package cluster

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/test/wait"
)

const plainKey = "example-plain-key-change-me-0001"

// The file is named zz_ so TestFigures runs after the other tests: it changes
// the plain example's policy, which the kubelet projects only a minute later.

// TestFigures measures, on the plain example, what a user of the real
// cluster meets. The figures are recorded, not asserted: the goals (zero
// failed requests, enforcement within a second, no way around the sidecar)
// belong to their own issues.
func TestFigures(t *testing.T) {
	dumpOnFailure(t, "plain-demo")
	apply(t, filepath.Join(repoRoot, "examples", "plain-deployment.yaml"))
	pods := readyPods(t, "plain-demo", map[string]string{"app": "hello"}, 1)
	var svc corev1.Service
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: "plain-demo", Name: "hello"}, &svc); err != nil {
		t.Fatal(err)
	}
	url := "http://" + svc.Spec.ClusterIP + "/hello/x"
	c := httpClientFrom("")
	waitEnforced(t, c, url, map[string]string{"X-API-Key": plainKey})

	t.Run("pod start to ready", func(t *testing.T) { podStartFigures(t) })
	t.Run("direct call to the function port", func(t *testing.T) {
		r, err := do(t.Context(), c, http.MethodGet, fmt.Sprintf("http://%s:8081/hello/x", pods[0].Status.PodIP), nil)
		status := 0
		if err == nil {
			status = r.status
		}
		// Inbound capture: the function's own port is the proxy's.
		if err != nil || status != http.StatusUnauthorized || r.received != nil {
			t.Errorf("a call without credentials to the function's own port on the pod IP got %d (err %v), want the proxy's 401", status, err)
		}
		figs.add("plain_direct_pod_port_status", float64(status), "http_status")
	})
	t.Run("policy update to enforcement", func(t *testing.T) { policyUpdateFigure(t, c, url) })
	key := map[string]string{"X-API-Key": plainKey}
	t.Run("rolling restart", func(t *testing.T) {
		failed, total := underLoad(t, c, url, key, func() {
			restartDeployment(t, "plain-demo", "hello")
			waitRolledOut(t, "plain-demo", "hello", 1)
		})
		figs.add("plain_rolling_restart_failed_requests", float64(failed), "requests")
		t.Logf("rolling restart: %d of %d requests failed", failed, total)
	})
	t.Run("scale down", func(t *testing.T) {
		scale(t, "plain-demo", "hello", 2)
		waitRolledOut(t, "plain-demo", "hello", 2)
		failed, total := underLoad(t, c, url, key, func() {
			scale(t, "plain-demo", "hello", 1)
			waitRolledOut(t, "plain-demo", "hello", 1)
		})
		figs.add("plain_scale_down_failed_requests", float64(failed), "requests")
		t.Logf("scale 2 -> 1: %d of %d requests failed", failed, total)
	})
	t.Run("scale up", func(t *testing.T) {
		failed, total := underLoad(t, c, url, key, func() {
			scale(t, "plain-demo", "hello", 2)
			waitRolledOut(t, "plain-demo", "hello", 2)
		})
		figs.add("plain_scale_up_failed_requests", float64(failed), "requests")
		t.Logf("scale 1 -> 2: %d of %d requests failed", failed, total)
	})
	t.Run("sidecar image upgrade", func(t *testing.T) {
		// A new authgate version: helm upgrade with another proxy image
		// (hack/cluster/images.sh tags the same binary e2e-next), then the
		// rolling restart that brings it into the running function's pods.
		const next = "dev.local/authgate/authgate-proxy:e2e-next"
		failed, total := underLoad(t, c, url, key, func() {
			if err := helmRelease(t.Context(), "upgrade", "--reuse-values", "--set", "proxy.image.tag=e2e-next"); err != nil {
				t.Fatal(err)
			}
			restartDeployment(t, "plain-demo", "hello")
			waitRolledOut(t, "plain-demo", "hello", 2)
		})
		for _, p := range readyPods(t, "plain-demo", map[string]string{"app": "hello"}, 2) {
			for _, ctr := range p.Spec.Containers {
				if ctr.Name == "authgate-proxy" && ctr.Image != next {
					t.Errorf("pod %s runs sidecar image %s after the upgrade, want %s", p.Name, ctr.Image, next)
				}
			}
		}
		figs.add("plain_sidecar_upgrade_failed_requests", float64(failed), "requests")
		t.Logf("sidecar image upgrade (helm upgrade, then a rolling restart): %d of %d requests failed", failed, total)
	})
	t.Run("openfaas rolling restart through the gateway", func(t *testing.T) {
		gw, _ := openFaaSEchoFn(t)
		fnURL := gw + "/function/echo-fn.openfaas-fn/hello/x"
		failed, total := underLoad(t, c, fnURL, map[string]string{"X-API-Key": openFaaSKey}, func() {
			restartDeployment(t, "openfaas-fn", "echo-fn")
			waitRolledOut(t, "openfaas-fn", "echo-fn", 1)
		})
		figs.add("openfaas_rolling_restart_failed_requests", float64(failed), "requests")
		t.Logf("OpenFaaS rolling restart: %d of %d requests failed", failed, total)
	})
	// faas-netes scales a function by setting its Deployment's replicas
	// (its /system/scale-function handler); the test sets them the same way.
	t.Run("openfaas scale up through the gateway", func(t *testing.T) {
		gw := openFaaSGateway(t)
		fnURL := gw + "/function/echo-fn.openfaas-fn/hello/x"
		failed, total := underLoad(t, c, fnURL, map[string]string{"X-API-Key": openFaaSKey}, func() {
			scale(t, "openfaas-fn", "echo-fn", 3)
			waitRolledOut(t, "openfaas-fn", "echo-fn", 3)
		})
		figs.add("openfaas_scale_up_failed_requests", float64(failed), "requests")
		t.Logf("OpenFaaS scale 1 -> 3: %d of %d requests failed", failed, total)
	})
	t.Run("openfaas scale down through the gateway", func(t *testing.T) {
		gw := openFaaSGateway(t)
		fnURL := gw + "/function/echo-fn.openfaas-fn/hello/x"
		scale(t, "openfaas-fn", "echo-fn", 3)
		waitRolledOut(t, "openfaas-fn", "echo-fn", 3)
		failed, total := underLoad(t, c, fnURL, map[string]string{"X-API-Key": openFaaSKey}, func() {
			scale(t, "openfaas-fn", "echo-fn", 1)
			waitRolledOut(t, "openfaas-fn", "echo-fn", 1)
		})
		figs.add("openfaas_scale_down_failed_requests", float64(failed), "requests")
		t.Logf("OpenFaaS scale 3 -> 1: %d of %d requests failed", failed, total)
	})
}

// podStartFigures: the same function pod created without and with the
// sidecar, creation to Ready as the kubelet reports it.
func podStartFigures(t *testing.T) {
	for _, tc := range []struct {
		name, inject string
	}{{"without_sidecar", "false"}, {"with_sidecar", "true"}} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: "start-" + map[string]string{"false": "bare", "true": "injected"}[tc.inject], Namespace: "plain-demo",
				Labels:      map[string]string{"app": "hello-start", "authgate.dev/inject": tc.inject},
				Annotations: map[string]string{"authgate.dev/app-port": "8081"},
			},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "function", Image: "dev.local/authgate/authgate:e2e", ImagePullPolicy: corev1.PullIfNotPresent,
				Args:           []string{"echo", "--listen", ":8081"},
				Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8081}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8081)}}, PeriodSeconds: 1},
			}}},
		}
		if err := k8s.Create(t.Context(), pod); err != nil {
			t.Fatal(err)
		}
		var got corev1.Pod
		wait.ForNil(t, podReadyTimeout, func() error {
			if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(pod), &got); err != nil {
				return err
			}
			if !podReady(&got) {
				return fmt.Errorf("pod %s: %s", pod.Name, podState(&got))
			}
			return nil
		}, "pod %s ready", pod.Name)
		if want := tc.inject == "true"; hasContainer(&got, "authgate-proxy") != want {
			t.Fatalf("pod %s: sidecar present = %v, want %v", pod.Name, !want, want)
		}
		figs.add("plain_pod_start_to_ready_"+tc.name, readySince(&got).Seconds(), "s")
		_ = k8s.Delete(t.Context(), &got)
	}
}

// policyUpdateFigure: an AuthPolicy change (POST now needs hello:read, which
// the key has) until the running pod enforces it, through the controller, the
// rendered bundle Secret and the kubelet's projection of the mounted volume.
func policyUpdateFigure(t *testing.T, c *http.Client, url string) {
	hdr := map[string]string{"X-API-Key": plainKey}
	post := func() int {
		r, err := do(t.Context(), c, http.MethodPost, url, hdr)
		if err != nil {
			return 0
		}
		return r.status
	}
	if got := post(); got != http.StatusForbidden {
		t.Fatalf("POST before the update got %d, want 403", got)
	}
	var p v1alpha1.AuthPolicy
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: "plain-demo", Name: "hello"}, &p); err != nil {
		t.Fatal(err)
	}
	for i := range p.Spec.Routes {
		if p.Spec.Routes[i].Name == "write" {
			p.Spec.Routes[i].RequireScopes = []string{"hello:read"}
		}
	}
	start := time.Now()
	if err := k8s.Update(t.Context(), &p); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 4*time.Minute, func() bool { return post() == http.StatusOK }, "the running pod to enforce the updated policy")
	figs.add("plain_policy_update_to_enforcement", time.Since(start).Seconds(), "s")
}

func restartDeployment(t *testing.T, ns, name string) {
	var d appsv1.Deployment
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations["authgate-e2e/restartedAt"] = time.Now().Format(time.RFC3339Nano)
	if err := k8s.Patch(t.Context(), &d, patch); err != nil {
		t.Fatal(err)
	}
}

func scale(t *testing.T, ns, name string, n int32) {
	var d appsv1.Deployment
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = &n
	if err := k8s.Patch(t.Context(), &d, patch); err != nil {
		t.Fatal(err)
	}
}

// waitRolledOut waits until the Deployment runs exactly n updated, ready
// pods and no others (terminating pods gone).
func waitRolledOut(t *testing.T, ns, name string, n int32) {
	wait.ForNil(t, podReadyTimeout, func() error {
		var d appsv1.Deployment
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
			return err
		}
		s := d.Status
		if d.Generation != s.ObservedGeneration || s.UpdatedReplicas != n || s.ReadyReplicas != n || s.Replicas != n {
			return fmt.Errorf("generation %d/%d, updated %d ready %d total %d", s.ObservedGeneration, d.Generation, s.UpdatedReplicas, s.ReadyReplicas, s.Replicas)
		}
		var list corev1.PodList
		if err := k8s.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
			return err
		}
		if len(list.Items) != int(n) {
			return fmt.Errorf("%d pods, want %d", len(list.Items), n)
		}
		return nil
	}, "deployment %s/%s rolled out to %d", ns, name, n)
}
