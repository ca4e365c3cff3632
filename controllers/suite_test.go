package controllers_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/test/k8senv"
)

// k8s is a client of a real kube-apiserver and etcd (envtest) with the
// generated CRDs installed, and one controller manager running against it
// for the whole package. Every test works in its own namespace.
var (
	k8s client.Client
	// restConfig is the admin config of k8s, for clients acting as other
	// users (rest.ImpersonationConfig).
	restConfig *rest.Config
	registry   = prometheus.NewRegistry()
)

// suiteFetchTimeout bounds one issuer key fetch of the suite's controller.
const suiteFetchTimeout = 3 * time.Second

// The suite controller's tenancy bounds (--max-issuers-per-namespace,
// --max-concurrent-fetches-per-namespace), small so tests reach them.
const (
	suiteIssuersPerNamespace = 6
	suiteFetchesPerNamespace = 2
)

// settle bounds a wait for the controller, which works asynchronously.
const settle = 20 * time.Second

func TestMain(m *testing.M) {
	os.Exit(k8senv.Main(k8senv.Options{CRDs: true}, func(env *k8senv.Env) int {
		k8s, restConfig = env.Client, env.Config
		return runWithManager(m, env.Config)
	}))
}

// loopbackAllowed is the suite controller's fetch policy: the tests' IdPs
// (test/faultidp, httptest) listen on loopback, which the default policy
// refuses, so 127.0.0.0/8 and ::1 are allowed explicitly. Everything else
// the default refuses (link-local, private, ...) stays refused.
var loopbackAllowed = func() netguard.Policy {
	p, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, nil)
	if err != nil {
		panic(err)
	}
	return p
}()

// runWithManager runs the tests with the controller manager running.
func runWithManager(m *testing.M, cfg *rest.Config) int {
	mgr, err := controllers.NewManager(rest.CopyConfig(cfg), controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0",
		FetchPolicy: loopbackAllowed, // the IdPs are on loopback
		MinRefresh:  300 * time.Millisecond, MaxRefresh: time.Minute, DefaultRefresh: 30 * time.Second, FetchTimeout: suiteFetchTimeout,
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), Registerer: registry,
		MaxIssuersPerNamespace: suiteIssuersPerNamespace, MaxConcurrentFetchesPerNamespace: suiteFetchesPerNamespace,
		Tracer: suiteSpans.tracer(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), logf.Log))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	return code
}

type eventsList = eventsv1.EventList

// updateSpec applies change to the policy as it is now and updates it,
// again on a conflict: the controller writes the status (the coverage
// reconciler the Enforced condition too) while a test edits the spec.
func updateSpec(t *testing.T, ns, name string, change func(*v1alpha1.AuthPolicy)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p := get(t, ns, name)
		change(p)
		return k8s.Update(context.Background(), p)
	})
	if err != nil {
		t.Fatal(err)
	}
}
