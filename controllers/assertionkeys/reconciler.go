// Package assertionkeys keeps each namespace's identity assertion key ring:
// while an AuthPolicy of the namespace sets spec.identityAssertion, the
// ring (private keys) lives in Secret authgate-assertion-key, which the
// injector mounts into the sidecars, and its public keys in ConfigMap
// authgate-assertion-jwks, which functions may read; the ring is rotated
// on the schedule of internal/assertionkey. When no policy sets it any
// more both are deleted. It also serves every namespace's public keys
// over HTTP (Server).
package assertionkeys

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/internal/assertionkey"
)

// Labels of what the reconciler writes. RoleJWKS is translate.LabelRole's
// value on the public ConfigMap (the manager caches ConfigMaps by role).
const (
	RoleJWKS      = "assertion-jwks"
	RoleKey       = "assertion-key"
	labelManaged  = "app.kubernetes.io/managed-by"
	managedByUs   = "authgate-controller"
	maxRequeue    = 10 * time.Minute
	fieldOwnerTag = "authgate-controller"
)

// Reconciler keeps one namespace's ring per request (Name holds the
// namespace).
type Reconciler struct {
	// Client reads AuthPolicies and writes the Secret and ConfigMap.
	Client client.Client
	// APIReader reads the Secret: the manager caches only API-key Secrets.
	APIReader client.Reader
	Policy    assertionkey.Policy
	Now       func() time.Time
	Metrics   *Metrics
}

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;delete

// Reconcile keeps the namespace's ring.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ns := req.Name
	var list v1alpha1.AuthPolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return reconcile.Result{}, fmt.Errorf("list authpolicies: %w", err)
	}
	enabled := false
	for i := range list.Items {
		if list.Items[i].Spec.IdentityAssertion != nil && list.Items[i].DeletionTimestamp == nil {
			enabled = true
		}
	}
	if !enabled {
		r.Metrics.forget(ns)
		return reconcile.Result{}, r.remove(ctx, ns)
	}
	now := r.Now()
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: assertionkey.SecretName}, secret)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("get secret %s: %w", assertionkey.SecretName, err)
	}
	if exists && secret.Labels[labelManaged] != managedByUs {
		return reconcile.Result{}, fmt.Errorf("secret %s/%s exists and is not managed by authgate-controller: refusing to overwrite it", ns, assertionkey.SecretName)
	}
	var ring assertionkey.Ring
	if exists {
		if ring, err = assertionkey.Parse(secret.Data[assertionkey.SecretKey]); err != nil {
			log.FromContext(ctx).Error(err, "the identity assertion key ring is unusable; starting a new one", "namespace", ns)
			ring = assertionkey.Ring{}
		}
	}
	out, changed, next, err := assertionkey.Rotate(ring, now, r.Policy)
	if err != nil {
		return reconcile.Result{}, err
	}
	if changed || !exists {
		if err := r.writeSecret(ctx, ns, secret, exists, out); err != nil {
			return reconcile.Result{}, err
		}
	}
	if err := r.writeJWKS(ctx, ns, out); err != nil {
		return reconcile.Result{}, err
	}
	if k, ok := out.Signer(now); ok {
		r.Metrics.set(ns, k.Created, len(out.Keys))
	}
	return reconcile.Result{RequeueAfter: min(max(next.Sub(now), time.Second), maxRequeue)}, nil
}

func labels(role string) map[string]string {
	return map[string]string{translate.LabelRole: role, labelManaged: managedByUs}
}

func (r *Reconciler) writeSecret(ctx context.Context, ns string, s *corev1.Secret, exists bool, ring assertionkey.Ring) error {
	b, err := ring.Marshal()
	if err != nil {
		return err
	}
	if !exists {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: assertionkey.SecretName}, Type: corev1.SecretTypeOpaque}
	}
	orig := s.DeepCopy()
	s.Labels = labels(RoleKey)
	s.Data = map[string][]byte{assertionkey.SecretKey: b}
	if !exists {
		err = r.Client.Create(ctx, s, client.FieldOwner(fieldOwnerTag))
	} else {
		// The patch carries the resourceVersion read: a concurrent writer
		// (another replica, a hand edit) makes it fail and retry.
		err = r.Client.Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(fieldOwnerTag))
	}
	if err != nil {
		return fmt.Errorf("write secret %s: %w", assertionkey.SecretName, err)
	}
	log.FromContext(ctx).Info("identity assertion key ring written", "namespace", ns, "keys", len(ring.Keys))
	return nil
}

func (r *Reconciler) writeJWKS(ctx context.Context, ns string, ring assertionkey.Ring) error {
	b, err := json.Marshal(ring.PublicJWKS())
	if err != nil {
		return fmt.Errorf("encode public keys: %w", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: assertionkey.JWKSConfigMapName}}
	_, err = ctrl.CreateOrUpdate(ctx, r.Client, cm, func() error {
		cm.Labels = labels(RoleJWKS)
		cm.Data = map[string]string{assertionkey.JWKSKey: string(b)}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write configmap %s: %w", assertionkey.JWKSConfigMapName, err)
	}
	return nil
}

// remove deletes the ring and the public keys the controller wrote.
func (r *Reconciler) remove(ctx context.Context, ns string) error {
	if err := r.deleteOurs(ctx, r.APIReader, ns, assertionkey.SecretName, &corev1.Secret{}); err != nil {
		return err
	}
	return r.deleteOurs(ctx, r.Client, ns, assertionkey.JWKSConfigMapName, &corev1.ConfigMap{})
}

// deleteOurs deletes ns/name when it exists and carries the controller's
// label (nothing else of that name is touched).
func (r *Reconciler) deleteOurs(ctx context.Context, reader client.Reader, ns, name string, obj client.Object) error {
	err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
	if err != nil {
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("get %s: %w", name, err)
		}
		return nil
	}
	if obj.GetLabels()[labelManaged] != managedByUs {
		return nil
	}
	if err := r.Client.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// SetupWithManager watches AuthPolicies and the public ConfigMaps (a
// deleted or edited one is repaired), keyed by namespace. The Secret is
// not cached; a deleted or edited Secret is repaired at the next
// requeue (at most 10 minutes).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("assertionkeys").
		Watches(&v1alpha1.AuthPolicy{}, toNamespace).
		Watches(&corev1.ConfigMap{}, toNamespace).
		Complete(r)
}
