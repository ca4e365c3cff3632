package injector_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/controllers/injector"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

func TestOptIn(t *testing.T) {
	t.Parallel()
	// The package documentation's table, row by row, plus values that are
	// neither on nor off.
	tests := []struct {
		nsLabel, podLabel string // "-" means no label
		want              bool
	}{
		{"enabled", "-", true},
		{"enabled", "true", true},
		{"enabled", "false", false},
		{"enabled", "yes", true}, // "not false" opts in
		{"-", "true", true},
		{"-", "-", false},
		{"-", "false", false},
		{"-", "yes", false},
		{"other", "true", true},
		{"other", "-", false},
		{"disabled", "true", false},
		{"disabled", "-", false},
		{"disabled", "false", false},
	}
	for _, tt := range tests {
		t.Run("ns="+tt.nsLabel+",pod="+tt.podLabel, func(t *testing.T) {
			t.Parallel()
			ns := namespace("shop", "")
			if tt.nsLabel != "-" {
				ns.Labels[injector.LabelInject] = tt.nsLabel
			}
			pod := plainPod()
			if tt.podLabel != "-" {
				withLabel(injector.LabelInject, tt.podLabel)(pod)
			}
			changed, reason, err := injector.Mutate(pod, ns, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.want {
				t.Fatalf("got injected=%v (%s), want %v", changed, reason, tt.want)
			}
			if !changed && reason == "" {
				t.Error("got no reason for skipping the pod")
			}
		})
	}
}

func TestNeverInjected(t *testing.T) {
	t.Parallel()
	optedIn := withLabel(injector.LabelInject, "true")
	tests := []struct {
		name       string
		pod        *corev1.Pod
		ns         *corev1.Namespace
		wantReason string
	}{
		{"kube-system", plainPod(optedIn), namespace("kube-system", "enabled"), "excluded"},
		{"configured exclusion", plainPod(optedIn), namespace("authgate-system", "enabled"), "excluded"},
		{"hostNetwork", plainPod(optedIn, func(p *corev1.Pod) { p.Spec.HostNetwork = true }), namespace("shop", "enabled"), "hostNetwork"},
		{"annotated injected", plainPod(optedIn, withAnnotation(injector.AnnotationInjected, "true")), namespace("shop", "enabled"), "already injected"},
		{"has an authgate-proxy container", plainPod(optedIn, func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: injector.ContainerName, Image: "x"})
		}), namespace("shop", "enabled"), injector.ContainerName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := tt.pod.DeepCopy()
			changed, reason, err := injector.Mutate(tt.pod, tt.ns, testConfig())
			if err != nil || changed {
				t.Fatalf("got changed=%v err=%v, want the pod left alone", changed, err)
			}
			if !strings.Contains(reason, tt.wantReason) {
				t.Errorf("got reason %q, want it to mention %q", reason, tt.wantReason)
			}
			if !equality.Semantic.DeepEqual(before, tt.pod) {
				t.Error("the pod was modified")
			}
		})
	}
}

// mutated injects pod and fails the test unless it changed.
func mutated(t *testing.T, pod *corev1.Pod, ns *corev1.Namespace) *corev1.Pod {
	t.Helper()
	changed, reason, err := injector.Mutate(pod, ns, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Fatalf("not injected: %s", reason)
	}
	return pod
}

func TestKnative(t *testing.T) {
	t.Parallel()
	orig := knativePod()
	pod := mutated(t, knativePod(), namespace("functions", "enabled"))

	if got := pod.Spec.Containers[0]; !equality.Semantic.DeepEqual(got, orig.Spec.Containers[0]) {
		t.Errorf("the user container changed or moved: got %s", got.Name)
	}
	qp := container(pod, "queue-proxy")
	if got, _ := env(qp, "USER_PORT"); got != "8090" {
		t.Errorf("got queue-proxy USER_PORT %q, want 8090 (the proxy)", got)
	}
	origProbe, _ := env(&orig.Spec.Containers[1], "SERVING_READINESS_PROBE")
	wantProbes := "[" + origProbe + `,{"httpGet":{"path":"/readyz","port":8093,"host":"127.0.0.1","scheme":"HTTP"},"successThreshold":1}]`
	if got, _ := env(qp, "SERVING_READINESS_PROBE"); got != wantProbes {
		t.Errorf("got SERVING_READINESS_PROBE %s, want Knative's probe kept and the sidecar's /readyz added: %s", got, wantProbes)
	}
	if got, _ := env(qp, "ENABLE_MULTI_CONTAINER_PROBES"); got != "true" {
		t.Errorf("got ENABLE_MULTI_CONTAINER_PROBES %q, want true (queue-proxy decodes the probes as a list)", got)
	}
	sc := pod.Spec.Containers[len(pod.Spec.Containers)-1]
	if sc.Name != injector.ContainerName {
		t.Fatalf("got last container %q, want the sidecar", sc.Name)
	}
	wantArgs := []string{"--config", "/etc/authgate/config.yaml", "--labels-file", "/etc/podinfo/labels", "--listen", ":8090",
		"--admin-listen", ":8093", "--upstream", "http://127.0.0.1:8080", "--assertion-keys", "/etc/authgate-assertion/ring.json", "--upstream-timeout", "5m0s",
		"--trusted-proxies", "127.0.0.1/32,::1/128", "--shutdown-timeout", "4m59s", "--log-level", "info"}
	if !slices.Equal(sc.Args, wantArgs) {
		t.Errorf("got args %q, want %q", sc.Args, wantArgs)
	}
	if sc.Lifecycle == nil || sc.Lifecycle.PreStop == nil || sc.Lifecycle.PreStop.HTTPGet.Path != "/wait-for-drain" {
		t.Error("got no preStop drain hook, want the user container's (wait for queue-proxy to drain)")
	}
	if pod.Annotations[injector.AnnotationInjected] != "true" {
		t.Error("pod not annotated as injected")
	}
}

