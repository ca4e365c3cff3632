package coverage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/controllers/translate"
)

// MaxListed bounds CoverageStatus.Unprotected.
const MaxListed = 10

// Pod is what coverage knows of a pod: its metadata only.
type Pod struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// Enforces maps the policies the pod's sidecar last reported enforcing
	// over the push channel ("namespace/name") to their versions (the
	// AuthPolicy generation); nil when it reported nothing.
	Enforces map[string]string
}

// enforces says whether the pod's sidecar reported enforcing generation
// gen of the policy ns/name.
func (p Pod) enforces(ns, name string, gen int64) bool {
	v, ok := p.Enforces[ns+"/"+name]
	return ok && v == strconv.FormatInt(gen, 10)
}

// Injected says whether the injector added the sidecar.
func (p Pod) Injected() bool { return p.Labels[injector.LabelInjected] == "true" }

// Bypassable says whether the pod runs the sidecar with inbound capture
// off: its function port is reachable on the pod IP around the proxy.
func (p Pod) Bypassable() bool {
	return p.Injected() && p.Annotations[injector.AnnotationInboundCapture] == "false"
}

// OptedOut says whether the pod opted out of injection by label.
func (p Pod) OptedOut() bool { return p.Labels[injector.LabelInject] == injector.PodDisabled }

// Selector is the pod selector of p (translate.PodSelector, the one the
// bundle and the sidecars apply), or an error when p's selector is invalid
// (it then selects nothing; Accepted says why).
func Selector(p *v1alpha1.AuthPolicy) (labels.Selector, error) {
	ls, err := translate.PodSelector(&p.Spec)
	if err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, fmt.Errorf("selector: %w", err)
	}
	return sel, nil
}

// Result is the coverage of one namespace.
type Result struct {
	// Policies maps each policy's name to its coverage (nil for a policy
	// being deleted).
	Policies map[string]*v1alpha1.CoverageStatus
	// InjectedUnselected counts injected pods no policy selects: their
	// sidecar denies every request (the bundle's defaultAction, deny).
	InjectedUnselected int
	// OptedOut names the pods labelled authgate.dev/inject=false, when
	// the namespace opted in (nil otherwise).
	OptedOut []string
}

// Count computes a namespace's coverage from its policies and the pods not
// being deleted. optedIn says whether the namespace opted in to injection.
func Count(policies []v1alpha1.AuthPolicy, pods []Pod, optedIn bool) Result {
	res := Result{Policies: make(map[string]*v1alpha1.CoverageStatus, len(policies))}
	selectedByAny := make([]bool, len(pods))
	for i := range policies {
		p := &policies[i]
		if !p.DeletionTimestamp.IsZero() {
			res.Policies[p.Name] = nil
			continue
		}
		c := &v1alpha1.CoverageStatus{ObservedGeneration: p.Generation}
		sel, err := Selector(p)
		if err != nil {
			c.Summary = "invalid selector (see Accepted)"
			res.Policies[p.Name] = c
			continue
		}
		for j, pod := range pods {
			if !sel.Matches(labels.Set(pod.Labels)) {
				continue
			}
			selectedByAny[j] = true
			c.SelectedPods++
			switch {
			case !pod.Injected():
				c.UnprotectedPods++
				c.Unprotected = append(c.Unprotected, pod.Name)
			case pod.Bypassable():
				c.BypassablePods++
			default:
				c.ProtectedPods++
			}
			if pod.Injected() && pod.enforces(p.Namespace, p.Name, p.Generation) {
				c.EnforcingPods++
			}
		}
		sort.Strings(c.Unprotected)
		if len(c.Unprotected) > MaxListed {
			c.Unprotected = c.Unprotected[:MaxListed]
		}
		c.Summary = Summary(c)
		c.Enforcement = fmt.Sprintf("%d/%d at generation %d", c.EnforcingPods, c.SelectedPods, p.Generation)
		res.Policies[p.Name] = c
	}
	for j, pod := range pods {
		if pod.Injected() && !selectedByAny[j] {
			res.InjectedUnselected++
		}
		if optedIn && pod.OptedOut() {
			res.OptedOut = append(res.OptedOut, pod.Name)
		}
	}
	sort.Strings(res.OptedOut)
	return res
}

// Summary is the one line of CoverageStatus.Summary, e.g. "3/3 protected"
// or "1/4 protected, 2 unprotected, 1 bypassable".
func Summary(c *v1alpha1.CoverageStatus) string {
	parts := []string{fmt.Sprintf("%d/%d protected", c.ProtectedPods, c.SelectedPods)}
	if c.UnprotectedPods > 0 {
		parts = append(parts, fmt.Sprintf("%d unprotected", c.UnprotectedPods))
	}
	if c.BypassablePods > 0 {
		parts = append(parts, fmt.Sprintf("%d bypassable", c.BypassablePods))
	}
	return strings.Join(parts, ", ")
}

// Reasons of the Enforced condition.
const (
	ReasonAllPodsEnforce  = "AllPodsEnforce"
	ReasonNoSelectedPods  = "NoSelectedPods"
	ReasonPodsLagging     = "PodsLagging"
	ReasonPodsUnprotected = "PodsUnprotected"
	ReasonPushDisabled    = "PushChannelDisabled"
)

// EnforcedCondition is the Enforced condition of generation gen of a
// policy with coverage c. push says whether the push channel, over which
// sidecars report what they enforce, is on.
func EnforcedCondition(c *v1alpha1.CoverageStatus, gen int64, push bool) metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionEnforced, ObservedGeneration: gen}
	switch {
	case !push:
		cond.Status, cond.Reason = metav1.ConditionUnknown, ReasonPushDisabled
		cond.Message = "the push channel is off (--push-listen), so sidecars do not report what they enforce; Ready says only that the policy is in the bundle"
	case c.SelectedPods == 0:
		cond.Status, cond.Reason = metav1.ConditionTrue, ReasonNoSelectedPods
		cond.Message = "no pod is selected; a pod that starts loads the current bundle before it serves"
	case c.UnprotectedPods > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonPodsUnprotected
		cond.Message = fmt.Sprintf("%d of %d selected pods run without the sidecar (see status.coverage); %d enforce generation %d",
			c.UnprotectedPods, c.SelectedPods, c.EnforcingPods, gen)
	case c.EnforcingPods < c.SelectedPods:
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonPodsLagging
		cond.Message = fmt.Sprintf("%d of %d selected pods enforce generation %d; the others have not reported it yet (still starting, not connected to the push channel, or the generation was rejected: see Ready)",
			c.EnforcingPods, c.SelectedPods, gen)
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, ReasonAllPodsEnforce
		cond.Message = fmt.Sprintf("all %d selected pods enforce generation %d", c.SelectedPods, gen)
	}
	return cond
}
