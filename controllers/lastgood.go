package controllers

import (
	"context"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/bundle"
	"github.com/authgate/authgate/controllers/translate"
)

// lastGood is what a namespace's bundle holds, by AuthPolicy UID: each
// policy's fragment as last rendered, of its current generation or of the
// older one kept while the current is rejected. The fragment's
// Policy.Version is that generation. Keyed by UID, a policy deleted and
// created again under its name never inherits the old one's fragment.
type lastGood map[types.UID]*translate.Fragment

// lastGoodOf returns what the namespace's bundle holds: what this
// controller remembers writing there or, when it remembers nothing yet
// (it just started or became leader), what the bundle it finds holds.
func (r *Reconciler) lastGoodOf(ctx context.Context, ns string, current []byte, items []v1alpha1.AuthPolicy) lastGood {
	r.mu.Lock()
	lg, ok := r.served[ns]
	r.mu.Unlock()
	if ok {
		return lg
	}
	lg, err := seedLastGood(current, items)
	if err != nil {
		log.FromContext(ctx).Info("existing bundle unreadable; rendering from scratch", "namespace", ns, "error", err.Error())
	}
	return lg
}

// remember records what the bundle just written (or found identical)
// holds. A namespace without policies is forgotten.
func (r *Reconciler) remember(ns string, results []*policyResult) {
	lg := make(lastGood, len(results))
	for _, pr := range results {
		if pr.rendered != nil {
			lg[pr.policy.UID] = pr.rendered
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(results) == 0 {
		delete(r.served, ns)
		return
	}
	if r.served == nil {
		r.served = map[string]lastGood{}
	}
	r.served[ns] = lg
}

// seedLastGood reads the fragments of a bundle this controller did not
// write, matching them to the namespace's AuthPolicies by name. A bundle
// policy of a newer generation than the AuthPolicy of its name belonged to
// one that was deleted and created again, and is not its last good state.
func seedLastGood(data []byte, items []v1alpha1.AuthPolicy) (lastGood, error) {
	lg := lastGood{}
	frags, err := bundle.Fragments(data)
	if err != nil {
		return lg, err
	}
	for i := range items {
		p := &items[i]
		f, ok := frags[p.Namespace+"/"+p.Name]
		if !ok {
			continue
		}
		if gen, err := strconv.ParseInt(f.Policy.Version, 10, 64); err == nil && gen <= p.Generation {
			lg[p.UID] = f
		}
	}
	return lg, nil
}
