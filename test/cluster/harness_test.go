package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/test/wait"
)

// Bounds of the waits: generous, because a 2-core node runs everything.
const (
	podReadyTimeout = 4 * time.Minute
	requestTimeout  = 30 * time.Second
)

// injectorAnswers is a condition: a dry-run pod in an opted-in namespace
// comes back with the sidecar (dry-run calls mutating webhooks).
func injectorAnswers(ctx context.Context) func() error {
	return func() error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "injector-probe", Labels: map[string]string{"authgate.dev/inject": "enabled"}}}
		if err := k8s.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns.Name, Annotations: map[string]string{"authgate.dev/app-port": "8081"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "fn", Image: "dev.local/authgate/authgate:e2e"}}},
		}
		if err := k8s.Create(ctx, pod, client.DryRunAll); err != nil {
			return fmt.Errorf("dry-run pod: %w", err)
		}
		for _, c := range pod.Spec.Containers {
			if c.Name == "authgate-proxy" {
				return nil
			}
		}
		return errors.New("dry-run pod came back without the authgate-proxy sidecar")
	}
}

// apply server-side-applies every object of a multi-document YAML file.
func apply(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return applyYAML(t, data)
}

func applyYAML(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
	for _, u := range objs {
		wait.ForNil(t, time.Minute, func() error {
			//nolint:staticcheck // server-side apply of arbitrary YAML: unstructured has no apply configuration
			return k8s.Patch(t.Context(), u.DeepCopy(), client.Apply, client.FieldOwner("authgate-e2e"), client.ForceOwnership)
		}, "apply %s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
	}
	return objs
}

// readyPods waits until n pods matching sel in ns are Ready and returns them.
func readyPods(t *testing.T, ns string, sel map[string]string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	wait.ForNil(t, podReadyTimeout, func() error {
		var list corev1.PodList
		if err := k8s.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels(sel)); err != nil {
			return err
		}
		pods = pods[:0]
		var states []string
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				pods = append(pods, p)
			}
			states = append(states, p.Name+"="+podState(&p))
		}
		if len(pods) != n {
			return fmt.Errorf("%d of %d ready: %s", len(pods), n, strings.Join(states, ", "))
		}
		return nil
	}, "%d ready pods %v in %s", n, sel, ns)
	return pods
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readySince is how long the pod took from creation to Ready.
func readySince(p *corev1.Pod) time.Duration {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Sub(p.CreationTimestamp.Time)
		}
	}
	return 0
}

func podState(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, c := range p.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil {
			s += "/" + c.Name + ":" + w.Reason
		}
	}
	return s
}

func hasContainer(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// client from a source address of the node namespace (hack/cluster/node.sh
// gives the node several), so the function's clients can be told apart.
func httpClientFrom(src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &http.Client{
		Timeout:   requestTimeout,
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
	}
}

// reply is what a request got: the status, and when the function answered,
// what it received.
type reply struct {
	status   int
	received *echo.Received
	body     string
}

func send(t *testing.T, c *http.Client, method, url string, hdr map[string]string) reply {
	t.Helper()
	r, err := do(t.Context(), c, method, url, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func do(ctx context.Context, c *http.Client, method, url string, hdr map[string]string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return reply{}, err
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return reply{}, err
	}
	return newReply(resp.StatusCode, string(body)), nil
}

// newReply is a reply from a status and body: received is set when the
// function answered (a 200 carrying the echo function's JSON).
func newReply(status int, body string) reply {
	out := reply{status: status, body: body}
	var rec echo.Received
	if status == http.StatusOK && json.Unmarshal([]byte(body), &rec) == nil && rec.Method != "" {
		out.received = &rec
	}
	return out
}

// header is the first value of a header the function received.
func (r reply) header1(name string) string {
	if r.received == nil {
		return ""
	}
	for k, v := range r.received.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// dumpOnFailure prints the pods of ns and their logs when t failed.
func dumpOnFailure(t *testing.T, ns string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var list corev1.PodList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Logf("list pods of %s: %v", ns, err)
			return
		}
		for _, p := range list.Items {
			t.Logf("pod %s/%s: %s", ns, p.Name, podState(&p))
			for _, c := range p.Spec.Containers {
				tail := int64(40)
				raw, err := clientset.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &tail}).DoRaw(ctx)
				t.Logf("--- logs %s/%s [%s] (err=%v)\n%s", ns, p.Name, c.Name, err, raw)
			}
		}
	})
}

// echoDeployment is the YAML of a Deployment of the sample echo function
// (listening on 8081, the plain wiring's app port) with replicas pods
// labelled app: name; annotations are added to the pod template's.
func echoDeployment(ns, name string, replicas int, annotations string) string {
	if annotations != "" {
		annotations = ", " + annotations
	}
	return fmt.Sprintf(`---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata:
      labels: {app: %[2]s}
      annotations: {authgate.dev/app-port: "8081"%[4]s}
    spec:
      containers:
        - name: function
          image: dev.local/authgate/authgate:e2e
          imagePullPolicy: IfNotPresent
          args: [echo, --listen, ":8081"]
          ports: [{name: http, containerPort: 8081}]
          readinessProbe: {httpGet: {path: /healthz, port: 8081}, periodSeconds: 2}
`, ns, name, replicas, annotations)
}

// apiKeySecret is the YAML of an API-key Secret with scope hello:read.
func apiKeySecret(ns, name, key, subject string) string {
	return fmt.Sprintf(`---
apiVersion: v1
kind: Secret
metadata:
  name: %[2]s
  namespace: %[1]s
  labels: {authgate.dev/api-key: "true"}
type: Opaque
stringData: {key: %[3]s, subject: %[4]s, scopes: hello:read}
`, ns, name, key, subject)
}
