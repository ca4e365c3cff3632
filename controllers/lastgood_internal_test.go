package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/bundle"
	"github.com/authgate/authgate/controllers/translate"
)

// publicPolicy is a valid AuthPolicy; a non-empty rego makes it invalid.
func publicPolicy(uid types.UID, gen int64, rego string) v1alpha1.AuthPolicy {
	p := v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: uid, Generation: gen},
		Spec: v1alpha1.AuthPolicySpec{
			Selector: &metav1.LabelSelector{},
			Routes:   []v1alpha1.Route{{Name: "all", Public: true}},
		},
	}
	if rego != "" {
		p.Spec.Rego = &v1alpha1.Rego{Inline: rego}
	}
	return p
}

func fragmentOf(t *testing.T, p v1alpha1.AuthPolicy) *translate.Fragment {
	t.Helper()
	f, prob := translate.Translate(t.Context(), translate.Input{Policy: &p})
	if prob != nil {
		t.Fatal(prob)
	}
	return f
}

func TestSeedLastGood(t *testing.T) {
	t.Parallel()
	data, err := bundle.Render([]*translate.Fragment{fragmentOf(t, publicPolicy("old", 3, ""))})
	if err != nil {
		t.Fatal(err)
	}
	renamed := publicPolicy("other", 9, "")
	renamed.Name = "b"
	tests := []struct {
		name    string
		data    string
		items   []v1alpha1.AuthPolicy
		want    types.UID
		wantErr bool
	}{
		{"same generation", string(data), []v1alpha1.AuthPolicy{publicPolicy("u", 3, "")}, "u", false},
		{"newer generation rejected", string(data), []v1alpha1.AuthPolicy{publicPolicy("u", 5, "x")}, "u", false},
		{"created again", string(data), []v1alpha1.AuthPolicy{publicPolicy("new", 1, "x")}, "", false},
		{"another name", string(data), []v1alpha1.AuthPolicy{renamed}, "", false},
		{"no bundle", "", []v1alpha1.AuthPolicy{publicPolicy("u", 3, "")}, "", false},
		{"unreadable bundle", "{{{", []v1alpha1.AuthPolicy{publicPolicy("u", 3, "")}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lg, err := seedLastGood([]byte(tt.data), tt.items)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if tt.want == "" {
				if len(lg) != 0 {
					t.Fatalf("got %v, want nothing seeded", lg)
				}
				return
			}
			if f := lg[tt.want]; len(lg) != 1 || f == nil || f.Policy.Version != "3" {
				t.Fatalf("got %v, want generation 3 under UID %s", lg, tt.want)
			}
		})
	}
}

// A rejected policy keeps the last good fragment of its own UID only: one
// deleted and created again under its name starts afresh.
func TestEvaluateKeepsLastGoodByUID(t *testing.T) {
	t.Parallel()
	good := fragmentOf(t, publicPolicy("u1", 1, ""))
	r := &Reconciler{}
	for _, tt := range []struct {
		uid       types.UID
		wantStale bool
	}{{"u1", true}, {"u2", false}} {
		rejected := publicPolicy(tt.uid, 2, "package authgate.authz\n\ndecision := \n")
		pr := r.evaluate(t.Context(), &rejected, &nsInputs{}, lastGood{"u1": good})
		if pr.problem == nil {
			t.Fatalf("%s: got no problem for invalid Rego", tt.uid)
		}
		if pr.stale != tt.wantStale || (pr.rendered != nil) != tt.wantStale {
			t.Fatalf("%s: got rendered %v (stale %v), want the last good generation kept: %v", tt.uid, pr.rendered != nil, pr.stale, tt.wantStale)
		}
	}
}

func TestRememberWhatTheBundleHolds(t *testing.T) {
	t.Parallel()
	r := &Reconciler{}
	good := fragmentOf(t, publicPolicy("u1", 1, ""))
	p1, p2 := publicPolicy("u1", 2, ""), publicPolicy("u2", 1, "")
	r.remember("ns", []*policyResult{{policy: &p1, rendered: good}, {policy: &p2}})
	lg := r.lastGoodOf(t.Context(), "ns", []byte("{{{"), nil) // remembered: the bundle is not read
	if len(lg) != 1 || lg["u1"] != good {
		t.Fatalf("got %v, want only the rendered policy remembered", lg)
	}
	r.remember("ns", nil)
	if _, ok := r.served["ns"]; ok {
		t.Fatal("got a namespace without policies remembered, want it forgotten")
	}
}
