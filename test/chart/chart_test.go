package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The chart ships copies of generated files; config/ is the source of truth
// and hack/sync-chart-crds.sh writes the copies.
func TestGeneratedCopiesAreIdentical(t *testing.T) {
	t.Parallel()
	pairs := map[string]string{
		filepath.Join(repoRoot, "config", "rbac", "role.yaml"): filepath.Join(chartDir, "files", "controller-role.yaml"),
	}
	sources, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	for _, src := range sources {
		pairs[src] = filepath.Join(chartDir, "crds", filepath.Base(src))
	}
	copies, err := filepath.Glob(filepath.Join(chartDir, "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range copies {
		if _, err := os.Stat(filepath.Join(repoRoot, "config", "crd", "bases", filepath.Base(c))); err != nil {
			t.Errorf("%s has no source in config/crd/bases: run hack/sync-chart-crds.sh", c)
		}
	}
	for src, dst := range pairs {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("%v: run hack/sync-chart-crds.sh", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: run hack/sync-chart-crds.sh", dst, src)
		}
	}
}

// config/prometheus/alerts.yaml is the chart's PrometheusRule with its
// default values, written by hack/sync-alerts.sh; make alerts-test runs
// promtool's rule tests on it, so they test what the chart ships.
func TestAlertsCopyIsCurrent(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(filepath.Join("hack", "sync-alerts.sh"), "--check")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "HELM="+helm)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: run hack/sync-alerts.sh\n%s", err, out)
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	for _, v := range []variant{defaults, certManager, monitoring, certManagerAndMon, watchNamespaces,
		{name: "one-replica-no-injector", set: []string{"replicas=1", "webhook.enabled=false"}},
		{name: "other-release", set: []string{"nameOverride=gate", "certManager.enabled=true", "certManager.issuerRef.name=corp-ca", "certManager.issuerRef.kind=ClusterIssuer"}},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"lint", "--strict", chartDir, "--namespace", releaseNamespace}, v.args()...)
			if out, err := run(helm, args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// Golden files of the rendered chart; go test ./test/chart -update rewrites them.
func TestTemplateGolden(t *testing.T) {
	t.Parallel()
	for _, v := range []variant{defaults, certManagerAndMon, watchNamespaces, tracingOn} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			got := render(t, v)
			path := filepath.Join("testdata", v.name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./test/chart -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("helm template differs from %s (run go test ./test/chart -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
			}
		})
	}
}

// firstDiff shows the first differing line with a little context.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return ""
}

func TestSchemaRejectsBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, values, want string
	}{
		{"replicas not a number", `replicas: "two"`, "/replicas"},
		{"replicas zero", `replicas: 0`, "/replicas"},
		{"tracing without endpoint", "tracing:\n  enabled: true", "/tracing/endpoint"},
		{"tracing ratio over 1", "tracing:\n  samplingRatio: 1.5", "/tracing/samplingRatio"},
		{"tracing endpoint with a query", "tracing:\n  endpoint: http://c:4318/v1/traces?token=x", "/tracing/endpoint"},
		{"unknown pull policy", "image:\n  pullPolicy: Sometimes", "/image/pullPolicy"},
		{"missing image repository", "image:\n  repository: null", "repository"},
		{"empty proxy image repository", "proxy:\n  image:\n    repository: \"\"", "/proxy/image/repository"},
		{"controller memory not a quantity", "resources:\n  limits:\n    memory: lots", "/resources/limits/memory"},
		{"sidecar cpu not a quantity", "proxy:\n  cpuRequest: fast", "/proxy/cpuRequest"},
		{"unknown resource", "resources:\n  requests:\n    gpu: 1", "gpu"},
		{"duration without unit", "jwks:\n  minRefresh: \"60\"", "/jwks/minRefresh"},
		{"unknown failure policy", "webhook:\n  failurePolicy: Maybe", "/webhook/failurePolicy"},
		{"webhook timeout too long", "webhook:\n  timeoutSeconds: 31", "/webhook/timeoutSeconds"},
		{"proxy on the OpenFaaS port", "proxy:\n  port: 8080", "/proxy/port"},
		{"proxy on a Knative port", "proxy:\n  adminPort: 8012", "/proxy/adminPort"},
		{"sidecar log level", "proxy:\n  logLevel: verbose", "/proxy/logLevel"},
		{"controller log level", "logLevel: warn", "/logLevel"},
		{"no reconcile workers", "reconcileWorkers: 0", "/reconcileWorkers"},
		{"too many reconcile workers", "reconcileWorkers: 65", "/reconcileWorkers"},
		{"bad namespace name", "webhook:\n  excludeNamespaces: [Kube_System]", "/webhook/excludeNamespaces"},
		{"bad watched namespace", "watchNamespaces: [Team_A]", "/watchNamespaces/0"},
		{"watched namespace twice", "watchNamespaces: [team-a, team-a]", "/watchNamespaces"},
		{"no issuers per namespace", "jwks:\n  maxIssuersPerNamespace: 0", "/jwks/maxIssuersPerNamespace"},
		{"too many fetches per namespace", "jwks:\n  maxConcurrentFetchesPerNamespace: 65", "/jwks/maxConcurrentFetchesPerNamespace"},
		{"typo in a key", "certManger:\n  enabled: true", "certManger"},
		{"issuer kind", "certManager:\n  issuerRef:\n    name: x\n    kind: Vault", "/certManager/issuerRef/kind"},
		{"digest format", "image:\n  digest: latest", "/image/digest"},
		{"trusted proxy not an address", "proxy:\n  trustedProxies:\n    knative: [activator]", "/proxy/trustedProxies/knative/0"},
		{"trusted proxy trusting everyone", "proxy:\n  trustedProxies:\n    openfaas: [0.0.0.0/0]", "/proxy/trustedProxies/openfaas/0"},
		{"trusted proxies unknown platform", "proxy:\n  trustedProxies:\n    lambda: [10.0.0.0/8]", "lambda"},
		{"fetch allow entry not an address", "fetchPolicy:\n  allowCIDRs: [idp.internal]", "/fetchPolicy/allowCIDRs/0"},
		{"fetch deny entry not an address", "fetchPolicy:\n  denyCIDRs: [\"10.0.0.0/8,10.1.0.0/16\"]", "/fetchPolicy/denyCIDRs/0"},
		{"fetch API server not a boolean", "fetchPolicy:\n  allowAPIServer: \"no\"", "/fetchPolicy/allowAPIServer"},
		{"fetch policy unknown key", "fetchPolicy:\n  allowCidrs: [10.0.0.0/8]", "allowCidrs"},
		{"redis network", "redis:\n  address: r:6379\n  network: udp", "/redis/network"},
		{"redis timeout without unit", "redis:\n  timeout: \"5\"", "/redis/timeout"},
		{"redis secret name", "redis:\n  secretName: Redis_Auth", "/redis/secretName"},
		{"redis unknown key", "redis:\n  host: r", "host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(file, []byte(tc.values+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := run(helm, "template", releaseName, chartDir, "--namespace", releaseNamespace, "-f", file)
			if err == nil {
				t.Fatalf("helm template accepted %q, want a schema error", tc.values)
			}
			if msg := err.Error(); !strings.Contains(msg, "schema") || !strings.Contains(msg, tc.want) {
				t.Fatalf("got error %q, want a schema error naming %q", msg, tc.want)
			}
		})
	}
}

