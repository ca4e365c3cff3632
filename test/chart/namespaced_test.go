package chart

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/k8senv"
	"github.com/authgate/authgate/test/wait"
)

const namespacedPolicy = `
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: partners}
spec:
  targets: {openFaaSFunction: orders}
  authentication:
    apiKeys: {secretNames: [partner-acme]}
  routes:
    - {name: orders, paths: ["/orders/**"]}
`

// The controller with --watch-namespaces runs under a ServiceAccount bound
// to exactly the RBAC the chart renders for watchNamespaces (a real API
// server, the controller's requests impersonating the ServiceAccount): it
// reads the API-key Secret, writes the bundle Secret, the policy's status and its
// events in a watched namespace, takes its lease in the release namespace,
// and leaves a policy in an unwatched namespace untouched (no status, no
// bundle, no event). Without the cache restriction the same RBAC fails:
// the controller's cluster-wide lists are forbidden and nothing is
// reconciled.
func TestNamespacedControllerUnderChartRBAC(t *testing.T) {
	t.Parallel()
	env := k8senv.Start(t, k8senv.Options{CRDs: true})
	c := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, ns := range []string{releaseNamespace, "team-a", "team-b", "elsewhere"} {
		createNamespace(ctx, t, c, ns)
	}
	applied := 0
	for _, o := range parseObjects(t, render(t, watchNamespaces)) {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := c.Create(ctx, o); err != nil {
				t.Fatalf("create %s: %v", objectKey(o), err)
			}
			applied++
		}
	}
	if applied < 8 {
		t.Fatalf("got %d RBAC objects from the chart, want the ServiceAccount, cluster and namespaced roles and bindings", applied)
	}

	for _, ns := range []string{"team-a", "elsewhere"} {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "partner-acme", Labels: map[string]string{translate.LabelAPIKey: "true"}},
			StringData: map[string]string{"key": "k-" + ns + "-0123456789abcdef", "subject": "acme"},
		}
		if err := c.Create(ctx, secret); err != nil {
			t.Fatal(err)
		}
		var p v1alpha1.AuthPolicy
		if err := yaml.UnmarshalStrict([]byte(namespacedPolicy), &p); err != nil {
			t.Fatal(err)
		}
		p.Namespace = ns
		if err := c.Create(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + releaseNamespace + ":authgate-controller"}
	mgr, err := controllers.NewManager(cfg, controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0",
		LeaderElection: true, LeaderElectionNamespace: releaseNamespace,
		MinRefresh: time.Minute, MaxRefresh: time.Hour, DefaultRefresh: 10 * time.Minute, FetchTimeout: 10 * time.Second,
		WatchNamespaces: []string{"team-a", "team-b"},
		Logger:          slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	wait.ForNil(t, time.Minute, func() error {
		var p v1alpha1.AuthPolicy
		if err := c.Get(ctx, types.NamespacedName{Namespace: "team-a", Name: "partners"}, &p); err != nil {
			return err
		}
		if r := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady); r == nil || r.Status != metav1.ConditionTrue || r.ObservedGeneration != p.Generation {
			return fmt.Errorf("status %+v", p.Status)
		}
		return nil
	}, "the watched namespace's policy to be Ready under the chart's namespaced RBAC")
	var bundle corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: "team-a", Name: config.BundleSecret}, &bundle); err != nil {
		t.Fatalf("the watched namespace's bundle Secret: %v", err)
	}
	if len(bundle.Data[config.BundleKey]) == 0 {
		t.Fatalf("got a bundle Secret without %s", config.BundleKey)
	}
	wait.ForNil(t, 30*time.Second, func() error {
		var evs eventsv1.EventList
		if err := c.List(ctx, &evs, client.InNamespace("team-a")); err != nil {
			return err
		}
		if len(evs.Items) == 0 {
			return fmt.Errorf("no events")
		}
		return nil
	}, "the controller's events in the watched namespace")

	// The unwatched namespace: nothing written, even after a while (the
	// watched namespace was reconciled meanwhile, so the controller ran).
	time.Sleep(2 * time.Second)
	var other v1alpha1.AuthPolicy
	if err := c.Get(ctx, types.NamespacedName{Namespace: "elsewhere", Name: "partners"}, &other); err != nil {
		t.Fatal(err)
	}
	if len(other.Status.Conditions) != 0 || other.Status.ObservedGeneration != 0 {
		t.Fatalf("got status %+v on the unwatched namespace's policy, want none", other.Status)
	}
	err = c.Get(ctx, types.NamespacedName{Namespace: "elsewhere", Name: config.BundleSecret}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("got %v reading the unwatched namespace's bundle, want NotFound", err)
	}
	var evs eventsv1.EventList
	if err := c.List(ctx, &evs, client.InNamespace("elsewhere")); err != nil || len(evs.Items) != 0 {
		t.Fatalf("got %d events in the unwatched namespace (%v), want none", len(evs.Items), err)
	}
	// And the ServiceAccount could not have read it: the chart grants no
	// Secret read there.
	sa, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Get(ctx, types.NamespacedName{Namespace: "elsewhere", Name: "partner-acme"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Fatalf("got %v reading a Secret of an unwatched namespace as the controller, want Forbidden", err)
	}
}
