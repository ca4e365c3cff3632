package faasnetes

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Labels, limits and names faas-netes uses.
const (
	LabelFunction   = "faas_function"
	labelMinScale   = "com.openfaas.scale.min"
	envProcessName  = "fprocess"
	maxReplicas     = 5  // pkg/handlers/replica_reader.go MaxReplicas (CE)
	maxFunctions    = 15 // pkg/handlers/replica_reader.go MaxFunctions (CE)
	nonRootUserID   = int64(12000)
	lockPath        = "/tmp/.lock"
	healthPath      = "/_/health"
	initialReplicas = 1
)

// ProbeConfig is one probe's timing (pkg/k8s ProbeConfig).
type ProbeConfig struct {
	InitialDelaySeconds, TimeoutSeconds, PeriodSeconds int32
}

// DeployConfig is faas-netes' k8s.DeploymentConfig plus the pull policy.
type DeployConfig struct {
	RuntimeHTTPPort int32
	// HTTPProbe is env http_probe: httpGet /_/health on RuntimeHTTPPort,
	// else exec "cat /tmp/.lock". faas-netes defaults to false; its chart
	// sets true (functions.httpProbe).
	HTTPProbe bool
	// SetNonRootUser is env set_nonroot_user: runAsUser 12000.
	SetNonRootUser bool
	// ImagePullPolicy is hard-coded Always in faas-netes CE (create and
	// update; the chart's functions.imagePullPolicy is read only by the Pro
	// operator). A reproduction setting, so that a cluster without a
	// registry can run side-loaded images.
	ImagePullPolicy corev1.PullPolicy
	// Readiness and Liveness are hard-coded 2/1/2 in faas-netes CE main.go
	// (the chart's readiness_probe_* variables are read only by Pro).
	Readiness, Liveness ProbeConfig
}

// DefaultDeployConfig is faas-netes CE's configuration with no environment.
func DefaultDeployConfig() DeployConfig {
	p := ProbeConfig{InitialDelaySeconds: 2, TimeoutSeconds: 1, PeriodSeconds: 2}
	return DeployConfig{RuntimeHTTPPort: 8080, ImagePullPolicy: corev1.PullAlways, Readiness: p, Liveness: p}
}

// validDNS is faas-netes' RFC 1123 check of the service name.
var validDNS = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// validateDeployRequest is pkg/handlers/validate.go ValidateDeployRequest
// with the CE scaling-label checks.
func validateDeployRequest(r *FunctionDeployment) error {
	if r.Service == "" {
		return errors.New("service: is required")
	}
	if !validDNS.MatchString(r.Service) {
		return fmt.Errorf("service: (%s) is invalid, must be a valid DNS entry", r.Service)
	}
	if r.Image == "" {
		return errors.New("image: is required")
	}
	if r.Labels == nil {
		return nil
	}
	labels := *r.Labels
	if labels["com.openfaas.scale.zero"] == "true" {
		return errors.New("com.openfaas.scale.zero not available for Community Edition")
	}
	for _, l := range []string{"com.openfaas.scale.zero-duration", "com.openfaas.scale.target", "com.openfaas.scale.type"} {
		if _, ok := labels[l]; ok {
			return fmt.Errorf("%s not available for Community Edition", l)
		}
	}
	for _, l := range []string{"com.openfaas.scale.max", "com.openfaas.scale.min"} {
		if n, err := strconv.Atoi(labels[l]); err == nil && n > maxReplicas {
			return fmt.Errorf("%s is set too high for Community Edition", l)
		}
	}
	return nil
}

// MakeDeployment renders the Deployment for r the way faas-netes'
// makeDeploymentSpec does (pkg/handlers/deploy.go), with no secrets.
func MakeDeployment(r FunctionDeployment, cfg DeployConfig) (*appsv1.Deployment, error) {
	replicas := int32p(initialReplicas)
	labels := map[string]string{LabelFunction: r.Service}
	if r.Labels != nil {
		if m := minReplicas(*r.Labels); m != nil {
			replicas = m
		}
		for k, v := range *r.Labels {
			labels[k] = v
		}
	}
	resources, err := createResources(r)
	if err != nil {
		return nil, err
	}
	annotations, err := buildAnnotations(r)
	if err != nil {
		return nil, err
	}
	probe := makeProbes(cfg)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: r.Service, Annotations: annotations, Labels: map[string]string{LabelFunction: r.Service}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelFunction: r.Service}},
			Replicas: replicas,
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: &intstr.IntOrString{Type: intstr.Int, IntVal: 0},
					MaxSurge:       &intstr.IntOrString{Type: intstr.Int, IntVal: 1},
				},
			},
			RevisionHistoryLimit: int32p(10),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Name: r.Service, Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{},
					Containers: []corev1.Container{{
						Name:            r.Service,
						Image:           r.Image,
						Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: cfg.RuntimeHTTPPort, Protocol: corev1.ProtocolTCP}},
						Env:             buildEnvVars(r),
						Resources:       *resources,
						ImagePullPolicy: cfg.ImagePullPolicy,
						LivenessProbe:   probe(cfg.Liveness),
						ReadinessProbe:  probe(cfg.Readiness),
						SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: &r.ReadOnlyRootFilesystem},
					}},
					RestartPolicy: corev1.RestartPolicyAlways,
					DNSPolicy:     corev1.DNSClusterFirst,
				},
			},
		},
	}
	configureReadOnlyRootFilesystem(r, d)
	configureContainerUserID(cfg, d)
	return d, nil
}

