// Package translate turns one AuthPolicy, plus the Secrets and ConfigMaps it
// references, into a validated and compiled fragment of the proxy's
// configuration (proxy/config.ProxyConfig).
//
// Validation is the proxy's own, run once: the fragment is placed in a
// temporary, defaulted ProxyConfig and checked with config.Validate, whose
// typed field paths are mapped to the AuthPolicy's spec paths (specpath.go),
// and its Rego is compiled with authz.Compile. Whatever Translate accepts, a
// sidecar accepts too. Translate itself refuses only what has no
// ProxyConfig form: a missing or ambiguous reference (Secrets, the Rego
// source), a target contradicting the selector, an API key unfit to hash,
// a rate that is not a number. What the CRD's CEL rules refuse is the API
// server's job.
//
// API keys leave this package only as SHA-256 hashes: the plaintext is read
// from a Secret, checked and hashed in apikeys.go and never copied into a
// Fragment, a Problem or a log.
package translate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/config"
)

// Condition reasons of a Problem; the controller uses them as the reason of
// an AuthPolicy's Accepted=False condition.
const (
	// ReasonInvalidSpec: the spec is rejected by the proxy's validation.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSecretNotFound: a named API-key Secret is missing, or a selector
	// selects none.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretInvalid: an API-key Secret's data is unusable.
	ReasonSecretInvalid = "SecretInvalid"
	// ReasonConfigMapNotFound: the Rego ConfigMap, or an issuer's CA bundle
	// ConfigMap, is missing.
	ReasonConfigMapNotFound = "ConfigMapNotFound"
	// ReasonRegoKeyNotFound: the Rego ConfigMap has no such key.
	ReasonRegoKeyNotFound = "RegoKeyNotFound"
	// ReasonRegoCompileError: the Rego does not compile.
	ReasonRegoCompileError = "RegoCompileError"
	// ReasonInvalidRateLimit: a rate limit is not a positive rate.
	ReasonInvalidRateLimit = "InvalidRateLimit"
	// ReasonCAKeyNotFound: an issuer's CA bundle ConfigMap has no such key.
	ReasonCAKeyNotFound = "CAKeyNotFound"
	// ReasonCABundleInvalid: an issuer's CA bundle holds no usable
	// certificate.
	ReasonCABundleInvalid = "CABundleInvalid"
)

// Labels the Kubernetes function platforms put on their pods, used for
// spec.targets.
const (
	// LabelKnativeService is set by Knative Serving on a service's pods.
	LabelKnativeService = "serving.knative.dev/service"
	// LabelOpenFaaSFunction is set by OpenFaaS on a function's pods.
	LabelOpenFaaSFunction = "faas_function"
)

// Input is one AuthPolicy and everything it references.
type Input struct {
	// Policy is the AuthPolicy to translate; it is not modified.
	Policy *v1alpha1.AuthPolicy
	// Secrets are the Secrets of the policy's namespace that the policy
	// names or may select by label (the caller lists them). Named Secrets
	// that do not exist are simply absent. Secrets of another namespace are
	// ignored.
	Secrets []corev1.Secret
	// ConfigMaps are the namespace's ConfigMaps by name, for
	// spec.rego.configMapRef.
	ConfigMaps map[string]*corev1.ConfigMap
	// CAConfigMaps are the namespace's ConfigMaps that may hold CA bundles
	// (labelled RoleCA, and ClusterCAConfigMap), by name, for
	// spec.authentication.jwt[].certificateAuthority.
	CAConfigMaps map[string]*corev1.ConfigMap
	// Keys returns the key set the controller fetched for an issuer URL
	// (with the issuer's CA bundle, when it names one), if any. It may be
	// nil.
	Keys func(issuerURL string) (config.JSONWebKeySet, bool)
	// Now is the clock: spec.revocations that have ended by now are left
	// out. nil means time.Now.
	Now func() time.Time
}

// Fragment is one policy's share of a namespace's ProxyConfig. Issuers and
// APIKeys are global lists in ProxyConfig; a fragment holds exactly the ones
// its Policy references.
type Fragment struct {
	// Policy is named "<namespace>/<name>"; Version is the generation.
	Policy config.Policy
	// Issuers has one entry per spec.authentication.jwt[i], named
	// "<namespace>/<name>/jwt-<i>".
	Issuers []config.Issuer
	// APIKeys holds one hashed key per selected Secret, named
	// "<namespace>/<secret>", sorted by name.
	APIKeys []config.APIKey
	// Excluded describes the selected Secrets whose keys were left out
	// because they claim scopes outside the policy's allowedScopes. It is
	// reported in status, not rendered.
	Excluded []string
}

