package translate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/config"
)

// selector ANDs spec.selector with the labels spec.targets stand for, as
// the bundle's selector.
func selector(sel *metav1.LabelSelector, t *v1alpha1.Targets) (config.Selector, *Problem) {
	ps, p := podSelector(sel, t)
	if p != nil {
		return config.Selector{}, p
	}
	return labelSelector(ps), nil
}

// podSelector ANDs spec.selector with the labels spec.targets stand for. A
// target that contradicts the selector is refused: the policy could select
// no workload. (That one of them is set is the API server's rule.) nil
// selects everything.
func podSelector(sel *metav1.LabelSelector, t *v1alpha1.Targets) (*metav1.LabelSelector, *Problem) {
	out := sel.DeepCopy()
	if t == nil {
		return out, nil
	}
	if out == nil {
		out = &metav1.LabelSelector{}
	}
	for _, tl := range []struct{ field, label, value string }{
		{"spec.targets.knativeService", LabelKnativeService, t.KnativeService},
		{"spec.targets.openFaaSFunction", LabelOpenFaaSFunction, t.OpenFaaSFunction},
	} {
		if tl.value == "" {
			continue
		}
		if have, ok := out.MatchLabels[tl.label]; ok && have != tl.value {
			return nil, problem(ReasonInvalidSpec,
				"%s: %q contradicts spec.selector.matchLabels[%s]=%q, so no workload could match", tl.field, tl.value, tl.label, have)
		}
		if out.MatchLabels == nil {
			out.MatchLabels = map[string]string{}
		}
		out.MatchLabels[tl.label] = tl.value
	}
	return out, nil
}

// labelSelector converts a Kubernetes label selector; nil selects everything.
func labelSelector(sel *metav1.LabelSelector) config.Selector {
	var out config.Selector
	if sel == nil {
		return out
	}
	if len(sel.MatchLabels) > 0 {
		out.MatchLabels = make(map[string]string, len(sel.MatchLabels))
		for k, v := range sel.MatchLabels {
			out.MatchLabels[k] = v
		}
	}
	for _, e := range sel.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, config.SelectorRequirement{
			Key: e.Key, Operator: string(e.Operator), Values: slices.Clone(e.Values),
		})
	}
	return out
}

// routes copies every route; unnamed routes are named "route-<index>".
func routes(in []v1alpha1.Route) []config.Route {
	out := make([]config.Route, 0, len(in))
	for i, r := range in {
		cr := config.Route{
			Name:          r.Name,
			Methods:       slices.Clone(r.Methods),
			Paths:         slices.Clone(r.Paths),
			Public:        r.Public,
			RequireScopes: slices.Clone(r.RequireScopes),
			RequireRoles:  slices.Clone(r.RequireRoles),
			RequireClaims: claims(r.RequireClaims),
			SkipRego:      r.SkipRego,
		}
		if cr.Name == "" {
			cr.Name = "route-" + strconv.Itoa(i)
		}
		if r.RequireMFA != nil {
			cr.RequireMFA = &config.MFA{AMR: slices.Clone(r.RequireMFA.AMR), ACR: slices.Clone(r.RequireMFA.ACR)}
			if r.RequireMFA.MaxAge != nil {
				cr.RequireMFA.MaxAge = config.D(r.RequireMFA.MaxAge.Duration)
			}
		}
		out = append(out, cr)
	}
	return out
}

func claims(in []v1alpha1.ClaimRequirement) []config.ClaimRequirement {
	if len(in) == 0 {
		return nil
	}
	out := make([]config.ClaimRequirement, 0, len(in))
	for _, c := range in {
		out = append(out, config.ClaimRequirement{Claim: c.Claim, Values: slices.Clone(c.Values)})
	}
	return out
}

func sources(in []v1alpha1.CredentialSource) []config.CredentialSource {
	if len(in) == 0 {
		return nil
	}
	out := make([]config.CredentialSource, 0, len(in))
	for _, s := range in {
		out = append(out, config.CredentialSource{Type: s.Type, Name: s.Name, Prefix: s.Prefix})
	}
	return out
}

// headers copies spec.headers; nil leaves every header at the proxy's
// default (X-Authgate-Subject, ...).
func headers(h *v1alpha1.IdentityHeaders) config.IdentityHeaders {
	if h == nil {
		return config.IdentityHeaders{}
	}
	out := config.IdentityHeaders{
		Subject: h.Subject, Issuer: h.Issuer, Kind: h.Kind, Scopes: h.Scopes,
		ClaimsJSON: h.ClaimsJSON, ForwardAuthorization: h.ForwardAuthorization,
	}
	for _, c := range h.Claims {
		out.Claims = append(out.Claims, config.ClaimHeader{Header: c.Header, Claim: c.Claim})
	}
	return out
}

// AssertionIssuer is the iss of the identity assertions of a namespace's
// sidecars.
func AssertionIssuer(namespace string) string { return "authgate://" + namespace }

// identityAssertion renders spec.identityAssertion: the issuer names the
// namespace (its key signs every assertion of the namespace), the audience
// defaults to the policy's name, header and ttl are left to the proxy's
// defaults when unset.
func identityAssertion(namespace, name string, a *v1alpha1.IdentityAssertion) *config.IdentityAssertion {
	if a == nil {
		return nil
	}
	out := &config.IdentityAssertion{Header: a.Header, Issuer: AssertionIssuer(namespace), Audience: a.Audience, Claims: slices.Clone(a.Claims)}
	if out.Audience == "" {
		out.Audience = name
	}
	if a.TTL != nil {
		out.TTL = config.D(a.TTL.Duration)
	}
	return out
}

// rateLimits converts each rate. A rate that is not a finite decimal
// number has no ProxyConfig value (a ProxyConfig is JSON), so it is
// reported here, every one of them; whether a rate is positive is
// config.Validate's to say.
func rateLimits(in []v1alpha1.RateLimit) ([]config.RateLimit, *Problem) {
	var out []config.RateLimit
	var bad []string
	for i, rl := range in {
		rps, err := strconv.ParseFloat(strings.TrimSpace(rl.RequestsPerSecond), 64)
		if err != nil || math.IsInf(rps, 0) || math.IsNaN(rps) {
			bad = append(bad, fmt.Sprintf("spec.rateLimits[%d].requestsPerSecond: must be a decimal number such as \"10\" or \"0.5\", got %q", i, rl.RequestsPerSecond))
			continue
		}
		out = append(out, config.RateLimit{Key: rl.Key, RequestsPerSecond: rps, Burst: int(rl.Burst)})
	}
	if len(bad) > 0 {
		return nil, problem(ReasonInvalidRateLimit, "%s", strings.Join(bad, "; "))
	}
	return out, nil
}

// PodSelector is the label selector of the pods spec protects: the same
// rule as the bundle's selector, as a Kubernetes LabelSelector (empty:
// every pod).
func PodSelector(spec *v1alpha1.AuthPolicySpec) (*metav1.LabelSelector, error) {
	out, p := podSelector(spec.Selector, spec.Targets)
	if p != nil {
		return nil, errors.New(p.Message)
	}
	if out == nil {
		out = &metav1.LabelSelector{}
	}
	return out, nil
}
