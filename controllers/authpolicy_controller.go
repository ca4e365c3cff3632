package controllers

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/bundle"
	"github.com/authgate/authgate/controllers/issuers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
)

// Reconciler renders every AuthPolicy of a namespace into that namespace's
// bundle Secret and reports each policy's status. Requests are keyed by
// namespace (Name holds the namespace) so one bundle has one writer.
//
// Reconcile never waits for the network: it reads what Issuers knows now.
// Issuers' refresher fetches keys on its own schedule and, through
// IssuerChanged (wire it as issuers.Options.OnChange), re-enqueues the
// namespaces that use an issuer whose keys or status changed.
type Reconciler struct {
	Client client.Client
	// APIReader reads the bundle Secret uncached (it may be edited by
	// hand; the manager caches API-key Secrets only).
	APIReader client.Reader
	// Bundles watches the bundle Secrets (NewManager: a cache holding only
	// Secrets named config.BundleSecret), so an edited or deleted bundle is
	// written again at once; nil: it is at the next requeue (MaxRequeue).
	Bundles cache.Cache
	Issuers *issuers.Manager
	// ClusterCA reads each namespace's kube-root-ca.crt ConfigMap, which
	// carries no label (NewManager: a cache holding only ConfigMaps of that
	// name); nil: only ConfigMaps labelled RoleCA hold CA bundles.
	ClusterCA cache.Cache
	Recorder  events.EventRecorder
	Metrics   *Metrics
	Now       func() time.Time
	// MaxRequeue bounds how long until a namespace is looked at again.
	MaxRequeue time.Duration
	// Workers is how many namespaces are reconciled at once; 0 means
	// DefaultReconcileWorkers.
	Workers int
	// Publisher, when set, receives every bundle the reconciler writes (the
	// push channel's server, which streams it to the namespace's sidecars).
	Publisher Publisher
	// MaxIssuersPerNamespace bounds the distinct issuers the policies of one
	// namespace trust (trackIssuers); 0 means DefaultMaxIssuersPerNamespace.
	MaxIssuersPerNamespace int
	// Tracer traces each Reconcile (a span "reconcile"); nil: none.
	Tracer trace.Tracer

	mu sync.Mutex
	// used records, per namespace, the issuers its policies trust, so keys
	// of issuers no policy trusts anymore are forgotten and a change of an
	// issuer re-renders the namespaces that use it.
	used map[string]map[string]bool
	// served records, per namespace, what its bundle holds since this
	// controller last wrote it: the last good generation of a rejected
	// policy comes from here, never from reading the bundle back.
	served map[string]lastGood
	// changed carries issuer changes into the workqueue (SetupWithManager).
	changed chan event.GenericEvent
}

// Publisher receives each bundle written: namespace and bytes, as in the
// Secret. Publish must not block.
type Publisher interface {
	Publish(namespace string, data []byte)
}

// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile renders one namespace.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, err error) {
	ns := req.Name
	logger := log.FromContext(ctx).WithValues("namespace", ns)
	ctx, span := startReconcile(ctx, r.Tracer, ns)
	defer func() { endReconcile(span, res, err) }()
	defer func() { r.Metrics.observe(err) }()

	var list v1alpha1.AuthPolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return reconcile.Result{}, fmt.Errorf("list authpolicies: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	inputs, err := r.gather(ctx, ns)
	if err != nil {
		return reconcile.Result{}, err
	}
	// Record the issuers before reading their keys: a fetch that ends after
	// the read below then re-enqueues this namespace.
	overLimit := r.trackIssuers(ns, list.Items, inputs.caConfigMaps)
	cur, legacy, err := r.readBundles(ctx, ns)
	if err != nil {
		return reconcile.Result{}, err
	}
	current := bundleData(cur, legacy)
	lastGood := r.lastGoodOf(ctx, ns, current, list.Items)

	results, fragments, next := r.evaluateAll(ctx, list.Items, inputs, lastGood, overLimit)
	requeue := reconcile.Result{RequeueAfter: max(next.Sub(r.Now()), time.Second)}
	if url := pendingIssuer(results); url != "" && current != nil {
		// An issuer's first fetch has not ended: after a restart or a
		// leader change that is every issuer. Keep the bundle, which may
		// ship its keys, rather than replace it by one without, and write
		// no status, until the fetch ends (FetchTimeout at most; the
		// refresher re-enqueues the namespace then). A namespace without a
		// bundle has nothing to lose and is rendered at once. Right after
		// an upgrade the bundle kept is the legacy ConfigMap's, moved into
		// the Secret as it is.
		logger.V(1).Info("keeping the bundle until the first key fetch of an issuer ends", "issuer", url)
		return requeue, r.keepBundle(ctx, ns, cur, current, legacy)
	}
	data, renderErr := bundle.Render(fragments)
	if renderErr == nil {
		renderErr = r.writeBundle(ctx, ns, data, cur)
	}
	if renderErr == nil {
		r.remember(ns, results)
	}
	for _, pr := range results {
		if err := r.updateStatus(ctx, pr, renderErr); err != nil {
			return reconcile.Result{}, err
		}
	}
	if renderErr != nil {
		return reconcile.Result{}, fmt.Errorf("render bundle for namespace %s: %w", ns, renderErr)
	}
	if err := r.deleteLegacyBundle(ctx, legacy); err != nil {
		return reconcile.Result{}, err
	}
	return requeue, nil
}

