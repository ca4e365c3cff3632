// Package coverage reports, for every AuthPolicy, how many of the pods it
// selects run the authgate sidecar: status.coverage (patched by this
// reconciler alone), Warning events when selected pods are unprotected or
// bypassable, and gauges of selected, unprotected and bypassable pods per
// policy and of injected-but-unselected and opted-out pods per namespace
// (docs/coverage.md).
//
// Pods are watched metadata-only (metav1.PartialObjectMetadata), so the
// controller's cache never holds the pod specs of the cluster. The price
// is that a pod's phase is unknown: every pod not being deleted (no
// deletionTimestamp) counts, Pending, Succeeded and Failed ones included
// (a Job's completed pods still count until they are deleted).
package coverage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/internal/pushapi"
)

// Event reasons.
const (
	// ReasonUnprotectedPods (Warning, on the AuthPolicy): selected pods run
	// without the sidecar.
	ReasonUnprotectedPods = "UnprotectedPods"
	// ReasonBypassablePods (Warning, on the AuthPolicy): selected pods run
	// the sidecar with inbound capture off.
	ReasonBypassablePods = "BypassablePods"
	// ReasonPodsProtected (Normal, on the AuthPolicy): every selected pod
	// is protected again.
	ReasonPodsProtected = "PodsProtected"
	// ReasonOptedOut (Normal, on the Pod): a pod of an opted-in namespace
	// opted out of injection.
	ReasonOptedOut = "InjectionOptedOut"
)

// Reconciler computes the coverage of every AuthPolicy of one namespace.
// Requests are keyed by namespace ({Name: namespace}).
type Reconciler struct {
	// Client reads AuthPolicies, pod metadata and Namespaces (the
	// manager's cache) and patches status.coverage.
	Client   client.Client
	Recorder events.EventRecorder
	Metrics  *Metrics
	// ReadNamespaces reads each Namespace's opt-in label to count opted-out
	// pods. It needs read access to Namespaces, which the controller has
	// when it serves the injector; without it no pod counts as opted out.
	ReadNamespaces bool
	// Workers is how many namespaces are reconciled at once (0: 1).
	Workers int
	// Acks holds what each sidecar reported enforcing over the push
	// channel (controllers/push); nil when the push channel is off, and the
	// Enforced condition is then Unknown.
	Acks AckSource

	mu sync.Mutex
	// optedOut records, per namespace, the opted-out pods already reported
	// by an event, so each gets one.
	optedOut map[string]map[types.UID]bool
	// written records, per namespace and policy UID, the coverage last
	// patched: events compare with it rather than with the cache, which
	// may not have seen the last patch yet (one event per change).
	written map[string]map[types.UID]*v1alpha1.CoverageStatus
}

// AckSource is what the push channel's server reports of the sidecars:
// per namespace, the last acknowledgement of each pod by name.
type AckSource interface {
	// Snapshot returns ns's acknowledgements by pod name.
	Snapshot(ns string) map[string]pushapi.Ack
	// PruneExcept forgets ns's pods not in pods (gone).
	PruneExcept(ns string, pods map[string]bool)
	// Changes names namespaces whose acknowledgements changed.
	Changes() <-chan string
}

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile counts one namespace's pods against its policies.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ns := req.Name
	optedIn, err := r.optedIn(ctx, ns)
	if err != nil {
		return reconcile.Result{}, err
	}
	var policies v1alpha1.AuthPolicyList
	if err := r.Client.List(ctx, &policies, client.InNamespace(ns)); err != nil {
		return reconcile.Result{}, fmt.Errorf("list authpolicies: %w", err)
	}
	sort.Slice(policies.Items, func(i, j int) bool { return policies.Items[i].Name < policies.Items[j].Name })
	meta, err := r.pods(ctx, ns)
	if err != nil {
		return reconcile.Result{}, err
	}
	pods := make([]Pod, len(meta))
	injected := false
	var acks map[string]pushapi.Ack
	if r.Acks != nil {
		acks = r.Acks.Snapshot(ns)
	}
	names := make(map[string]bool, len(meta))
	for i, m := range meta {
		pods[i] = Pod{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations, Enforces: acks[m.Name].Policies}
		injected = injected || pods[i].Injected()
		names[m.Name] = true
	}
	if r.Acks != nil {
		r.Acks.PruneExcept(ns, names)
	}
	res := Count(policies.Items, pods, optedIn)
	r.Metrics.set(ns, res, optedIn || injected || len(policies.Items) > 0, r.Acks != nil)
	r.reportOptedOut(ns, meta, optedIn)
	written := r.writtenIn(ns)
	now := map[types.UID]*v1alpha1.CoverageStatus{}
	defer r.setWritten(ns, now)
	for i := range policies.Items {
		p := &policies.Items[i]
		c := res.Policies[p.Name]
		if c == nil {
			continue
		}
		if r.Acks == nil {
			c.EnforcingPods, c.Enforcement = 0, ""
		}
		last, ok := written[p.UID]
		if !ok {
			last = p.Status.Coverage // after a restart: what the policy says
		}
		now[p.UID] = last
		if err := r.patch(ctx, p, last, c); err != nil {
			if apierrors.IsConflict(err) {
				// The AuthPolicy reconciler wrote the status since the
				// cache was read: count again on what it wrote.
				return reconcile.Result{Requeue: true}, nil
			}
			return reconcile.Result{}, err
		}
		now[p.UID] = c
	}
	return reconcile.Result{}, nil
}

