package injector

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Path is where the webhook server serves the injector.
const Path = "/inject-authgate"

// Labels and annotations the injector reads and writes.
const (
	// LabelInject opts in or out: on a namespace "enabled" or "disabled", on
	// a pod "true" or "false".
	LabelInject = "authgate.dev/inject"
	// AnnotationInjected is set to "true" on every injected pod, and so is
	// the label LabelInjected of the same name.
	AnnotationInjected = "authgate.dev/injected"
	LabelInjected      = "authgate.dev/injected"
	// AnnotationAppPort names the application's port in plain pods (a number
	// or the name of a container port).
	AnnotationAppPort = "authgate.dev/app-port"
	// AnnotationProxyPort overrides Config.ProxyPort for one pod (Knative and
	// plain pods).
	AnnotationProxyPort = "authgate.dev/proxy-port"
	// AnnotationTrustedProxies replaces, for one plain pod, the cluster's
	// default trusted proxies (Config.TrustedProxies.Plain): comma-separated
	// IPs or CIDRs, empty to trust nobody. It only changes what the pod's own
	// proxy believes about its callers; Knative and OpenFaaS pods take their
	// hops from the cluster setting and are denied with it.
	AnnotationTrustedProxies = "authgate.dev/trusted-proxies"

	// NamespaceEnabled and NamespaceDisabled are LabelInject's values on a
	// namespace; PodEnabled and PodDisabled on a pod.
	NamespaceEnabled  = "enabled"
	NamespaceDisabled = "disabled"
	PodEnabled        = "true"
	PodDisabled       = "false"
)

// What the injector adds to a pod.
const (
	ContainerName     = "authgate-proxy"
	ConfigVolumeName  = "authgate-config"
	PodInfoVolumeName = "authgate-podinfo"
	// The bundle Secret is mounted at config.MountDir; its name and key
	// are config.BundleSecret and config.BundleKey.
	PodInfoMountPath = "/etc/podinfo"
	PodInfoLabelsKey = "labels"
	// PortName and AdminPortName name the sidecar's container ports.
	PortName      = "authgate"
	AdminPortName = "authgate-admin"
)

// Facts about the platforms, from the Knative and OpenFaaS sources.
const (
	LabelKnativeRevision  = "serving.knative.dev/revision"
	LabelOpenFaaSFunction = "faas_function"

	knativeQueueContainer   = "queue-proxy"
	knativeUserPortEnv      = "USER_PORT"
	knativeQueuePortEnv     = "QUEUE_SERVING_PORT"
	knativeH2CQueuePort     = "8013" // queue-proxy serves h2c revisions on 8013, http1 on 8012
	knativeH2CPortName      = "h2c"
	knativeProbeEnv         = "SERVING_READINESS_PROBE"
	knativeMultiProbeEnv    = "ENABLE_MULTI_CONTAINER_PROBES"
	openFaaSPort            = 8080 // faas-netes dials podIP:8080
	openFaaSMetricsPort     = 8081
	openFaaSWatchdogPortEnv = "port"
	kubeSystem              = "kube-system"
)

// wiring is how the proxy sits in front of the function.
type wiring struct {
	kind      string
	namespace string // the pod's (the Redis key prefix)
	listen    int32  // the proxy's port
	upstream  int32  // the function's port on 127.0.0.1
	h2c       bool
	preStop   *corev1.LifecycleHandler
	// drainDelay is the proxy's --drain-delay (OpenFaaS and plain pods).
	drainDelay time.Duration
	// shutdownTimeout is the proxy's --shutdown-timeout: what is left of
	// the pod's grace period after the drain delay (see shutdownTimeout).
	shutdownTimeout time.Duration
	// trustedProxies and upstreamTimeout are the platform's hops and
	// request timeout (--trusted-proxies, --upstream-timeout).
	trustedProxies  []string
	upstreamTimeout time.Duration
	// appProbes are the proxy's --app-probe arguments (inbound capture).
	appProbes []string
}

