package controllers

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/bundle"
	"github.com/authgate/authgate/controllers/issuers"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
)

// Reconciler renders every AuthPolicy of a namespace into that namespace's
// bundle ConfigMap and reports each policy's status. Requests are keyed by
// namespace (Name holds the namespace) so one bundle has one writer.
type Reconciler struct {
	Client client.Client
	// APIReader reads the bundle uncached (it may be edited by hand).
	APIReader client.Reader
	Issuers   *issuers.Manager
	Recorder  events.EventRecorder
	Metrics   *Metrics
	Now       func() time.Time
	// MaxRequeue bounds how long until a namespace is looked at again.
	MaxRequeue time.Duration

	mu sync.Mutex
	// used records, per namespace, the issuers its policies trust, so keys
	// of issuers no policy trusts anymore are forgotten.
	used map[string]map[string]bool
}

// trackIssuers records the issuers a namespace uses and forgets the ones no
// namespace uses.
func (r *Reconciler) trackIssuers(ns string, results []*policyResult) {
	keys := map[string]bool{}
	for _, pr := range results {
		if pr.policy.Spec.Authentication == nil {
			continue
		}
		for _, j := range pr.policy.Spec.Authentication.JWT {
			keys[issuerSpec(j).Key()] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used == nil {
		r.used = map[string]map[string]bool{}
	}
	r.used[ns] = keys
	r.Issuers.Forget(func(s issuers.Spec) bool {
		for _, set := range r.used {
			if set[s.Key()] {
				return true
			}
		}
		return false
	})
}

func issuerSpec(j v1alpha1.JWTIssuer) issuers.Spec {
	return issuers.Spec{IssuerURL: j.IssuerURL, JWKSURL: j.JWKSURL, Algorithms: j.Algorithms}
}

// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile renders one namespace.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, err error) {
	ns := req.Name
	logger := log.FromContext(ctx).WithValues("namespace", ns)
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
	current, err := r.currentBundle(ctx, ns)
	if err != nil {
		return reconcile.Result{}, err
	}
	lastGood, err := bundle.Fragments(current)
	if err != nil {
		logger.Info("existing bundle unreadable; rendering from scratch", "error", err.Error())
		lastGood = nil
	}

	results := make([]*policyResult, 0, len(list.Items))
	var fragments []*translate.Fragment
	next := r.Now().Add(r.MaxRequeue)
	for i := range list.Items {
		pr := r.evaluate(ctx, &list.Items[i], inputs, lastGood)
		results = append(results, pr)
		if pr.rendered != nil {
			fragments = append(fragments, pr.rendered)
		}
		if !pr.nextRefresh.IsZero() && pr.nextRefresh.Before(next) {
			next = pr.nextRefresh
		}
	}
	r.trackIssuers(ns, results)
	data, renderErr := bundle.Render(fragments)
	if renderErr == nil {
		renderErr = r.writeBundle(ctx, ns, data, current)
	}
	for _, pr := range results {
		if err := r.updateStatus(ctx, pr, renderErr); err != nil {
			return reconcile.Result{}, err
		}
	}
	if renderErr != nil {
		return reconcile.Result{}, fmt.Errorf("render bundle for namespace %s: %w", ns, renderErr)
	}
	return reconcile.Result{RequeueAfter: max(next.Sub(r.Now()), time.Second)}, nil
}

// nsInputs are the namespace's opted-in Secrets and Rego ConfigMaps.
type nsInputs struct {
	secrets    []corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

func (r *Reconciler) gather(ctx context.Context, ns string) (*nsInputs, error) {
	var secrets corev1.SecretList
	if err := r.Client.List(ctx, &secrets, client.InNamespace(ns), client.MatchingLabels{LabelAPIKey: "true"}); err != nil {
		return nil, fmt.Errorf("list api-key secrets: %w", err)
	}
	var cms corev1.ConfigMapList
	if err := r.Client.List(ctx, &cms, client.InNamespace(ns), client.MatchingLabels{LabelRole: RoleRego}); err != nil {
		return nil, fmt.Errorf("list rego configmaps: %w", err)
	}
	in := &nsInputs{secrets: secrets.Items, configMaps: map[string]*corev1.ConfigMap{}}
	for i := range cms.Items {
		in.configMaps[cms.Items[i].Name] = &cms.Items[i]
	}
	return in, nil
}

// policyResult is what one reconcile decided about one policy.
type policyResult struct {
	policy      *v1alpha1.AuthPolicy
	problem     *translate.Problem
	rendered    *translate.Fragment // this generation, or the last good one
	stale       bool                // rendered is an older generation
	issuers     []v1alpha1.IssuerStatus
	issuerErr   string
	nextRefresh time.Time
}

func (r *Reconciler) evaluate(ctx context.Context, p *v1alpha1.AuthPolicy, in *nsInputs, lastGood map[string]*translate.Fragment) *policyResult {
	pr := &policyResult{policy: p}
	if p.DeletionTimestamp != nil {
		return pr
	}
	if p.Spec.Authentication != nil {
		for _, j := range p.Spec.Authentication.JWT {
			st := r.Issuers.Ensure(ctx, issuerSpec(j))
			is := v1alpha1.IssuerStatus{IssuerURL: j.IssuerURL, Keys: int32(st.KeyCount), Error: st.LastError}
			if !st.LastSuccess.IsZero() {
				t := metav1.NewTime(st.LastSuccess)
				is.LastRefresh = &t
			}
			if st.LastError != "" && pr.issuerErr == "" {
				pr.issuerErr = j.IssuerURL + ": " + st.LastError
			}
			pr.issuers = append(pr.issuers, is)
			if pr.nextRefresh.IsZero() || (!st.NextRefresh.IsZero() && st.NextRefresh.Before(pr.nextRefresh)) {
				pr.nextRefresh = st.NextRefresh
			}
		}
	}
	frag, problem := translate.Translate(ctx, translate.Input{
		Policy: p, Secrets: in.secrets, ConfigMaps: in.configMaps,
		Keys: func(issuerURL string) (config.JSONWebKeySet, bool) {
			for _, j := range p.Spec.Authentication.JWT {
				if j.IssuerURL == issuerURL {
					return r.Issuers.Lookup(issuerSpec(j))
				}
			}
			return config.JSONWebKeySet{}, false
		},
	})
	if problem != nil {
		pr.problem = problem
		if old, ok := lastGood[p.Namespace+"/"+p.Name]; ok {
			// Keep the last good generation, but never a revoked API key.
			if refreshed := translate.RefreshKeys(old, p.Namespace, in.secrets); refreshed != nil {
				pr.rendered, pr.stale = refreshed, true
			}
		}
		return pr
	}
	pr.rendered = frag
	return pr
}

func (r *Reconciler) currentBundle(ctx context.Context, ns string) ([]byte, error) {
	var cm corev1.ConfigMap
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: bundle.ConfigMapName}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get bundle: %w", err)
	}
	return []byte(cm.Data[bundle.ConfigKey]), nil
}

// writeBundle creates or updates the bundle only when its content changed.
// A namespace without policies keeps a bundle with no policies, so its
// sidecars deny (fail closed) rather than keep an old configuration.
func (r *Reconciler) writeBundle(ctx context.Context, ns string, data, current []byte) error {
	if current != nil && string(current) == string(data) {
		return nil
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: bundle.ConfigMapName}}
	_, err := ctrl.CreateOrUpdate(ctx, r.Client, cm, func() error {
		if cm.Labels == nil {
			cm.Labels = map[string]string{}
		}
		cm.Labels[LabelRole] = RoleBundle
		cm.Labels["app.kubernetes.io/managed-by"] = "authgate-controller"
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[AnnotationBundleHash] = bundle.Hash(data)
		cm.Data = map[string]string{bundle.ConfigKey: string(data)}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}

// SetupWithManager registers the controller: every AuthPolicy, opted-in
// Secret, Rego ConfigMap and bundle maps to its namespace.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("authpolicy").
		Watches(&v1alpha1.AuthPolicy{}, toNamespace).
		Watches(&corev1.Secret{}, toNamespace).
		Watches(&corev1.ConfigMap{}, toNamespace).
		Complete(r)
}
