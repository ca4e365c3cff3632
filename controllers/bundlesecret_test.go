package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/wait"
)

// Issue 11: the bundle holds the namespace's API-key hashes, so it is a
// Secret (of the real API server), no ConfigMap of the namespace holds
// them, and a user granted only the built-in view role reads the
// namespace's ConfigMaps but not the bundle.
func TestBundleIsASecretViewCannotRead(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, apiKeySecret(ns, "agk_bundle_secret_test_key_01")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, policyFromYAML(t, ns, apiKeyPolicy)); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	if msg := condition(got, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "Secret "+config.BundleSecret) {
		t.Errorf("got Ready message %q, want it to name Secret %s", msg, config.BundleSecret)
	}
	cfg, s := bundleConfig(t, ns)
	if cfg == nil || len(cfg.APIKeys.Keys) != 1 {
		t.Fatalf("got bundle %+v, want one API key", cfg)
	}
	if s.Type != corev1.SecretTypeOpaque || s.Labels[translate.LabelRole] != controllers.RoleBundle ||
		s.Labels[controllers.LabelManagedBy] != controllers.ManagedBy || s.Annotations[controllers.AnnotationBundleHash] == "" {
		t.Errorf("got type %q, labels %v, annotations %v, want an Opaque Secret marked as the controller's bundle", s.Type, s.Labels, s.Annotations)
	}

	hash := cfg.APIKeys.Keys[0].Hash
	if hash == "" {
		t.Fatal("got an API key without a hash in the bundle")
	}
	var cms corev1.ConfigMapList
	if err := k8s.List(ctx, &cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		for k, v := range cm.Data {
			if strings.Contains(v, hash) {
				t.Errorf("got the API key's hash in ConfigMap %s key %s", cm.Name, k)
			}
		}
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: controllers.LegacyBundleConfigMap}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("got %v reading ConfigMap %s, want NotFound", err, controllers.LegacyBundleConfigMap)
	}

	viewer := viewOnlyClient(t, ns)
	public := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "public"}, Data: map[string]string{"a": "b"}}
	if err := k8s.Create(ctx, public); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		return viewer.Get(ctx, client.ObjectKeyFromObject(public), &corev1.ConfigMap{})
	}, "the view user to read a ConfigMap (the binding is in force)")
	if err := viewer.Get(ctx, types.NamespacedName{Namespace: ns, Name: config.BundleSecret}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Fatalf("got %v reading the bundle as a view user, want Forbidden", err)
	}
	if err := viewer.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
		t.Fatalf("got %v listing Secrets as a view user, want Forbidden", err)
	}
}

// viewOnlyClient is a client acting as a user bound, in ns, to the built-in
// view ClusterRole and nothing else. envtest runs no
// kube-controller-manager, so view's aggregationRule is never resolved and
// view itself has no rules: the user is bound to
// system:aggregate-to-view as well, the bootstrap ClusterRole whose rules
// are what view aggregates on a real cluster (ConfigMaps get/list/watch,
// no Secrets). Both are the API server's own bootstrap roles, not copies.
func viewOnlyClient(t *testing.T, ns string) client.Client {
	t.Helper()
	ctx := context.Background()
	const user = "view-only"
	for _, role := range []string{"view", "system:aggregate-to-view"} {
		var cr rbacv1.ClusterRole
		if err := k8s.Get(ctx, types.NamespacedName{Name: role}, &cr); err != nil {
			t.Fatalf("the API server's bootstrap ClusterRole %s: %v", role, err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: strings.ReplaceAll(role, ":", "-") + "-" + user},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		}
		if err := k8s.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An upgrade from a version that wrote the bundle into a ConfigMap: the
// controller writes the Secret and deletes the ConfigMap it wrote (labelled
// as its bundle), so the hashes do not linger where view can read them; a
// ConfigMap of that name it did not write is left alone.
func TestLegacyBundleConfigMapIsDeleted(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		labels   map[string]string
		wantKept bool
	}{
		{"written by the controller", map[string]string{translate.LabelRole: controllers.RoleBundle, controllers.LabelManagedBy: controllers.ManagedBy}, false},
		{"someone else's", map[string]string{translate.LabelRole: controllers.RoleBundle}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNamespace(t)
			legacy := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.LegacyBundleConfigMap, Labels: tt.labels},
				Data:       map[string]string{config.BundleKey: "policies: []\n"},
			}
			if err := k8s.Create(ctx, legacy); err != nil {
				t.Fatal(err)
			}
			if err := k8s.Create(ctx, apiKeySecret(ns, "agk_legacy_bundle_test_key_1")); err != nil {
				t.Fatal(err)
			}
			if err := k8s.Create(ctx, policyFromYAML(t, ns, apiKeyPolicy)); err != nil {
				t.Fatal(err)
			}
			waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
			if cfg, _ := bundleConfig(t, ns); cfg == nil || policyVersion(cfg, ns+"/partners") != "1" {
				t.Fatalf("got bundle Secret %+v, want the policy rendered", cfg)
			}
			wait.ForNil(t, settle, func() error {
				err := k8s.Get(ctx, client.ObjectKeyFromObject(legacy), &corev1.ConfigMap{})
				switch {
				case tt.wantKept && err != nil:
					return fmt.Errorf("got %w, want the ConfigMap kept", err)
				case !tt.wantKept && !apierrors.IsNotFound(err):
					return fmt.Errorf("got %w, want NotFound", err)
				}
				return nil
			}, "the legacy ConfigMap (kept: %v)", tt.wantKept)
		})
	}
}

// A deleted bundle Secret is written again at once: the controller watches
// it (the manager's cache holds API-key Secrets only, so through a cache of
// its own), not only at the next requeue.
func TestDeletedBundleSecretIsRestored(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, apiKeySecret(ns, "agk_restore_bundle_test_key1")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, policyFromYAML(t, ns, apiKeyPolicy)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "partners", v1alpha1.ConditionReady, metav1.ConditionTrue, controllers.ReasonRendered)
	_, s := bundleConfig(t, ns)
	if err := k8s.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	wait.ForNil(t, settle, func() error {
		cfg, again := bundleConfig(t, ns)
		if cfg == nil || again.UID == s.UID || policyVersion(cfg, ns+"/partners") != "1" {
			return fmt.Errorf("bundle %+v", cfg)
		}
		return nil
	}, "the bundle Secret written again")
}