// Mutate injects the authgate-proxy sidecar into pod when pod and ns opt in
// (see the package documentation), in place. cfg must be defaulted and
// valid. It returns changed=false with the reason when the pod is left
// alone, and an error (leaving pod unchanged) when the pod opted in but
// cannot be wired: the webhook denies such a pod with the error's message.
// Mutate is pure: it reads nothing but its arguments.
func Mutate(pod *corev1.Pod, ns *corev1.Namespace, cfg Config) (changed bool, reason string, err error) {
	if ok, why := selected(pod, ns, cfg); !ok {
		return false, why, nil
	}
	if nsName := namespaceOf(pod, ns); len(cfg.WatchedNamespaces) > 0 && !slices.Contains(cfg.WatchedNamespaces, nsName) {
		return false, "", fmt.Errorf("the pod opted in to authgate, but namespace %s is not one the authgate controller watches (--watch-namespaces): no policy would reach its sidecar; remove the opt-in or ask the platform team to add the namespace", nsName)
	}
	out := pod.DeepCopy()
	if err := checkNames(out); err != nil {
		return false, "", err
	}
	var w wiring
	switch {
	case out.Labels[LabelKnativeRevision] != "":
		w, err = wireKnative(out, cfg)
	case out.Labels[LabelOpenFaaSFunction] != "":
		w, err = wireOpenFaaS(out, cfg)
	default:
		w, err = wirePlain(out, cfg)
	}
	if err != nil {
		return false, "", err
	}
	if err := checkPorts(out, w, cfg); err != nil {
		return false, "", err
	}
	if w.drainDelay > 0 {
		sleepBeforeStop(out, w.drainDelay+FunctionDrainMargin)
	}
	w.shutdownTimeout = shutdownTimeout(out, w.drainDelay)
	captured, err := captureOn(out, cfg)
	if err != nil {
		return false, "", err
	}
	if captured {
		if w.appProbes, err = wireCapture(out, cfg, w); err != nil {
			return false, "", err
		}
	}
	if out.Annotations[AnnotationPush] == "false" {
		cfg.Push = Push{}
	}
	w.namespace = namespaceOf(pod, ns)
	proxy := sidecar(cfg, w)
	out.Spec.Volumes = append(out.Spec.Volumes, volumes()...)
	out.Spec.Volumes = append(out.Spec.Volumes, addPush(&proxy, cfg.Push)...)
	out.Spec.Volumes = append(out.Spec.Volumes, redisVolumes(cfg.Redis)...)
	out.Spec.Containers = append(out.Spec.Containers, proxy)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[AnnotationInjected] = "true"
	// The label too: a NetworkPolicy can select by label only
	// (controllers/netpol closes injected pods' other ports).
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	out.Labels[LabelInjected] = "true"
	out.Annotations[AnnotationInboundCapture] = strconv.FormatBool(captured)
	*pod = *out
	proto := ""
	if w.h2c {
		proto = " (h2c)"
	}
	how := "inbound capture off"
	if captured {
		how = fmt.Sprintf("inbound :%d captured", w.upstream)
	}
	return true, fmt.Sprintf("injected into a %s: proxy on :%d in front of 127.0.0.1:%d%s, %s", w.kind, w.listen, w.upstream, proto, how), nil
}

func namespaceOf(pod *corev1.Pod, ns *corev1.Namespace) string {
	if ns != nil {
		return ns.Name
	}
	return pod.Namespace
}

// selected applies the opt-in rules and the exclusions that skip a pod
// silently.
func selected(pod *corev1.Pod, ns *corev1.Namespace, cfg Config) (bool, string) {
	nsName, nsLabel := pod.Namespace, ""
	if ns != nil {
		nsName, nsLabel = ns.Name, ns.Labels[LabelInject]
	}
	if nsName == kubeSystem || slices.Contains(cfg.ExcludeNamespaces, nsName) {
		return false, fmt.Sprintf("namespace %s is excluded from injection", nsName)
	}
	if pod.Annotations[AnnotationInjected] == "true" {
		return false, "already injected"
	}
	podLabel, hasPodLabel := pod.Labels[LabelInject]
	switch {
	case nsLabel == NamespaceDisabled:
		return false, fmt.Sprintf("namespace %s has %s=%s", nsName, LabelInject, NamespaceDisabled)
	case hasPodLabel && podLabel == PodDisabled:
		return false, fmt.Sprintf("pod opted out with %s=%s", LabelInject, PodDisabled)
	case nsLabel == NamespaceEnabled, hasPodLabel && podLabel == PodEnabled:
	default:
		return false, "neither the pod nor its namespace opted in"
	}
	if pod.Spec.HostNetwork {
		return false, "hostNetwork pods are never injected"
	}
	if slices.ContainsFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == ContainerName }) {
		return false, "the pod already has a container named " + ContainerName
	}
	return true, ""
}

