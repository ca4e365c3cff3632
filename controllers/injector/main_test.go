package injector_test

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/test/k8senv"
	"github.com/authgate/authgate/test/wait"
)

// k8s is a client of a real kube-apiserver and etcd (envtest) that calls the
// injector, served by a controller-runtime webhook server in this process,
// through the MutatingWebhookConfiguration injector.WebhookConfiguration
// recommends. envtest has no kubelet: pods are stored, never run. Tests that
// need it skip under -short or without the envtest binaries.
var k8s client.Client

const gatewayNamespace = "authgate-system"

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	cfg := testConfig()
	path, requirePath := injector.Path, requirePolicyPath
	opts := k8senv.Options{
		// Most of the package's tests need no API server: without the
		// envtest binaries they run, and those needing one skip.
		Optional: true,
		// The AuthPolicies --injector-require-policy reads.
		CRDs: true,
		// envtest rewrites the Service reference into a URL to the local
		// webhook server and fills in the CA bundle.
		Webhooks: envtest.WebhookInstallOptions{
			MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{
				injector.WebhookConfiguration("authgate-injector", admissionregistrationv1.WebhookClientConfig{
					Service: &admissionregistrationv1.ServiceReference{Namespace: gatewayNamespace, Name: "authgate-webhook", Path: &path},
				}, cfg),
				requirePolicyWebhook(admissionregistrationv1.WebhookClientConfig{
					Service: &admissionregistrationv1.ServiceReference{Namespace: gatewayNamespace, Name: "authgate-webhook", Path: &requirePath},
				}, cfg),
			},
		},
	}
	os.Exit(k8senv.Main(opts, func(env *k8senv.Env) int {
		if env == nil {
			return m.Run()
		}
		k8s = env.Client
		return runWithWebhook(m, env, cfg)
	}))
}

// runWithWebhook runs the tests with the injector served by a webhook
// server in this process, where envtest's webhook configuration points.
func runWithWebhook(m *testing.M, env *k8senv.Env, cfg injector.Config) int {
	wio := &env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wio.LocalServingHost, Port: wio.LocalServingPort, CertDir: wio.LocalServingCertDir,
		}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := injector.Register(mgr, cfg, injector.NewMetrics(prometheus.NewRegistry())); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := registerRequirePolicy(mgr, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), logf.Log))
	running, stopped := context.WithCancelCause(ctx)
	done := make(chan error, 1)
	go func() {
		err := mgr.Start(ctx)
		cause := errors.New("manager stopped")
		if err != nil {
			cause = fmt.Errorf("manager stopped: %w", err)
		}
		stopped(cause)
		done <- err
	}()
	addr := net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort))
	if err := wait.Until(running, 30*time.Second, func() error { return tlsHandshake(addr) }); err != nil {
		cancel()
		<-done
		fmt.Fprintln(os.Stderr, "webhook server not serving:", err)
		return 1
	}
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	return code
}

// tlsHandshake completes a TLS handshake with the webhook server.
func tlsHandshake(addr string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	return conn.Close()
}