func TestSchemaAcceptsOverrides(t *testing.T) {
	t.Parallel()
	values := `
replicas: 3
image: {repository: registry.example.com/platform/authgate-controller, tag: v0.1.0-rc.1, pullPolicy: Always}
proxy: {image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, cpuLimit: 500m, memoryLimit: 1Gi, port: 8095,
  trustedProxies: {knative: [10.42.7.0/24, "fd00:42::/64"], openfaas: [10.42.3.17]}}
resources: {requests: {cpu: 0.5, memory: 1Gi}, limits: {memory: 2Gi}}
jwks: {minRefresh: 30s, maxStaleness: 1h30m}
fetchPolicy: {allowCIDRs: [10.20.0.0/16, "fd00:42::/64"], denyCIDRs: [10.20.9.9], allowAPIServer: false}
webhook: {failurePolicy: Ignore, timeoutSeconds: 5, excludeNamespaces: [kube-public, istio-system]}
certManager: {enabled: true, issuerRef: {name: corp-ca, kind: ClusterIssuer, group: cert-manager.io}}
podDisruptionBudget: {minAvailable: 50%}
extraArgs: [--zap-devel=false]
monitoring: {prometheusRule: {enabled: true, denySpike: {factor: 5, minRate: 0.2, for: 15m}}}
redis: {address: "redis.platform.svc:6380", tls: {caFromSecret: true, serverName: redis.internal}, username: authgate, timeout: 10ms, secretName: shared-redis}
`
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(helm, "template", releaseName, chartDir, "--namespace", releaseNamespace, "-f", file)
	if err != nil {
		t.Fatal(err)
	}
	objs := byKey(t, parseObjects(t, out))
	dep := objs["Deployment authgate-system/authgate-controller"]
	if dep == nil {
		t.Fatal("no Deployment rendered")
	}
	args := containerArgs(t, dep)
	for _, want := range []string{
		"--injector-image=ghcr.io/authgate/authgate-proxy:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"--injector-cpu-limit=500m", "--injector-proxy-port=8095", "--manage-webhook-certs=false",
		"--injector-exclude-namespaces=kube-public,istio-system,$(POD_NAMESPACE)", "--zap-devel=false",
		"--injector-knative-trusted-proxies=10.42.7.0/24,fd00:42::/64", "--injector-openfaas-trusted-proxies=10.42.3.17",
		"--fetch-allow-cidrs=10.20.0.0/16,fd00:42::/64", "--fetch-deny-cidrs=10.20.9.9", "--fetch-allow-apiserver=false",
		"--injector-redis-address=redis.platform.svc:6380", "--injector-redis-ca-from-secret=true", "--injector-redis-server-name=redis.internal",
		"--injector-redis-username=authgate", "--injector-redis-timeout=10ms", "--injector-redis-secret=shared-redis",
	} {
		if !contains(args, want) {
			t.Errorf("controller args %v lack %s", args, want)
		}
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--injector-plain-trusted-proxies") {
			t.Errorf("got %s, want no flag for an empty list", a)
		}
	}
	if _, ok := objs["Issuer authgate-system/authgate-selfsigned"]; ok {
		t.Error("a self-signed Issuer was rendered although certManager.issuerRef is set")
	}
}

// redis.deploy renders a Redis with AUTH and a NetworkPolicy, and points
// the sidecars at it; redis.address wins over it.
func TestRedisDeploy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, values, wantAddr string
	}{
		{"deployed", "redis: {deploy: {enabled: true}}", "--injector-redis-address=authgate-redis.authgate-system.svc:6379"},
		{"address wins", "redis: {address: redis.platform.svc:6379, deploy: {enabled: true}}", "--injector-redis-address=redis.platform.svc:6379"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(file, []byte(tc.values+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := run(helm, "template", releaseName, chartDir, "--namespace", releaseNamespace, "-f", file)
			if err != nil {
				t.Fatal(err)
			}
			objs := byKey(t, parseObjects(t, out))
			for _, k := range []string{"Deployment authgate-system/authgate-redis", "Service authgate-system/authgate-redis",
				"Secret authgate-system/authgate-redis", "NetworkPolicy authgate-system/authgate-redis"} {
				if objs[k] == nil {
					t.Fatalf("%s not rendered", k)
				}
			}
			if !contains(containerArgs(t, objs["Deployment authgate-system/authgate-controller"]), tc.wantAddr) {
				t.Fatalf("controller args lack %s", tc.wantAddr)
			}
			if !bytes.Contains(out, []byte("--requirepass")) || !bytes.Contains(out, []byte("$(REDIS_PASSWORD)")) {
				t.Fatal("the deployed Redis does not require a password")
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