// withAPIKeys resolves the policy's API keys into f: the keys of the
// selected Secrets within the policy's allowedScopes. A key beyond them is
// left out (listed in f.Excluded): the policy is accepted without it, so
// narrowing the bound takes effect rather than rejecting the generation.
// When every key is left out, a policy that also trusts JWT issuers accepts
// no API key; one that accepts only API keys is refused (SecretInvalid).
func (f *Fragment) withAPIKeys(ns string, spec *v1alpha1.APIKeys, secrets []corev1.Secret, secretOf *map[string]string) *Problem {
	keys, of, prob := apiKeys(ns, spec, secrets)
	if prob != nil {
		return prob
	}
	bound := allowedScopes(spec)
	keys, f.Excluded = boundKeys(keys, of, bound)
	if len(keys) == 0 {
		if len(f.Issuers) == 0 {
			return problem(ReasonSecretInvalid, "every selected API-key Secret claims scopes outside spec.authentication.apiKeys.allowedScopes %s: %s",
				quoteAll(bound), strings.Join(f.Excluded, ", "))
		}
		return nil
	}
	access := &config.APIKeyAccess{
		Keys:          make([]string, 0, len(keys)),
		Sources:       apiKeySources(spec.Sources),
		AllowedScopes: bound,
	}
	for _, k := range keys {
		access.Keys = append(access.Keys, k.Name)
	}
	f.APIKeys, f.Policy.Authentication.APIKeys, *secretOf = keys, access, of
	return nil
}

// Problem is why a policy was not accepted. Message is written for a status
// condition: precise, actionable, and free of secrets.
type Problem struct {
	// Reason is one of the Reason constants.
	Reason string
	// Message explains the problem.
	Message string
}

// Error returns "Reason: Message".
func (p *Problem) Error() string { return p.Reason + ": " + p.Message }

func problem(reason, format string, args ...any) *Problem {
	return &Problem{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Translate validates one AuthPolicy with everything it references and
// returns its compiled fragment, or the first kind of problem found (all
// problems of that kind are listed in its message).
func Translate(ctx context.Context, in Input) (*Fragment, *Problem) {
	p := in.Policy
	switch {
	case p == nil:
		return nil, problem(ReasonInvalidSpec, "no policy given")
	case p.Namespace == "":
		return nil, problem(ReasonInvalidSpec, "metadata.namespace is required")
	case p.Name == "":
		return nil, problem(ReasonInvalidSpec, "metadata.name is required")
	}
	if err := ctx.Err(); err != nil {
		return nil, problem(ReasonInvalidSpec, "translation cancelled: %v", err)
	}
	name := p.Namespace + "/" + p.Name
	spec := &p.Spec
	f := &Fragment{Policy: config.Policy{
		Name:    name,
		Version: strconv.FormatInt(p.Generation, 10),
		Mode:    string(spec.Mode),
		Routes:  routes(spec.Routes),
		Headers: headers(spec.Headers),

		ClientIdentity:    clientIdentity(spec.ClientIdentity),
		Limits:            limits(spec.Limits),
		SharedLimits:      sharedLimits(spec.SharedLimits),
		IdentityAssertion: identityAssertion(p.Namespace, p.Name, spec.IdentityAssertion),
	}}
	if f.Policy.Mode == "" {
		f.Policy.Mode = config.ModeEnforce
	}
	var prob *Problem
	if f.Policy.Selector, prob = selector(spec.Selector, spec.Targets); prob != nil {
		return nil, prob
	}
	if f.Policy.RateLimits, prob = rateLimits(spec.RateLimits); prob != nil {
		return nil, prob
	}
	now := time.Now
	if in.Now != nil {
		now = in.Now
	}
	var revoked []revocationOrigin
	if f.Policy.Revocations, revoked, prob = revocations(spec.Revocations, now()); prob != nil {
		return nil, prob
	}
	var regoSrc string
	if f.Policy.Rego, regoSrc, prob = regoModules(p, in.ConfigMaps); prob != nil {
		return nil, prob
	}
	var secretOf map[string]string
	if a := spec.Authentication; a != nil {
		if f.Issuers, prob = issuers(name, p.Namespace, a.JWT, in.CAConfigMaps, in.Keys); prob != nil {
			return nil, prob
		}
		for _, is := range f.Issuers {
			f.Policy.Authentication.Issuers = append(f.Policy.Authentication.Issuers, is.Name)
		}
		if a.APIKeys != nil {
			if prob = f.withAPIKeys(p.Namespace, a.APIKeys, in.Secrets, &secretOf); prob != nil {
				return nil, prob
			}
		}
	}
	pm := pathMap{regoSource: regoSrc, revocations: revoked}
	for _, k := range f.APIKeys {
		pm.keySecrets = append(pm.keySecrets, secretOf[k.Name])
	}
	if prob := check(ctx, f, pm); prob != nil {
		return nil, prob
	}
	return f, nil
}