// checkNames denies a pod whose names collide with what the injector adds.
func checkNames(pod *corev1.Pod) error {
	var errs []error
	for _, v := range pod.Spec.Volumes {
		if v.Name == ConfigVolumeName || v.Name == PodInfoVolumeName {
			errs = append(errs, fmt.Errorf("the pod already has a volume named %q, which the authgate sidecar needs; rename it", v.Name))
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == ContainerName {
			errs = append(errs, fmt.Errorf("the pod has an init container named %q, which the authgate sidecar needs; rename it", c.Name))
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == ContainerName {
			errs = append(errs, fmt.Errorf("the pod has an ephemeral container named %q, which the authgate sidecar needs; rename it", c.Name))
		}
	}
	return denial(errs)
}

// denial joins errs into one message for the API server to show.
func denial(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("authgate injection: %w", errors.Join(errs...))
}

func deny(format string, args ...any) error {
	return denial([]error{fmt.Errorf(format, args...)})
}

// proxyPort is the annotation's port or the configured default.
func proxyPort(pod *corev1.Pod, cfg Config) (int32, error) {
	v, ok := pod.Annotations[AnnotationProxyPort]
	if !ok {
		return cfg.ProxyPort, nil
	}
	p, err := parsePort(v)
	if err != nil {
		return 0, deny("annotation %s: %w", AnnotationProxyPort, err)
	}
	return p, nil
}

func wireKnative(pod *corev1.Pod, cfg Config) (wiring, error) {
	qi := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == knativeQueueContainer })
	if qi < 0 {
		return wiring{}, deny("Knative revision pod (label %s) has no %s container, so the proxy cannot be put in front of the function; "+
			"opt the pod out with the label %s=%s if it must run unprotected", LabelKnativeRevision, knativeQueueContainer, LabelInject, PodDisabled)
	}
	if err := noTrustAnnotation(pod, "Knative revision"); err != nil {
		return wiring{}, err
	}
	qp := &pod.Spec.Containers[qi]
	ei := slices.IndexFunc(qp.Env, func(e corev1.EnvVar) bool { return e.Name == knativeUserPortEnv })
	if ei < 0 || qp.Env[ei].ValueFrom != nil {
		return wiring{}, deny("Knative revision pod: the %s container has no literal %s env, so the function's port is unknown; "+
			"opt the pod out with the label %s=%s if it must run unprotected", knativeQueueContainer, knativeUserPortEnv, LabelInject, PodDisabled)
	}
	userPort, err := parsePort(qp.Env[ei].Value)
	if err != nil {
		return wiring{}, deny("Knative revision pod: %s env of %s: %w", knativeUserPortEnv, knativeQueueContainer, err)
	}
	listen, err := proxyPort(pod, cfg)
	if err != nil {
		return wiring{}, err
	}
	if slices.Contains(knativeReserved, listen) {
		return wiring{}, deny("proxy port %d is reserved by Knative (%v); choose another with the annotation %s", listen, knativeReserved, AnnotationProxyPort)
	}
	if listen == userPort {
		return wiring{}, deny("the function listens on %d, the authgate proxy's port; choose another proxy port with the annotation %s", userPort, AnnotationProxyPort)
	}
	w := wiring{kind: "Knative revision", listen: listen, upstream: userPort,
		trustedProxies: trustList(knativeLoopback(), cfg.TrustedProxies.Knative), upstreamTimeout: revisionTimeout(qp)}
	// The user container declares the user port (named "user-port" by Knative).
	ui := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool {
		return c.Name != knativeQueueContainer && slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == userPort })
	})
	if ui >= 0 {
		user := pod.Spec.Containers[ui]
		w.h2c = slices.ContainsFunc(user.Ports, func(p corev1.ContainerPort) bool {
			return p.ContainerPort == userPort && p.Name == knativeH2CPortName
		})
		// Knative gives the user container a preStop hook that waits for the
		// queue-proxy to drain; the proxy waits the same way, so it keeps
		// serving the requests the queue-proxy still forwards.
		if l := user.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.HTTPGet != nil {
			w.preStop = l.PreStop.DeepCopy()
		}
	}
	if slices.ContainsFunc(qp.Env, func(e corev1.EnvVar) bool { return e.Name == knativeQueuePortEnv && e.Value == knativeH2CQueuePort }) {
		w.h2c = true
	}
	if err := addProxyReadiness(qp, cfg.AdminPort); err != nil {
		return wiring{}, err
	}
	qp.Env[ei].Value = strconv.Itoa(int(listen))
	return w, nil
}

