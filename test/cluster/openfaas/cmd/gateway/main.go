// Command gateway is a reproduction of the OpenFaaS CE gateway and the
// faas-netes provider, at openfaas/faas@8d803bf9e2655aec6a60fd0e25b392839f96af95
// and openfaas/faas-netes@662ce9ce36ec4a32467773c308807bd5d58f5ae6 (see
// packages test/cluster/openfaas/gateway and .../faasnetes); it is neither.
// One process runs both, as the two containers of the chart's gateway pod:
// the gateway on -listen, the provider on -provider-listen, and the gateway
// calls the provider over loopback as in that pod, so the function pods see
// the same hops and headers.
//
//	gateway -function-namespace=openfaas-fn -listen=:8080 -provider-listen=127.0.0.1:8081
//
// Defaults are the chart's values (faas-netes chart/openfaas/values.yaml):
// timeouts 1m05s/1m05s/1m, scale_from_zero and http_probe true; the pull
// policy is CE's hard-coded Always unless -image-pull-policy says otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/authgate/authgate/test/cluster/openfaas/faasnetes"
	"github.com/authgate/authgate/test/cluster/openfaas/gateway"
)

type options struct {
	namespace, listen, providerListen, kubeconfig, pullPolicy, version string
	readTimeout, writeTimeout, upstreamTimeout                         time.Duration
	providerReadTimeout, providerWriteTimeout                          time.Duration
	scaleFromZero, httpProbe, nonRoot                                  bool
	// ready, when set, is told the addresses once both servers listen.
	ready func(gateway, provider net.Addr)
	// logOut receives the log (stderr when nil).
	logOut io.Writer
}

func main() {
	var o options
	flag.StringVar(&o.namespace, "function-namespace", "openfaas-fn", "the function namespace (env function_namespace)")
	flag.StringVar(&o.listen, "listen", ":8080", "the gateway's address")
	flag.StringVar(&o.providerListen, "provider-listen", "127.0.0.1:8081", "the provider's address (the gateway's functions_provider_url)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "a kubeconfig; in-cluster configuration when empty")
	flag.StringVar(&o.pullPolicy, "image-pull-policy", "Always", "the functions' imagePullPolicy (faas-netes CE: always Always)")
	flag.StringVar(&o.version, "version", "repro-8d803bf", "the version in X-Served-By and the gateway's User-Agent")
	flag.DurationVar(&o.readTimeout, "read-timeout", 65*time.Second, "the gateway's read_timeout")
	flag.DurationVar(&o.writeTimeout, "write-timeout", 65*time.Second, "the gateway's write_timeout")
	flag.DurationVar(&o.upstreamTimeout, "upstream-timeout", time.Minute, "the gateway's upstream_timeout")
	flag.DurationVar(&o.providerReadTimeout, "provider-read-timeout", 65*time.Second, "the provider's read_timeout (also its function call timeout)")
	flag.DurationVar(&o.providerWriteTimeout, "provider-write-timeout", 65*time.Second, "the provider's write_timeout")
	flag.BoolVar(&o.scaleFromZero, "scale-from-zero", true, "the gateway's scale_from_zero (existence check and wait; no scaling)")
	flag.BoolVar(&o.httpProbe, "http-probe", true, "the provider's http_probe: httpGet /_/health probes, else exec cat /tmp/.lock")
	flag.BoolVar(&o.nonRoot, "set-nonroot-user", false, "the provider's set_nonroot_user")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatalf("gateway reproduction: %v", err)
	}
}

func (o options) validate() error {
	switch corev1.PullPolicy(o.pullPolicy) {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return fmt.Errorf("-image-pull-policy %q: want Always, IfNotPresent or Never", o.pullPolicy)
	}
	if o.namespace == "" {
		return errors.New("-function-namespace is required (faas-netes: DefaultFunctionNamespace must be set)")
	}
	return nil
}

func run(ctx context.Context, o options) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.logOut == nil {
		o.logOut = os.Stderr
	}
	logger := log.New(o.logOut, "", log.LstdFlags)
	logger.Printf("reproduction of %s and %s (not OpenFaaS): function namespace %s", gateway.Commit, faasnetes.Commits, o.namespace)
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(client, 10*time.Hour, kubeinformers.WithNamespace(o.namespace))
	deployments, endpoints := factory.Apps().V1().Deployments(), factory.Core().V1().Endpoints()
	dInf, eInf := deployments.Informer(), endpoints.Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSync("faas-netes:deployments", ctx.Done(), dInf.HasSynced) ||
		!cache.WaitForNamedCacheSync("faas-netes:endpoints", ctx.Done(), eInf.HasSynced) {
		return errors.New("failed to wait for cache to sync")
	}
	dc := faasnetes.DefaultDeployConfig()
	dc.HTTPProbe, dc.SetNonRootUser, dc.ImagePullPolicy = o.httpProbe, o.nonRoot, corev1.PullPolicy(o.pullPolicy)
	provider := &faasnetes.Provider{
		Namespace: o.namespace, Client: client, Deployments: deployments.Lister(), Deploy: dc,
		Resolver:    &faasnetes.FunctionLookup{DefaultNamespace: o.namespace, Endpoints: endpoints.Lister()},
		ReadTimeout: o.providerReadTimeout, Log: logger,
	}
	pln, err := net.Listen("tcp", o.providerListen)
	if err != nil {
		return err
	}
	gln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	providerURL := &url.URL{Scheme: "http", Host: pln.Addr().String(), Path: "/"}
	gw := gateway.New(gateway.Config{ProviderURL: providerURL, UpstreamTimeout: o.upstreamTimeout,
		ScaleFromZero: o.scaleFromZero, Namespace: o.namespace, Version: o.version, Log: logger})
	servers := []*http.Server{
		{Handler: provider.Handler(), ReadTimeout: o.providerReadTimeout, WriteTimeout: o.providerWriteTimeout},
		{Handler: gw, ReadTimeout: o.readTimeout, WriteTimeout: o.writeTimeout},
	}
	errc := make(chan error, 2)
	for i, ln := range []net.Listener{pln, gln} {
		go func() { errc <- servers[i].Serve(ln) }()
	}
	logger.Printf("gateway on %s, provider on %s", gln.Addr(), pln.Addr())
	if o.ready != nil {
		o.ready(gln.Addr(), pln.Addr())
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
