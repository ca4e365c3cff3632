package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/authgate/authgate/test/k8senv"
	"github.com/authgate/authgate/test/logbuf"
	"github.com/authgate/authgate/test/wait"
)

// TestAgainstAPIServer runs the command against a real API server as the
// ServiceAccount of deploy.yaml, bound by deploy.yaml's Role: informers
// sync, a deploy creates objects the API server accepts, the resolver reads
// Endpoints, update and delete go through.
func TestAgainstAPIServer(t *testing.T) {
	env := k8senv.Start(t, k8senv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applyManifest(t, ctx, env.Client)

	user, err := env.AddUser(envtest.User{Name: "system:serviceaccount:openfaas:openfaas-controller",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:openfaas"}}, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan [2]net.Addr, 1)
	logs := &logbuf.Buffer{}
	o := options{namespace: "openfaas-fn", listen: "127.0.0.1:0", providerListen: "127.0.0.1:0", kubeconfig: kubeconfig,
		pullPolicy: "IfNotPresent", version: "test", readTimeout: time.Minute, writeTimeout: time.Minute,
		upstreamTimeout: 30 * time.Second, providerReadTimeout: 30 * time.Second, providerWriteTimeout: time.Minute,
		scaleFromZero: true, httpProbe: true,
		ready: func(gw, provider net.Addr) { addrs <- [2]net.Addr{gw, provider} }, logOut: logs}
	done := make(chan error, 1)
	go func() { done <- run(ctx, o) }()
	var base, provider string
	select {
	case a := <-addrs:
		base, provider = "http://"+a[0].String(), "http://"+a[1].String()
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not listening after 60 s: the informers did not sync (does the Role allow list/watch?)")
	}

	fd := `{"service":"echo","image":"dev.local/openfaas-repro/echo-fn:e2e","envProcess":"authgate echo --listen 127.0.0.1:5000"}`
	if code, body := call(t, http.MethodPost, base+"/system/functions", fd); code != 202 {
		t.Fatalf("deploy: got %d %q", code, body)
	}
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "openfaas-fn", Name: "echo"}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path != "/_/health" {
		t.Errorf("stored Deployment: %+v", d.Spec.Template.Spec.Containers[0])
	}
	wait.For(t, 0, func() bool {
		code, body := call(t, http.MethodGet, base+"/system/functions", "")
		return code == 200 && strings.Contains(body, `"name":"echo"`)
	}, "the function in the list")

	// No controller runs in envtest: no replica becomes available, and no
	// Endpoints exist until the test writes them. With the scaling wait
	// that would take 100 s; the provider's own route answers at once.
	fn := provider + "/function/echo"
	if code, body := call(t, http.MethodGet, fn, ""); code != 503 || body != "No endpoints available for: echo.\n" {
		t.Errorf("no Endpoints: got %d %q", code, body)
	}
	// The API server refuses loopback addresses in Endpoints and the test
	// dials nothing else: a not-ready address shows that the resolver reads
	// the object (its error changes) without a connection being made.
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "openfaas-fn", Name: "echo"},
		Subsets: []corev1.EndpointSubset{{NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.42.0.7"}}}}}
	if err := env.Client.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 0, func() bool {
		code, _ := call(t, http.MethodGet, fn, "")
		return code == 503 && strings.Contains(logs.String(), `no addresses in subset for "echo.openfaas-fn"`)
	}, "the provider to read the Endpoints")

	if code, body := call(t, http.MethodPut, base+"/system/functions", fd); code != 202 {
		t.Errorf("update: got %d %q", code, body)
	}
	if code, body := call(t, http.MethodDelete, base+"/system/functions", `{"functionName":"echo"}`); code != 202 {
		t.Errorf("delete: got %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func applyManifest(t *testing.T, ctx context.Context, c client.Client) {
	t.Helper()
	b, err := os.ReadFile("../../deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, obj.(client.Object)); err != nil {
			t.Fatalf("create %T: %v", obj, err)
		}
	}
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