// addProxyReadiness adds the sidecar's /readyz to queue-proxy's readiness
// probes. queue-proxy reports the pod ready -- to the kubelet, and to the
// activator, which probes a revision's new pods itself when it brings the
// revision up from zero -- only when every probe in SERVING_READINESS_PROBE
// passes, and Knative's probe targets the function directly. Without the
// sidecar's, the activator sends the first request once the function
// listens, before the sidecar does (502). The probes become a list
// (ENABLE_MULTI_CONTAINER_PROBES=true, which queue-proxy reads to decode
// them); the original ones are kept byte for byte. queue-proxy takes the
// probe as written (Knative defaults only the user's), so the scheme is
// spelled out.
func addProxyReadiness(qp *corev1.Container, adminPort int32) error {
	pi := slices.IndexFunc(qp.Env, func(e corev1.EnvVar) bool { return e.Name == knativeProbeEnv })
	if pi < 0 || qp.Env[pi].ValueFrom != nil {
		return deny("Knative revision pod: the %s container has no literal %s env, so its readiness cannot include the proxy's; "+
			"opt the pod out with the label %s=%s if it must run unprotected", knativeQueueContainer, knativeProbeEnv, LabelInject, PodDisabled)
	}
	multi := false
	mi := slices.IndexFunc(qp.Env, func(e corev1.EnvVar) bool { return e.Name == knativeMultiProbeEnv })
	if mi >= 0 {
		var err error
		if qp.Env[mi].ValueFrom != nil {
			return deny("Knative revision pod: %s of %s is not a literal", knativeMultiProbeEnv, knativeQueueContainer)
		}
		if multi, err = strconv.ParseBool(qp.Env[mi].Value); err != nil {
			return deny("Knative revision pod: %s of %s: %w", knativeMultiProbeEnv, knativeQueueContainer, err)
		}
	}
	var probes []json.RawMessage
	switch v := qp.Env[pi].Value; {
	case multi:
		if err := json.Unmarshal([]byte(v), &probes); err != nil {
			return deny("Knative revision pod: %s of %s is not a list of probes: %w", knativeProbeEnv, knativeQueueContainer, err)
		}
	case v != "":
		if !json.Valid([]byte(v)) {
			return deny("Knative revision pod: %s of %s is not a probe (JSON)", knativeProbeEnv, knativeQueueContainer)
		}
		probes = []json.RawMessage{json.RawMessage(v)}
	}
	own, err := json.Marshal(corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Host: "127.0.0.1", Port: intstr.FromInt32(adminPort), Path: "/readyz", Scheme: corev1.URISchemeHTTP,
	}}, SuccessThreshold: 1})
	if err != nil {
		return fmt.Errorf("encode the proxy's readiness probe: %w", err)
	}
	list, err := json.Marshal(append(probes, own))
	if err != nil {
		return fmt.Errorf("encode queue-proxy's readiness probes: %w", err)
	}
	qp.Env[pi].Value = string(list)
	if mi >= 0 {
		qp.Env[mi].Value = "true"
	} else {
		qp.Env = append(qp.Env, corev1.EnvVar{Name: knativeMultiProbeEnv, Value: "true"})
	}
	return nil
}

func wireOpenFaaS(pod *corev1.Pod, cfg Config) (wiring, error) {
	if v, ok := pod.Annotations[AnnotationProxyPort]; ok && v != strconv.Itoa(openFaaSPort) {
		return wiring{}, deny("OpenFaaS function pod: faas-netes sends traffic to port %d, so the proxy must listen there; remove the annotation %s", openFaaSPort, AnnotationProxyPort)
	}
	if len(pod.Spec.Containers) == 0 {
		return wiring{}, deny("OpenFaaS function pod has no containers")
	}
	if err := noTrustAnnotation(pod, "OpenFaaS function"); err != nil {
		return wiring{}, err
	}
	if c, ok := declares(pod, cfg.WatchdogPort); ok {
		return wiring{}, deny("OpenFaaS function pod: container %q already declares port %d, where the watchdog would move; "+
			"the platform team can change the injector's watchdog port", c, cfg.WatchdogPort)
	}
	fn := &pod.Spec.Containers[0]
	setEnv(fn, openFaaSWatchdogPortEnv, strconv.Itoa(int(cfg.WatchdogPort)))
	for i := range fn.Ports {
		if fn.Ports[i].ContainerPort == openFaaSPort {
			fn.Ports[i].ContainerPort = cfg.WatchdogPort
		}
	}
	for _, p := range []*corev1.Probe{fn.ReadinessProbe, fn.LivenessProbe, fn.StartupProbe} {
		moveProbe(p, openFaaSPort, cfg.WatchdogPort)
	}
	return wiring{kind: "OpenFaaS function", listen: openFaaSPort, upstream: cfg.WatchdogPort,
		trustedProxies: trustList(cfg.TrustedProxies.OpenFaaS), upstreamTimeout: watchdogTimeout(fn), drainDelay: cfg.DrainDelay}, nil
}

