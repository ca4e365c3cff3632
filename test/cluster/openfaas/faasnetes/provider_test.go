package faasnetes_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/authgate/authgate/test/cluster/openfaas/faasnetes"
	"github.com/authgate/authgate/test/wait"
)

const ns = "openfaas-fn"

// provider serves the reproduction on loopback against a fake API server,
// its listers fed by informers as in faas-netes.
func provider(t *testing.T) (*httptest.Server, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(client, 0, kubeinformers.WithNamespace(ns))
	deployments, endpoints := factory.Apps().V1().Deployments(), factory.Core().V1().Endpoints()
	inf := []cache.InformerSynced{deployments.Informer().HasSynced, endpoints.Informer().HasSynced}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf...) {
		t.Fatal("informers did not sync")
	}
	p := &faasnetes.Provider{Namespace: ns, Client: client, Deployments: deployments.Lister(), Deploy: chartConfig(),
		Resolver: &faasnetes.FunctionLookup{DefaultNamespace: ns, Endpoints: endpoints.Lister()}}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return srv, client
}

func call(t *testing.T, method, url string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, r)
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

func TestDeployAPI(t *testing.T) {
	t.Parallel()
	srv, client := provider(t)
	fns := srv.URL + "/system/functions"
	ctx := context.Background()

	if code, body := call(t, http.MethodPost, fns, sample()); code != http.StatusAccepted || body != "" {
		t.Fatalf("deploy: got %d %q, want 202", code, body)
	}
	d, err := client.AppsV1().Deployments(ns).Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantD, _ := faasnetes.MakeDeployment(sample(), chartConfig())
	wantS, _ := faasnetes.MakeService(sample(), chartConfig())
	if !equality.Semantic.DeepEqual(d.Spec, wantD.Spec) || !equality.Semantic.DeepEqual(svc.Spec, wantS.Spec) ||
		!equality.Semantic.DeepEqual(d.Labels, wantD.Labels) {
		t.Errorf("created objects differ from the rendered ones (the golden): %+v", d)
	}

	wait.For(t, 0, func() bool { c, _ := call(t, http.MethodGet, srv.URL+"/system/function/echo", nil); return c == 200 },
		"the lister to see the Deployment")
	code, body := call(t, http.MethodGet, fns, nil)
	var list []faasnetes.FunctionStatus
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 || len(list) != 1 ||
		list[0].Name != "echo" || list[0].Replicas != 2 || list[0].EnvProcess != sample().EnvProcess ||
		list[0].Limits == nil || list[0].Limits.Memory != "128Mi" {
		t.Errorf("list: got %d %s", code, body)
	}
	for _, tt := range []struct {
		method, url string
		body        any
		code        int
		want        string
	}{
		{http.MethodGet, srv.URL + "/system/function/nope", nil, 404, ""},
		{http.MethodPost, fns, sample(), 500, "unable create Deployment: deployments.apps \"echo\" already exists\n"},
		{http.MethodPost, fns, faasnetes.FunctionDeployment{Service: "Bad_Name", Image: "x"}, 400,
			"validation failed: service: (Bad_Name) is invalid, must be a valid DNS entry\n"},
		{http.MethodPost, fns, faasnetes.FunctionDeployment{Service: "x", Image: "x", Namespace: "other"}, 400,
			"namespace must be: openfaas-fn\n"},
		{http.MethodPost, fns, faasnetes.FunctionDeployment{Service: "x", Image: "x",
			Labels: &map[string]string{"com.openfaas.scale.max": "6"}}, 400,
			"validation failed: com.openfaas.scale.max is set too high for Community Edition\n"},
		{http.MethodPut, fns, faasnetes.FunctionDeployment{Service: "nope", Image: "x"}, 404,
			"unable update Deployment: nope.openfaas-fn, error: deployments.apps \"nope\" not found\n"},
		{http.MethodGet, fns + "?namespace=kube-system", nil, 401, "unable to list within the kube-system namespace\n"},
		{http.MethodPatch, fns, nil, 405, ""},
		{http.MethodGet, srv.URL + "/system/nothing", nil, 404, "404 page not found\n"},
	} {
		if code, body := call(t, tt.method, tt.url, tt.body); code != tt.code || body != tt.want {
			t.Errorf("%s %s: got %d %q, want %d %q", tt.method, tt.url, code, body, tt.code, tt.want)
		}
	}

	updated := sample()
	updated.Image = "dev.local/openfaas-repro/echo-fn:v2"
	if code, body := call(t, http.MethodPut, fns, updated); code != 202 {
		t.Fatalf("update: got %d %q", code, body)
	}
	d, _ = client.AppsV1().Deployments(ns).Get(ctx, "echo", metav1.GetOptions{})
	if d.Spec.Template.Spec.Containers[0].Image != updated.Image || d.Spec.Template.Labels["uid"] == "" {
		t.Errorf("update: got image %q labels %v, want the new image and a uid label", d.Spec.Template.Spec.Containers[0].Image, d.Spec.Template.Labels)
	}

	del := faasnetes.DeleteFunctionRequest{FunctionName: "echo"}
	if code, _ := call(t, http.MethodDelete, fns, del); code != 202 {
		t.Fatalf("delete: got %d", code)
	}
	if _, err := client.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{}); err == nil {
		t.Error("the Service is still there after delete")
	}
	if code, body := call(t, http.MethodDelete, fns, del); code != 404 || body != "deployments.apps \"echo\" not found" {
		t.Errorf("delete again: got %d %q", code, body)
	}
}

func TestFunctionLookup(t *testing.T) {
	t.Parallel()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	add := func(name, namespace string, subsets ...corev1.EndpointSubset) {
		_ = idx.Add(&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Subsets: subsets})
	}
	ready := corev1.EndpointSubset{
		Addresses:         []corev1.EndpointAddress{{IP: "10.42.0.7"}, {IP: "10.42.0.8"}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.42.0.9"}},
		Ports:             []corev1.EndpointPort{{Name: "http", Port: 9999}},
	}
	add("echo", ns, ready)
	add("starting", ns, corev1.EndpointSubset{NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.42.0.10"}}})
	add("empty", ns)
	add("echo", "kube-system", ready)
	l := &faasnetes.FunctionLookup{DefaultNamespace: ns, Endpoints: corelisters.NewEndpointsLister(idx)}

	seen := map[string]bool{}
	for range 200 {
		u, err := l.Resolve("echo.openfaas-fn")
		if err != nil {
			t.Fatal(err)
		}
		seen[u.String()] = true
	}
	if len(seen) != 2 || !seen["http://10.42.0.7:8080"] || !seen["http://10.42.0.8:8080"] {
		t.Errorf("got %v, want both ready pod IPs on 8080 (not the Endpoints' port, never the not-ready one)", seen)
	}
	for name, want := range map[string]string{
		"starting":         `no addresses in subset for "starting.openfaas-fn"`,
		"empty":            `no subsets available for "empty.openfaas-fn"`,
		"nope":             `error listing "nope.openfaas-fn": endpoints "nope" not found`,
		"echo.kube-system": "namespace not allowed",
		"echo.other":       `error listing "echo.other": endpoints "echo" not found`,
	} {
		if _, err := l.Resolve(name); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
}
