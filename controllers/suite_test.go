package controllers_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/test/k8senv"
)

// k8s is a client of a real kube-apiserver and etcd (envtest) with the
// generated CRDs installed, and one controller manager running against it
// for the whole package. Every test works in its own namespace.
var (
	k8s      client.Client
	registry = prometheus.NewRegistry()
)

// suiteFetchTimeout bounds one issuer key fetch of the suite's controller.
const suiteFetchTimeout = 3 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	level := zapcore.ErrorLevel
	if os.Getenv("AUTHGATE_TEST_VERBOSE") != "" {
		level = zapcore.DebugLevel
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := k8senv.Start(env, "..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	scheme, err := controllers.Scheme()
	if err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	mgr, err := controllers.NewManager(rest.CopyConfig(cfg), controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0",
		MinRefresh: 300 * time.Millisecond, MaxRefresh: time.Minute, DefaultRefresh: 30 * time.Second, FetchTimeout: suiteFetchTimeout,
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), Registerer: registry,
	})
	if err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), logf.Log))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprint(os.Stderr, "manager: "+err.Error()+"\n")
		return 1
	}
	return code
}

type eventsList = eventsv1.EventList

// eventually polls until cond holds; the controller works asynchronously.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	eventuallyWithin(t, 20*time.Second, 50*time.Millisecond, what, cond)
}

// eventuallyWithin polls cond every poll until it holds or timeout passed.
func eventuallyWithin(t *testing.T, timeout, poll time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(poll)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}