// withQueueEnv sets (value "-": removes) an env var of queue-proxy.
func withQueueEnv(name, value string) podOpt {
	return func(p *corev1.Pod) {
		qp := &p.Spec.Containers[1]
		qp.Env = slices.DeleteFunc(qp.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if value != "-" {
			qp.Env = append(qp.Env, corev1.EnvVar{Name: name, Value: value})
		}
	}
}

// TestKnativeMultiContainerProbes: a revision with multi-container probing
// on already has a list; the sidecar's probe is appended to it.
func TestKnativeMultiContainerProbes(t *testing.T) {
	t.Parallel()
	list := `[{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1},{"httpGet":{"path":"/ready","port":9000,"host":"127.0.0.1"}}]`
	pod := mutated(t, knativePod(withQueueEnv("SERVING_READINESS_PROBE", list), withQueueEnv("ENABLE_MULTI_CONTAINER_PROBES", "true")),
		namespace("functions", "enabled"))
	qp := container(pod, "queue-proxy")
	want := strings.TrimSuffix(list, "]") + `,{"httpGet":{"path":"/readyz","port":8093,"host":"127.0.0.1","scheme":"HTTP"},"successThreshold":1}]`
	if got, _ := env(qp, "SERVING_READINESS_PROBE"); got != want {
		t.Errorf("got SERVING_READINESS_PROBE %s, want %s", got, want)
	}
	n := 0
	for _, e := range qp.Env {
		if e.Name == "ENABLE_MULTI_CONTAINER_PROBES" {
			n++
		}
	}
	if got, _ := env(qp, "ENABLE_MULTI_CONTAINER_PROBES"); got != "true" || n != 1 {
		t.Errorf("got ENABLE_MULTI_CONTAINER_PROBES %q (%d times), want true once", got, n)
	}
}

func TestKnativeH2C(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"http1", knativePod(), false},
		{"queue-proxy serving h2c on 8013", knativeH2CPod(), true},
		{"user port named h2c", knativePod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "h2c" }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod := mutated(t, tt.pod, namespace("functions", "enabled"))
			sc := container(pod, injector.ContainerName)
			if got := slices.Contains(sc.Args, "--upstream-h2c"); got != tt.want {
				t.Errorf("got --upstream-h2c=%v, want %v (args %q)", got, tt.want, sc.Args)
			}
		})
	}
}

func TestKnativeProxyPortAnnotation(t *testing.T) {
	t.Parallel()
	pod := mutated(t, knativePod(withAnnotation(injector.AnnotationProxyPort, "7000")), namespace("functions", "enabled"))
	if got, _ := env(container(pod, "queue-proxy"), "USER_PORT"); got != "7000" {
		t.Errorf("got USER_PORT %q, want 7000", got)
	}
	if sc := container(pod, injector.ContainerName); sc.Ports[0].ContainerPort != 7000 {
		t.Errorf("got proxy port %d, want 7000", sc.Ports[0].ContainerPort)
	}
}

