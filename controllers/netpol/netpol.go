// Package netpol keeps, for every AuthPolicy, a NetworkPolicy that lets
// traffic into the pods the policy protects only on the ports that must be
// reachable: the sidecar's (by name: authgate, authgate-admin) and, in
// Knative revision pods, queue-proxy's. The function's own port stays
// closed to other pods even where inbound capture is off (a pod opted out,
// or a cluster without NET_ADMIN for init containers). It is defence in
// depth: whether the cluster's network plugin enforces NetworkPolicies is
// not something the controller can see.
//
// The NetworkPolicy selects the policy's pods AND the label the injector
// puts on every injected pod (authgate.dev/injected=true), so a selector
// that also matches other workloads of the namespace (a database, say)
// never cuts them off. It is owned by the AuthPolicy (garbage-collected
// with it), labelled app.kubernetes.io/managed-by=authgate-controller,
// restored when edited or deleted, and removed when the feature is off or
// the policy's selector is invalid.
package netpol

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/translate"
)

// Labels of the NetworkPolicies this package writes.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "authgate-controller"
	LabelPolicy    = "authgate.dev/policy"
	// LabelInjected is the pod label the injector sets on every pod it
	// injects (controllers/injector.LabelInjected).
	LabelInjected = "authgate.dev/injected"
)

// Ports are the named container ports left open, from the injector
// (controllers/injector PortName, AdminPortName) and Knative Serving v0.42
// (pkg/reconciler/revision/resources/queue.go, pkg/apis/serving/v1:
// queue-proxy's serving, TLS, admin and metrics ports). A named port that
// a pod does not declare matches nothing there.
var Ports = []string{"authgate", "authgate-admin", "queue-port", "https-port", "http-queueadm", "http-autometric", "http-usermetric"}

// Name is the NetworkPolicy of the AuthPolicy called policy.
func Name(policy string) string {
	n := "authgate-" + policy
	if len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(policy))
	return n[:240] + "-" + hex.EncodeToString(sum[:])[:12]
}

// Desired is the NetworkPolicy for p, or nil when p's selector is invalid
// (the AuthPolicy's own status says why).
func Desired(p *v1alpha1.AuthPolicy) *networkingv1.NetworkPolicy {
	sel, err := translate.PodSelector(&p.Spec)
	if err != nil {
		return nil
	}
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[LabelInjected] = "true"
	tcp := corev1.ProtocolTCP
	ports := make([]networkingv1.NetworkPolicyPort, len(Ports))
	for i, name := range Ports {
		port := intstr.FromString(name)
		ports[i] = networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &port}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:      Name(p.Name),
			Namespace: p.Namespace,
			Labels:    map[string]string{LabelManagedBy: ManagedBy, LabelPolicy: truncLabel(p.Name)},
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *sel,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			// From anywhere: deciding who may call is the proxy's job; the
			// point is that nothing but the proxy and the platform's own
			// ports is reachable.
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: ports}},
		},
	}
}

func truncLabel(s string) string {
	if len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return s[:50] + "-" + hex.EncodeToString(sum[:])[:12]
}

// Reconciler keeps one AuthPolicy's NetworkPolicy.
type Reconciler struct {
	Client client.Client
	Scheme *runtime.Scheme
	// Enabled off removes the NetworkPolicies it wrote.
	Enabled bool
}

// SetupWithManager reconciles every AuthPolicy and its NetworkPolicy (an
// edit or a deletion of it is restored). The manager's cache should hold
// only NetworkPolicies labelled LabelManagedBy=ManagedBy.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("networkpolicy").
		For(&v1alpha1.AuthPolicy{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Complete(r)
}

// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete

// Reconcile creates, restores or removes the NetworkPolicy of one AuthPolicy.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var p v1alpha1.AuthPolicy
	if err := r.Client.Get(ctx, req.NamespacedName, &p); err != nil {
		if apierrors.IsNotFound(err) {
			// Garbage collection removes what it owned; a policy deleted
			// while the owner reference was missing is cleaned here.
			return reconcile.Result{}, r.remove(ctx, types.NamespacedName{Namespace: req.Namespace, Name: Name(req.Name)})
		}
		return reconcile.Result{}, err
	}
	key := types.NamespacedName{Namespace: p.Namespace, Name: Name(p.Name)}
	want := Desired(&p)
	if !r.Enabled || want == nil || !p.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.remove(ctx, key)
	}
	if err := controllerutil.SetControllerReference(&p, want, r.Scheme); err != nil {
		return reconcile.Result{}, fmt.Errorf("owner reference: %w", err)
	}
	var have networkingv1.NetworkPolicy
	switch err := r.Client.Get(ctx, key, &have); {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return reconcile.Result{}, fmt.Errorf("create networkpolicy %s: %w", key, err)
		}
		return reconcile.Result{}, nil
	case err != nil:
		return reconcile.Result{}, err
	}
	if equality.Semantic.DeepEqual(have.Spec, want.Spec) && equality.Semantic.DeepEqual(have.Labels, want.Labels) &&
		equality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences) {
		return reconcile.Result{}, nil
	}
	have.Spec, have.Labels, have.OwnerReferences = want.Spec, want.Labels, want.OwnerReferences
	if err := r.Client.Update(ctx, &have); err != nil {
		return reconcile.Result{}, fmt.Errorf("restore networkpolicy %s: %w", key, err)
	}
	return reconcile.Result{}, nil
}

// remove deletes the NetworkPolicy at key if this controller wrote it.
func (r *Reconciler) remove(ctx context.Context, key types.NamespacedName) error {
	var have networkingv1.NetworkPolicy
	if err := r.Client.Get(ctx, key, &have); err != nil {
		return client.IgnoreNotFound(err)
	}
	if have.Labels[LabelManagedBy] != ManagedBy {
		return nil // someone else's, by the same name: not ours to delete
	}
	if err := r.Client.Delete(ctx, &have); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete networkpolicy %s: %w", key, err)
	}
	return nil
}
