package injector

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/authgate/authgate/internal/assertionkey"
	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/proxy/config"
)

// proxyUID is the distroless "nonroot" user the proxy image runs as.
const proxyUID int64 = 65532

// startupWindowSeconds bounds how long the proxy may wait for its first valid
// configuration before the kubelet restarts it (see sidecar).
const startupWindowSeconds = 3600

// sidecar builds the authgate-proxy container for w.
func sidecar(cfg Config, w wiring) corev1.Container {
	args := []string{
		"--config", config.DefaultPath,
		"--labels-file", path.Join(PodInfoMountPath, PodInfoLabelsKey),
		"--listen", fmt.Sprintf(":%d", w.listen),
		"--admin-listen", fmt.Sprintf(":%d", cfg.AdminPort),
		"--upstream", fmt.Sprintf("http://127.0.0.1:%d", w.upstream),
		"--assertion-keys", assertionkey.DefaultPath,
	}
	if w.h2c {
		args = append(args, "--upstream-h2c")
	}
	args = append(args, platformArgs(w)...)
	args = append(args, pushArgs(cfg.Push)...)
	args = append(args, cfg.Tracing.Args(EnvTracingCA)...)
	args = append(args, redisArgs(cfg.Redis, w.namespace)...)
	args = append(args, "--log-level", cfg.LogLevel)
	admin := intstr.FromString(AdminPortName)
	c := corev1.Container{
		Name:            ContainerName,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Args:            args,
		Ports: []corev1.ContainerPort{
			{Name: PortName, ContainerPort: w.listen, Protocol: corev1.ProtocolTCP},
			{Name: AdminPortName, ContainerPort: cfg.AdminPort, Protocol: corev1.ProtocolTCP},
		},
		Resources: *cfg.Resources.DeepCopy(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: ConfigVolumeName, MountPath: config.MountDir, ReadOnly: true},
			{Name: PodInfoVolumeName, MountPath: PodInfoMountPath, ReadOnly: true},
			{Name: AssertionKeyVolumeName, MountPath: assertionkey.MountDir, ReadOnly: true},
		},
		// The proxy opens its admin port only once a valid configuration is
		// loaded, and in a namespace without an AuthPolicy that may take a
		// while. The startup probe holds the liveness probe off until then
		// (instead of restarting a proxy that is correctly waiting, not ready);
		// readiness follows at once.
		StartupProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: admin, Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds:    1,
			TimeoutSeconds:   1,
			SuccessThreshold: 1,
			FailureThreshold: startupWindowSeconds,
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: admin, Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds:    2,
			TimeoutSeconds:   1,
			SuccessThreshold: 1,
			FailureThreshold: 2,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: admin, Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds:    10,
			TimeoutSeconds:   2,
			SuccessThreshold: 1,
			FailureThreshold: 3,
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptrTo(true),
			RunAsUser:                ptrTo(proxyUID),
			RunAsGroup:               ptrTo(proxyUID),
			ReadOnlyRootFilesystem:   ptrTo(true),
			AllowPrivilegeEscalation: ptrTo(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if w.preStop != nil {
		c.Lifecycle = &corev1.Lifecycle{PreStop: w.preStop}
	}
	c.Env = append(c.Env, tracingEnv(cfg.Tracing)...)
	c.VolumeMounts = append(c.VolumeMounts, redisMounts(cfg.Redis)...)
	return c
}

// EnvTracingCA carries the tracing receiver's PEM CA bundle into the
// sidecar (--tracing-ca).
const EnvTracingCA = "AUTHGATE_TRACING_CA"

// tracingEnv is the sidecar's environment for tracing: the pod's
// namespace and name (resource attributes of its spans) and the CA. None
// with tracing off, so pods are unchanged.
func tracingEnv(t tracing.Options) []corev1.EnvVar {
	if !t.Enabled() {
		return nil
	}
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	env := []corev1.EnvVar{field(tracing.EnvPodNamespace, "metadata.namespace"), field(tracing.EnvPodName, "metadata.name")}
	if t.CAPEM != "" {
		env = append(env, corev1.EnvVar{Name: EnvTracingCA, Value: t.CAPEM})
	}
	return env
}

// AssertionKeyVolumeName mounts the namespace's identity assertion key
// ring (Secret authgate-assertion-key) into the sidecar only.
const AssertionKeyVolumeName = "authgate-assertion-key"

// volumes are the namespace bundle (Secret config.BundleSecret; optional:
// until the controller writes it the proxy waits, not ready), the pod's
// labels and the identity assertion key ring (optional: it exists only
// while a policy of the namespace enables identityAssertion; without it the
// proxy refuses, 503, what such a policy would forward, and serves
// everything else).
func volumes() []corev1.Volume {
	return []corev1.Volume{
		secretVolume(ConfigVolumeName, config.BundleSecret, config.BundleKey),
		{Name: PodInfoVolumeName, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{
				Path:     PodInfoLabelsKey,
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"},
			}},
		}}},
		secretVolume(AssertionKeyVolumeName, assertionkey.SecretName, assertionkey.SecretKey),
	}
}

// secretVolume is an optional volume of one key of a Secret, for the
// sidecar only. Its file is world-readable inside the volume: the kubelet
// writes secret volume files as root (the group is the pod's fsGroup, which
// the injector does not set) and the proxy runs as 65532:65532, so 0440
// would lock it out. Only the sidecar mounts the volume; the function's
// containers never see the Secret.
func secretVolume(name, secret, key string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  secret,
		Items:       []corev1.KeyToPath{{Key: key, Path: key}},
		DefaultMode: ptrTo(int32(0o444)),
		Optional:    ptrTo(true),
	}}}
}

func ptrTo[T any](v T) *T { return &v }
