package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/authgate/authgate/api/v1alpha1"
)

// A status-only update (this reconciler's own, or the coverage
// reconciler's status.coverage) does not re-render the namespace; any
// other change does.
func TestNotStatusOnly(t *testing.T) {
	t.Parallel()
	base := &v1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 1, Labels: map[string]string{"a": "1"}}}
	now := metav1.Now()
	tests := []struct {
		name   string
		change func(*v1alpha1.AuthPolicy)
		want   bool
	}{
		{"status coverage", func(p *v1alpha1.AuthPolicy) {
			p.Status.Coverage = &v1alpha1.CoverageStatus{SelectedPods: 1, Summary: "0/1 protected, 1 unprotected"}
		}, false},
		{"status conditions", func(p *v1alpha1.AuthPolicy) {
			p.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}}
		}, false},
		{"spec (generation)", func(p *v1alpha1.AuthPolicy) { p.Generation = 2 }, true},
		{"labels", func(p *v1alpha1.AuthPolicy) { p.Labels = map[string]string{"a": "2"} }, true},
		{"annotations", func(p *v1alpha1.AuthPolicy) { p.Annotations = map[string]string{"x": "y"} }, true},
		{"finalizers", func(p *v1alpha1.AuthPolicy) { p.Finalizers = []string{"example.com/keep"} }, true},
		{"deletion", func(p *v1alpha1.AuthPolicy) { p.DeletionTimestamp = &now }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := base.DeepCopy()
			tt.change(n)
			if got := notStatusOnly().Update(event.UpdateEvent{ObjectOld: base, ObjectNew: n}); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
