// Package cluster is the end-to-end test on a real single-node cluster:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a kubelet
// with containerd and runc, kube-proxy and CoreDNS, started by
// hack/cluster/node.sh inside a network namespace with no route out;
// authgate installed with `helm install charts/authgate`; real Knative
// Serving; the OpenFaaS contract reproduced (test/cluster/openfaas: no
// OpenFaaS module can be downloaded here); a plain Deployment. It runs only
// under `make e2e` (hack/cluster/e2e.sh), which runs this test binary inside
// the cluster's network namespace; elsewhere it skips.
//
// Figures are printed as `figure <name> <value> <unit>` lines after the tests
// (hack/cluster/e2e.sh repeats them at the end of the run).
package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/test/wait"
)

// Environment set by hack/cluster/e2e.sh.
const (
	envKubeconfig = "AUTHGATE_E2E_KUBECONFIG"
	envHelm       = "AUTHGATE_E2E_HELM"
	envKnative    = "AUTHGATE_E2E_KNATIVE_DIR"
	envFigures    = "AUTHGATE_E2E_FIGURES"
)

var (
	k8s       client.Client
	clientset *kubernetes.Clientset
	repoRoot  = filepath.Join("..", "..")
	figs      = &figures{}
)

func TestMain(m *testing.M) {
	kubeconfig := os.Getenv(envKubeconfig)
	if kubeconfig == "" {
		fmt.Println("test/cluster: skipped: runs on a real node under `make e2e` (" + envKubeconfig + " unset)")
		os.Exit(0)
	}
	code, err := run(m, kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/cluster:", err)
		os.Exit(1)
	}
	figs.print(os.Stdout)
	if f := os.Getenv(envFigures); f != "" {
		out, err := os.Create(f)
		if err == nil {
			figs.print(out)
			_ = out.Close()
		}
	}
	os.Exit(code)
}

func run(m *testing.M, kubeconfig string) (int, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return 0, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return 0, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return 0, err
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return 0, err
	}
	if clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := installAuthgate(ctx); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// installAuthgate runs `helm install charts/authgate` with values for the
// image names only, and waits for the injector to answer.
func installAuthgate(ctx context.Context) error {
	start := time.Now()
	if err := helmRelease(ctx, "install", "--create-namespace",
		"--set", "image.repository=dev.local/authgate/authgate-controller", "--set", "image.tag=e2e",
		"--set", "proxy.image.repository=dev.local/authgate/authgate-proxy", "--set", "proxy.image.tag=e2e",
		// Every sidecar gets the Redis of TestSharedLimits; only policies
		// with sharedLimits use it. 100ms rather than the 5ms default: the
		// whole cluster shares this machine's 2 cores, and a call past the
		// timeout would be a 503 the test cannot tell from a real outage.
		"--set", "redis.address="+redisAddress, "--set", "redis.timeout=100ms"); err != nil {
		return err
	}
	figs.add("helm_install_to_ready", time.Since(start).Seconds(), "s")
	return nil
}

// helmRelease runs `helm <verb>` (install or upgrade) on the authgate
// release with args, waits for it, then for the injector to answer: the
// webhook fails closed, so an opted-in pod cannot be created until the
// controller has issued its certificate and published the caBundle.
func helmRelease(ctx context.Context, verb string, args ...string) error {
	args = append([]string{verb, "authgate", filepath.Join(repoRoot, "charts", "authgate"),
		"--namespace", "authgate-system", "--wait", "--timeout", "5m"}, args...)
	cmd := exec.CommandContext(ctx, os.Getenv(envHelm), args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("helm %s: %w", verb, err)
	}
	return wait.Until(ctx, 3*time.Minute, injectorAnswers(ctx))
}

// figures collects the run's measurements.
type figures struct {
	mu   sync.Mutex
	rows map[string]string
}

func (f *figures) add(name string, value float64, unit string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rows == nil {
		f.rows = map[string]string{}
	}
	// Three significant digits, never an exponent: 2400, 67.6, 0.00846.
	v, _ := strconv.ParseFloat(fmt.Sprintf("%.3g", value), 64)
	f.rows[name] = fmt.Sprintf("figure %s %s %s", name, strconv.FormatFloat(v, 'f', -1, 64), unit)
}

func (f *figures) print(w *os.File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.rows))
	for n := range f.rows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(w, f.rows[n])
	}
}
