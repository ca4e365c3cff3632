package injector_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/controllers/injector"
)

// These tests create Pods through a real API server, which calls the
// injector over TLS exactly as in a cluster, and assert what it stored.

var nsSeq atomic.Int32

// newNamespace creates a namespace (with the default ServiceAccount pods
// need, since envtest runs no controller-manager) and returns its name.
func newNamespace(t *testing.T, ctx context.Context, inject string) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, nsSeq.Add(1))
	return createNamespace(t, ctx, name, inject)
}

func createNamespace(t *testing.T, ctx context.Context, name, inject string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if inject != "" {
		ns.Labels = map[string]string{injector.LabelInject: inject}
	}
	if err := k8s.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}
	if err := k8s.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

// create stores pod in namespace ns through the API server and returns what
// was stored.
func create(t *testing.T, ctx context.Context, ns string, pod *corev1.Pod) (*corev1.Pod, error) {
	t.Helper()
	pod = pod.DeepCopy()
	pod.Namespace = ns
	pod.TypeMeta = metav1.TypeMeta{}
	if err := k8s.Create(ctx, pod); err != nil {
		return nil, err
	}
	return pod, nil
}

func mustCreate(t *testing.T, ctx context.Context, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := create(t, ctx, ns, pod)
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	return got
}

func requireEnvtest(t *testing.T) context.Context {
	t.Helper()
	if k8s == nil {
		t.Skip("needs envtest (a real API server): run `make envtest`, and not -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func injected(p *corev1.Pod) bool {
	return container(p, injector.ContainerName) != nil && p.Annotations[injector.AnnotationInjected] == "true"
}

func TestAdmissionKnative(t *testing.T) {
	t.Parallel()
	ctx := requireEnvtest(t)
	ns := newNamespace(t, ctx, injector.NamespaceEnabled)
	got := mustCreate(t, ctx, ns, knativePod())
	if !injected(got) {
		t.Fatalf("got containers %v, want the sidecar", names(got))
	}
	if v, _ := env(container(got, "queue-proxy"), "USER_PORT"); v != "8090" {
		t.Errorf("got stored USER_PORT %q, want 8090", v)
	}
	if got.Spec.Containers[0].Name != "user-container" || got.Spec.Containers[2].Name != injector.ContainerName {
		t.Errorf("got containers %v, want user-container first and the sidecar last", names(got))
	}
	sc := container(got, injector.ContainerName)
	if sc.SecurityContext == nil || sc.SecurityContext.RunAsUser == nil || *sc.SecurityContext.RunAsUser != 65532 {
		t.Error("sidecar security context not stored")
	}
	if len(got.Spec.Volumes) < 2 {
		t.Errorf("got volumes %v, want the config and podinfo volumes", got.Spec.Volumes)
	}
}

func TestAdmissionOpenFaaSPodOptIn(t *testing.T) {
	t.Parallel()
	ctx := requireEnvtest(t)
	ns := newNamespace(t, ctx, "") // no namespace label: the pod opts in
	got := mustCreate(t, ctx, ns, openFaaSPod(withLabel(injector.LabelInject, "true")))
	if !injected(got) {
		t.Fatalf("got containers %v, want the sidecar", names(got))
	}
	fn := got.Spec.Containers[0]
	if fn.Ports[0].ContainerPort != 8082 || fn.ReadinessProbe.HTTPGet.Port.IntVal != 8093 {
		t.Errorf("got watchdog port %d / probe %s, want 8082 and the probe on the proxy's admin port 8093", fn.Ports[0].ContainerPort, fn.ReadinessProbe.HTTPGet.Port.String())
	}
	if len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].Name != injector.CaptureContainerName {
		t.Errorf("got init containers %v, want %s", got.Spec.InitContainers, injector.CaptureContainerName)
	}
	if sc := container(got, injector.ContainerName); sc.Ports[0].ContainerPort != 8080 {
		t.Errorf("got proxy port %d, want 8080", sc.Ports[0].ContainerPort)
	}
}

func TestAdmissionNotInjected(t *testing.T) {
	t.Parallel()
	ctx := requireEnvtest(t)
	tests := []struct {
		name     string
		nsLabel  string
		nsName   string
		pod      *corev1.Pod
		podLabel string
	}{
		{"namespace without opt-in", "", "", plainPod(), ""},
		{"opted-out pod in an enabled namespace", injector.NamespaceEnabled, "", knativePod(), "false"},
		{"pod opt-in in a disabled namespace", injector.NamespaceDisabled, "", plainPod(), "true"},
		{"gateway namespace", injector.NamespaceEnabled, gatewayNamespace, plainPod(), "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := tt.nsName
			if ns == "" {
				ns = newNamespace(t, ctx, tt.nsLabel)
			} else {
				createNamespace(t, ctx, ns, tt.nsLabel)
			}
			pod := tt.pod
			if tt.podLabel != "" {
				withLabel(injector.LabelInject, tt.podLabel)(pod)
			}
			got := mustCreate(t, ctx, ns, pod)
			if container(got, injector.ContainerName) != nil || got.Annotations[injector.AnnotationInjected] != "" {
				t.Fatalf("got containers %v, want the pod stored as sent", names(got))
			}
		})
	}
}

func TestAdmissionDenied(t *testing.T) {
	t.Parallel()
	ctx := requireEnvtest(t)
	ns := newNamespace(t, ctx, injector.NamespaceEnabled)
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"knative without queue-proxy", knativePod(func(p *corev1.Pod) { p.Spec.Containers = p.Spec.Containers[:1] }),
			"has no queue-proxy container"},
		{"plain pod without app-port", plainPod(withoutAnnotation(injector.AnnotationAppPort)),
			"has no authgate.dev/app-port annotation"},
		{"plain pod trusting a name", plainPod(withAnnotation(injector.AnnotationTrustedProxies, "ingress-nginx")),
			`annotation authgate.dev/trusted-proxies: entry 0 ("ingress-nginx") is not an IP address or CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := create(t, ctx, ns, tt.pod)
			if err == nil {
				t.Fatal("got the pod created, want it denied")
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), injector.WebhookNamespaceOptIn) {
				t.Fatalf("got %v, want a denial by %s saying %q", err, injector.WebhookNamespaceOptIn, tt.want)
			}
		})
	}
}

func TestAdmissionIdempotent(t *testing.T) {
	t.Parallel()
	ctx := requireEnvtest(t)
	ns := newNamespace(t, ctx, injector.NamespaceEnabled)
	// A pod that already went through the injector (e.g. a pod spec copied
	// from a running pod) comes back through it unchanged.
	first := mustCreate(t, ctx, ns, knativePod())
	again := first.DeepCopy()
	again.ObjectMeta = metav1.ObjectMeta{GenerateName: first.GenerateName, Labels: first.Labels, Annotations: first.Annotations}
	again.Status = corev1.PodStatus{}
	again.Spec.NodeName = ""
	second := mustCreate(t, ctx, ns, again)
	if n := len(second.Spec.Containers); n != len(first.Spec.Containers) {
		t.Fatalf("got %d containers %v, want %d (no second sidecar)", n, names(second), len(first.Spec.Containers))
	}
	if v, _ := env(container(second, "queue-proxy"), "USER_PORT"); v != "8090" {
		t.Errorf("got USER_PORT %q, want 8090 (not rewired twice)", v)
	}
	if sc := container(second, injector.ContainerName); !slices.Equal(sc.Args, container(first, injector.ContainerName).Args) {
		t.Errorf("got args %q, want them as first injected", sc.Args)
	}
}

func names(p *corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.Containers {
		out = append(out, c.Name)
	}
	return out
}
