package controllers

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// trackIssuers records the issuers a namespace's policies use and forgets
// the ones no namespace uses.
func (r *Reconciler) trackIssuers(ns string, policies []v1alpha1.AuthPolicy, cas map[string]*corev1.ConfigMap) {
	keys := map[string]bool{}
	for i := range policies {
		if a := policies[i].Spec.Authentication; a != nil {
			for k, j := range a.JWT {
				if s, prob := issuerSpec(ns, k, j, cas); prob == nil {
					keys[s.Key()] = true
				}
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used == nil {
		r.used = map[string]map[string]bool{}
	}
	if len(keys) == 0 {
		delete(r.used, ns)
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
}

// namespacesUsing returns, sorted, the namespaces whose policies use the
// issuer.
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
