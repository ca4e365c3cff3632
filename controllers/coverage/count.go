package coverage

import (
	"fmt"
	"sort"
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
		}
		sort.Strings(c.Unprotected)
		if len(c.Unprotected) > MaxListed {
			c.Unprotected = c.Unprotected[:MaxListed]
		}
		c.Summary = Summary(c)
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
