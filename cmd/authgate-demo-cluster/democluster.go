package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/internal/atomicwriter"
	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/internal/keygen"
	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/internal/serve"
	"github.com/authgate/authgate/proxy/app"
	"github.com/authgate/authgate/proxy/config"
)

// clusterDemo is the whole system on one machine.
type clusterDemo struct {
	out      io.Writer
	k8s      client.Client
	issuer   *devissuer.Issuer
	proxyURL string
	apiKey   string
	dir      string
	failures int
}

const demoNamespace = "shop"

const clusterPolicy = `apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata:
  name: orders
  namespace: shop
spec:
  targets: {knativeService: orders}
  authentication:
    jwt: [{issuerURL: %q, audiences: [orders-api]}]
    apiKeys: {secretNames: [partner-acme]}
  routes:
    - {name: health, paths: [/healthz], public: true}
    - {name: read, methods: [GET], paths: ["/orders/**"], requireScopes: [%s]}
`

func runDemoCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo-cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	assets := fs.String("assets", envOr("KUBEBUILDER_ASSETS", filepath.Join("bin", "k8s")), "directory with kube-apiserver and etcd (make envtest)")
	crds := fs.String("crds", filepath.Join("config", "crd", "bases"), "directory with the generated CRDs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*assets, "kube-apiserver")); err != nil {
		return fmt.Errorf("no kube-apiserver in %s: run `make envtest` first (make demo-apiserver does)", *assets)
	}
	fmt.Fprintln(stdout, "starting a real kube-apiserver and etcd (envtest) ...")
	env := &envtest.Environment{CRDDirectoryPaths: []string{*crds}, ErrorIfCRDPathMissing: true, BinaryAssetsDirectory: *assets}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start envtest: %w", err)
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := startClusterDemo(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	defer os.RemoveAll(d.dir)
	d.walk(ctx)
	if d.failures > 0 {
		return fmt.Errorf("%d demo step(s) did not behave as expected", d.failures)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func startClusterDemo(ctx context.Context, cfg *rest.Config, out io.Writer) (*clusterDemo, error) {
	scheme, err := controllers.Scheme()
	if err != nil {
		return nil, err
	}
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	// The demo's issuer listens on 127.0.0.1, which the controller's
	// default fetch policy refuses: the demo allows exactly that address.
	demoIssuerAllowed, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, nil)
	if err != nil {
		return nil, err
	}
	mgr, err := controllers.NewManager(rest.CopyConfig(cfg), controllers.Options{
		FetchPolicy: demoIssuerAllowed,
		MetricsAddr: "0", ProbeAddr: "0", MinRefresh: time.Second, MaxRefresh: time.Hour, DefaultRefresh: 10 * time.Minute,
		FetchTimeout: 5 * time.Second, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		return nil, err
	}
	go func() { _ = mgr.Start(ctx) }()
	fmt.Fprintln(out, "authgate-controller running against it")

	dir, err := os.MkdirTemp("", "authgate-demo-cluster-")
	if err != nil {
		return nil, err
	}
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		return nil, err
	}
	issLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	iss.SetURL("http://" + issLn.Addr().String())
	go func() { _ = serve.Until(ctx, issLn, iss.Handler()) }()
	fnLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = serve.Until(ctx, fnLn, echo.New()) }()
	key, err := keygen.Generate()
	if err != nil {
		return nil, err
	}
	d := &clusterDemo{out: out, k8s: k8s, issuer: iss, apiKey: key, dir: dir}
	if err := d.applyInitial(ctx); err != nil {
		return nil, err
	}
	if err := d.projectAndStartProxy(ctx, "http://"+fnLn.Addr().String()); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *clusterDemo) applyInitial(ctx context.Context) error {
	if err := d.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: "partner-acme", Labels: map[string]string{translate.LabelAPIKey: "true"}},
		StringData: map[string]string{"key": d.apiKey, "subject": "acme", "scopes": "orders:read"},
	}
	if err := d.k8s.Create(ctx, secret); err != nil {
		return fmt.Errorf("create secret: %w", err)
	}
	doc := fmt.Sprintf(clusterPolicy, d.issuer.URL(), "orders:read")
	fmt.Fprintf(d.out, "\n$ kubectl apply -f - <<EOF\n%sEOF\n", doc)
	return d.apply(ctx, doc)
}

// apply is what `kubectl apply` does for these objects: server-side apply.
func (d *clusterDemo) apply(ctx context.Context, doc string) error {
	var p v1alpha1.AuthPolicy
	if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
		return fmt.Errorf("parse policy: %w", err)
	}
	p.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("AuthPolicy"))
	return d.k8s.Patch(ctx, &p, client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership) //nolint:staticcheck // client.Apply is what kubectl apply --server-side does
}

