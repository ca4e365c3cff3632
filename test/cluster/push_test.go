package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/test/wait"
)

const pushNS = "push-demo"

// pushKey is the push-demo's API key (example only).
const pushKey = "push-demo-key-5b1e9f3c7a2d8e4f6a0c"

// pushTopology: two replicas on the push channel, one replica opted out
// of it (authgate.dev/push: "false", the fallback: the mounted Secret
// only), each with its own policy; both policies accept the API key and
// the cluster's ServiceAccount tokens of audience push-demo.
var pushTopology = fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
  labels: {authgate.dev/inject: enabled}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: caller, namespace: %[1]s}
%[2]s%[3]s%[4]s%[5]s
%[6]s`, pushNS, apiKeySecret(pushNS, "partner", pushKey, "partner"), echoDeployment(pushNS, "pushed", 2, ""),
	echoDeployment(pushNS, "fallback", 1, `authgate.dev/push: "false"`), pushPolicy("pushed"), pushPolicy("fallback"))

func pushPolicy(app string) string {
	return fmt.Sprintf(`---
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  authentication:
    apiKeys:
      secretNames: [partner]
      sources: [{type: header, name: X-API-Key}]
    jwt:
      - issuerURL: https://kubernetes.default.svc.cluster.local
        audiences: [%[2]s]
        certificateAuthority:
          configMapKeyRef: {name: kube-root-ca.crt, key: ca.crt}
  routes:
    - {name: health, paths: [/healthz], public: true}
    - {name: jwt, methods: [GET], paths: ["/jwt/**"]}
    - {name: read, methods: [GET], paths: ["/hello/**"], requireScopes: [hello:read]}
    - {name: write, methods: [POST], paths: ["/hello/**"], requireScopes: [hello:write]}
