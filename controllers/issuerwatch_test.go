package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/issuers"
)

func policyTrusting(urls ...string) v1alpha1.AuthPolicy {
	p := v1alpha1.AuthPolicy{Spec: v1alpha1.AuthPolicySpec{Authentication: &v1alpha1.Authentication{}}}
	for _, u := range urls {
		p.Spec.Authentication.JWT = append(p.Spec.Authentication.JWT, v1alpha1.JWTIssuer{IssuerURL: u})
	}
	return p
}

func TestIssuerChangedEnqueuesTheNamespacesUsingIt(t *testing.T) {
	t.Parallel()
	const a, b = "https://a.example.com", "https://b.example.com"
	r := &Reconciler{Issuers: issuers.New(issuers.Options{})}
	r.IssuerChanged(t.Context(), issuers.Spec{IssuerURL: a}) // before SetupWithManager: nothing, no block
	r.changed = make(chan event.GenericEvent, 8)
	r.trackIssuers("ns-2", []v1alpha1.AuthPolicy{policyTrusting(a), policyTrusting(b)}, nil)
	r.trackIssuers("ns-1", []v1alpha1.AuthPolicy{policyTrusting(a)}, nil)
	r.trackIssuers("ns-3", []v1alpha1.AuthPolicy{policyTrusting(b)}, nil)
	r.trackIssuers("ns-3", nil, nil) // its policies are gone

	r.IssuerChanged(t.Context(), issuers.Spec{IssuerURL: a})
	close(r.changed)
	var got []string
	for ev := range r.changed {
		got = append(got, ev.Object.GetNamespace())
	}
	if want := []string{"ns-1", "ns-2"}; !slices.Equal(got, want) {
		t.Fatalf("got namespaces %v enqueued, want %v", got, want)
	}
	if _, ok := r.used["ns-3"]; ok {
		t.Fatal("got a namespace without policies still tracked, want it dropped")
	}
}

func TestIssuerChangedStopsWithItsContext(t *testing.T) {
	t.Parallel()
	const a = "https://a.example.com"
	r := &Reconciler{Issuers: issuers.New(issuers.Options{}), changed: make(chan event.GenericEvent)} // nobody reads
	r.trackIssuers("ns", []v1alpha1.AuthPolicy{policyTrusting(a)}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	r.IssuerChanged(ctx, issuers.Spec{IssuerURL: a}) // returns once ctx ends
	if ctx.Err() == nil {
		t.Fatal("got IssuerChanged returning before its context ended with nobody reading, want it to wait")
	}
}

// A new issuer is read without any network call and reported pending.
func TestIssuerKeysOfANewIssuerArePending(t *testing.T) {
	t.Parallel()
	r := &Reconciler{Issuers: issuers.New(issuers.Options{FetchTimeout: 7 * time.Second})}
	p := policyTrusting("https://127.0.0.1:1/never-fetched")
	pr := &policyResult{policy: &p}
	start := time.Now()
	keys := r.issuerKeys(&p, pr, nil)
	if len(keys) != 0 || pr.pending != "https://127.0.0.1:1/never-fetched" || pr.issuerErr != "" {
		t.Fatalf("got keys %v, pending %q, error %q; want none, the issuer pending, no error", keys, pr.pending, pr.issuerErr)
	}
	if d := pr.pendingUntil.Sub(start); d < 7*time.Second || d > 8*time.Second {
		t.Fatalf("got pending until %v after the read, want about the 7s fetch timeout", d)
	}
	if got := issuersCondition(pr, 3); got.Status != metav1.ConditionFalse || got.Reason != ReasonKeysPending || got.ObservedGeneration != 3 {
		t.Fatalf("got condition %+v, want False/%s for generation 3", got, ReasonKeysPending)
	}
}

func TestIssuersCondition(t *testing.T) {
	t.Parallel()
	one := []v1alpha1.IssuerStatus{{IssuerURL: "https://a", Keys: 2}}
	none := []v1alpha1.IssuerStatus{{IssuerURL: "https://a"}}
	tests := []struct {
		name   string
		pr     policyResult
		status metav1.ConditionStatus
		reason string
	}{
		{"no issuers", policyResult{}, metav1.ConditionTrue, ReasonNoJWTIssuers},
		{"keys", policyResult{issuers: one}, metav1.ConditionTrue, ReasonKeysFetched},
		{"pending", policyResult{issuers: none, pending: "https://a"}, metav1.ConditionFalse, ReasonKeysPending},
		{"pending before another's error", policyResult{issuers: append(none, none...), pending: "https://a", issuerErr: "https://b: down"},
			metav1.ConditionFalse, ReasonKeysPending},
		{"refresh failed", policyResult{issuers: one, issuerErr: "https://a: down"}, metav1.ConditionFalse, ReasonRefreshFailed},
		{"fetch failed", policyResult{issuers: none, issuerErr: "https://a: down"}, metav1.ConditionFalse, ReasonFetchFailed},
		{"address not allowed", policyResult{issuers: none, issuerErr: "https://a: address 10.0.0.1 is not allowed", issuerNotAllowed: true},
			metav1.ConditionFalse, ReasonAddressNotAllowed},
		{"over the issuer limit", policyResult{issuers: none, overLimit: "17 distinct issuers"}, metav1.ConditionFalse, ReasonIssuerLimitExceeded},
		{"pending and queued", policyResult{issuers: none, pending: "https://a", queued: true}, metav1.ConditionFalse, ReasonKeysPending},
		{"address not allowed after keys", policyResult{issuers: one, issuerErr: "https://a: address 10.0.0.1 is not allowed", issuerNotAllowed: true},
			metav1.ConditionFalse, ReasonAddressNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := issuersCondition(&tc.pr, 5)
			if got.Status != tc.status || got.Reason != tc.reason || got.ObservedGeneration != 5 || got.Message == "" {
				t.Fatalf("got %+v, want %s/%s with a message for generation 5", got, tc.status, tc.reason)
			}
		})
	}
}