func TestOpenFaaS(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		pod  *corev1.Pod
	}{
		{"faas-netes pod", openFaaSPod()},
		{"port env already set", openFaaSPod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "port", Value: "8080"})
		})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod := mutated(t, tt.pod, namespace("openfaas-fn", "enabled"))
			fn := pod.Spec.Containers[0]
			if fn.Name != "figlet" {
				t.Fatalf("got containers[0] %q, want the function", fn.Name)
			}
			var ports []string
			for _, e := range fn.Env {
				if e.Name == "port" {
					ports = append(ports, e.Value)
				}
			}
			if !slices.Equal(ports, []string{"8082"}) {
				t.Errorf("got env port=%q, want exactly one port=8082", ports)
			}
			if got := fn.Ports[0].ContainerPort; got != 8082 {
				t.Errorf("got function containerPort %d, want 8082", got)
			}
			// The kubelet's probes of the watchdog go through the proxy's
			// admin port (inbound capture would send them to the proxy).
			sc := container(pod, injector.ContainerName)
			for name, p := range map[string]*corev1.Probe{"readiness": fn.ReadinessProbe, "liveness": fn.LivenessProbe} {
				if got := p.HTTPGet; got.Port != intstr.FromInt32(8093) || got.Path != "/app-health/figlet-"+name {
					t.Errorf("got %s probe %s%s, want the admin port's /app-health/figlet-%s", name, got.Port.String(), got.Path, name)
				}
				if want := "figlet-" + name + "=http://127.0.0.1:8082/_/health"; !slices.Contains(sc.Args, want) {
					t.Errorf("got args %q, want --app-probe %s", sc.Args, want)
				}
			}
			if ic := pod.Spec.InitContainers; len(ic) != 1 || ic[0].Name != injector.CaptureContainerName || !slices.Equal(ic[0].Args, []string{"capture", "--redirect", "8082=8080"}) {
				t.Errorf("got init containers %v, want the capture of 8082 to 8080", ic)
			}
			if !slices.Contains(sc.Args, ":8080") || !slices.Contains(sc.Args, "http://127.0.0.1:8082") {
				t.Errorf("got args %q, want the proxy on :8080 in front of 127.0.0.1:8082", sc.Args)
			}
		})
	}
}

func TestPlain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		pod        *corev1.Pod
		listen, up string
	}{
		{"numeric app port", plainPod(), ":8090", "http://127.0.0.1:3000"},
		{"named app port", plainPod(withAnnotation(injector.AnnotationAppPort, "http")), ":8090", "http://127.0.0.1:3000"},
		{"proxy port override", plainPod(withAnnotation(injector.AnnotationProxyPort, "9443")), ":9443", "http://127.0.0.1:3000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod := mutated(t, tt.pod, namespace("shop", "enabled"))
			sc := container(pod, injector.ContainerName)
			if !slices.Contains(sc.Args, tt.listen) || !slices.Contains(sc.Args, tt.up) {
				t.Errorf("got args %q, want --listen %s --upstream %s", sc.Args, tt.listen, tt.up)
			}
			if pod.Spec.Containers[0].Name != "orders" {
				t.Error("the application is no longer containers[0]")
			}
		})
	}
}

