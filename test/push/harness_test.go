package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/internal/atomicwriter"
	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/app"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/logbuf"
	"github.com/authgate/authgate/test/metrictest"
	"github.com/authgate/authgate/test/wait"
)

// settle bounds every wait for the controller and the sidecars: generous,
// the machine is shared.
const settle = 30 * time.Second

// serviceAccount runs the function pods of every test namespace.
const serviceAccount = "fn"

// fnLabels are the labels of the function the tests' policies select.
var fnLabels = map[string]string{"app": "orders"}

// newNamespace creates a namespace for one test, with the ServiceAccount
// its pods run as. On failure the test prints the controller's log lines
// that name it.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs := ctl.logs.String()
			t.Logf("controller log lines naming %s:\n%s\nlast lines of the controller log:\n%s", ns.Name, grepLines(logs, ns.Name), lastLines(logs, 30))
		}
	})
	return ns.Name
}

func grepLines(text, substr string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.Contains(line, substr) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func lastLines(text string, n int) string {
	lines := strings.SplitAfter(text, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// newPod creates a function pod as the injector would have left it:
// labelled authgate.dev/injected=true besides the function's labels.
func newPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	labels := maps.Clone(fnLabels)
	labels[injector.LabelInjected] = "true"
	pod, err := cs.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: serviceAccount,
			Containers:         []corev1.Container{{Name: "fn", Image: "example.invalid/orders:1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// pushToken is a token of the pod's ServiceAccount for pushapi.Audience
// bound to the pod, as the kubelet projects it into the sidecar.
func pushToken(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(t.Context(), pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{pushapi.Audience}, ExpirationSeconds: &exp,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// sidecar is authgate-proxy (proxy/app) running in process for one pod,
// in front of an echo function of its own.
type sidecar struct {
	pod  *corev1.Pod
	app  *app.App
	fn   *echo.Function
	dir  string // the mounted bundle's directory; the file is dir/config.BundleKey
	reg  *prometheus.Registry
	logs *logbuf.Buffer
}

// withSidecars creates n pods named <ns>-<i> and runs a sidecar for each.
func withSidecars(t *testing.T, ns string, n int) []*sidecar {
	t.Helper()
	out := make([]*sidecar, n)
	for i := range out {
		out[i] = startSidecar(t, newPod(t, ns, fmt.Sprintf("orders-%d", i)))
	}
	return out
}

// startSidecar runs the pod's sidecar until the test ends: listeners on
// loopback, the pod's labels, a bundle file nobody writes unless the test
// does, and the push channel with the pod's projected token.
func startSidecar(t *testing.T, pod *corev1.Pod) *sidecar {
	t.Helper()
	fn := echo.New()
	fnSrv := httptest.NewServer(fn)
	t.Cleanup(fnSrv.Close)
	s := &sidecar{pod: pod, fn: fn, dir: t.TempDir(), reg: prometheus.NewRegistry(), logs: &logbuf.Buffer{}}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(pushToken(t, pod)), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{
		ConfigPath: filepath.Join(s.dir, config.BundleKey), Labels: pod.Labels,
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Upstream: fnSrv.URL,
		PollInterval: time.Second, ShutdownTimeout: 2 * time.Second,
		Push:   &app.PushOptions{URL: pushURL, CA: caPEM, ServerName: serverName, TokenFile: tokenFile},
		Logger: slog.New(slog.NewJSONHandler(s.logs, nil)), Registry: s.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.app = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !strings.Contains(err.Error(), "no valid configuration before shutdown") {
				t.Errorf("sidecar %s: %v", pod.Name, err)
			}
		case <-time.After(settle):
			t.Errorf("sidecar %s did not stop", pod.Name)
		}
		if t.Failed() {
			t.Logf("sidecar %s/%s log:\n%s", pod.Namespace, pod.Name, s.logs.String())
		}
	})
	return s
}

// waitReady waits for the sidecar to serve: it does only once it holds a
// valid configuration.
func (s *sidecar) waitReady(t *testing.T) {
	t.Helper()
	wait.For(t, settle, s.app.Ready, "sidecar %s to be ready", s.pod.Name)
}

// response is what a request through a sidecar got.
type response struct {
	status  int
	reason  string
	reached bool // the function received the request
}

func (r response) String() string {
	return fmt.Sprintf("%d %s (function reached: %v)", r.status, r.reason, r.reached)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// get sends GET path with headers (name, value, ...) through the sidecar
// (ready) and says what came back; an error counts as status 0.
func (s *sidecar) get(t *testing.T, path string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.app.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	before := s.fn.Count()
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{reason: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, reached: s.fn.Count() > before}
	var b struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &b) == nil {
		r.reason = b.Reason
	}
	return r
}

// expect fails the test unless path answers status.
func (s *sidecar) expect(t *testing.T, status int, path string, hdr ...string) {
	t.Helper()
	if got := s.get(t, path, hdr...); got.status != status || got.reached != (status == http.StatusOK) {
		t.Fatalf("sidecar %s: GET %s: got %s, want %d", s.pod.Name, path, got, status)
	}
}

// waitStatus waits until path answers status through every sidecar, and
// returns how long the last one took from since.
func waitStatus(t *testing.T, sidecars []*sidecar, since time.Time, status int, path string, hdr ...string) time.Duration {
	t.Helper()
	var last time.Duration
	pending := map[*sidecar]response{}
	for _, s := range sidecars {
		pending[s] = response{}
	}
	wait.ForNil(t, settle, func() error {
		for s := range pending {
			got := s.get(t, path, hdr...)
			if got.status == status {
				last = max(last, time.Since(since))
				delete(pending, s)
				continue
			}
			pending[s] = got
		}
		if len(pending) > 0 {
			var b strings.Builder
			for s, got := range pending {
				fmt.Fprintf(&b, "%s: %s; ", s.pod.Name, got)
			}
			return fmt.Errorf("%s", b.String())
		}
		return nil
	}, "GET %s to answer %d through %d sidecars", path, status, len(sidecars))
	return last
}

// metric is the sum of the sidecar's series of name with labels.
func (s *sidecar) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return metrictest.Sum(t, s.reg, name, labels...)
}

// waitConnected waits for the push client's gauge to read want.
func (s *sidecar) waitConnected(t *testing.T, want float64) {
	t.Helper()
	wait.ForNil(t, settle, func() error {
		if got := s.metric(t, "authgate_proxy_push_connected"); got != want {
			return fmt.Errorf("authgate_proxy_push_connected %v", got)
		}
		return nil
	}, "sidecar %s's push stream gauge to read %v", s.pod.Name, want)
}

// writeBundle projects data as the sidecar's mounted bundle, the way the
// kubelet swaps a Secret volume's ..data symlink.
func (s *sidecar) writeBundle(t *testing.T, data []byte) {
	t.Helper()
	if err := atomicwriter.Write(s.dir, map[string]string{config.BundleKey: string(data)}); err != nil {
		t.Fatal(err)
	}
}

// bundleFileExists says whether anything was written as the sidecar's
// mounted bundle.
func (s *sidecar) bundleFileExists() bool {
	_, err := os.Stat(filepath.Join(s.dir, config.BundleKey))
	return err == nil
}

// createPolicy creates the AuthPolicy doc (YAML) in ns.
func createPolicy(t *testing.T, ns, doc string) *v1alpha1.AuthPolicy {
	t.Helper()
	var p v1alpha1.AuthPolicy
	if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
		t.Fatalf("policy yaml: %v", err)
	}
	p.Namespace = ns
	if err := k8s.Create(t.Context(), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// updatePolicy applies change to the policy as it is now, again on a
// conflict (the controller writes the status meanwhile), as kubectl edit
// would, and returns when the API server took the update.
func updatePolicy(t *testing.T, ns, name string, change func(*v1alpha1.AuthPolicy)) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p := getPolicy(t, ns, name)
		change(p)
		return k8s.Update(t.Context(), p)
	}); err != nil {
		t.Fatal(err)
	}
}

func getPolicy(t *testing.T, ns, name string) *v1alpha1.AuthPolicy {
	t.Helper()
	var p v1alpha1.AuthPolicy
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// waitEnforced waits until the policy's status.coverage.enforcement reads
// enforcement and its Enforced condition is status (reason) with
// observedGeneration gen, and returns the policy.
func waitEnforced(t *testing.T, ns, name, enforcement string, status metav1.ConditionStatus, reason string, gen int64) *v1alpha1.AuthPolicy {
	t.Helper()
	var p *v1alpha1.AuthPolicy
	wait.ForNil(t, settle, func() error {
		p = getPolicy(t, ns, name)
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionEnforced)
		switch {
		case p.Generation != gen:
			return fmt.Errorf("generation %d", p.Generation)
		case p.Status.Coverage == nil:
			return fmt.Errorf("no status.coverage; conditions %+v", p.Status.Conditions)
		case p.Status.Coverage.Enforcement != enforcement:
			return fmt.Errorf("enforcement %q", p.Status.Coverage.Enforcement)
		case c == nil:
			return fmt.Errorf("no Enforced condition; coverage %+v", p.Status.Coverage)
		case c.Status != status || c.Reason != reason || c.ObservedGeneration != gen:
			return fmt.Errorf("Enforced %s/%s at generation %d: %s", c.Status, c.Reason, c.ObservedGeneration, c.Message)
		}
		return nil
	}, "%s/%s: enforcement %q, Enforced=%s (%s) at generation %d", ns, name, enforcement, status, reason, gen)
	return p
}

// bundleData is the namespace's bundle Secret's config.BundleKey.
func bundleData(t *testing.T, ns string) []byte {
	t.Helper()
	var s corev1.Secret
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: config.BundleSecret}, &s); err != nil {
		t.Fatal(err)
	}
	return s.Data[config.BundleKey]
}