// writtenIn returns what was last patched into ns's policies.
func (r *Reconciler) writtenIn(ns string) map[types.UID]*v1alpha1.CoverageStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.written[ns]
}

// setWritten replaces ns's record with now (policies gone drop out).
func (r *Reconciler) setWritten(ns string, now map[types.UID]*v1alpha1.CoverageStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.written == nil {
		r.written = map[string]map[types.UID]*v1alpha1.CoverageStatus{}
	}
	if len(now) == 0 {
		delete(r.written, ns)
		return
	}
	r.written[ns] = now
}

// optedIn says whether ns carries authgate.dev/inject=enabled (false
// without ReadNamespaces, or when it is gone).
func (r *Reconciler) optedIn(ctx context.Context, ns string) (bool, error) {
	if !r.ReadNamespaces {
		return false, nil
	}
	var n corev1.Namespace
	if err := r.Client.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get namespace %s: %w", ns, err)
	}
	return n.Labels[injector.LabelInject] == injector.NamespaceEnabled && n.DeletionTimestamp.IsZero(), nil
}

// pods lists the metadata of ns's pods that are not being deleted, sorted
// by name.
func (r *Reconciler) pods(ctx context.Context, ns string) ([]metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := r.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	out := slices.DeleteFunc(list.Items, func(m metav1.PartialObjectMetadata) bool { return !m.DeletionTimestamp.IsZero() })
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// patch writes p's status.coverage when it differs from c, and the
// Enforced condition when it changed, with a JSON merge patch through the
// status subresource. The coverage alone is patched as that field alone;
// a condition change sends the whole list (a merge patch replaces lists)
// with p's resourceVersion, so it fails with a conflict rather than undo
// a condition the AuthPolicy reconciler wrote meanwhile (which patches
// with the same lock). Then it records the events of the change from last
// (what was last written).
func (r *Reconciler) patch(ctx context.Context, p *v1alpha1.AuthPolicy, last, c *v1alpha1.CoverageStatus) error {
	want := EnforcedCondition(c, p.Generation, r.Acks != nil)
	old := meta.FindStatusCondition(p.Status.Conditions, want.Type)
	condChanged := old == nil || old.Status != want.Status || old.Reason != want.Reason || old.Message != want.Message || old.ObservedGeneration != want.ObservedGeneration
	if equality.Semantic.DeepEqual(p.Status.Coverage, c) && !condChanged {
		return nil
	}
	var conditions []metav1.Condition
	if condChanged {
		conditions = slices.Clone(p.Status.Conditions)
		want.LastTransitionTime = metav1.Now()
		meta.SetStatusCondition(&conditions, want)
	}
	data, err := Patch(c, conditions, p.ResourceVersion)
	if err != nil {
		return err
	}
	if err := r.Client.Status().Patch(ctx, p, client.RawPatch(types.MergePatchType, data)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patch status.coverage of %s/%s: %w", p.Namespace, p.Name, err)
	}
	for _, e := range changeEvents(last, c) {
		r.Recorder.Eventf(p, nil, e.kind, e.reason, "Coverage", "%s", e.note)
	}
	if old == nil || old.Status != want.Status || old.Reason != want.Reason {
		kind := corev1.EventTypeNormal
		if want.Status == metav1.ConditionFalse {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(p, nil, kind, want.Reason, want.Type+"="+string(want.Status), "%s", want.Message)
	}
	return nil
}

// coverageFields are every field of CoverageStatus, so a merge patch names
// each one and a field left empty is removed (null), not kept.
var coverageFields = []string{"observedGeneration", "selectedPods", "protectedPods", "bypassablePods", "unprotectedPods", "unprotected", "summary", "enforcingPods", "enforcement"}

// Patch is the JSON merge patch that sets status.coverage to c, every
// field named (null for an empty one), and, when conditions is not nil,
// status.conditions to conditions with metadata.resourceVersion
// resourceVersion (an optimistic lock).
func Patch(c *v1alpha1.CoverageStatus, conditions []metav1.Condition, resourceVersion string) ([]byte, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode coverage: %w", err)
	}
	fields := map[string]any{}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("decode coverage: %w", err)
	}
	for _, f := range coverageFields {
		if _, ok := fields[f]; !ok {
			fields[f] = nil
		}
	}
	status := map[string]any{"coverage": fields}
	patch := map[string]any{"status": status}
	if conditions != nil {
		status["conditions"] = conditions
		patch["metadata"] = map[string]any{"resourceVersion": resourceVersion}
	}
	return json.Marshal(patch)
}