// readBundles reads the bundle Secret and the legacy bundle ConfigMap.
func (r *Reconciler) readBundles(ctx context.Context, ns string) (*corev1.Secret, *corev1.ConfigMap, error) {
	cur, err := r.readBundle(ctx, ns)
	if err != nil {
		return nil, nil, err
	}
	legacy, err := r.legacyBundle(ctx, ns)
	if err != nil {
		return nil, nil, err
	}
	return cur, legacy, nil
}

// keepBundle keeps what the sidecars are served, data: right after an
// upgrade (no Secret yet) that is the legacy ConfigMap's bundle, moved into
// the Secret unchanged. The legacy ConfigMap is deleted once the Secret
// holds the bundle.
func (r *Reconciler) keepBundle(ctx context.Context, ns string, cur *corev1.Secret, data []byte, legacy *corev1.ConfigMap) error {
	if cur == nil {
		if err := r.writeBundle(ctx, ns, data, nil); err != nil {
			return err
		}
	}
	return r.deleteLegacyBundle(ctx, legacy)
}

// evaluateAll evaluates every policy and returns the results, the rendered
// fragments and when to look at the namespace again: after MaxRequeue, or
// when a pending first key fetch will have ended (a safety net; the
// refresher re-enqueues the namespace when it does).
func (r *Reconciler) evaluateAll(ctx context.Context, items []v1alpha1.AuthPolicy, in *nsInputs, lastGood lastGood, overLimit map[types.UID]int) ([]*policyResult, []*translate.Fragment, time.Time) {
	results := make([]*policyResult, 0, len(items))
	var fragments []*translate.Fragment
	next := r.Now().Add(r.MaxRequeue)
	for i := range items {
		var pr *policyResult
		if n, over := overLimit[items[i].UID]; over {
			pr = r.overIssuerLimit(&items[i], n)
		} else {
			pr = r.evaluate(ctx, &items[i], in, lastGood)
		}
		results = append(results, pr)
		if pr.rendered != nil {
			fragments = append(fragments, pr.rendered)
		}
		if !pr.pendingUntil.IsZero() && pr.pendingUntil.Before(next) {
			next = pr.pendingUntil
		}
	}
	return results, fragments, next
}

// nsInputs are the namespace's opted-in Secrets, Rego ConfigMaps and CA
// bundle ConfigMaps.
type nsInputs struct {
	secrets      []corev1.Secret
	configMaps   map[string]*corev1.ConfigMap
	caConfigMaps map[string]*corev1.ConfigMap
}

func (r *Reconciler) gather(ctx context.Context, ns string) (*nsInputs, error) {
	var secrets corev1.SecretList
	if err := r.Client.List(ctx, &secrets, client.InNamespace(ns), client.MatchingLabels{translate.LabelAPIKey: "true"}); err != nil {
		return nil, fmt.Errorf("list api-key secrets: %w", err)
	}
	var cms corev1.ConfigMapList
	if err := r.Client.List(ctx, &cms, client.InNamespace(ns), client.MatchingLabels{translate.LabelRole: translate.RoleRego}); err != nil {
		return nil, fmt.Errorf("list rego configmaps: %w", err)
	}
	in := &nsInputs{secrets: secrets.Items, configMaps: map[string]*corev1.ConfigMap{}}
	for i := range cms.Items {
		in.configMaps[cms.Items[i].Name] = &cms.Items[i]
	}
	var err error
	if in.caConfigMaps, err = r.gatherCAs(ctx, ns); err != nil {
		return nil, err
	}
	return in, nil
}

