package certs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/authgate/authgate/test/k8senv"
)

// A real kube-apiserver and etcd (envtest) shared by the package's tests,
// with RBAC enforced. k8s is an administrator's client; the rotator under
// test runs as a user of its own holding only the rotator's rules (see
// fixtures_test.go). Every test works in its own namespaces and its own
// MutatingWebhookConfiguration.
var (
	testEnv  *envtest.Environment
	adminCfg *rest.Config
	k8s      client.Client
	scheme   = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	level := zapcore.ErrorLevel
	if os.Getenv("AUTHGATE_TEST_VERBOSE") != "" {
		level = zapcore.DebugLevel
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	testEnv = &envtest.Environment{}
	cfg, err := k8senv.Start(testEnv, filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = testEnv.Stop() }()
	adminCfg = cfg
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
