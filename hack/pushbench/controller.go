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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/injector"
)

// controllerFlags are the child process's flags (-role controller).
type controllerFlags struct {
	PushAddr    string
	WebhookPort int
	CertDir     string
	StatsAddr   string
}

func (f *controllerFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.PushAddr, "push-addr", "", "internal (controller): the push channel's listen address")
	fs.IntVar(&f.WebhookPort, "webhook-port", 0, "internal (controller): the webhook server's port")
	fs.StringVar(&f.CertDir, "cert-dir", "", "internal (controller): ca.crt, tls.crt and tls.key")
	fs.StringVar(&f.StatsAddr, "stats-addr", "", "internal (controller): where GET /stats answers the process's figures")
}

// args are f as the child's command line.
func (f controllerFlags) args() []string {
	return []string{
		"-role", roleController, "-push-addr", f.PushAddr, "-webhook-port", fmt.Sprint(f.WebhookPort),
		"-cert-dir", f.CertDir, "-stats-addr", f.StatsAddr,
	}
}

// runController is the child process: the real controller, configured as
// cmd/authgate-controller configures it with --enable-injector
// --push-listen and cert-manager's certificate (no cert-controller), no
// leader election, against the kubeconfig in $KUBECONFIG, and a stats
// endpoint for the harness.
func runController(ctx context.Context, f controllerFlags, stderr io.Writer) error {
	if f.PushAddr == "" || f.CertDir == "" || f.StatsAddr == "" || f.WebhookPort == 0 {
		return errors.New("-role controller needs -push-addr, -webhook-port, -cert-dir and -stats-addr")
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(stderr), zap.Level(zapcore.ErrorLevel)))
	// As cmd/authgate-controller: ctrl.GetConfig (QPS -1, no client-side
	// rate limit), here from $KUBECONFIG.
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	counter := newRequestCounter()
	cfg.Wrap(counter.wrap)
	ic := injector.Config{Image: "example.invalid/authgate-proxy:bench"}
	ic.ExcludeNamespaces = []string{controllerNamespace}
	ic.Default()
	if err := ic.Validate(); err != nil {
		return fmt.Errorf("injector: %w", err)
	}
	reg := prometheus.NewRegistry()
	o := controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0", AssertionJWKSAddr: "0",
		ReconcileWorkers: controllers.DefaultReconcileWorkers,
		// cmd/authgate-controller's defaults.
		MinRefresh: time.Minute, MaxRefresh: time.Hour, DefaultRefresh: 10 * time.Minute,
		FetchTimeout: 10 * time.Second, MaxStaleness: 24 * time.Hour,
		MaxIssuersPerNamespace: controllers.DefaultMaxIssuersPerNamespace, NetworkPolicies: true,
		Logger:     slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer: reg,
		Injector:   &ic,
		Push: &controllers.PushOptions{
			Addr: f.PushAddr, ServiceName: pushServiceName,
			Namespace: controllerNamespace, PodName: controllerPod, ServerName: serverName,
		},
		WebhookPort: f.WebhookPort, WebhookCertDir: f.CertDir,
	}
	mgr, err := controllers.NewManager(cfg, o)
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", f.StatsAddr)
	if err != nil {
		return fmt.Errorf("stats listener: %w", err)
	}
	stats := &http.Server{Handler: statsHandler(counter, reg), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = stats.Serve(ln) }()
	defer func() { _ = stats.Close() }()
	return mgr.Start(ctx)
}