// The issuer bound admits policies oldest first (then by name), each with
// all of its issuers or none; a shared issuer counts once, and a policy
// being deleted counts for nothing.
func TestTrackIssuersBoundsDistinctIssuersPerNamespace(t *testing.T) {
	t.Parallel()
	at := func(p v1alpha1.AuthPolicy, uid, name string, minute int) v1alpha1.AuthPolicy {
		p.UID, p.Name = types.UID(uid), name
		p.CreationTimestamp = metav1.NewTime(time.Date(2030, 1, 1, 0, minute, 0, 0, time.UTC))
		return p
	}
	const a, b, c, d = "https://a.example.com", "https://b.example.com", "https://c.example.com", "https://d.example.com"
	deleting := at(policyTrusting(d), "gone", "gone", 0)
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	policies := []v1alpha1.AuthPolicy{
		at(policyTrusting(c, d), "new", "a-newest", 3), // 2 more than a, b: 4, over
		at(policyTrusting(a, b), "old", "z-oldest", 1), // first
		at(policyTrusting(b), "shared", "m-shared", 2), // shares b: fits
		at(policyTrusting(c), "small", "n-small", 3),   // same time as a-newest, after it by name: fits
		deleting,
	}
	r := &Reconciler{Issuers: issuers.New(issuers.Options{}), MaxIssuersPerNamespace: 3}
	over := r.trackIssuers("ns", policies, nil)
	if len(over) != 1 || over["new"] != 4 {
		t.Fatalf("got over the bound %v, want only the newest policy (needing 4 issuers)", over)
	}
	want := map[string]bool{}
	for _, u := range []string{a, b, c} {
		want[issuers.Spec{IssuerURL: u}.Key()] = true
	}
	if got := r.used["ns"]; len(got) != len(want) || !got[issuers.Spec{IssuerURL: a}.Key()] || !got[issuers.Spec{IssuerURL: c}.Key()] {
		t.Fatalf("got issuers %v tracked, want a, b and c", got)
	}
	pr := r.overIssuerLimit(&policies[0], over["new"])
	if c := issuersCondition(pr, 1); c.Reason != ReasonIssuerLimitExceeded || !strings.Contains(c.Message, "4 distinct issuers") || !strings.Contains(c.Message, "(3,") {
		t.Fatalf("got %+v, want IssuerLimitExceeded naming 4 of 3", c)
	}
	if pr.rendered != nil || pr.problem == nil || pr.problem.Reason != ReasonIssuerLimitExceeded || len(pr.issuers) != 2 {
		t.Fatalf("got result %+v, want it refused, unrendered, with both issuers in status", pr)
	}
}
