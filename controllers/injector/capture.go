package injector

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/authgate/authgate/proxy/appprobe"
	"github.com/authgate/authgate/proxy/capture"
)

// Inbound capture: without it the function still listens on the pod IP,
// and any pod in the cluster could call it around the proxy with its own
// identity headers. The injector adds an init container that redirects
// inbound TCP for the function's port to the proxy (package capture), and
// moves the kubelet's probes of that port to the proxy's admin port
// (package appprobe), since the kubelet probes from outside the pod.
const (
	// AnnotationInboundCapture on a pod: "false" opts it out of inbound
	// capture where the cluster default (Config.InboundCapture) is on,
	// "true" opts it in where the default is off. The injector writes the
	// outcome back ("true" or "false"), so the controller can report pods
	// that run without capture.
	AnnotationInboundCapture = "authgate.dev/inbound-capture"
	// CaptureContainerName is the init container that writes the rules.
	CaptureContainerName = "authgate-capture"
)

// captureOn applies the annotation over the cluster default.
func captureOn(pod *corev1.Pod, cfg Config) (bool, error) {
	switch v, ok := pod.Annotations[AnnotationInboundCapture]; {
	case !ok:
		return cfg.InboundCapture, nil
	case v == "true":
		return true, nil
	case v == "false":
		return false, nil
	default:
		return false, deny("annotation %s=%q: want \"true\" or \"false\" (\"false\" lets other pods reach the function's own port around the proxy)",
			AnnotationInboundCapture, v)
	}
}

// wireCapture adds the capture init container to pod for w and moves the
// probes of the captured port; it returns the proxy's --app-probe
// arguments. pod must not hold the sidecar yet.
func wireCapture(pod *corev1.Pod, cfg Config, w wiring) ([]string, error) {
	if c, ok := containerNamed(pod, CaptureContainerName); ok {
		return nil, deny("container %q already exists: the authgate injector needs that name for its init container", c)
	}
	r := capture.Redirect{Port: uint16(w.upstream), To: uint16(w.listen)} // ports are 1-65535 by construction
	if err := capture.Validate([]capture.Redirect{r}); err != nil {
		return nil, deny("inbound capture: %v", err)
	}
	var args []string
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
			a, err := moveCapturedProbe(c, p.kind, p.probe, w.upstream, cfg.AdminPort)
			if err != nil {
				return nil, err
			}
			if a != "" {
				args = append(args, "--app-probe", a)
			}
		}
	}
	pod.Spec.InitContainers = append([]corev1.Container{captureContainer(cfg, r)}, pod.Spec.InitContainers...)
	return args, nil
}

// moveCapturedProbe rewrites a kubelet probe of the captured port to the
// proxy's admin port and returns the --app-probe value for it ("" when the
// probe is left alone: another port, or another host).
func moveCapturedProbe(c *corev1.Container, kind string, p *corev1.Probe, port, adminPort int32) (string, error) {
	if p == nil {
		return "", nil
	}
	name := c.Name + "-" + kind
	switch {
	case p.HTTPGet != nil:
		h := p.HTTPGet
		if h.Host != "" || !probesPort(c, h.Port, port) {
			return "", nil
		}
		scheme := strings.ToLower(string(h.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := h.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		target := fmt.Sprintf("%s=%s://127.0.0.1:%d%s", name, scheme, port, path)
		if _, err := appprobe.Parse(target); err != nil {
			return "", deny("container %q: its %s probe cannot be run by the proxy under inbound capture (%v); fix the probe or opt the pod out with %s: \"false\"",
				c.Name, kind, err, AnnotationInboundCapture)
		}
		p.HTTPGet = &corev1.HTTPGetAction{Path: appprobe.Path(name), Port: intstr.FromInt32(adminPort), Scheme: corev1.URISchemeHTTP, HTTPHeaders: h.HTTPHeaders}
		return target, nil
	case p.TCPSocket != nil:
		t := p.TCPSocket
		if t.Host != "" || !probesPort(c, t.Port, port) {
			return "", nil
		}
		p.TCPSocket = nil
		p.HTTPGet = &corev1.HTTPGetAction{Path: appprobe.Path(name), Port: intstr.FromInt32(adminPort), Scheme: corev1.URISchemeHTTP}
		return fmt.Sprintf("%s=tcp://127.0.0.1:%d", name, port), nil
	case p.GRPC != nil && p.GRPC.Port == port:
		return "", deny("container %q: its gRPC %s probe targets port %d, which inbound capture sends to the proxy; use an httpGet or tcpSocket probe, "+
			"or opt the pod out with %s: \"false\"", c.Name, kind, port, AnnotationInboundCapture)
	}
	return "", nil
}

// probesPort says whether a probe's port (a number, or the name of one of
// c's ports) is port.
func probesPort(c *corev1.Container, v intstr.IntOrString, port int32) bool {
	if v.Type == intstr.Int {
		return v.IntVal == port
	}
	for _, p := range c.Ports {
		if p.Name == v.StrVal {
			return p.ContainerPort == port
		}
	}
	return false
}

func containerNamed(pod *corev1.Pod, name string) (string, bool) {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers, ephemeral(pod)} {
		for _, c := range cs {
			if c.Name == name {
				return c.Name, true
			}
		}
	}
	return "", false
}

func ephemeral(pod *corev1.Pod) []corev1.Container {
	out := make([]corev1.Container, len(pod.Spec.EphemeralContainers))
	for i, e := range pod.Spec.EphemeralContainers {
		out[i] = corev1.Container{Name: e.Name}
	}
	return out
}

// captureContainer runs `authgate-proxy capture` from the proxy's image. It
// needs root with CAP_NET_ADMIN (nftables in the pod's own network
// namespace) and nothing else; it exits before any other container starts.
func captureContainer(cfg Config, r capture.Redirect) corev1.Container {
	return corev1.Container{
		Name:            CaptureContainerName,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Args:            []string{"capture", "--redirect", r.String()},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptrTo(int64(0)),
			RunAsGroup:               ptrTo(int64(0)),
			RunAsNonRoot:             ptrTo(false),
			ReadOnlyRootFilesystem:   ptrTo(true),
			AllowPrivilegeEscalation: ptrTo(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_ADMIN"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}