// sleepBeforeStop gives every container of pod without a preStop hook one
// that sleeps d, so it gets its SIGTERM after the proxy has stopped taking
// requests (the proxy serves for its drain delay after its own SIGTERM).
func sleepBeforeStop(pod *corev1.Pod, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			continue
		}
		if c.Lifecycle == nil {
			c.Lifecycle = &corev1.Lifecycle{}
		}
		c.Lifecycle.PreStop = &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: secs}}
	}
}

// shutdownMargin is how much of a pod's grace period the proxy leaves
// unused, so it exits on its own before the kubelet's SIGKILL.
const shutdownMargin = time.Second

// shutdownTimeout is how long the proxy may drain in-flight requests,
// streamed responses and WebSockets after its drain delay: the rest of the
// pod's termination grace period (Kubernetes' default 30s when unset; a
// Knative revision's is its request timeout), less shutdownMargin, and at
// least one second. The kubelet kills the pod at the end of the grace
// period whatever the proxy does, so a longer timeout would gain nothing.
func shutdownTimeout(pod *corev1.Pod, drainDelay time.Duration) time.Duration {
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	return max(time.Duration(grace)*time.Second-drainDelay-shutdownMargin, time.Second)
}

func wirePlain(pod *corev1.Pod, cfg Config) (wiring, error) {
	listen, err := proxyPort(pod, cfg)
	if err != nil {
		return wiring{}, err
	}
	v, ok := pod.Annotations[AnnotationAppPort]
	if !ok {
		return wiring{}, deny("the pod opted in to authgate but has no %s annotation: add %s: \"<port>\" to the pod template, naming the port "+
			"the application listens on (a number or a container port's name); the proxy forwards to 127.0.0.1:<port> and listens on %d "+
			"(annotation %s), so point the Service's targetPort at %d (the port named %q)",
			AnnotationAppPort, AnnotationAppPort, listen, AnnotationProxyPort, listen, PortName)
	}
	app, err := appPort(pod, v)
	if err != nil {
		return wiring{}, err
	}
	if app == listen {
		return wiring{}, deny("the application port %d is also the authgate proxy's port; choose another proxy port with the annotation %s", app, AnnotationProxyPort)
	}
	trusted, err := plainTrust(pod, cfg)
	if err != nil {
		return wiring{}, err
	}
	return wiring{kind: "pod", listen: listen, upstream: app, trustedProxies: trusted, drainDelay: cfg.DrainDelay}, nil
}

// appPort resolves the app-port annotation: a number, or the name of a
// container port.
func appPort(pod *corev1.Pod, v string) (int32, error) {
	if p, err := parsePort(v); err == nil {
		return p, nil
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name != "" && p.Name == v {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, deny("annotation %s=%q is neither a port number (1-65535) nor the name of a container port", AnnotationAppPort, v)
}

// checkPorts denies a pod that already declares the proxy's ports.
func checkPorts(pod *corev1.Pod, w wiring, cfg Config) error {
	if w.listen == cfg.AdminPort || w.upstream == cfg.AdminPort {
		return deny("port %d is the authgate proxy's admin port; choose other ports (annotation %s) or ask the platform team to change the injector's admin port",
			cfg.AdminPort, AnnotationProxyPort)
	}
	var errs []error
	for _, p := range []int32{w.listen, cfg.AdminPort} {
		if c, ok := declares(pod, p); ok {
			errs = append(errs, fmt.Errorf("container %q already declares port %d, which the authgate proxy needs", c, p))
		}
	}
	return denial(errs)
}

// declares reports which container, if any, declares port p.
func declares(pod *corev1.Pod, p int32) (string, bool) {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, cp := range c.Ports {
				if cp.ContainerPort == p {
					return c.Name, true
				}
			}
		}
	}
	return "", false
}

// setEnv sets name=value, replacing an existing variable.
func setEnv(c *corev1.Container, name, value string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i] = corev1.EnvVar{Name: name, Value: value}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// moveProbe moves an httpGet or tcpSocket probe on port from to port to.
// Named ports follow the container port by themselves.
func moveProbe(p *corev1.Probe, from, to int32) {
	if p == nil {
		return
	}
	if h := p.HTTPGet; h != nil && h.Port.Type == intstr.Int && h.Port.IntVal == from {
		h.Port = intstr.FromInt32(to)
	}
	if t := p.TCPSocket; t != nil && t.Port.Type == intstr.Int && t.Port.IntVal == from {
		t.Port = intstr.FromInt32(to)
	}
}
