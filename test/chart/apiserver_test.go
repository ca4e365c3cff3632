package chart

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/test/k8senv"
	"github.com/authgate/authgate/test/wait"
)

// Kinds whose CRDs envtest does not install (the Prometheus Operator's and
// cert-manager's): these objects cannot be validated by this API server and
// are skipped explicitly. helm lint and the golden files still cover them.
// Knative's Service and OpenFaaS's Function in the examples are skipped for
// the same reason; their AuthPolicies are validated.
var notInstalled = map[string]bool{
	"monitoring.coreos.com/ServiceMonitor": true,
	"monitoring.coreos.com/PodMonitor":     true,
	"monitoring.coreos.com/PrometheusRule": true,
	"cert-manager.io/Issuer":               true,
	"cert-manager.io/Certificate":          true,
	"serving.knative.dev/Service":          true,
	"openfaas.com/Function":                true,
}

// The chart's own CRD (charts/authgate/crds, rendered with --include-crds)
// is installed for real into an API server that starts without any CRD,
// and AuthPolicies must be served afterwards. Then every other object of the
// rendered chart, of config/default and of the examples is sent with
// server-side dry-run, so the API server's own validation (schemas, webhook
// configuration rules, RBAC rules, CEL rules of the AuthPolicy CRD) judges
// them.
func TestDryRunOnAPIServer(t *testing.T) {
	t.Parallel()
	c := k8senv.Start(t, k8senv.Options{}).Client // no CRDs: the chart installs its own below
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	createNamespace(ctx, t, c, releaseNamespace)
	installChartCRDs(ctx, t, c)

	kust, err := run(kustomize, "build", filepath.Join(repoRoot, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]*unstructured.Unstructured{
		"chart default":                 parseObjects(t, render(t, defaults)),
		"chart cert-manager+monitoring": parseObjects(t, render(t, certManagerAndMon)),
		"config/default":                parseObjects(t, kust),
	}
	examples, err := filepath.Glob(filepath.Join(chartDir, "examples", "*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples (%v)", err)
	}
	for _, ex := range examples {
		objs := parseObjects(t, mustRead(t, ex))
		for _, o := range objs {
			switch {
			case o.GetKind() == "Namespace":
				createNamespace(ctx, t, c, o.GetName())
			case o.GetNamespace() != "":
				createNamespace(ctx, t, c, o.GetNamespace())
			}
		}
		sets[filepath.Base(ex)] = objs
	}

	for _, name := range sortedKeys(sets) {
		t.Run(name, func(t *testing.T) {
			validated := 0
			for _, o := range sets[name] {
				gk := o.GroupVersionKind().Group + "/" + o.GetKind()
				switch {
				case o.GetKind() == "CustomResourceDefinition":
					continue // installed for real by installChartCRDs
				case o.GetKind() == "Namespace":
					continue // created above (dry-run cannot create into it)
				case notInstalled[gk]:
					t.Logf("skipped %s: the API server has no CRD for %s", objectKey(o), gk)
					continue
				}
				if err := c.Create(ctx, o.DeepCopy(), client.DryRunAll); err != nil {
					t.Errorf("%s: %v", objectKey(o), err)
				}
				validated++
			}
			if validated == 0 {
				t.Fatal("nothing was validated")
			}
		})
	}
}

func createNamespace(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// installChartCRDs creates the chart's CRDs (helm template --include-crds)
// and waits until the API server serves AuthPolicies.
func installChartCRDs(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	installed := 0
	for _, o := range parseObjects(t, render(t, defaults, "--include-crds")) {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("the API server refused the chart's CRD %s: %v", o.GetName(), err)
		}
		installed++
	}
	if installed == 0 {
		t.Fatal("the chart rendered no CRD")
	}
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("authgate.dev/v1alpha1")
	list.SetKind("AuthPolicyList")
	wait.ForNil(t, 30*time.Second, func() error { return c.List(ctx, list) }, "AuthPolicies to be served after installing the chart's CRD")
}
