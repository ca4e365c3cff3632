package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/test/k8senv"
)

// The objects the benchmark creates.
const (
	benchNamespace      = "pushbench"
	serviceAccount      = "fn"
	controllerNamespace = "authgate-system"
	controllerPod       = "authgate-controller-0"
	controllerSA        = "authgate-controller"
	pushServiceName     = "authgate-push"
	// serverName is the webhook Service's name, which the serving
	// certificate carries and the sidecars verify.
	serverName = "authgate-webhook." + controllerNamespace + ".svc"
	// tokenSeconds outlives any run: a token that expired mid-run would
	// measure the kubelet's rotation, which there is none of here.
	tokenSeconds = 2 * 3600
)

// podLabels are the simulated sidecars' pods' labels: injected (the
// coverage reconciler counts them as protected) and selected by the
// benchmark's AuthPolicy.
var podLabels = map[string]string{injector.LabelInjected: "true", "app": "fn"}

// cluster is the API server and the clients of it as its administrator.
type cluster struct {
	env    *envtest.Environment
	cfg    *rest.Config
	client client.Client
	cs     kubernetes.Interface
}

// startCluster starts kube-apiserver and etcd (envtest) with authgate's
// CRDs from the repository the working directory is in.
func startCluster() (*cluster, error) {
	root, err := k8senv.RepoRoot()
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("envtest binaries (%s) not found in %s: run `make envtest`", bin, assets)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	c, err := newCluster(env, cfg)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return c, nil
}

func newCluster(env *envtest.Environment, cfg *rest.Config) (*cluster, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1 // no client-side rate limit: the harness creates objects in parallel
	scheme, err := controllers.Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	return &cluster{env: env, cfg: cfg, client: c, cs: cs}, nil
}

func (c *cluster) stop() error { return c.env.Stop() }

// writeKubeconfig writes a kubeconfig of a new administrator for the
// controller process, which loads it as in production (ctrl.GetConfig).
func (c *cluster) writeKubeconfig(path string) error {
	u, err := c.env.AddUser(envtest.User{Name: "authgate-controller", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("controller user: %w", err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return fmt.Errorf("controller kubeconfig: %w", err)
	}
	return os.WriteFile(path, data, 0o600)
}

// createBase creates the namespaces, the ServiceAccounts and the
// controller's own Pod (which the push leader labels).
func (c *cluster) createBase(ctx context.Context) error {
	for _, ns := range []string{benchNamespace, controllerNamespace} {
		if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	for _, sa := range []struct{ ns, name string }{{benchNamespace, serviceAccount}, {controllerNamespace, controllerSA}} {
		obj := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.name}}
		if _, err := c.cs.CoreV1().ServiceAccounts(sa.ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("serviceaccount %s/%s: %w", sa.ns, sa.name, err)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: controllerPod, Labels: map[string]string{"app": "authgate-controller"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: controllerSA,
			Containers:         []corev1.Container{{Name: "controller", Image: "example.invalid/authgate-controller:bench"}},
		},
	}
	if _, err := c.cs.CoreV1().Pods(controllerNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("controller pod: %w", err)
	}
	return nil
}

// podName is the i-th simulated sidecar's pod.
func podName(i int) string { return fmt.Sprintf("fn-%05d", i) }

// createPods creates n Pods (never run: envtest has no kubelet; a
// pod-bound token and the coverage count need only the object) and a
// pod-bound token of audience pushapi.Audience for each, written to
// tokenDir/<pod>. It returns the token files.
func (c *cluster) createPods(ctx context.Context, n, workers int, tokenDir string) ([]string, error) {
	files := make([]string, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := range n {
		g.Go(func() error {
			f, err := c.createPod(ctx, podName(i), tokenDir)
			files[i] = f
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return files, nil
}

func (c *cluster) createPod(ctx context.Context, name, tokenDir string) (string, error) {
	pod, err := c.cs.CoreV1().Pods(benchNamespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: podLabels},
		Spec: corev1.PodSpec{
			ServiceAccountName: serviceAccount,
			Containers:         []corev1.Container{{Name: "fn", Image: "example.invalid/fn:bench"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("pod %s: %w", name, err)
	}
	exp := int64(tokenSeconds)
	tr, err := c.cs.CoreV1().ServiceAccounts(benchNamespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         []string{pushapi.Audience},
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token of pod %s: %w", name, err)
	}
	path := filepath.Join(tokenDir, name)
	if err := os.WriteFile(path, []byte(tr.Status.Token), 0o600); err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return path, nil
}
