package injector_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/controllers/injector"
)

// flagValue is the value of --name in the sidecar's args, and whether the
// flag is there.
func flagValue(c *corev1.Container, name string) (string, bool) {
	i := slices.Index(c.Args, "--"+name)
	if i < 0 || i+1 >= len(c.Args) {
		return "", false
	}
	return c.Args[i+1], true
}

func setEnvVar(i int, name, value string) podOpt {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[i]
		c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if value != "-" {
			c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
		}
	}
}

type platformCase struct {
	name        string
	pod         *corev1.Pod
	edit        func(*injector.Config)
	wantTrust   string // "" means no --trusted-proxies
	wantTimeout string // "" means no --upstream-timeout
}

func runPlatformCases(t *testing.T, ns *corev1.Namespace, tests []platformCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			changed, reason, err := injector.Mutate(tt.pod, ns, cfg)
			if err != nil || !changed {
				t.Fatalf("got changed=%v (%s) err=%v, want the pod injected", changed, reason, err)
			}
			sc := container(tt.pod, injector.ContainerName)
			for _, f := range []struct{ name, want string }{{"trusted-proxies", tt.wantTrust}, {"upstream-timeout", tt.wantTimeout}} {
				got, ok := flagValue(sc, f.name)
				if ok != (f.want != "") || got != f.want {
					t.Errorf("got --%s %q (present %v), want %q (args %q)", f.name, got, ok, f.want, sc.Args)
				}
			}
		})
	}
}

func TestKnativeHopsAndRevisionTimeout(t *testing.T) {
	t.Parallel()
	qpEnv := func(name, v string) *corev1.Pod { return knativePod(setEnvVar(1, name, v)) }
	hops := func(c *injector.Config) {
		c.TrustedProxies.Knative = []string{"10.42.7.0/24", "10.42.9.1", "127.0.0.1"}
	}
	runPlatformCases(t, namespace("functions", "enabled"), []platformCase{
		{"queue-proxy only; Knative's default 300s", knativePod(), nil, "127.0.0.1/32,::1/128", "5m0s"},
		{"plus the cluster's activator and ingress", knativePod(), hops, "127.0.0.1/32,::1/128,10.42.7.0/24,10.42.9.1/32", "5m0s"},
		{"a revision's own timeout", qpEnv("REVISION_TIMEOUT_SECONDS", "900"), nil, "127.0.0.1/32,::1/128", "15m0s"},
		{"no revision timeout", qpEnv("REVISION_TIMEOUT_SECONDS", "-"), nil, "127.0.0.1/32,::1/128", ""},
		{"unusable revision timeout", qpEnv("REVISION_TIMEOUT_SECONDS", "5m"), nil, "127.0.0.1/32,::1/128", ""},
		{"zero revision timeout", qpEnv("REVISION_TIMEOUT_SECONDS", "0"), nil, "127.0.0.1/32,::1/128", ""},
		{"h2c revision", knativeH2CPod(), hops, "127.0.0.1/32,::1/128,10.42.7.0/24,10.42.9.1/32", "5m0s"},
	})
}

func TestOpenFaaSGatewayAndWatchdogTimeout(t *testing.T) {
	t.Parallel()
	gw := func(c *injector.Config) { c.TrustedProxies.OpenFaaS = []string{"10.42.3.17", "fd00:42::/64"} }
	envs := func(kv ...string) *corev1.Pod {
		p := openFaaSPod(setEnvVar(0, "write_timeout", "-"))
		for i := 0; i < len(kv); i += 2 {
			setEnvVar(0, kv[i], kv[i+1])(p)
		}
		return p
	}
	runPlatformCases(t, namespace("openfaas-fn", "enabled"), []platformCase{
		{"faas-netes pod: write_timeout", openFaaSPod(), nil, "", "1m0s"},
		{"the gateway trusted", openFaaSPod(), gw, "10.42.3.17/32,fd00:42::/64", "1m0s"},
		{"exec_timeout in seconds is longer", envs("write_timeout", "60s", "exec_timeout", "120"), nil, "", "2m0s"},
		{"write_timeout longer", envs("write_timeout", "5m", "exec_timeout", "30s"), nil, "", "5m0s"},
		{"neither: the proxy default", envs(), nil, "", ""},
		{"unusable values: the proxy default", envs("exec_timeout", "forever", "write_timeout", "-3"), nil, "", ""},
	})
}

func TestPlainTrustedProxies(t *testing.T) {
	t.Parallel()
	def := func(c *injector.Config) { c.TrustedProxies.Plain = []string{"10.0.0.0/8"} }
	ann := func(v string) *corev1.Pod { return plainPod(withAnnotation(injector.AnnotationTrustedProxies, v)) }
	runPlatformCases(t, namespace("shop", "enabled"), []platformCase{
		{"nobody by default", plainPod(), nil, "", ""},
		{"the cluster default", plainPod(), def, "10.0.0.0/8", ""},
		{"the annotation replaces it", ann(" 192.0.2.10, 2001:db8::/64 ,"), def, "192.0.2.10/32,2001:db8::/64", ""},
		{"an empty annotation trusts nobody", ann(""), def, "", ""},
	})
}

func TestTrustedProxiesAnnotationDenied(t *testing.T) {
	t.Parallel()
	enabled := namespace("functions", "enabled")
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []string
	}{
		{"not an address", plainPod(withAnnotation(injector.AnnotationTrustedProxies, "10.0.0.0/8, ingress")),
			[]string{injector.AnnotationTrustedProxies, `entry 1 ("ingress") is not an IP address or CIDR`}},
		{"with a port", plainPod(withAnnotation(injector.AnnotationTrustedProxies, "10.0.0.1:80")), []string{`entry 0 ("10.0.0.1:80")`}},
		{"everyone", plainPod(withAnnotation(injector.AnnotationTrustedProxies, "0.0.0.0/0")), []string{"trusts every address"}},
		{"too many", plainPod(withAnnotation(injector.AnnotationTrustedProxies, strings.Repeat("10.0.0.1,", 65))), []string{"at most 64"}},
		{"on a Knative pod", knativePod(withAnnotation(injector.AnnotationTrustedProxies, "10.0.0.0/8")),
			[]string{"applies to plain pods only", "Knative revision", "spec.clientIdentity.trustedProxies"}},
		{"on an OpenFaaS pod", openFaaSPod(withAnnotation(injector.AnnotationTrustedProxies, "")), []string{"applies to plain pods only", "OpenFaaS function"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := tt.pod.DeepCopy()
			changed, _, err := injector.Mutate(tt.pod, enabled, testConfig())
			if err == nil {
				t.Fatalf("got no error (changed=%v), want a denial", changed)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			if changed || before.String() != tt.pod.String() {
				t.Error("a denied pod was modified")
			}
		})
	}
}