func (d *clusterDemo) projectAndStartProxy(ctx context.Context, upstream string) error {
	first := make(chan struct{})
	started := first
	go func() {
		last := ""
		for ctx.Err() == nil {
			var s corev1.Secret
			if err := d.k8s.Get(ctx, types.NamespacedName{Namespace: demoNamespace, Name: config.BundleSecret}, &s); err == nil {
				if data := string(s.Data[config.BundleKey]); data != last && atomicwriter.Write(d.dir, map[string]string{config.BundleKey: data}) == nil {
					// The proxy starts on the first bundle that holds the
					// demo's policy: an earlier one (written while the
					// policy's Secret was not yet in the controller's
					// cache) holds none, and every request would be denied.
					if first != nil && holdsPolicy(data, demoNamespace+"/orders") {
						close(first)
						first = nil
					}
					last = data
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		return errors.New("the controller rendered no bundle holding the demo's policy within 30s")
	}
	a, err := app.New(app.Options{
		ConfigPath: filepath.Join(d.dir, config.BundleKey), Labels: map[string]string{"serving.knative.dev/service": "orders"},
		Upstream: upstream, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", PollInterval: 500 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	go func() { _ = a.Run(ctx) }()
	select {
	case <-a.Started():
	case <-time.After(30 * time.Second):
		return errors.New("proxy did not start")
	}
	d.proxyURL = "http://" + a.Addr()
	fmt.Fprintf(d.out, "\nthe controller rendered Secret %s/%s; it is projected into %s as the kubelet would, and authgate-proxy (%s) reads it\n",
		demoNamespace, config.BundleSecret, d.dir, d.proxyURL)
	return nil
}

// holdsPolicy reports whether a rendered bundle holds the named policy.
func holdsPolicy(data, name string) bool {
	cfg, err := config.Parse([]byte(data))
	if err != nil {
		return false
	}
	for _, p := range cfg.Policies {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (d *clusterDemo) walk(ctx context.Context) {
	d.getPolicies(ctx)
	tok := func(scope string) string {
		s, _ := d.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": scope})
		return "Bearer " + s
	}
	d.expect(ctx, "partner API key", "/orders/1", 200, "X-API-Key", d.apiKey)
	d.expect(ctx, "token with orders:read", "/orders/1", 200, "Authorization", tok("orders:read"))
	d.expect(ctx, "no credential", "/orders/1", 401)

	fmt.Fprintln(d.out, "\n$ kubectl apply -f -   # now /orders/** needs orders:admin")
	start := time.Now()
	if err := d.apply(ctx, fmt.Sprintf(clusterPolicy, d.issuer.URL(), "orders:admin")); err != nil {
		d.fail("apply: %v", err)
		return
	}
	if !d.until(ctx, 30*time.Second, func() bool { return d.status(ctx, "/orders/1", "X-API-Key", d.apiKey) == 403 }) {
		d.fail("the change was not enforced within 30s")
	} else {
		fmt.Fprintf(d.out, "   enforced by the running proxy %s after the apply\n", time.Since(start).Round(10*time.Millisecond))
	}
	d.expect(ctx, "partner API key (orders:read only)", "/orders/1", 403, "X-API-Key", d.apiKey)
	d.expect(ctx, "token with orders:admin", "/orders/1", 200, "Authorization", tok("orders:admin"))

	fmt.Fprintln(d.out, "\n$ kubectl apply -f -   # a bad policy: Rego that does not compile")
	bad := fmt.Sprintf(clusterPolicy, d.issuer.URL(), "orders:admin") + "  rego:\n    inline: |\n      package authgate.authz\n      decision := input.request.method ==\n"
	if err := d.apply(ctx, bad); err != nil {
		d.fail("apply: %v", err)
		return
	}
	d.until(ctx, 20*time.Second, func() bool {
		var p v1alpha1.AuthPolicy
		return d.k8s.Get(ctx, types.NamespacedName{Namespace: demoNamespace, Name: "orders"}, &p) == nil &&
			meta.IsStatusConditionFalse(p.Status.Conditions, v1alpha1.ConditionAccepted) && p.Status.ObservedGeneration == p.Generation
	})
	d.getPolicies(ctx)
	d.expect(ctx, "the last good generation is still enforced", "/orders/1", 200, "Authorization", tok("orders:admin"))
}

// getPolicies prints what `kubectl get authpolicies -o wide` shows.
func (d *clusterDemo) getPolicies(ctx context.Context) {
	d.until(ctx, 20*time.Second, func() bool {
		var p v1alpha1.AuthPolicy
		return d.k8s.Get(ctx, types.NamespacedName{Namespace: demoNamespace, Name: "orders"}, &p) == nil && p.Status.ObservedGeneration == p.Generation
	})
	var list v1alpha1.AuthPolicyList
	if err := d.k8s.List(ctx, &list, client.InNamespace(demoNamespace)); err != nil {
		d.fail("list: %v", err)
		return
	}
	fmt.Fprintf(d.out, "\n$ kubectl get authpolicies -n %s\n%-8s %-6s %-8s %-20s\n", demoNamespace, "NAME", "READY", "MODE", "REASON")
	for _, p := range list.Items {
		ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		acc := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAccepted)
		if ready == nil || acc == nil {
			continue
		}
		fmt.Fprintf(d.out, "%-8s %-6s %-8s %-20s\n", p.Name, ready.Status, p.Spec.Mode, acc.Reason)
		if acc.Status == metav1.ConditionFalse {
			fmt.Fprintf(d.out, "  Accepted: %s\n  Ready:    %s\n", acc.Message, ready.Message)
		}
	}
}

func (d *clusterDemo) status(ctx context.Context, path string, hdr ...string) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.proxyURL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (d *clusterDemo) expect(ctx context.Context, title, path string, want int, hdr ...string) {
	got := d.status(ctx, path, hdr...)
	mark := "ok  "
	if got != want {
		mark = "FAIL"
		d.failures++
	}
	fmt.Fprintf(d.out, "%s %-45s GET %-10s → %d (want %d)\n", mark, title, path, got, want)
}

func (d *clusterDemo) until(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func (d *clusterDemo) fail(format string, args ...any) {
	d.failures++
	fmt.Fprintf(d.out, "FAIL "+format+"\n", args...)
}
