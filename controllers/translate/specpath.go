package translate

import (
	"fmt"
	"strings"

	"github.com/authgate/authgate/proxy/config"
)

// pathMap says where the parts of a checked fragment came from, so that
// the proxy's field errors name AuthPolicy fields. The config is the one
// check builds: Config with the fragment's issuers (issuers[i] is
// spec.authentication.jwt[i]), its API keys (apiKeys.keys[i] came from
// Secret keySecrets[i]) and its policy (policies[0] is the spec).
type pathMap struct {
	// keySecrets names the Secret of each of the fragment's API keys.
	keySecrets []string
	// regoSource names where the Rego came from (spec.rego.inline, ...).
	regoSource string
	// revocations names the spec entry of each of the policy's
	// revocations (ended entries are left out, the rest sorted).
	revocations []revocationOrigin
}

// problem turns the proxy's field errors into one Problem naming spec
// paths. Errors only about API-key Secrets are SecretInvalid, errors only
// about rate limits InvalidRateLimit, anything else InvalidSpec.
func (pm pathMap) problem(errs config.ErrorList) *Problem {
	msgs := make([]string, 0, len(errs))
	onlyKeys, onlyRates := true, true
	for _, e := range errs {
		msgs = append(msgs, pm.specPath(e.Path)+": "+e.Message)
		onlyKeys = onlyKeys && isKeyPath(e.Path)
		onlyRates = onlyRates && isRatePath(e.Path)
	}
	reason := ReasonInvalidSpec
	switch {
	case onlyKeys:
		reason = ReasonSecretInvalid
	case onlyRates:
		reason = ReasonInvalidRateLimit
	}
	return problem(reason, "%s", strings.Join(msgs, "; "))
}

// specPath names the AuthPolicy field, or the Secret, that the config
// field at p came from. A path outside the fragment is rendered as it is.
func (pm pathMap) specPath(p config.Path) string {
	if i, rest, ok := p.CutElem("policies"); ok && i == 0 {
		return pm.policyPath(rest)
	}
	if i, rest, ok := p.CutElem("issuers"); ok {
		return issuerPath(i, rest)
	}
	if keys, ok := p.CutField("apiKeys"); ok {
		if i, rest, ok := keys.CutElem("keys"); ok && i < len(pm.keySecrets) {
			return secretPath(pm.keySecrets[i], rest)
		}
		if rest, ok := keys.CutField("sources"); ok {
			return rest.Under("spec.authentication.apiKeys.sources")
		}
	}
	return p.String()
}

// policyPath maps a path below policies[0].
func (pm pathMap) policyPath(rest config.Path) string {
	if name, ok := rest.CutField("name"); ok && len(name) == 0 {
		return "metadata.name"
	}
	if rv, ok := rest.CutField("revocations"); ok {
		return pm.revocationPath(rv)
	}
	if rego, ok := rest.CutField("rego"); ok {
		if _, ok := rego.CutField("modules"); ok {
			return pm.regoSource
		}
	}
	if authn, ok := rest.CutField("authentication"); ok {
		if issuers, ok := authn.CutField("issuers"); ok {
			return issuers.Under("spec.authentication.jwt")
		}
		if keys, ok := authn.CutField("apiKeys"); ok {
			if sources, ok := keys.CutField("sources"); ok {
				return sources.Under("spec.authentication.apiKeys.sources")
			}
			if bound, ok := keys.CutField("allowedScopes"); ok {
				return bound.Under("spec.authentication.apiKeys.allowedScopes")
			}
			return "spec.authentication.apiKeys"
		}
	}
	return rest.Under("spec")
}

// revocationPath maps a path below the policy's revocations to the spec
// entry it came from: the claim is the entry itself, the value its jti,
// sub or sid.
func (pm pathMap) revocationPath(rest config.Path) string {
	i, field, ok := rest.CutIndex()
	if !ok || i >= len(pm.revocations) {
		return "spec.revocations"
	}
	o := pm.revocations[i]
	base := fmt.Sprintf("spec.revocations[%d]", o.index)
	if len(field) == 0 {
		return base
	}
	switch field[0].Field {
	case "claim":
		return base
	case "value":
		return base + "." + o.claim
	}
	return field.Under(base)
}

// issuerPath maps a path below issuers[i]. Its name and fetch settings are
// generated, so they are reported at the issuer; inline keys are the ones
// the controller fetched.
func issuerPath(i int, rest config.Path) string {
	base := fmt.Sprintf("spec.authentication.jwt[%d]", i)
	if _, ok := rest.CutField("name"); ok {
		return base
	}
	if _, ok := rest.CutField("fetch"); ok {
		return base
	}
	if keys, ok := rest.CutField("jwks"); ok {
		return keys.Under(base + " (keys fetched from the issuer)")
	}
	return rest.Under(base)
}

// secretPath maps a path below apiKeys.keys[i] to the Secret data the key
// was read from.
func secretPath(secret string, rest config.Path) string {
	base := fmt.Sprintf("Secret %q", secret)
	if len(rest) == 0 {
		return base
	}
	data := map[string]string{
		"name":    base + " (its name)",
		"hash":    base + fmt.Sprintf(" data %q", SecretKeyKey),
		"subject": base + fmt.Sprintf(" data %q", SecretKeySubject),
		"scopes":  base + fmt.Sprintf(" data %q", SecretKeyScopes),
	}
	if where, ok := data[rest[0].Field]; ok {
		return where
	}
	return rest.Under(base)
}

// isKeyPath reports a path below apiKeys.keys, which holds what was read
// from the Secrets.
func isKeyPath(p config.Path) bool {
	keys, ok := p.CutField("apiKeys")
	if !ok {
		return false
	}
	_, ok = keys.CutField("keys")
	return ok
}

// isRatePath reports a path below the policy's rate limits.
func isRatePath(p config.Path) bool {
	_, rest, ok := p.CutElem("policies")
	if !ok {
		return false
	}
	_, ok = rest.CutField("rateLimits")
	return ok
}
