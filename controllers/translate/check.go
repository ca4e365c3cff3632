package translate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/authgate/authgate/proxy/authn"
	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/config"
)

// Upstream is the placeholder upstream of rendered configuration; every
// sidecar overrides it with --upstream.
const Upstream = "http://127.0.0.1:8080"

// pathMap says how config paths map back to the AuthPolicy.
type pathMap struct {
	// secretOf maps an API key's config name to its Secret's name.
	secretOf map[string]string
	// regoSource names where the Rego came from (spec.rego.inline, ...).
	regoSource string
}

// Config wraps fragments' parts in an otherwise empty ProxyConfig with the
// placeholder upstream. It copies nothing: callers that default or modify
// the result must pass copies.
func Config(issuers []config.Issuer, keys config.APIKeys, policies []config.Policy) config.ProxyConfig {
	return config.ProxyConfig{
		APIVersion:    config.APIVersion,
		Kind:          config.Kind,
		Upstream:      config.Upstream{URL: Upstream},
		DefaultAction: "deny",
		Issuers:       issuers,
		APIKeys:       keys,
		Policies:      policies,
	}
}

// check runs the proxy's own validation on a fragment: config.Validate on a
// defaulted ProxyConfig holding only this fragment, then the proxy's
// router, authenticator and Rego compiler.
func check(ctx context.Context, f *Fragment, pm pathMap) *Problem {
	cfg, err := defaultedCopy(f)
	if err != nil {
		return problem(ReasonInvalidSpec, "%v", err)
	}
	keySecrets := make([]string, len(f.APIKeys))
	for j, k := range f.APIKeys {
		keySecrets[j] = pm.secretOf[k.Name]
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return validationProblem(errs, keySecrets, pm.regoSource)
	}
	pol := &cfg.Policies[0]
	if _, err := authz.NewRouter(pol.Routes); err != nil {
		return problem(ReasonInvalidSpec, "spec.routes: %v", err)
	}
	if _, err := authn.New(cfg, authn.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		return problem(ReasonInvalidSpec, "spec.authentication: %s", issuerNamesToPaths(f, strings.TrimPrefix(err.Error(), "authn: ")))
	}
	if pol.Rego != nil {
		return compile(ctx, pol.Name, pol.Rego, pm.regoSource)
	}
	return nil
}

// defaultedCopy returns a deep copy of the fragment as a defaulted
// ProxyConfig; defaulting never touches the fragment itself.
func defaultedCopy(f *Fragment) (*config.ProxyConfig, error) {
	src := Config(f.Issuers, config.APIKeys{Keys: f.APIKeys}, []config.Policy{f.Policy})
	data, err := json.Marshal(&src)
	if err != nil {
		return nil, errors.New("the policy cannot be encoded (are the issuer keys valid JSON?)")
	}
	var cfg config.ProxyConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, errors.New("the policy cannot be decoded")
	}
	cfg.Default()
	return &cfg, nil
}

// validationProblem turns the proxy's field errors into one Problem with
// spec paths. Errors only about API-key Secrets are SecretInvalid, errors
// only about rate limits InvalidRateLimit, anything else InvalidSpec.
func validationProblem(errs config.ErrorList, keySecrets []string, regoSource string) *Problem {
	msgs := make([]string, 0, len(errs))
	onlyKeys, onlyRates := true, true
	for _, e := range errs {
		msgs = append(msgs, specPath(e.Path, keySecrets, regoSource)+": "+e.Message)
		onlyKeys = onlyKeys && strings.HasPrefix(e.Path, "apiKeys.keys[")
		onlyRates = onlyRates && strings.HasPrefix(e.Path, "policies[0].rateLimits")
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

var indexed = regexp.MustCompile(`^([A-Za-z.]+)\[(\d+)\](.*)$`)

// specPath rewrites a ProxyConfig path of the temporary config to the
// AuthPolicy field (or Secret) it came from.
func specPath(p string, keySecrets []string, regoSource string) string {
	if rest, ok := strings.CutPrefix(p, "policies[0]"); ok {
		return policyPath(rest, regoSource)
	}
	if rest, ok := strings.CutPrefix(p, "apiKeys.sources"); ok {
		return "spec.authentication.apiKeys.sources" + rest
	}
	m := indexed.FindStringSubmatch(p)
	if m == nil {
		return p
	}
	i, err := strconv.Atoi(m[2])
	if err != nil {
		return p
	}
	switch m[1] {
	case "issuers":
		return issuerPath(i, m[3])
	case "apiKeys.keys":
		if i < len(keySecrets) {
			return secretPath(keySecrets[i], m[3])
		}
	}
	return p
}

func policyPath(rest, regoSource string) string {
	switch {
	case rest == ".name":
		return "metadata.name"
	case strings.HasPrefix(rest, ".rego.modules"):
		return regoSource
	case strings.HasPrefix(rest, ".authentication.issuers"):
		return "spec.authentication.jwt" + strings.TrimPrefix(rest, ".authentication.issuers")
	case strings.HasPrefix(rest, ".authentication.apiKeys.sources"):
		return "spec" + rest
	case strings.HasPrefix(rest, ".authentication.apiKeys"):
		return "spec.authentication.apiKeys"
	}
	return "spec" + rest
}

func issuerPath(i int, rest string) string {
	base := "spec.authentication.jwt[" + strconv.Itoa(i) + "]"
	switch {
	case rest == ".name" || strings.HasPrefix(rest, ".fetch"):
		return base
	case rest == ".jwks" || strings.HasPrefix(rest, ".jwks."):
		return base + " (keys fetched from the issuer)" + strings.TrimPrefix(rest, ".jwks")
	}
	return base + rest
}

func secretPath(secret, rest string) string {
	base := fmt.Sprintf("Secret %q", secret)
	field := strings.TrimPrefix(rest, ".")
	if j := strings.IndexByte(field, '['); j >= 0 {
		field = field[:j]
	}
	switch field {
	case "":
		return base
	case "name":
		return base + " (its name)"
	case "hash":
		return base + fmt.Sprintf(" data %q", SecretKeyKey)
	case "subject":
		return base + fmt.Sprintf(" data %q", SecretKeySubject)
	case "scopes":
		return base + fmt.Sprintf(" data %q", SecretKeyScopes)
	}
	return base + rest
}

// issuerNamesToPaths replaces generated issuer names in a message with the
// spec paths they stand for.
func issuerNamesToPaths(f *Fragment, msg string) string {
	pairs := make([]string, 0, 2*len(f.Issuers))
	for i := range f.Issuers {
		pairs = append(pairs, strconv.Quote(f.Issuers[i].Name), "spec.authentication.jwt["+strconv.Itoa(i)+"]")
	}
	return strings.NewReplacer(pairs...).Replace(msg)
}
