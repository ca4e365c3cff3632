// Package e2e runs the whole system on one machine: a real kube-apiserver
// and etcd (envtest), the real controller, the real authgate-proxy binary as
// a separate process, and a sample function. envtest runs no kubelet, so the
// test projects the rendered bundle Secret into a directory exactly as the
// kubelet does for a mounted volume (test/kubelet) and the proxy reads it
// from there, as it would in a pod.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/internal/atomicwriter"
	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/k8senv"
	"github.com/authgate/authgate/test/wait"
)

var (
	k8s      client.Client
	proxyBin string
	repoRoot = filepath.Join("..", "..")
)

func TestMain(m *testing.M) {
	os.Exit(k8senv.Main(k8senv.Options{CRDs: true}, func(env *k8senv.Env) int {
		k8s = env.Client
		return run(m, env.Config)
	}))
}

// run builds authgate-proxy and runs the tests with the controller running.
func run(m *testing.M, cfg *rest.Config) int {
	tmp, err := os.MkdirTemp("", "authgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	proxyBin = filepath.Join(tmp, "authgate-proxy")
	build := exec.Command("go", "build", "-o", proxyBin, "./cmd/authgate-proxy")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build authgate-proxy: %v\n%s", err, out)
		return 1
	}
	// The tests' IdPs listen on loopback, which the controller's default
	// fetch policy refuses: allow exactly 127.0.0.0/8 and ::1 here.
	loopbackAllowed, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := controllers.NewManager(rest.CopyConfig(cfg), controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0", MinRefresh: time.Second, MaxRefresh: time.Minute,
		DefaultRefresh: 30 * time.Second, FetchTimeout: 2 * time.Second,
		FetchPolicy: loopbackAllowed, // the IdPs are on loopback
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Registerer:  prometheus.NewRegistry(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	<-done
	return code
}

// projectBundle keeps dir in sync with the namespace's bundle Secret, as
// the kubelet does (only much faster than its 60-120 s sync period).
func projectBundle(ctx context.Context, t *testing.T, ns, dir string) <-chan struct{} {
	t.Helper()
	first := make(chan struct{})
	go func() {
		last := ""
		for ctx.Err() == nil {
			var s corev1.Secret
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: config.BundleSecret}, &s); err == nil {
				if data := string(s.Data[config.BundleKey]); data != last {
					if err := atomicwriter.Write(dir, map[string]string{config.BundleKey: data}); err == nil {
						if last == "" {
							close(first)
						}
						last = data
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return first
}

// proxyProcess is authgate-proxy running as its own process.
type proxyProcess struct {
	cmd   *exec.Cmd
	addr  string
	admin string
	logs  *strings.Builder
	mu    sync.Mutex
}

func startProxy(t *testing.T, configPath, upstream, labels string) *proxyProcess {
	t.Helper()
	cmd := exec.Command(proxyBin, "--config", configPath, "--labels", labels, "--upstream", upstream,
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--poll-interval", "200ms", "--shutdown-timeout", "5s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proxyProcess{cmd: cmd, logs: &strings.Builder{}}
	addrs := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var entry struct {
				Msg   string `json:"msg"`
				Addr  string `json:"address"`
				Admin string `json:"admin_address"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "authgate-proxy serving" {
				addrs <- [2]string{entry.Addr, entry.Admin}
			}
		}
	}()
	select {
	case a := <-addrs:
		p.addr, p.admin = "http://"+a[0], "http://"+a[1]
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("proxy did not start:\n%s", p.logText())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return p
}

func (p *proxyProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

type call struct {
	status   int
	reason   string
	received *echo.Received
}

func (p *proxyProcess) get(t *testing.T, fn *echo.Function, path string, hdr ...string) call {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.addr+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	before := fn.Count()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v\n%s", err, p.logText())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	c := call{status: resp.StatusCode}
	var b struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &b) == nil {
		c.reason = b.Reason
	}
	if fn.Count() > before {
		last, _ := fn.Last()
		c.received = &last
	}
	return c
}

const policyYAML = `
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: orders}
spec:
  targets: {knativeService: orders}
  authentication:
    jwt: [{issuerURL: %q, audiences: [orders-api]}]
    apiKeys: {secretNames: [partner-acme]}
  routes:
    - {name: health, paths: [/healthz], public: true}
    - {name: read, methods: [GET], paths: ["/orders/**"], requireScopes: [%s]}
`

func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := "e2e"
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	fn := echo.New()
	fnTS := httptest.NewServer(fn)
	defer fnTS.Close()
	issTS := faultidp.New(t)
	iss := issTS.Issuer

	key := "agk_e2e_partner_key_000000001"
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "partner-acme", Labels: map[string]string{translate.LabelAPIKey: "true"}},
		StringData: map[string]string{"key": key, "subject": "acme", "scopes": "orders:read"},
	}
	if err := k8s.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	var policy v1alpha1.AuthPolicy
	if err := yaml.UnmarshalStrict([]byte(fmt.Sprintf(policyYAML, issTS.URL, "orders:read")), &policy); err != nil {
		t.Fatal(err)
	}
	policy.Namespace = ns
	if err := k8s.Create(ctx, &policy); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	select {
	case <-projectBundle(ctx, t, ns, dir):
	case <-time.After(30 * time.Second):
		t.Fatal("the controller rendered no bundle")
	}
	px := startProxy(t, filepath.Join(dir, config.BundleKey), fnTS.URL, "serving.knative.dev/service=orders,app=orders")
	wait.For(t, 20*time.Second, func() bool {
		return px.get(t, fn, "/orders/1", "X-API-Key", key).status == http.StatusOK
	}, "the policy to be enforced")

	tok := func(scope string) string {
		s, err := iss.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": scope})
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	checks := []struct {
		name   string
		path   string
		hdr    []string
		status int
		sub    string
	}{
		{"public route", "/healthz", nil, 200, ""},
		{"no credential", "/orders/1", nil, 401, ""},
		{"api key", "/orders/1", []string{"X-API-Key", key}, 200, "acme"},
		{"wrong api key", "/orders/1", []string{"X-API-Key", key + "x"}, 401, ""},
		{"jwt with scope (keys shipped inline by the controller)", "/orders/1", []string{"Authorization", tok("orders:read")}, 200, "alice"},
		{"jwt without scope", "/orders/1", []string{"Authorization", tok("profile")}, 403, ""},
		{"spoofed subject", "/orders/1", []string{"X-API-Key", key, "X-Authgate-Subject", "root"}, 200, "acme"},
		{"unrouted path", "/admin", []string{"X-API-Key", key}, 403, ""},
	}
	for _, c := range checks {
		got := px.get(t, fn, c.path, c.hdr...)
		if got.status != c.status {
			t.Fatalf("%s: got %d (%s), want %d\n%s", c.name, got.status, got.reason, c.status, px.logText())
		}
		if c.status != 200 && got.received != nil {
			t.Fatalf("%s: the function was called on a denial", c.name)
		}
		if c.sub != "" {
			if got.received == nil || got.received.Headers["X-Authgate-Subject"][0] != c.sub {
				t.Fatalf("%s: function saw %+v, want subject %s", c.name, got.received, c.sub)
			}
		}
	}

	// Change the policy: the running proxy enforces the new version. The
	// controller writes the policy's status meanwhile, so the update is
	// retried on a conflict, as kubectl edit would be.
	updated := time.Now()
	var current v1alpha1.AuthPolicy
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "orders"}, &current); err != nil {
			return err
		}
		current.Spec.Routes[1].RequireScopes = []string{"orders:admin"}
		return k8s.Update(ctx, &current)
	}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 15*time.Second, func() bool {
		return px.get(t, fn, "/orders/1", "X-API-Key", key).status == http.StatusForbidden
	}, "the new policy version to be enforced")
	t.Logf("policy change enforced by the running proxy %s after kubectl update", time.Since(updated).Round(time.Millisecond))
	if got := px.get(t, fn, "/orders/1", "Authorization", tok("orders:admin")); got.status != 200 {
		t.Fatalf("token with the new scope: got %d, want 200", got.status)
	}

	// Delete it: fail closed.
	if err := k8s.Delete(ctx, &current); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 15*time.Second, func() bool {
		got := px.get(t, fn, "/healthz")
		return got.status == http.StatusForbidden && got.reason == "no_policy"
	}, "fail closed after the policy is deleted")
	if got := px.get(t, fn, "/orders/1", "Authorization", tok("orders:admin")); got.status != 403 || got.received != nil {
		t.Fatalf("after delete: got %d (function called: %v), want 403 without reaching the function", got.status, got.received != nil)
	}

	// SIGTERM: a clean, draining shutdown.
	if err := px.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := px.cmd.Wait(); err != nil {
		t.Fatalf("proxy exit: %v\n%s", err, px.logText())
	}
}
