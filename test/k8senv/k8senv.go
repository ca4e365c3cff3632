// Package k8senv starts a real kube-apiserver and etcd for tests (envtest)
// from the binaries `make envtest` builds into ./bin/k8s (or
// KUBEBUILDER_ASSETS), and builds a controller-runtime client whose scheme
// knows the Kubernetes types and authgate's (api/v1alpha1).
//
// Without the binaries a suite skips, saying how to get them, so `go test
// ./...` works on a fresh checkout. Under CI=true a missing binary fails
// the suite instead: CI never skips one silently.
//
// A package sharing one API server among its tests starts it in TestMain
// with Main; a single test starts its own with Start.
package k8senv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/authgate/authgate/controllers"
)

// Options say what to install into the API server.
type Options struct {
	// CRDs installs authgate's generated CRDs (config/crd/bases).
	CRDs bool
	// Webhooks are installed by envtest, rewritten to call a webhook server
	// in the test process (see envtest.WebhookInstallOptions).
	Webhooks envtest.WebhookInstallOptions
	// Optional is for Main in a package whose tests mostly run without an
	// API server: when the binaries are missing, run is called with a nil
	// *Env and the tests that need one skip themselves.
	Optional bool
}

// Env is a running API server and a client of it as its administrator.
type Env struct {
	// Environment is the started envtest environment: Config, AddUser,
	// WebhookInstallOptions (with the local serving host, port and certs).
	*envtest.Environment
	// Client talks to the API server with Scheme.
	Client client.Client
	// Scheme holds the Kubernetes types and authgate's.
	Scheme *runtime.Scheme
}

// Main starts the API server for a package's tests, calls run (which
// calls m.Run) and stops the server; TestMain exits with what it returns:
//
//	func TestMain(m *testing.M) {
//		os.Exit(k8senv.Main(k8senv.Options{CRDs: true}, func(env *k8senv.Env) int {
//			k8s = env.Client
//			return m.Run()
//		}))
//	}
//
// It sends controller-runtime's logs to stderr, errors only unless
// AUTHGATE_TEST_VERBOSE is set. When the binaries are missing it says so
// and returns 0 without running a test (go test reports "[no tests to
// run]"), or calls run(nil) if opts.Optional; under CI=true it returns 1.
func Main(opts Options, run func(*Env) int) int {
	level := zapcore.ErrorLevel
	if os.Getenv("AUTHGATE_TEST_VERBOSE") != "" {
		level = zapcore.DebugLevel
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	root, dir, err := assets()
	switch {
	case err != nil && onCI():
		fmt.Fprintf(os.Stderr, "k8senv: %v (CI=true: a suite needing envtest fails instead of skipping)\n", err)
		return 1
	case err != nil && opts.Optional:
		fmt.Fprintf(os.Stderr, "k8senv: %v; the tests that need a real API server skip\n", err)
		return run(nil)
	case err != nil:
		fmt.Fprintf(os.Stderr, "k8senv: skipping every test of this package: %v\n", err)
		fmt.Fprintln(os.Stderr, "testing: warning: no tests to run")
		return 0
	}
	env, err := start(root, dir, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k8senv: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "k8senv: stop envtest: %v\n", err)
		}
	}()
	return run(env)
}

// Start starts an API server for one test and stops it when the test
// ends. It skips t when the binaries are missing (fails it under CI=true).
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	root, dir, err := assets()
	if err != nil {
		skipOrFail(t, err)
	}
	env, err := start(root, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("k8senv: stop envtest: %v", err)
		}
	})
	return env
}

// Assets returns the directory holding kube-apiserver and etcd, for a
// test that runs them itself. It skips t when they are missing (fails it
// under CI=true).
func Assets(t testing.TB) string {
	t.Helper()
	_, dir, err := assets()
	if err != nil {
		skipOrFail(t, err)
	}
	return dir
}

// skipOrFail skips t for the missing binaries, or fails it under CI=true.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if onCI() {
		t.Fatalf("%v (CI=true: a test needing envtest fails instead of skipping)", err)
	}
	t.Skip(err)
}

// assets finds the repository root and the envtest binaries:
// KUBEBUILDER_ASSETS, else <root>/bin/k8s.
func assets() (root, dir string, err error) {
	root, err = RepoRoot()
	if err != nil {
		return "", "", err
	}
	dir = os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(root, "bin", "k8s")
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", "", fmt.Errorf("envtest binaries (%s) not found in %s: run `make envtest`", bin, dir)
		}
	}
	return root, dir, nil
}

// RepoRoot is the nearest directory above the working directory (a test's
// package directory) holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// onCI reports whether CI is set to a true value (CI=true, as CI services
// set it).
func onCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

func start(root, dir string, opts Options) (*Env, error) {
	env := &envtest.Environment{BinaryAssetsDirectory: dir, WebhookInstallOptions: opts.Webhooks}
	if opts.CRDs {
		env.CRDDirectoryPaths = []string{filepath.Join(root, "config", "crd", "bases")}
		env.ErrorIfCRDPathMissing = true
	}
	scheme, err := controllers.Scheme()
	if err != nil {
		return nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("envtest client: %w", err)
	}
	return &Env{Environment: env, Client: c, Scheme: scheme}, nil
}