`, app, pushNS)
}

// TestPushChannel (issue 12) on the real node: policy changes reach every
// replica over the push channel in about a second (the kubelet projects
// the mounted Secret a minute later, measured on the replica that opted
// out), the AuthPolicy status says when every replica enforces the new
// generation, a revoked token is refused in every replica, and with every
// controller replica killed the sidecars keep enforcing and come back to
// the new leader.
func TestPushChannel(t *testing.T) {
	dumpOnFailure(t, pushNS)
	dumpOnFailure(t, "authgate-system")
	applyYAML(t, []byte(pushTopology))
	pushed := readyPods(t, pushNS, map[string]string{"app": "pushed"}, 2)
	fallback := readyPods(t, pushNS, map[string]string{"app": "fallback"}, 1)
	c := httpClientFrom("")
	key := map[string]string{"X-API-Key": pushKey}
	url := func(p corev1.Pod, path string) string {
		return "http://" + net.JoinHostPort(p.Status.PodIP, "8081") + path
	}
	for _, p := range append(slices.Clone(pushed), fallback...) {
		waitEnforced(t, c, url(p, "/hello/x"), key)
	}
	waitPolicyEnforced(t, "pushed")

	// The fallback first: its update is in flight while the pushed
	// replicas are measured.
	fallbackStart := time.Now()
	setWriteScope(t, "fallback", "hello:read")

	var slowest time.Duration
	for i := range 5 {
		scope := []string{"hello:read", "hello:write"}[i%2]
		want := map[string]int{"hello:read": http.StatusOK, "hello:write": http.StatusForbidden}[scope]
		start := time.Now()
		setWriteScope(t, "pushed", scope)
		d := untilAll(t, c, pushed, func(p corev1.Pod) bool { return status(t, c, http.MethodPost, url(p, "/hello/x"), key) == want })
		t.Logf("update %d: every pushed replica enforces it %v after the update", i, d)
		figs.add(fmt.Sprintf("policy_enforced_push_update%d", i), float64(d.Milliseconds()), "ms")
		slowest = max(slowest, d)
		gen := waitPolicyEnforced(t, "pushed")
		figs.add(fmt.Sprintf("policy_enforced_status_update%d", i), float64(time.Since(start).Milliseconds()), "ms")
		t.Logf("update %d: Enforced=True at generation %d after %v", i, gen, time.Since(start))
	}

	// The slowest of the five: every replica of every update.
	figs.add("policy_enforced_push_max", float64(slowest.Milliseconds()), "ms")

	t.Run("revoked token refused in every replica", func(t *testing.T) {
		tok := map[string]string{"Authorization": "Bearer " + saToken(t, pushNS, "caller", pushNS)}
		for _, p := range pushed {
			if got := status(t, c, http.MethodGet, url(p, "/jwt/x"), tok); got != http.StatusOK {
				t.Fatalf("pod %s: the ServiceAccount token got %d before its revocation, want 200", p.Name, got)
			}
		}
		updatePolicy(t, "pushed", func(p *v1alpha1.AuthPolicy) {
			p.Spec.Revocations = []v1alpha1.Revocation{{
				Sub: "system:serviceaccount:" + pushNS + ":caller", ExpiresAt: metav1.NewTime(time.Now().Add(2 * time.Hour)),
			}}
		})
		d := untilAll(t, c, pushed, func(p corev1.Pod) bool {
			return status(t, c, http.MethodGet, url(p, "/jwt/x"), tok) == http.StatusUnauthorized
		})
		t.Logf("the revoked subject is refused in every replica %v after the update", d)
		figs.add("revoked_token_refused_all_replicas", float64(d.Milliseconds()), "ms")
	})

	t.Run("controller killed", func(t *testing.T) {
		var ctrlPods corev1.PodList
		if err := k8s.List(t.Context(), &ctrlPods, client.InNamespace("authgate-system"), client.MatchingLabels{controllerL: "controller", "app.kubernetes.io/instance": "authgate"}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := range ctrlPods.Items {
			if err := k8s.Delete(t.Context(), &ctrlPods.Items[i], client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
				t.Fatal(err)
			}
		}
		// Meanwhile every replica keeps enforcing its last configuration.
		for _, p := range pushed {
			if got := status(t, c, http.MethodGet, url(p, "/hello/x"), key); got != http.StatusOK {
				t.Errorf("pod %s with the controller gone: GET with the key got %d, want 200", p.Name, got)
			}
			if got := status(t, c, http.MethodGet, url(p, "/hello/x"), nil); got != http.StatusUnauthorized {
				t.Errorf("pod %s with the controller gone: GET without a credential got %d, want 401", p.Name, got)
			}
		}
		wait.ForNil(t, 4*time.Minute, injectorAnswers(t.Context()), "the controller back (the injector answering)")
		waitPolicyEnforced(t, "pushed")
		t.Logf("controller replicas deleted; %v later the new leader has every sidecar's acknowledgement", time.Since(start))
		figs.add("push_reconnect_after_controller_restart", time.Since(start).Seconds(), "s")
		before := time.Now()
		setWriteScope(t, "pushed", "hello:read")
		d := untilAll(t, c, pushed, func(p corev1.Pod) bool {
			return status(t, c, http.MethodPost, url(p, "/hello/x"), key) == http.StatusOK
		})
		t.Logf("after the restart an update reaches every replica in %v", d)
		figs.add("policy_enforced_push_after_controller_restart", float64(time.Since(before).Milliseconds()), "ms")
	})

	wait.For(t, 4*time.Minute, func() bool {
		return status(t, c, http.MethodPost, url(fallback[0], "/hello/x"), key) == http.StatusOK
	}, "the replica off the push channel to enforce its update from the mounted Secret")
	t.Logf("off the push channel (the mounted Secret only) the update took %v", time.Since(fallbackStart))
	figs.add("policy_enforced_fallback_file", time.Since(fallbackStart).Seconds(), "s")
	if c := condition(t, "fallback"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "PodsLagging" {
		t.Errorf("the fallback policy's Enforced condition %+v, want False/PodsLagging (its pod never reports over the push channel)", c)
	}
}

// status is the status of one request, 0 when it failed.
func status(t *testing.T, c *http.Client, method, url string, hdr map[string]string) int {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	r, err := do(ctx, c, method, url, hdr)
	if err != nil {
		return 0
	}
	return r.status
}

// untilAll polls every pod concurrently until ok holds for it and
// returns how long the slowest took.
func untilAll(t *testing.T, c *http.Client, pods []corev1.Pod, ok func(corev1.Pod) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var (
		mu      sync.Mutex
		slowest time.Duration
		wg      sync.WaitGroup
	)
	for _, p := range pods {
		wg.Go(func() {
			wait.For(t, 3*time.Minute, func() bool { return ok(p) }, "pod %s to enforce the change", p.Name)
			mu.Lock()
			slowest = max(slowest, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	return slowest
}

func updatePolicy(t *testing.T, name string, change func(*v1alpha1.AuthPolicy)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var p v1alpha1.AuthPolicy
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: pushNS, Name: name}, &p); err != nil {
			return err
		}
		change(&p)
		return k8s.Update(t.Context(), &p)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setWriteScope sets the scope POST requires.
func setWriteScope(t *testing.T, name, scope string) {
	updatePolicy(t, name, func(p *v1alpha1.AuthPolicy) {
		for i := range p.Spec.Routes {
			if p.Spec.Routes[i].Name == "write" {
				p.Spec.Routes[i].RequireScopes = []string{scope}
			}
		}
	})
}

func condition(t *testing.T, name string) *metav1.Condition {
	var p v1alpha1.AuthPolicy
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: pushNS, Name: name}, &p); err != nil {
		return nil
	}
	return meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionEnforced)
}

// waitPolicyEnforced waits for the policy's Enforced=True at its current
// generation, with status.coverage.enforcement saying so, and returns the
// generation.
func waitPolicyEnforced(t *testing.T, name string) int64 {
	t.Helper()
	return waitPolicyEnforcedIn(t, pushNS, name)
}

// waitPolicyEnforcedIn is waitPolicyEnforced for a policy of namespace ns.
func waitPolicyEnforcedIn(t *testing.T, ns, name string) int64 {
	t.Helper()
	var gen int64
	wait.ForNil(t, 3*time.Minute, func() error {
		var p v1alpha1.AuthPolicy
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
			return err
		}
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionEnforced)
		cov := p.Status.Coverage
		switch {
		case c == nil || cov == nil:
			return fmt.Errorf("no Enforced condition or coverage yet")
		case c.Status != metav1.ConditionTrue || c.ObservedGeneration != p.Generation:
			return fmt.Errorf("Enforced %s/%s at generation %d (policy at %d): %s", c.Status, c.Reason, c.ObservedGeneration, p.Generation, c.Message)
		case cov.Enforcement != fmt.Sprintf("%d/%d at generation %d", cov.SelectedPods, cov.SelectedPods, p.Generation):
			return fmt.Errorf("enforcement %q", cov.Enforcement)
		}
		gen = p.Generation
		return nil
	}, "AuthPolicy %s/%s Enforced at its current generation", ns, name)
	return gen
}
