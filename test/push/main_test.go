// Package push_test runs the push channel (issue 12) with real parts: a
// real kube-apiserver and etcd (envtest) with the CRDs, the real controller
// (controllers.NewManager with the injector and the push channel on) and
// real sidecars (proxy/app, in process), each connecting with a pod-bound
// token of audience pushapi.Audience from the TokenRequest API. A
// sidecar's mounted bundle is a directory of the test's, written only
// where a test says so: otherwise everything a sidecar enforces came over
// the push channel.
//
// The controller runs in a child process, the test binary re-executed by
// TestMain (controllerEnv set). Two managers cannot be built in one
// process: controller-runtime refuses a second controller of the same
// name ("controller with name authpolicy already exists ... SkipNameValidation",
// which controllers.Options does not expose), and a started manager does
// not start again. TestControllerDown stops the controller and starts a
// new one, as a restarted controller pod would be, so the suite runs it as
// a process from the start. TestControllerDown is the one test that does
// not call t.Parallel: Go runs it to the end before any parallel test
// goes on, so no other test sees the controller go away.
//
// The injection webhook is served (the push channel needs the injector)
// but not registered with the API server: the pods are created directly as
// objects and are not mutated. They carry the label the injector would add
// (authgate.dev/injected=true), which is what coverage counts; they never
// run (envtest has no kubelet), their sidecars run here.
package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/test/k8senv"
	"github.com/authgate/authgate/test/logbuf"
	"github.com/authgate/authgate/test/testca"
	"github.com/authgate/authgate/test/wait"
)

// The controller's own namespace and pod, and the names its serving
// certificate and push Service carry.
const (
	systemNamespace = "authgate-system"
	controllerPod   = "authgate-controller-0"
	pushService     = "authgate-push"
	serverName      = "authgate-webhook.authgate-system.svc"
)

// controllerEnv, set to the path of a controllerSpec file, makes the test
// binary run the controller instead of the tests.
const controllerEnv = "AUTHGATE_PUSH_TEST_CONTROLLER"

var (
	k8s client.Client
	cs  kubernetes.Interface
	ctl *controller
	// caPEM is the CA of the controller's serving certificate (ca.crt of
	// its cert dir), which the sidecars trust.
	caPEM []byte
	// pushURL is where the sidecars reach the push server: its loopback
	// address (there is no Service here), verified for serverName.
	pushURL string
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(controllerEnv); spec != "" {
		os.Exit(runController(spec))
	}
	os.Exit(k8senv.Main(k8senv.Options{CRDs: true}, func(env *k8senv.Env) int {
		k8s = env.Client
		var err error
		if cs, err = kubernetes.NewForConfig(env.Config); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return run(m, env.Config)
	}))
}

// run prepares the controller's cert dir and pod, starts the controller
// and runs the tests.
func run(m *testing.M, cfg *rest.Config) int {
	tmp, err := os.MkdirTemp("", "authgate-push-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	certDir := filepath.Join(tmp, "certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if caPEM, err = testca.WriteCertDir(certDir, serverName); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := createControllerPod(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ports, err := freePorts(2)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	spec := controllerSpec{
		Host: cfg.Host, CAData: cfg.CAData, CertData: cfg.CertData, KeyData: cfg.KeyData, BearerToken: cfg.BearerToken,
		QPS: cfg.QPS, Burst: cfg.Burst,
		CertDir: certDir, WebhookPort: ports[0], PushAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}
	pushURL = "https://" + spec.PushAddr
	ctl, err = newController(filepath.Join(tmp, "controller.json"), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := ctl.start(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "%v\ncontroller log:\n%s", err, ctl.logs.String())
		_ = ctl.stop()
		return 1
	}
	code := m.Run()
	if err := ctl.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop the controller: %v\n", err)
		return 1
	}
	return code
}

// createControllerPod creates the controller's namespace and its pod
// object, which the push server labels while it serves (any valid spec:
// it never runs).
func createControllerPod(ctx context.Context) error {
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}); err != nil {
		return err
	}
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "authgate-controller"}}); err != nil {
		return err
	}
	return k8s.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: controllerPod, Labels: map[string]string{"app.kubernetes.io/name": "authgate"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "authgate-controller",
			Containers:         []corev1.Container{{Name: "controller", Image: "authgate-controller:test"}},
		},
	})
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// controllerSpec is what the child process needs: the API server's
// address, admin credentials and client limits (envtest's rest.Config)
// and the controller's cert dir and addresses.
type controllerSpec struct {
	Host        string `json:"host"`
	CAData      []byte `json:"caData"`
	CertData    []byte `json:"certData"`
	KeyData     []byte `json:"keyData"`
	BearerToken string `json:"bearerToken"`
	// QPS and Burst are envtest's (client-go's defaults, 5 and 10, would
	// throttle the controller here; the real one disables client-side
	// throttling, ctrl.GetConfig).
	QPS         float32 `json:"qps"`
	Burst       int     `json:"burst"`
	CertDir     string  `json:"certDir"`
	WebhookPort int     `json:"webhookPort"`
	PushAddr    string  `json:"pushAddr"`
}

