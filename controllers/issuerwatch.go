package controllers

import (
	"context"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/issuers"
	"github.com/authgate/authgate/controllers/translate"
)

// DefaultReconcileWorkers is how many namespaces are reconciled at once
// unless configured (--reconcile-workers).
const DefaultReconcileWorkers = 4

// MaxReconcileWorkers bounds --reconcile-workers.
const MaxReconcileWorkers = 64

// changedBuffer is the capacity of the issuer-change channel; the
// controller's channel source drains it into the workqueue.
const changedBuffer = 256

// issuerSpec is the key source of spec.authentication.jwt[i] of a policy in
// namespace ns, with its CA bundle read from cas. When the bundle does not
// resolve there is no spec: the issuer is not fetched at all, rather than
// with the system roots.
func issuerSpec(ns string, i int, j v1alpha1.JWTIssuer, cas map[string]*corev1.ConfigMap) (issuers.Spec, *translate.Problem) {
	ca, prob := translate.CABundle(ns, i, j, cas)
	if prob != nil {
		return issuers.Spec{}, prob
	}
	return issuers.Spec{IssuerURL: j.IssuerURL, JWKSURL: j.JWKSURL, Algorithms: j.Algorithms, CABundle: ca}, nil
}

// DefaultMaxIssuersPerNamespace is how many distinct issuers (issuer key
// sources, issuers.Spec.Key) the policies of one namespace may trust
// unless configured (--max-issuers-per-namespace).
const DefaultMaxIssuersPerNamespace = 16

// MaxMaxIssuersPerNamespace bounds --max-issuers-per-namespace.
const MaxMaxIssuersPerNamespace = 1024

// trackIssuers records the issuers a namespace's policies use, within the
// namespace's bound on distinct issuers, and forgets the ones no namespace
// uses. Policies are admitted oldest first (creation time, then name), each
// with all of its issuers or none: a policy whose issuers would take the
// namespace past the bound is returned (with the count it would need) and
// none of its issuers is registered or fetched, so an older policy never
// loses its issuers to a newer one, and the bound fails closed for the
// policy that exceeds it only.
func (r *Reconciler) trackIssuers(ns string, policies []v1alpha1.AuthPolicy, cas map[string]*corev1.ConfigMap) map[types.UID]int {
	order := make([]*v1alpha1.AuthPolicy, 0, len(policies))
	for i := range policies {
		if policies[i].DeletionTimestamp == nil {
			order = append(order, &policies[i])
		}
	}
	slices.SortStableFunc(order, func(a, b *v1alpha1.AuthPolicy) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	limit := r.maxIssuers()
	keys := map[string]bool{}
	var over map[types.UID]int
	for _, p := range order {
		a := p.Spec.Authentication
		if a == nil {
			continue
		}
		own := map[string]bool{}
		for k, j := range a.JWT {
			if s, prob := issuerSpec(ns, k, j, cas); prob == nil && !keys[s.Key()] {
				own[s.Key()] = true
			}
		}
		if len(keys)+len(own) > limit {
			if over == nil {
				over = map[types.UID]int{}
			}
			over[p.UID] = len(keys) + len(own)
			continue
		}
		maps.Copy(keys, own)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used == nil {
		r.used = map[string]map[string]bool{}
	}
	if len(keys) == 0 {
		delete(r.used, ns)
		r.Issuers.ForgetNamespace(ns)
	} else {
		r.used[ns] = keys
	}
	r.Issuers.Forget(func(s issuers.Spec) bool {
		for _, set := range r.used {
			if set[s.Key()] {
				return true
			}
		}
		return false
	})
	return over
}

func (r *Reconciler) maxIssuers() int {
	if r.MaxIssuersPerNamespace <= 0 {
		return DefaultMaxIssuersPerNamespace
	}
	return r.MaxIssuersPerNamespace
}

// namespacesUsing returns, sorted, the namespaces whose policies use the
// issuer; it is the issuers.Options.Namespaces of the Reconciler's
// Issuers (a refresh is charged to one of them).
func (r *Reconciler) namespacesUsing(s issuers.Spec) []string {
	key := s.Key()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for ns, set := range r.used {
		if set[key] {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// IssuerChanged enqueues every namespace that uses the issuer; it is the
// issuers.Options.OnChange of the Reconciler's Issuers. Before
// SetupWithManager it does nothing. It blocks only while the channel source
// is full, and not past ctx.
func (r *Reconciler) IssuerChanged(ctx context.Context, s issuers.Spec) {
	if r.changed == nil {
		return
	}
	for _, ns := range r.namespacesUsing(s) {
		ev := event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns}}}
		select {
		case r.changed <- ev:
		case <-ctx.Done():
			return
		}
	}
}