// MakeService renders the Service for r the way faas-netes' makeServiceSpec
// does: ClusterIP, selector faas_function, port "http" 8080 → 8080, the
// function's annotations and no labels.
func MakeService(r FunctionDeployment, cfg DeployConfig) (*corev1.Service, error) {
	annotations, err := buildAnnotations(r)
	if err != nil {
		return nil, err
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{Kind: "Service", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: r.Service, Annotations: annotations},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{LabelFunction: r.Service},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: cfg.RuntimeHTTPPort,
				TargetPort: intstr.IntOrString{Type: intstr.Int, IntVal: cfg.RuntimeHTTPPort},
			}},
		},
	}, nil
}

// makeProbes is pkg/k8s/probes.go MakeProbes: one handler for both probes,
// success 1, failure 3.
func makeProbes(cfg DeployConfig) func(ProbeConfig) *corev1.Probe {
	handler := corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", lockPath}}}
	if cfg.HTTPProbe {
		handler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: healthPath, Port: intstr.IntOrString{Type: intstr.Int, IntVal: cfg.RuntimeHTTPPort}}}
	}
	return func(p ProbeConfig) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: handler, InitialDelaySeconds: p.InitialDelaySeconds, TimeoutSeconds: p.TimeoutSeconds,
			PeriodSeconds: p.PeriodSeconds, SuccessThreshold: 1, FailureThreshold: 3}
	}
}

// buildAnnotations is faas-netes': the request's annotations (the same map),
// CE's refusals, and prometheus.io.scrape "false" unless set.
func buildAnnotations(r FunctionDeployment) (map[string]string, error) {
	annotations := map[string]string{}
	if r.Annotations != nil {
		annotations = *r.Annotations
	}
	if strings.Contains(annotations["topic"], ",") {
		return nil, errors.New("the topic annotation may only support one value in the Community Edition")
	}
	for k := range annotations {
		if strings.Contains(k, "amazonaws.com") || strings.Contains(k, "gke.io") {
			return nil, fmt.Errorf("annotation %q is not supported in the Community Edition", k)
		}
	}
	if _, ok := annotations["prometheus.io.scrape"]; !ok {
		annotations["prometheus.io.scrape"] = "false"
	}
	return annotations, nil
}

// buildEnvVars is fprocess (from envProcess) and envVars, sorted by name.
func buildEnvVars(r FunctionDeployment) []corev1.EnvVar {
	env := []corev1.EnvVar{}
	if r.EnvProcess != "" {
		env = append(env, corev1.EnvVar{Name: envProcessName, Value: r.EnvProcess})
	}
	for k, v := range r.EnvVars {
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	sort.SliceStable(env, func(i, j int) bool { return env[i].Name < env[j].Name })
	return env
}

// createResources reads memory and CPU limits and requests (GPUs are not
// read by CE).
func createResources(r FunctionDeployment) (*corev1.ResourceRequirements, error) {
	res := &corev1.ResourceRequirements{Limits: corev1.ResourceList{}, Requests: corev1.ResourceList{}}
	for _, q := range []struct {
		from *FunctionResources
		cpu  bool
		to   corev1.ResourceList
	}{{r.Limits, false, res.Limits}, {r.Requests, false, res.Requests}, {r.Limits, true, res.Limits}, {r.Requests, true, res.Requests}} {
		if q.from == nil {
			continue
		}
		v, name := q.from.Memory, corev1.ResourceMemory
		if q.cpu {
			v, name = q.from.CPU, corev1.ResourceCPU
		}
		if v == "" {
			continue
		}
		qty, err := resource.ParseQuantity(v)
		if err != nil {
			return res, err
		}
		q.to[name] = qty
	}
	return res, nil
}

func minReplicas(labels map[string]string) *int32 {
	if n, err := strconv.Atoi(labels[labelMinScale]); err == nil && n > 0 {
		return int32p(int32(n))
	}
	return nil
}

// configureReadOnlyRootFilesystem is pkg/k8s/securityContext.go: with
// readOnlyRootFilesystem a "temp" emptyDir on /tmp (where the watchdog
// writes its lock file).
func configureReadOnlyRootFilesystem(r FunctionDeployment, d *appsv1.Deployment) {
	c := &d.Spec.Template.Spec.Containers[0]
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	c.SecurityContext.ReadOnlyRootFilesystem = &r.ReadOnlyRootFilesystem
	spec := &d.Spec.Template.Spec
	spec.Volumes = removeNamed(spec.Volumes, func(v corev1.Volume) string { return v.Name }, "temp")
	c.VolumeMounts = removeNamed(c.VolumeMounts, func(m corev1.VolumeMount) string { return m.Name }, "temp")
	if r.ReadOnlyRootFilesystem {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "temp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "temp", MountPath: "/tmp"})
	}
}

func configureContainerUserID(cfg DeployConfig, d *appsv1.Deployment) {
	var uid *int64
	if cfg.SetNonRootUser {
		v := nonRootUserID
		uid = &v
	}
	d.Spec.Template.Spec.Containers[0].SecurityContext.RunAsUser = uid
}

func removeNamed[T any](items []T, name func(T) string, drop string) []T {
	out := []T{}
	for _, it := range items {
		if name(it) != drop {
			out = append(out, it)
		}
	}
	return out
}

func int32p(i int32) *int32 { return &i }