// gatherCAs reads the ConfigMaps of ns that may hold an issuer's CA bundle:
// those labelled RoleCA and, through ClusterCA, kube-root-ca.crt.
func (r *Reconciler) gatherCAs(ctx context.Context, ns string) (map[string]*corev1.ConfigMap, error) {
	var cms corev1.ConfigMapList
	if err := r.Client.List(ctx, &cms, client.InNamespace(ns), client.MatchingLabels{translate.LabelRole: translate.RoleCA}); err != nil {
		return nil, fmt.Errorf("list ca bundle configmaps: %w", err)
	}
	out := make(map[string]*corev1.ConfigMap, len(cms.Items)+1)
	for i := range cms.Items {
		out[cms.Items[i].Name] = &cms.Items[i]
	}
	if r.ClusterCA == nil {
		return out, nil
	}
	var root corev1.ConfigMap
	err := r.ClusterCA.Get(ctx, types.NamespacedName{Namespace: ns, Name: translate.ClusterCAConfigMap}, &root)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("get configmap %s: %w", translate.ClusterCAConfigMap, err)
	default:
		out[root.Name] = &root
	}
	return out, nil
}

// policyResult is what one reconcile decided about one policy.
type policyResult struct {
	policy           *v1alpha1.AuthPolicy
	problem          *translate.Problem
	rendered         *translate.Fragment // this generation, or the last good one
	stale            bool                // rendered is an older generation
	issuers          []v1alpha1.IssuerStatus
	issuerErr        string
	issuerNotAllowed bool      // issuerErr is the fetch policy refusing an address
	caErr            string    // an issuer whose CA bundle does not resolve
	overLimit        string    // the namespace's bound on distinct issuers refuses the policy
	pending          string    // an issuer whose first key fetch has not ended
	queued           bool      // it waits for a fetch slot of its namespaces
	pendingUntil     time.Time // when it will have ended at the latest
}

func (r *Reconciler) evaluate(ctx context.Context, p *v1alpha1.AuthPolicy, in *nsInputs, lastGood lastGood) *policyResult {
	pr := &policyResult{policy: p}
	if p.DeletionTimestamp != nil {
		return pr
	}
	keys := r.issuerKeys(p, pr, in.caConfigMaps)
	frag, problem := translate.Translate(ctx, translate.Input{
		Policy: p, Secrets: in.secrets, ConfigMaps: in.configMaps, CAConfigMaps: in.caConfigMaps,
		Keys: func(issuerURL string) (config.JSONWebKeySet, bool) {
			k, ok := keys[issuerURL]
			return k, ok
		},
		Now: r.now,
	})
	if problem != nil {
		pr.problem = problem
		if old, ok := lastGood[p.UID]; ok {
			// Keep the last good generation, but never a revoked API key
			// nor a token the current spec revokes.
			if refreshed := translate.RefreshKeys(old, p.Namespace, in.secrets, translate.KeyScopeBound(p)); refreshed != nil {
				pr.rendered, pr.stale = translate.RefreshRevocations(refreshed, p, r.now()), true
			}
		}
		return pr
	}
	pr.rendered = frag
	return pr
}

// now is the reconciler's clock, time.Now when none is set.
func (r *Reconciler) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// overIssuerLimit is the result of a policy whose issuers would take its
// namespace past MaxIssuersPerNamespace (needed: the distinct issuers it
// would take): it is refused and not rendered, not even its last good
// generation (whose issuers are not fetched any more either), and none of
// its issuers is fetched. The sidecars it selected deny (fail closed); the
// namespace's other policies are unaffected.
func (r *Reconciler) overIssuerLimit(p *v1alpha1.AuthPolicy, needed int) *policyResult {
	msg := fmt.Sprintf("the namespace's policies would trust %d distinct issuers with this one, more than the controller allows per namespace (%d, --max-issuers-per-namespace); older policies keep theirs. The policy is not enforced and none of its issuers is fetched: share issuers between policies or remove some",
		needed, r.maxIssuers())
	pr := &policyResult{policy: p, overLimit: msg,
		problem: &translate.Problem{Reason: ReasonIssuerLimitExceeded, Message: msg}}
	if a := p.Spec.Authentication; a != nil {
		for _, j := range a.JWT {
			pr.issuers = append(pr.issuers, v1alpha1.IssuerStatus{IssuerURL: j.IssuerURL, Error: "not fetched: the namespace's issuer limit is exceeded"})
		}
	}
	return pr
}

