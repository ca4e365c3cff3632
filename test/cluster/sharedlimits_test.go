package cluster

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/test/wait"
)

const (
	redisNS  = "authgate-redis"
	sharedNS = "shared-demo"
	// redisAddress is what the chart gives every sidecar (installAuthgate).
	redisAddress  = "redis." + redisNS + ".svc.cluster.local:6379"
	redisPassword = "e2e-redis-password-0123456789abcdef"
	sharedKey     = "example-shared-key-change-me-0001"
	warmKey       = "example-warmup-key-change-me-0001"
)

// sharedTopology: Redis (Debian's redis-server, AUTH required) in its own
// namespace; a function of two replicas whose policy keeps a per-API-key
// limit of burst 6 in it; the namespace's Redis Secret the injector mounts.
var sharedTopology = fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers:
        - name: redis
          image: dev.local/authgate-e2e/redis:e2e
          imagePullPolicy: Never
          args: [--port, "6379", --save, "", --appendonly, "no", --protected-mode, "no", --requirepass, %[3]q]
          ports: [{name: redis, containerPort: 6379}]
          readinessProbe:
            tcpSocket: {port: 6379}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: redis, namespace: %[1]s}
spec:
  selector: {app: redis}
  ports: [{name: redis, port: 6379, targetPort: redis}]
---
apiVersion: v1
kind: Namespace
metadata:
  name: %[2]s
  labels: {authgate.dev/inject: enabled}
---
apiVersion: v1
kind: Secret
metadata: {name: authgate-redis, namespace: %[2]s}
type: Opaque
stringData: {password: %[3]q}
%[4]s%[5]s%[6]s---
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: limited, namespace: %[2]s}
spec:
  selector: {matchLabels: {app: limited}}
  authentication:
    apiKeys:
      secretNames: [partner, warmup]
      sources: [{type: header, name: X-API-Key}]
  routes:
    - {name: health, paths: [/healthz], public: true}
    - {name: read, methods: [GET], paths: ["/hello/**"], requireScopes: [hello:read]}
  rateLimits: [{key: apikey, requestsPerSecond: "0.01", burst: 6}]
  sharedLimits: {onUnavailable: deny}
`, redisNS, sharedNS, redisPassword, apiKeySecret(sharedNS, "partner", sharedKey, "partner"),
	apiKeySecret(sharedNS, "warmup", warmKey, "warmup"), echoDeployment(sharedNS, "limited", 2, ""))

// TestSharedLimits (issue 14) on the real node: two replicas of a function
// keep one bucket in a Redis pod, so a client alternating between them gets
// the burst once; with Redis gone the policy (onUnavailable deny) answers
// 503, and once Redis is back the limit is shared again.
func TestSharedLimits(t *testing.T) {
	dumpOnFailure(t, sharedNS)
	dumpOnFailure(t, redisNS)
	applyYAML(t, []byte(sharedTopology))
	readyPods(t, redisNS, map[string]string{"app": "redis"}, 1)
	pods := readyPods(t, sharedNS, map[string]string{"app": "limited"}, 2)
	waitPolicyEnforcedIn(t, sharedNS, "limited")
	c := httpClientFrom("")
	key := map[string]string{"X-API-Key": sharedKey}
	url := func(i int) string {
		return "http://" + net.JoinHostPort(pods[i%2].Status.PodIP, "8090") + "/hello/x"
	}
	// Each replica reaches Redis (its own bucket for the warm-up key, so the
	// partner's stays full).
	warmUp := func() {
		for i := range 2 {
			wait.For(t, 2*time.Minute, func() bool {
				return send(t, c, http.MethodGet, url(i), map[string]string{"X-API-Key": warmKey}).status == http.StatusOK
			}, "replica %d checks its limit in Redis", i)
		}
	}
	warmUp()
	codes := map[int]int{}
	for i := range 12 {
		codes[send(t, c, http.MethodGet, url(i), key).status]++
	}
	figs.add("shared_limit_allowed_of_12_across_2_replicas", float64(codes[http.StatusOK]), "requests")
	if codes[http.StatusOK] != 6 || codes[http.StatusTooManyRequests] != 6 {
		t.Fatalf("statuses %v across two replicas, want the burst of 6 once (6 × 200, 6 × 429)", codes)
	}

	// Redis gone: the policy fails closed.
	scale(t, redisNS, "redis", 0)
	wait.For(t, time.Minute, func() bool {
		return send(t, c, http.MethodGet, url(0), key).status == http.StatusServiceUnavailable
	}, "503 while Redis is down")
	if r := send(t, c, http.MethodGet, url(1), key); r.status != http.StatusServiceUnavailable {
		t.Fatalf("the other replica answered %d while Redis is down, want 503", r.status)
	}
	// Redis back, empty (no persistence): both replicas share a fresh bucket.
	scale(t, redisNS, "redis", 1)
	readyPods(t, redisNS, map[string]string{"app": "redis"}, 1)
	start := time.Now()
	warmUp()
	figs.add("shared_limit_redis_ready_to_both_replicas_200", time.Since(start).Seconds(), "s")
	ok := 0
	for i := range 12 {
		if send(t, c, http.MethodGet, url(i), key).status == http.StatusOK {
			ok++
		}
	}
	if ok != 6 {
		t.Fatalf("after the restart %d of 12 requests allowed across two replicas, want 6", ok)
	}
}