func TestDenied(t *testing.T) {
	t.Parallel()
	enabled := namespace("functions", "enabled")
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []string // substrings of the message
	}{
		{"invalid capture annotation", plainPod(withAnnotation(injector.AnnotationInboundCapture, "off")),
			[]string{injector.AnnotationInboundCapture, `"true" or "false"`}},
		{"gRPC probe of the captured port", plainPod(func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 3000}}}
		}), []string{"gRPC liveness probe", "port 3000", injector.AnnotationInboundCapture + `: "false"`}},
		{"container named like the capture init container", plainPod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: injector.CaptureContainerName, Image: "busybox"}}
		}), []string{injector.CaptureContainerName, "already exists"}},
		{"knative without queue-proxy", knativePod(func(p *corev1.Pod) { p.Spec.Containers = p.Spec.Containers[:1] }),
			[]string{"no queue-proxy container", "authgate.dev/inject=false"}},
		{"knative without USER_PORT", knativePod(func(p *corev1.Pod) {
			qp := &p.Spec.Containers[1]
			qp.Env = slices.DeleteFunc(qp.Env, func(e corev1.EnvVar) bool { return e.Name == "USER_PORT" })
		}), []string{"USER_PORT"}},
		{"knative USER_PORT from a reference", knativePod(func(p *corev1.Pod) {
			qp := &p.Spec.Containers[1]
			for i := range qp.Env {
				if qp.Env[i].Name == "USER_PORT" {
					qp.Env[i] = corev1.EnvVar{Name: "USER_PORT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "p"}}}
				}
			}
		}), []string{"literal USER_PORT"}},
		{"knative bad USER_PORT", knativePod(func(p *corev1.Pod) {
			qp := &p.Spec.Containers[1]
			for i := range qp.Env {
				if qp.Env[i].Name == "USER_PORT" {
					qp.Env[i].Value = "http"
				}
			}
		}), []string{"USER_PORT", "not a port number"}},
		{"knative without SERVING_READINESS_PROBE", knativePod(withQueueEnv("SERVING_READINESS_PROBE", "-")), []string{"literal SERVING_READINESS_PROBE"}},
		{"knative readiness probe not JSON", knativePod(withQueueEnv("SERVING_READINESS_PROBE", "{tcpSocket")), []string{"SERVING_READINESS_PROBE", "not a probe"}},
		{"knative multi-container probes not a list", knativePod(withQueueEnv("ENABLE_MULTI_CONTAINER_PROBES", "true")), []string{"not a list of probes"}},
		{"knative bad ENABLE_MULTI_CONTAINER_PROBES", knativePod(withQueueEnv("ENABLE_MULTI_CONTAINER_PROBES", "yes")), []string{"ENABLE_MULTI_CONTAINER_PROBES"}},
		{"knative function on the proxy port", knativePod(withAnnotation(injector.AnnotationProxyPort, "8080")), []string{"listens on 8080", injector.AnnotationProxyPort}},
		{"knative reserved proxy port", knativePod(withAnnotation(injector.AnnotationProxyPort, "8012")), []string{"reserved by Knative"}},
		{"bad proxy-port annotation", plainPod(withAnnotation(injector.AnnotationProxyPort, "99999")), []string{injector.AnnotationProxyPort, "not a port number"}},
		{"plain without app-port", plainPod(withoutAnnotation(injector.AnnotationAppPort)),
			[]string{"has no authgate.dev/app-port annotation", "targetPort at 8090"}},
		{"plain with an unknown app-port", plainPod(withAnnotation(injector.AnnotationAppPort, "grpc")), []string{`authgate.dev/app-port="grpc"`}},
		{"plain app-port is the proxy port", plainPod(withAnnotation(injector.AnnotationAppPort, "8090")), []string{"also the authgate proxy's port"}},
		{"app declares the admin port", plainPod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 8093})
		}), []string{`container "orders" already declares port 8093`}},
		{"app uses the admin port", plainPod(withAnnotation(injector.AnnotationAppPort, "8093")), []string{"admin port"}},
		{"volume name taken", plainPod(func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: injector.ConfigVolumeName})
		}), []string{`volume named "authgate-config"`}},
		{"init container name taken", plainPod(func(p *corev1.Pod) {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: injector.ContainerName})
		}), []string{`init container named "authgate-proxy"`}},
		{"openfaas with another proxy port", openFaaSPod(withAnnotation(injector.AnnotationProxyPort, "9000")), []string{"faas-netes sends traffic to port 8080"}},
		{"openfaas watchdog port taken", openFaaSPod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "metrics", Ports: []corev1.ContainerPort{{ContainerPort: 8082}}})
		}), []string{`container "metrics" already declares port 8082`}},
		{"openfaas 8080 used by another container", openFaaSPod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "other", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}})
		}), []string{`container "other" already declares port 8080`}},
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
			if changed || !equality.Semantic.DeepEqual(before, tt.pod) {
				t.Error("a denied pod was modified")
			}
		})
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pod  *corev1.Pod
		ns   *corev1.Namespace
	}{
		{"knative", knativePod(), namespace("functions", "enabled")},
		{"openfaas", openFaaSPod(withLabel(injector.LabelInject, "true")), namespace("openfaas-fn", "")},
		{"plain", plainPod(), namespace("shop", "enabled")},
		{"plain-trusted-proxies", plainPod(withAnnotation(injector.AnnotationTrustedProxies, "10.0.0.0/8, 192.0.2.7")), namespace("shop", "enabled")},
		{"plain-no-capture", plainPod(withAnnotation(injector.AnnotationInboundCapture, "false")), namespace("shop", "enabled")},
		{"plain-capture-probes", plainPod(withProbes), namespace("shop", "enabled")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod := mutated(t, tt.pod, tt.ns)
			got, err := yaml.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the mutated pod (go test -update rewrites it):\n%s", path, got)
			}

			// Idempotent: injecting the injected pod again changes nothing,
			// also when the marker annotation was lost.
			again := pod.DeepCopy()
			if changed, reason, err := injector.Mutate(again, tt.ns, testConfig()); changed || err != nil {
				t.Fatalf("second Mutate: got changed=%v err=%v (%s), want no change", changed, err, reason)
			}
			delete(again.Annotations, injector.AnnotationInjected)
			if changed, _, err := injector.Mutate(again, tt.ns, testConfig()); changed || err != nil {
				t.Fatalf("Mutate without the annotation: got changed=%v err=%v, want no change (the sidecar is there)", changed, err)
			}
		})
	}
}