type change struct{ kind, reason, note string }

// changeEvents are the events of a coverage change from old (nil: none
// yet) to c: a Warning when the unprotected or bypassable pods changed and
// some remain, a Normal one when none remain any more.
func changeEvents(old, c *v1alpha1.CoverageStatus) []change {
	if old == nil {
		old = &v1alpha1.CoverageStatus{}
	}
	var out []change
	if c.UnprotectedPods > 0 && (c.UnprotectedPods != old.UnprotectedPods || !slices.Equal(c.Unprotected, old.Unprotected)) {
		out = append(out, change{corev1.EventTypeWarning, ReasonUnprotectedPods, fmt.Sprintf(
			"%d of %d selected pods run without the authgate sidecar, so nothing enforces this policy for them: %s. "+
				"They were created before injection was enabled, opted out (%s=%s) or are in a namespace that does not opt in (%s=%s); recreate them once they opt in",
			c.UnprotectedPods, c.SelectedPods, names(c), injector.LabelInject, injector.PodDisabled, injector.LabelInject, injector.NamespaceEnabled)})
	}
	if c.BypassablePods > 0 && c.BypassablePods != old.BypassablePods {
		out = append(out, change{corev1.EventTypeWarning, ReasonBypassablePods, fmt.Sprintf(
			"%d of %d selected pods run the sidecar with inbound capture off (%s: \"false\"): their function port is reachable around the proxy on the pod IP unless a NetworkPolicy closes it",
			c.BypassablePods, c.SelectedPods, injector.AnnotationInboundCapture)})
	}
	if c.UnprotectedPods == 0 && c.BypassablePods == 0 && (old.UnprotectedPods > 0 || old.BypassablePods > 0) {
		out = append(out, change{corev1.EventTypeNormal, ReasonPodsProtected, "every selected pod is protected: " + c.Summary})
	}
	return out
}

func names(c *v1alpha1.CoverageStatus) string {
	s := strings.Join(c.Unprotected, ", ")
	if more := int(c.UnprotectedPods) - len(c.Unprotected); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// reportOptedOut records one event on every opted-out pod of an opted-in
// namespace the first time it is seen, and forgets pods that are gone.
func (r *Reconciler) reportOptedOut(ns string, pods []metav1.PartialObjectMetadata, optedIn bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.optedOut == nil {
		r.optedOut = map[string]map[types.UID]bool{}
	}
	seen := r.optedOut[ns]
	now := map[types.UID]bool{}
	for i := range pods {
		m := &pods[i]
		if !optedIn || !(Pod{Labels: m.Labels}).OptedOut() {
			continue
		}
		now[m.UID] = true
		if seen[m.UID] {
			continue
		}
		ref := m.DeepCopy()
		ref.APIVersion, ref.Kind = "v1", "Pod"
		r.Recorder.Eventf(ref, nil, corev1.EventTypeNormal, ReasonOptedOut, "Coverage",
			"pod opted out of authgate injection (%s=%s) in namespace %s, which opts in: it runs without the sidecar and no AuthPolicy is enforced for it",
			injector.LabelInject, injector.PodDisabled, ns)
	}
	if len(now) == 0 {
		delete(r.optedOut, ns)
		return
	}
	r.optedOut[ns] = now
}

// SetupWithManager watches pod metadata (only changes of labels,
// annotations or deletion), AuthPolicies (creation, deletion, spec
// changes) and, with ReadNamespaces, Namespaces' labels (the full objects,
// the injector's informer); each maps to its namespace.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("coverage").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		Watches(&corev1.Pod{}, toNamespace, builder.OnlyMetadata, builder.WithPredicates(podChanged())).
		Watches(&v1alpha1.AuthPolicy{}, toNamespace, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	if r.Acks != nil {
		acked := make(chan event.GenericEvent)
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			forwardAcks(ctx, r.Acks.Changes(), acked)
			return nil
		})); err != nil {
			return fmt.Errorf("add ack forwarder: %w", err)
		}
		b = b.WatchesRawSource(source.Channel(acked, toNamespace))
	}
	if r.ReadNamespaces {
		b = b.Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetName()}}}
		}), builder.WithPredicates(predicate.LabelChangedPredicate{}))
	}
	return b.Complete(r)
}

// forwardAcks turns the namespaces whose acknowledgements changed into
// events of the coverage controller's workqueue until ctx ends.
func forwardAcks(ctx context.Context, changes <-chan string, out chan<- event.GenericEvent) {
	for {
		select {
		case <-ctx.Done():
			return
		case ns := <-changes:
			o := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns}}
			select {
			case out <- event.GenericEvent{Object: o}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// podChanged passes creations, deletions and updates that change what
// coverage reads: labels, annotations, the deletion timestamp.
func podChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return !equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) ||
			!equality.Semantic.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
			!equality.Semantic.DeepEqual(o.GetDeletionTimestamp(), n.GetDeletionTimestamp())
	}}
}
