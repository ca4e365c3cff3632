package injector_test

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/test/k8senv"
)

// k8s is a client of a real kube-apiserver and etcd (envtest) that calls the
// injector, served by a controller-runtime webhook server in this process,
// through the MutatingWebhookConfiguration injector.WebhookConfiguration
// recommends. envtest has no kubelet: pods are stored, never run. Tests that
// need it skip under -short.
var k8s client.Client

const gatewayNamespace = "authgate-system"

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	level := zapcore.ErrorLevel
	if os.Getenv("AUTHGATE_TEST_VERBOSE") != "" {
		level = zapcore.DebugLevel
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	path := injector.Path
	cfg := testConfig()
	env := &envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			// envtest rewrites the Service reference into a URL to the local
			// webhook server and fills in the CA bundle.
			MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{
				injector.WebhookConfiguration("authgate-injector", admissionregistrationv1.WebhookClientConfig{
					Service: &admissionregistrationv1.ServiceReference{Namespace: gatewayNamespace, Name: "authgate-webhook", Path: &path},
				}, cfg),
			},
		},
	}
	restCfg, err := k8senv.Start(env, filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err, "(or go test -short)")
		return 1
	}
	defer func() { _ = env.Stop() }()

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	if k8s, err = client.New(restCfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	wio := &env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wio.LocalServingHost, Port: wio.LocalServingPort, CertDir: wio.LocalServingCertDir,
		}),
	})
	if err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	if err := injector.Register(mgr, cfg); err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), logf.Log))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if err := waitForTLS(net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort)), done); err != nil {
		cancel()
		fmt.Fprint(os.Stderr, "webhook server: "+err.Error()+"\n")
		return 1
	}
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprint(os.Stderr, "manager: "+err.Error()+"\n")
		return 1
	}
	return code
}

// waitForTLS waits until the webhook server completes a TLS handshake.
func waitForTLS(addr string, done <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("manager stopped: %w", err)
		default:
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			_ = conn.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not serving after 30s")
}