func TestMutateDoesNotShareConfigMaps(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	pod := plainPod()
	if changed, _, err := injector.Mutate(pod, namespace("shop", "enabled"), cfg); !changed || err != nil {
		t.Fatalf("got changed=%v err=%v", changed, err)
	}
	sc := container(pod, injector.ContainerName)
	sc.Resources.Limits[corev1.ResourceMemory] = sc.Resources.Requests[corev1.ResourceCPU]
	if got := cfg.Resources.Limits[corev1.ResourceMemory]; got.String() != "128Mi" {
		t.Fatalf("got config limit %s after editing the pod, want 128Mi (shared map)", got.String())
	}
}

// TestDrainDelay: with a drain delay, OpenFaaS and plain pods' proxies
// keep serving after SIGTERM (--drain-delay) and their function containers
// sleep longer than that before theirs, unless they have a preStop hook;
// Knative pods drain with queue-proxy's own hook instead.
func TestDrainDelay(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DrainDelay = 5 * time.Second
	ownHook := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/drain", Port: intstr.FromInt32(9999)}}
	tests := []struct {
		name      string
		pod       *corev1.Pod
		wantArg   bool
		wantSleep map[string]int64 // container -> preStop sleep seconds (0: its own hook or none)
	}{
		{"plain", plainPod(), true, map[string]int64{"orders": 10}},
		{"openfaas", openFaaSPod(), true, nil},
		{"plain with its own preStop", plainPod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: ownHook}
		}), true, map[string]int64{"orders": 0}},
		{"knative", knativePod(), false, map[string]int64{"queue-proxy": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod := tt.pod
			changed, reason, err := injector.Mutate(pod, namespace("functions", "enabled"), cfg)
			if err != nil || !changed {
				t.Fatalf("not injected: %v %s", err, reason)
			}
			sc := container(pod, injector.ContainerName)
			i := slices.Index(sc.Args, "--drain-delay")
			if got := i >= 0 && i+1 < len(sc.Args) && sc.Args[i+1] == "5s"; got != tt.wantArg {
				t.Errorf("sidecar args %v: --drain-delay 5s present = %v, want %v", sc.Args, got, tt.wantArg)
			}
			for _, c := range pod.Spec.Containers {
				if c.Name == injector.ContainerName {
					continue
				}
				want, listed := tt.wantSleep[c.Name]
				if !listed && tt.wantArg {
					want = 10
				}
				var got int64
				if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
					got = c.Lifecycle.PreStop.Sleep.Seconds
				}
				if got != want {
					t.Errorf("container %s: preStop sleep %ds, want %ds", c.Name, got, want)
				}
			}
			if tt.name == "plain with its own preStop" && container(pod, "orders").Lifecycle.PreStop != ownHook &&
				!equality.Semantic.DeepEqual(container(pod, "orders").Lifecycle.PreStop, ownHook) {
				t.Error("the function's own preStop hook was replaced")
			}
		})
	}
}

// TestShutdownTimeout: the proxy drains for what is left of the pod's grace
// period after its drain delay, less a second, so long requests, streams
// and WebSockets get all the time the pod has and the proxy still exits
// before the kubelet's SIGKILL.
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	grace := func(s int64) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = &s }
	}
	tests := []struct {
		name  string
		pod   *corev1.Pod
		drain time.Duration
		want  string
	}{
		{"plain, default grace, no drain delay", plainPod(), 0, "29s"},
		{"plain, default grace, drain delay", plainPod(), 5 * time.Second, "24s"},
		{"plain, long grace", plainPod(grace(600)), 5 * time.Second, "9m54s"},
		{"plain, grace shorter than the delay", plainPod(grace(3)), 5 * time.Second, "1s"},
		{"plain, zero grace", plainPod(grace(0)), 0, "1s"},
		{"openfaas", openFaaSPod(), 5 * time.Second, "24s"},
		{"knative: the revision's timeout", knativePod(), 5 * time.Second, "4m59s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.DrainDelay = tt.drain
			changed, reason, err := injector.Mutate(tt.pod, namespace("functions", "enabled"), cfg)
			if err != nil || !changed {
				t.Fatalf("not injected: %v %s", err, reason)
			}
			args := container(tt.pod, injector.ContainerName).Args
			i := slices.Index(args, "--shutdown-timeout")
			if i < 0 || i+1 >= len(args) || args[i+1] != tt.want {
				t.Errorf("sidecar args %q: want --shutdown-timeout %s", args, tt.want)
			}
		})
	}
}
