package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/authgate/authgate/controllers/bundle"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
)

// The bundle lives in the Secret config.BundleSecret (type Opaque, key
// config.BundleKey): it holds the namespace's API-key hashes, which the
// built-in view role, able to read every ConfigMap, must not read. Earlier
// versions wrote it into the ConfigMap LegacyBundleConfigMap; the
// controller deletes the one it wrote once the Secret is written.

// bundleLabels are what the controller marks its bundle with (the legacy
// ConfigMap carried the same).
func bundleLabels() map[string]string {
	return map[string]string{translate.LabelRole: RoleBundle, LabelManagedBy: ManagedBy}
}

// ours reports whether labels mark an object as a bundle this controller
// wrote.
func ours(labels map[string]string) bool {
	return labels[translate.LabelRole] == RoleBundle && labels[LabelManagedBy] == ManagedBy
}

// readBundle reads the namespace's bundle Secret through the APIReader:
// the manager's cache holds API-key Secrets only, and the bundle may have
// been edited by hand. nil when there is none.
func (r *Reconciler) readBundle(ctx context.Context, ns string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: config.BundleSecret}, &s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get bundle secret: %w", err)
	}
	return &s, nil
}

// legacyBundle returns the namespace's legacy bundle ConfigMap when this
// controller wrote it (labelled RoleBundle and ManagedBy); a ConfigMap of
// that name written by someone else is neither read nor deleted. The
// manager caches ConfigMaps labelled RoleBundle, so this costs no request.
func (r *Reconciler) legacyBundle(ctx context.Context, ns string) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: LegacyBundleConfigMap}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get legacy bundle configmap: %w", err)
	}
	if !ours(cm.Labels) {
		return nil, nil
	}
	return &cm, nil
}

// bundleData is what the namespace's sidecars are served now: the Secret's
// bundle or, right after an upgrade from a version that wrote the
// ConfigMap (no Secret yet), the legacy ConfigMap's, so the last good
// generation of a rejected policy and the keys of an issuer not fetched
// yet survive the upgrade. nil when there is neither.
func bundleData(s *corev1.Secret, legacy *corev1.ConfigMap) []byte {
	switch {
	case s != nil:
		return s.Data[config.BundleKey]
	case legacy != nil:
		return []byte(legacy.Data[config.BundleKey])
	}
	return nil
}

// writeBundle creates or updates the bundle Secret only when its content
// (data, a rendered bundle) or the controller's marks on it changed; a
// change is stamped with the next revision (bundle.Next), which orders
// bundles for the sidecars. A namespace without policies keeps a bundle
// with no policies, so its sidecars deny (fail closed) rather than keep an
// old configuration. A change carries the resourceVersion read: a
// concurrent writer makes it fail and retry. The bundle written is
// published to the push channel.
func (r *Reconciler) writeBundle(ctx context.Context, ns string, data []byte, cur *corev1.Secret) error {
	if cur != nil && cur.Type != corev1.SecretTypeOpaque {
		return fmt.Errorf("secret %s/%s has type %s, not %s: delete it so the controller can write the bundle", ns, config.BundleSecret, cur.Type, corev1.SecretTypeOpaque)
	}
	var rev int64
	if cur != nil {
		written := cur.Data[config.BundleKey]
		rev = bundle.Revision(written)
		if string(written) == string(bundle.Stamp(data, rev)) && ours(cur.Labels) && cur.Annotations[AnnotationBundleHash] == bundle.Hash(written) {
			return nil
		}
	}
	data = bundle.Stamp(data, bundle.Next(rev, r.Now().UnixMilli()))
	hash := bundle.Hash(data)
	if cur == nil {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: config.BundleSecret,
				Labels: bundleLabels(), Annotations: map[string]string{AnnotationBundleHash: hash},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{config.BundleKey: data},
		}
		if err := r.Client.Create(ctx, s); err != nil {
			return fmt.Errorf("create bundle secret: %w", err)
		}
		r.publish(ns, data)
		return nil
	}
	s := cur.DeepCopy()
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	for k, v := range bundleLabels() {
		s.Labels[k] = v
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[AnnotationBundleHash] = hash
	s.Data = map[string][]byte{config.BundleKey: data}
	s.StringData = nil
	// A patch, not an update: the controller already patches Secrets (the
	// assertion key ring), and update on every Secret would also grant
	// again what the webhook certificate Role grants on its one Secret.
	if err := r.Client.Patch(ctx, s, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch bundle secret: %w", err)
	}
	r.publish(ns, data)
	return nil
}

// publish hands a written bundle to the push channel (Publisher), if any.
func (r *Reconciler) publish(ns string, data []byte) {
	if r.Publisher != nil {
		r.Publisher.Publish(ns, data)
	}
}

// deleteLegacyBundle deletes the legacy bundle ConfigMap the controller
// wrote; call it only once the Secret holds the bundle. The preconditions
// make sure it deletes what legacyBundle read and nothing created or
// edited since.
func (r *Reconciler) deleteLegacyBundle(ctx context.Context, legacy *corev1.ConfigMap) error {
	if legacy == nil {
		return nil
	}
	err := r.Client.Delete(ctx, legacy, client.Preconditions{UID: &legacy.UID, ResourceVersion: &legacy.ResourceVersion})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete legacy bundle configmap %s/%s: %w", legacy.Namespace, legacy.Name, err)
	}
	if err == nil {
		log.FromContext(ctx).Info("deleted the legacy bundle ConfigMap; the bundle is in Secret "+config.BundleSecret,
			"namespace", legacy.Namespace)
	}
	return nil
}
