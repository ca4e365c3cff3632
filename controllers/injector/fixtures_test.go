package injector_test

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/authgate/authgate/controllers/injector"
)

// Fixtures are modelled on what Knative Serving's revision reconciler and
// faas-netes actually create (trimmed of fields that play no part here).

func testConfig() injector.Config {
	cfg := injector.Config{Image: "ghcr.io/authgate/authgate-proxy:v0.1.0", ExcludeNamespaces: []string{"authgate-system"}, InboundCapture: true}
	cfg.Default()
	return cfg
}

func namespace(name, inject string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}}}
	if inject != "" {
		ns.Labels[injector.LabelInject] = inject
	}
	return ns
}

type podOpt func(*corev1.Pod)

func withLabel(k, v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[k] = v
	}
}

func withAnnotation(k, v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[k] = v
	}
}

func withoutAnnotation(k string) podOpt { return func(p *corev1.Pod) { delete(p.Annotations, k) } }

func apply(p *corev1.Pod, opts []podOpt) *corev1.Pod {
	for _, o := range opts {
		o(p)
	}
	return p
}

// knativePod is a revision pod of the Knative Service "hello" (http1).
func knativePod(opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "hello-00001-deployment-7d4b9c8f6-",
			Namespace:    "functions",
			Labels: map[string]string{
				"app":                               "hello-00001",
				"pod-template-hash":                 "7d4b9c8f6",
				"serving.knative.dev/configuration": "hello",
				"serving.knative.dev/configurationGeneration": "1",
				"serving.knative.dev/revision":                "hello-00001",
				"serving.knative.dev/revisionUID":             "6f1c2b1e-8f61-4b8e-9d55-2f0c1a7b3c11",
				"serving.knative.dev/service":                 "hello",
			},
			Annotations: map[string]string{
				"autoscaling.knative.dev/minScale": "0",
				"serving.knative.dev/creator":      "alice@example.com",
			},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "user-container",
				Image: "ghcr.io/example/hello@sha256:4b2b1f7c1d0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b",
				Ports: []corev1.ContainerPort{{Name: "user-port", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{
					{Name: "PORT", Value: "8080"},
					{Name: "K_REVISION", Value: "hello-00001"},
					{Name: "K_CONFIGURATION", Value: "hello"},
					{Name: "K_SERVICE", Value: "hello"},
				},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/wait-for-drain", Port: intstr.FromInt32(8022)},
				}},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			}, {
				Name:  "queue-proxy",
				Image: "gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:0e4bd1bd1fd5ef9c4c1b3b8d3f7ab5fba7c1ab4d0c5e2e7fd4d3b5c5c8b2c1a0",
				Ports: []corev1.ContainerPort{
					{Name: "http-queueadm", ContainerPort: 8022, Protocol: corev1.ProtocolTCP},
					{Name: "http-autometric", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
					{Name: "http-usermetric", ContainerPort: 9091, Protocol: corev1.ProtocolTCP},
					{Name: "queue-port", ContainerPort: 8012, Protocol: corev1.ProtocolTCP},
					{Name: "https-port", ContainerPort: 8112, Protocol: corev1.ProtocolTCP},
				},
				Env: []corev1.EnvVar{
					{Name: "SERVING_NAMESPACE", Value: "functions"},
					{Name: "SERVING_SERVICE", Value: "hello"},
					{Name: "SERVING_CONFIGURATION", Value: "hello"},
					{Name: "SERVING_REVISION", Value: "hello-00001"},
					{Name: "QUEUE_SERVING_PORT", Value: "8012"},
					{Name: "QUEUE_SERVING_TLS_PORT", Value: "8112"},
					{Name: "CONTAINER_CONCURRENCY", Value: "0"},
					{Name: "REVISION_TIMEOUT_SECONDS", Value: "300"},
					{Name: "SERVING_POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
					{Name: "SERVING_POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}},
					{Name: "USER_PORT", Value: "8080"},
					{Name: "SYSTEM_NAMESPACE", Value: "knative-serving"},
					{Name: "SERVING_READINESS_PROBE", Value: `{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}`},
					{Name: "ENABLE_HTTP2_AUTO_DETECTION", Value: "false"},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Port:        intstr.FromInt32(8012),
						HTTPHeaders: []corev1.HTTPHeader{{Name: "K-Network-Probe", Value: "queue"}},
					}},
					PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
				},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("25m")}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true), RunAsNonRoot: ptr(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			EnableServiceLinks:            ptr(false),
			TerminationGracePeriodSeconds: ptr(int64(300)),
		},
	}
	return apply(p, opts)
}

