package translate

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/authgate/authgate/proxy/config"
)

// Upstream is the placeholder upstream of rendered configuration; every
// sidecar overrides it with --upstream.
const Upstream = "http://127.0.0.1:8080"

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

// check validates a fragment with the proxy's own config.Validate, on a
// defaulted ProxyConfig holding only this fragment, and compiles its Rego.
// That is all a sidecar checks of one policy: config.Validate covers what
// the proxy's router and authenticator would refuse of a policy alone.
// What only a combination of policies shows is checked when the bundle is
// rendered.
func check(ctx context.Context, f *Fragment, pm pathMap) *Problem {
	cfg, err := defaultedCopy(f)
	if err != nil {
		return problem(ReasonInvalidSpec, "%v", err)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return pm.problem(errs)
	}
	if pol := &cfg.Policies[0]; pol.Rego != nil {
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
