package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
)

// Fragments splits a rendered bundle back into per-policy fragments, keyed
// by policy name: each policy with the issuers and API keys it references
// and the bundle's API key sources. Rendering the fragments again yields
// the same bundle. Empty data (no bundle yet) gives no fragments. The
// controller calls it only when it starts, to learn what the sidecars
// enforce; after that it remembers what it rendered.
//
// The data may have been edited by hand or be corrupt: it must pass the
// proxy's config.Parse, and a policy that accepts API keys without naming
// them (which would accept every key of the bundle) is refused, so that a
// bundle this function accepts can never widen what a policy accepts.
func Fragments(data []byte) (map[string]*translate.Fragment, error) {
	out := map[string]*translate.Fragment{}
	if len(bytes.TrimSpace(data)) == 0 {
		return out, nil
	}
	if _, err := config.Parse(data); err != nil {
		return nil, fmt.Errorf("bundle is invalid: %w", err)
	}
	// Decode again without defaults, so the fragments render back to the
	// same bytes.
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse bundle: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(jsonData))
	dec.DisallowUnknownFields()
	var cfg config.ProxyConfig
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("decode bundle: %w", err)
	}
	issuers := make(map[string]config.Issuer, len(cfg.Issuers))
	for _, is := range cfg.Issuers {
		issuers[is.Name] = is
	}
	keys := make(map[string]config.APIKey, len(cfg.APIKeys.Keys))
	for _, k := range cfg.APIKeys.Keys {
		keys[k.Name] = k
	}
	for _, p := range cfg.Policies {
		f, err := fragment(p, issuers, keys, cfg.APIKeys.Sources)
		if err != nil {
			return nil, fmt.Errorf("bundle policy %q: %w", p.Name, err)
		}
		out[p.Name] = f
	}
	return out, nil
}

func fragment(p config.Policy, issuers map[string]config.Issuer, keys map[string]config.APIKey, sources []config.CredentialSource) (*translate.Fragment, error) {
	f := &translate.Fragment{Policy: p}
	for _, n := range p.Authentication.Issuers {
		is, ok := issuers[n]
		if !ok {
			return nil, fmt.Errorf("issuer %q is missing", n)
		}
		f.Issuers = append(f.Issuers, is)
	}
	ak := p.Authentication.APIKeys
	if ak == nil {
		return f, nil
	}
	if len(ak.Keys) == 0 {
		return nil, errors.New("accepts API keys without naming them, which would accept every key")
	}
	for _, n := range ak.Keys {
		k, ok := keys[n]
		if !ok {
			return nil, fmt.Errorf("api key %q is missing", n)
		}
		f.APIKeys = append(f.APIKeys, k)
	}
	slices.SortFunc(f.APIKeys, func(a, b config.APIKey) int { return strings.Compare(a.Name, b.Name) })
	if len(ak.Sources) == 0 {
		// A bundle written before policies named their own key sources.
		access := *ak
		access.Sources = slices.Clone(sources)
		if len(access.Sources) == 0 {
			access.Sources = []config.CredentialSource{{Type: config.SourceHeader, Name: config.DefaultAPIKeyHeader}}
		}
		f.Policy.Authentication.APIKeys = &access
	}
	return f, nil
}