// controller is the controller process: the test binary running
// runController. It stops when its stdin closes (so it also ends when the
// test process dies).
type controller struct {
	specPath string
	logs     *logbuf.Buffer

	mu    sync.Mutex
	stdin io.WriteCloser
	done  chan error // the process's exit; nil when not running
}

func newController(specPath string, spec controllerSpec) (*controller, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(specPath, data, 0o600); err != nil {
		return nil, err
	}
	return &controller{specPath: specPath, logs: &logbuf.Buffer{}}, nil
}

// start runs a new controller process and waits until it serves the push
// channel (it labels its pod then).
func (c *controller) start(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), controllerEnv+"="+c.specPath)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the controller: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c.mu.Lock()
	c.stdin, c.done = stdin, done
	c.mu.Unlock()
	fmt.Fprintf(c.logs, "--- test: controller process %d started\n", cmd.Process.Pid)
	return wait.Until(ctx, 60*time.Second, func() error {
		select {
		case err := <-done:
			done <- err // for stop
			if err == nil {
				err = errors.New("exit status 0")
			}
			return fmt.Errorf("the controller exited: %w", err)
		default:
		}
		leader, err := pushLeaderLabel(ctx)
		if err != nil {
			return err
		}
		if leader != "true" {
			return errors.New("its pod is not labelled the push leader yet")
		}
		return nil
	})
}

// running says whether a controller process was started and not stopped.
func (c *controller) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done != nil
}

// stop closes the controller's stdin and waits for it to exit: the manager
// stops, the push server closes its streams and unlabels the pod.
func (c *controller) stop() error {
	c.mu.Lock()
	stdin, done := c.stdin, c.done
	c.stdin, c.done = nil, nil
	c.mu.Unlock()
	if done == nil {
		return nil
	}
	stdin.Close()
	select {
	case err := <-done:
		fmt.Fprintf(c.logs, "--- test: controller process exited: %v\n", err)
		return err
	case <-time.After(30 * time.Second):
		return errors.New("the controller did not stop within 30s")
	}
}

// pushLeaderLabel is the controller pod's LabelPushLeader value.
func pushLeaderLabel(ctx context.Context) (string, error) {
	var pod corev1.Pod
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: systemNamespace, Name: controllerPod}, &pod); err != nil {
		return "", err
	}
	return pod.Labels[controllers.LabelPushLeader], nil
}

// runController is the child process: the controller with the Options of
// test/e2e's suite plus the injector, the webhook server and the push
// channel, until stdin closes.
func runController(specPath string) int {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.InfoLevel)))
	fail := func(err error) int {
		logger.Error("controller", "error", err.Error())
		return 1
	}
	data, err := os.ReadFile(specPath)
	if err != nil {
		return fail(err)
	}
	var spec controllerSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fail(err)
	}
	cfg := &rest.Config{Host: spec.Host, BearerToken: spec.BearerToken, QPS: spec.QPS, Burst: spec.Burst,
		TLSClientConfig: rest.TLSClientConfig{CAData: spec.CAData, CertData: spec.CertData, KeyData: spec.KeyData}}
	// The tests' IdPs listen on loopback, which the default fetch policy
	// refuses: allow exactly 127.0.0.0/8 and ::1, as test/e2e does.
	loopback, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, nil)
	if err != nil {
		return fail(err)
	}
	inj := &injector.Config{Image: "authgate-proxy:test"}
	inj.Default()
	mgr, err := controllers.NewManager(cfg, controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0", MinRefresh: time.Second, MaxRefresh: time.Minute,
		DefaultRefresh: 30 * time.Second, FetchTimeout: 2 * time.Second,
		FetchPolicy: loopback,
		Logger:      logger,
		Registerer:  prometheus.NewRegistry(),
		Injector:    inj,
		// Served, not registered with the API server (see the package doc).
		WebhookPort: spec.WebhookPort, WebhookCertDir: spec.CertDir,
		Push: &controllers.PushOptions{
			Addr: spec.PushAddr, ServiceName: pushService, Namespace: systemNamespace,
			PodName: controllerPod, ServerName: serverName,
		},
	})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), logf.Log))
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := mgr.Start(ctx); err != nil {
		return fail(err)
	}
	return 0
}