// issuerKeys reads, without any network call, what Issuers knows about each
// issuer the policy trusts: it fills the policy's issuer status and returns
// the usable keys by issuer URL (the first entry of a URL, as before). The
// status and the rendered keys come from the same read. An issuer whose CA
// bundle does not resolve is not looked up (translation refuses the
// policy); its status says why.
func (r *Reconciler) issuerKeys(p *v1alpha1.AuthPolicy, pr *policyResult, cas map[string]*corev1.ConfigMap) map[string]config.JSONWebKeySet {
	keys := map[string]config.JSONWebKeySet{}
	if p.Spec.Authentication == nil {
		return keys
	}
	seen := map[string]bool{}
	for i, j := range p.Spec.Authentication.JWT {
		spec, prob := issuerSpec(p.Namespace, i, j, cas)
		if prob != nil {
			pr.issuers = append(pr.issuers, v1alpha1.IssuerStatus{IssuerURL: j.IssuerURL, Error: prob.Message})
			if pr.caErr == "" {
				pr.caErr = j.IssuerURL + ": " + prob.Message
			}
			seen[j.IssuerURL] = true
			continue
		}
		st := r.Issuers.Current(spec)
		is := v1alpha1.IssuerStatus{IssuerURL: j.IssuerURL, Keys: int32(st.KeyCount), Error: st.LastError}
		if !st.LastSuccess.IsZero() {
			t := metav1.NewTime(st.LastSuccess)
			is.LastRefresh = &t
		}
		pr.issuers = append(pr.issuers, is)
		switch {
		case st.Pending && pr.pending == "":
			pr.pending, pr.pendingUntil, pr.queued = j.IssuerURL, st.NextRefresh, st.Queued
		case st.LastError != "" && pr.issuerErr == "":
			pr.issuerErr, pr.issuerNotAllowed = j.IssuerURL+": "+st.LastError, st.AddressNotAllowed
		}
		if !seen[j.IssuerURL] {
			seen[j.IssuerURL] = true
			if st.KeyCount > 0 {
				keys[j.IssuerURL] = st.Keys
			}
		}
	}
	return keys
}

// pendingIssuer returns an issuer whose first key fetch has not ended, of
// any policy; "" when there is none.
func pendingIssuer(results []*policyResult) string {
	for _, pr := range results {
		if pr.pending != "" {
			return pr.pending
		}
	}
	return ""
}

// SetupWithManager registers the controller: every AuthPolicy, opted-in
// Secret, Rego and CA bundle ConfigMap, legacy bundle ConfigMap, (through
// Bundles) bundle Secret and (through ClusterCA) kube-root-ca.crt maps to
// its namespace, and so does every issuer change (IssuerChanged). It adds
// the issuer refresher (like the controller, on the leader only) and the
// Bundles and ClusterCA caches to the manager.
//
// Every request is keyed by namespace alone ({Name: namespace}), and the
// workqueue never hands one key to two workers at once (it holds a key
// being processed back until Done, then requeues it if it was added
// meanwhile), so with any number of workers the reconciles of one
// namespace stay serialised and in order, while namespaces run in parallel.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(r.Issuers); err != nil {
		return fmt.Errorf("issuer refresher: %w", err)
	}
	r.changed = make(chan event.GenericEvent, changedBuffer)
	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("authpolicy").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.workers()}).
		Watches(&v1alpha1.AuthPolicy{}, toNamespace, builder.WithPredicates(notStatusOnly())).
		Watches(&corev1.Secret{}, toNamespace).
		Watches(&corev1.ConfigMap{}, toNamespace).
		WatchesRawSource(source.Channel(r.changed, toNamespace))
	for _, w := range []struct {
		name  string
		cache cache.Cache
		obj   client.Object
	}{{"cluster CA", r.ClusterCA, &corev1.ConfigMap{}}, {"bundle secret", r.Bundles, &corev1.Secret{}}} {
		if w.cache == nil {
			continue
		}
		if err := mgr.Add(w.cache); err != nil {
			return fmt.Errorf("%s cache: %w", w.name, err)
		}
		b = b.WatchesRawSource(source.Kind[client.Object](w.cache, w.obj, toNamespace))
	}
	return b.Complete(r)
}

// notStatusOnly passes every AuthPolicy event but an update of its status
// alone: this reconciler's own status patches, and the coverage
// reconciler's patches of status.coverage (controllers/coverage), which
// follow pod churn and would otherwise re-render the namespace each time.
func notStatusOnly() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return o.GetGeneration() != n.GetGeneration() ||
			!equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) ||
			!equality.Semantic.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
			!equality.Semantic.DeepEqual(o.GetFinalizers(), n.GetFinalizers()) ||
			!equality.Semantic.DeepEqual(o.GetDeletionTimestamp(), n.GetDeletionTimestamp())
	}}
}

func (r *Reconciler) workers() int {
	if r.Workers <= 0 {
		return DefaultReconcileWorkers
	}
	return r.Workers
}
