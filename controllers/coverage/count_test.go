package coverage_test

import (
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/coverage"
)

func pod(name string, labels map[string]string, capture string) coverage.Pod {
	p := coverage.Pod{Name: name, Labels: labels}
	if capture != "" {
		p.Annotations = map[string]string{"authgate.dev/inbound-capture": capture}
	}
	return p
}

func selecting(name string, match map[string]string) v1alpha1.AuthPolicy {
	return v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 2},
		Spec:       v1alpha1.AuthPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: match}},
	}
}

func TestCount(t *testing.T) {
	t.Parallel()
	injected := func(l map[string]string) map[string]string {
		out := map[string]string{"authgate.dev/injected": "true"}
		for k, v := range l {
			out[k] = v
		}
		return out
	}
	contradiction := v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: v1alpha1.AuthPolicySpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "a"}},
			Targets:  &v1alpha1.Targets{KnativeService: "b"},
		},
	}
	policies := []v1alpha1.AuthPolicy{
		selecting("orders", map[string]string{"app": "orders"}),
		selecting("api", map[string]string{"tier": "api"}),
		selecting("none", map[string]string{"app": "none"}),
		contradiction,
	}
	pods := []coverage.Pod{
		pod("o1", injected(map[string]string{"app": "orders", "tier": "api"}), "true"),
		pod("o2", map[string]string{"app": "orders"}, ""),
		pod("o3", injected(map[string]string{"app": "orders"}), "false"),
		pod("a1", injected(map[string]string{"tier": "api"}), "true"),
		pod("lone", injected(nil), "true"),
		pod("out", map[string]string{"authgate.dev/inject": "false"}, ""),
	}
	tests := []struct {
		policy                                       string
		selected, protected, bypassable, unprotected int32
		names                                        []string
		summary                                      string
	}{
		{"orders", 3, 1, 1, 1, []string{"o2"}, "1/3 protected, 1 unprotected, 1 bypassable"},
		{"api", 2, 2, 0, 0, nil, "2/2 protected"},
		{"none", 0, 0, 0, 0, nil, "0/0 protected"},
		{"bad", 0, 0, 0, 0, nil, "invalid selector (see Accepted)"},
	}
	for _, optedIn := range []bool{true, false} {
		res := coverage.Count(policies, pods, optedIn)
		for _, tt := range tests {
			c := res.Policies[tt.policy]
			if c == nil {
				t.Fatalf("%s: no coverage", tt.policy)
			}
			got := [4]int32{c.SelectedPods, c.ProtectedPods, c.BypassablePods, c.UnprotectedPods}
			if want := [4]int32{tt.selected, tt.protected, tt.bypassable, tt.unprotected}; got != want {
				t.Errorf("%s: got selected/protected/bypassable/unprotected %v, want %v", tt.policy, got, want)
			}
			if len(c.Unprotected) != len(tt.names) || (len(tt.names) > 0 && c.Unprotected[0] != tt.names[0]) {
				t.Errorf("%s: got unprotected %v, want %v", tt.policy, c.Unprotected, tt.names)
			}
			if c.Summary != tt.summary {
				t.Errorf("%s: got summary %q, want %q", tt.policy, c.Summary, tt.summary)
			}
		}
		if res.InjectedUnselected != 1 {
			t.Errorf("got %d injected unselected pods, want 1 (lone)", res.InjectedUnselected)
		}
		wantOut := 0
		if optedIn {
			wantOut = 1
		}
		if len(res.OptedOut) != wantOut {
			t.Errorf("opted in %v: got opted out %v, want %d", optedIn, res.OptedOut, wantOut)
		}
	}
}

func TestCountListsAtMostTen(t *testing.T) {
	t.Parallel()
	var pods []coverage.Pod
	for _, n := range []string{"p11", "p10", "p09", "p08", "p07", "p06", "p05", "p04", "p03", "p02", "p01", "p00"} {
		pods = append(pods, pod(n, map[string]string{"app": "x"}, ""))
	}
	c := coverage.Count([]v1alpha1.AuthPolicy{selecting("x", map[string]string{"app": "x"})}, pods, false).Policies["x"]
	if c.UnprotectedPods != 12 || len(c.Unprotected) != coverage.MaxListed || c.Unprotected[0] != "p00" || c.Unprotected[9] != "p09" {
		t.Errorf("got %d unprotected listed as %v, want 12 with p00..p09 listed", c.UnprotectedPods, c.Unprotected)
	}
	if c.ObservedGeneration != 2 {
		t.Errorf("got observedGeneration %d, want 2", c.ObservedGeneration)
	}
}