// knativeH2CPod is a revision of a Service whose port is named h2c: Knative
// serves it from queue-proxy's 8013 (the user container's port is still
// named user-port in the pod).
func knativeH2CPod(opts ...podOpt) *corev1.Pod {
	p := knativePod()
	qp := &p.Spec.Containers[1]
	qp.Ports[3].ContainerPort = 8013
	for i := range qp.Env {
		if qp.Env[i].Name == "QUEUE_SERVING_PORT" {
			qp.Env[i].Value = "8013"
		}
	}
	return apply(p, opts)
}

// openFaaSPod is a faas-netes function pod with HTTP health checks.
func openFaaSPod(opts ...podOpt) *corev1.Pod {
	probe := func() *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/_/health", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
			InitialDelaySeconds: 2, PeriodSeconds: 2, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
		}
	}
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "figlet-6c8d5f7b9-",
			Namespace:    "openfaas-fn",
			Labels: map[string]string{
				"faas_function":     "figlet",
				"app":               "figlet",
				"controller":        "figlet",
				"uid":               "724019847",
				"pod-template-hash": "6c8d5f7b9",
			},
			Annotations: map[string]string{"prometheus.io.scrape": "false"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "figlet",
				Image: "ghcr.io/openfaas/figlet:latest",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{
					{Name: "fprocess", Value: "figlet"},
					{Name: "write_timeout", Value: "60s"},
				},
				ReadinessProbe:  probe(),
				LivenessProbe:   probe(),
				ImagePullPolicy: corev1.PullAlways,
				SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr(false), AllowPrivilegeEscalation: ptr(false)},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("20Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
			}},
			EnableServiceLinks: ptr(false),
		},
	}
	return apply(p, opts)
}

// plainPod is a Deployment's pod that names its application port.
func plainPod(opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "orders-5f9c7d6b8-",
			Namespace:    "shop",
			Labels:       map[string]string{"app.kubernetes.io/name": "orders", "pod-template-hash": "5f9c7d6b8"},
			Annotations:  map[string]string{injector.AnnotationAppPort: "3000"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "orders",
				Image: "registry.example.com/shop/orders:1.4.2",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 3000, Protocol: corev1.ProtocolTCP}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromString("http")}},
					PeriodSeconds: 5,
				},
			}},
		},
	}
	return apply(p, opts)
}

// withProbes gives the plain pod's application every kind of probe the
// injector must handle under inbound capture: on the captured port by name
// and by number, HTTPS and tcpSocket, and probes it must leave alone
// (another port, another host, an exec probe).
func withProbes(p *corev1.Pod) {
	app := &p.Spec.Containers[0]
	app.Ports = append(app.Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 9100, Protocol: corev1.ProtocolTCP})
	app.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(3000)}}, PeriodSeconds: 10}
	app.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "started", Port: intstr.FromInt32(3000), Scheme: corev1.URISchemeHTTPS,
		HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "startup"}},
	}}, FailureThreshold: 30}
	p.Spec.Containers = append(p.Spec.Containers,
		corev1.Container{Name: "exporter", Image: "registry.example.com/exporter:1",
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("metrics")}}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}},
		corev1.Container{Name: "checker", Image: "registry.example.com/checker:1",
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(3000), Host: "checker.example.com"}}}},
	)
}

func ptr[T any](v T) *T { return &v }

func container(p *corev1.Pod, name string) *corev1.Container {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	return nil
}

func env(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}