// The merge patch names every field, so a count that drops to 0 and a
// list that empties are written, not left at their old values.
func TestPatchNamesEveryField(t *testing.T) {
	t.Parallel()
	data, err := coverage.Patch(&v1alpha1.CoverageStatus{SelectedPods: 1, ProtectedPods: 1, Summary: "1/1 protected"}, nil, "7")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	c := got["status"]["coverage"]
	for _, f := range []string{"observedGeneration", "selectedPods", "protectedPods", "bypassablePods", "unprotectedPods", "unprotected", "summary", "enforcingPods", "enforcement"} {
		if _, ok := c[f]; !ok {
			t.Errorf("patch %s lacks %s", data, f)
		}
	}
	if c["unprotected"] != nil || c["unprotectedPods"] != float64(0) {
		t.Errorf("got unprotected %v (%v pods), want null and 0", c["unprotected"], c["unprotectedPods"])
	}
	if len(got) != 1 || len(got["status"]) != 1 {
		t.Errorf("patch %s touches more than status.coverage", data)
	}
	// With conditions: the whole list, under an optimistic lock.
	data, err = coverage.Patch(&v1alpha1.CoverageStatus{}, []metav1.Condition{{Type: "Enforced", Status: metav1.ConditionTrue}}, "7")
	if err != nil {
		t.Fatal(err)
	}
	var locked struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Status struct {
			Conditions []metav1.Condition `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &locked); err != nil {
		t.Fatal(err)
	}
	if locked.Metadata.ResourceVersion != "7" || len(locked.Status.Conditions) != 1 {
		t.Errorf("patch %s: want the conditions with resourceVersion 7", data)
	}
}

// A selected pod enforces a policy when its sidecar reported the policy's
// current generation; an older generation, another policy's, or a pod
// without the sidecar does not count.
func TestCountEnforcing(t *testing.T) {
	t.Parallel()
	p := selecting("orders", map[string]string{"app": "orders"})
	p.Namespace = "shop"
	sidecar := map[string]string{"app": "orders", "authgate.dev/injected": "true"}
	withAck := func(name string, labels map[string]string, enforces map[string]string) coverage.Pod {
		return coverage.Pod{Name: name, Labels: labels, Enforces: enforces}
	}
	pods := []coverage.Pod{
		withAck("current", sidecar, map[string]string{"shop/orders": "2"}),
		withAck("older", sidecar, map[string]string{"shop/orders": "1"}),
		withAck("other-policy", sidecar, map[string]string{"shop/other": "2"}),
		withAck("silent", sidecar, nil),
		withAck("no-sidecar", map[string]string{"app": "orders"}, map[string]string{"shop/orders": "2"}),
	}
	c := coverage.Count([]v1alpha1.AuthPolicy{p}, pods, false).Policies["orders"]
	if c.EnforcingPods != 1 || c.Enforcement != "1/5 at generation 2" {
		t.Fatalf("got %d enforcing, %q, want 1 and \"1/5 at generation 2\"", c.EnforcingPods, c.Enforcement)
	}
	tests := []struct {
		name   string
		cov    v1alpha1.CoverageStatus
		push   bool
		status metav1.ConditionStatus
		reason string
	}{
		{"every pod enforces", v1alpha1.CoverageStatus{SelectedPods: 3, ProtectedPods: 3, EnforcingPods: 3}, true, metav1.ConditionTrue, coverage.ReasonAllPodsEnforce},
		{"bypassable pods enforce too", v1alpha1.CoverageStatus{SelectedPods: 2, ProtectedPods: 1, BypassablePods: 1, EnforcingPods: 2}, true, metav1.ConditionTrue, coverage.ReasonAllPodsEnforce},
		{"no pod selected", v1alpha1.CoverageStatus{}, true, metav1.ConditionTrue, coverage.ReasonNoSelectedPods},
		{"one lags", v1alpha1.CoverageStatus{SelectedPods: 3, ProtectedPods: 3, EnforcingPods: 2}, true, metav1.ConditionFalse, coverage.ReasonPodsLagging},
		{"one without the sidecar", v1alpha1.CoverageStatus{SelectedPods: 3, ProtectedPods: 2, UnprotectedPods: 1, EnforcingPods: 2}, true, metav1.ConditionFalse, coverage.ReasonPodsUnprotected},
		{"push channel off", v1alpha1.CoverageStatus{SelectedPods: 3, ProtectedPods: 3}, false, metav1.ConditionUnknown, coverage.ReasonPushDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := coverage.EnforcedCondition(&tt.cov, 7, tt.push)
			if got.Type != v1alpha1.ConditionEnforced || got.Status != tt.status || got.Reason != tt.reason || got.ObservedGeneration != 7 || got.Message == "" {
				t.Fatalf("got %+v, want %s/%s at generation 7 with a message", got, tt.status, tt.reason)
			}
		})
	}
}
