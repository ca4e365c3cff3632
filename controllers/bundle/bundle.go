// Package bundle renders the accepted AuthPolicies of one namespace into the
// ProxyConfig its authgate-proxy sidecars load (one ConfigMap per
// namespace), and splits an existing bundle back into per-policy fragments
// so that the last good generation of a policy that became invalid stays in
// force.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/authn"
	"github.com/authgate/authgate/proxy/config"
)

// Render merges fragments into one ProxyConfig and returns it as
// deterministic YAML: policies sorted by name, each policy's issuers in
// policy order, API keys sorted and deduplicated by name, API key sources
// merged. The upstream is a placeholder that every sidecar overrides with
// --upstream; a workload no policy selects is denied. The result is checked
// with the proxy's own config.Parse and authenticator before it is
// returned, so a bundle Render returns is one a sidecar accepts.
//
// No fragments render a bundle with no policies: every workload is denied.
func Render(fragments []*translate.Fragment) ([]byte, error) {
	frags := make([]*translate.Fragment, 0, len(fragments))
	for i, f := range fragments {
		if f == nil {
			return nil, fmt.Errorf("fragment %d is nil", i)
		}
		frags = append(frags, f)
	}
	slices.SortFunc(frags, func(a, b *translate.Fragment) int { return strings.Compare(a.Policy.Name, b.Policy.Name) })
	var m merger
	for i, f := range frags {
		if i > 0 && frags[i-1].Policy.Name == f.Policy.Name {
			return nil, fmt.Errorf("policy %q is given twice", f.Policy.Name)
		}
		if err := m.add(f); err != nil {
			return nil, fmt.Errorf("policy %q: %w", f.Policy.Name, err)
		}
	}
	cfg := m.config()
	data, err := marshal(&cfg)
	if err != nil {
		return nil, err
	}
	parsed, err := config.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("rendered bundle is invalid: %w", err)
	}
	if err := checkSidecars(parsed); err != nil {
		return nil, fmt.Errorf("rendered bundle is rejected by the proxy: %w", err)
	}
	return data, nil
}

// checkSidecars builds authentication the way a sidecar does: for the
// policies that select it. Each policy is checked alone, and every two
// policies that could select the same pod together; policies that can
// never share a pod never constrain each other.
func checkSidecars(cfg *config.ProxyConfig) error {
	build := func(ps ...*config.Policy) error {
		_, err := authn.New(cfg.Scoped(ps), authn.Options{Logger: slog.New(slog.DiscardHandler)})
		return err
	}
	for i := range cfg.Policies {
		a := &cfg.Policies[i]
		if err := build(a); err != nil {
			return fmt.Errorf("policy %q: %w", a.Name, err)
		}
		for j := range i {
			b := &cfg.Policies[j]
			if disjoint(a.Selector, b.Selector) {
				continue
			}
			if err := build(b, a); err != nil {
				return fmt.Errorf("policies %q and %q may select the same pod: %w", b.Name, a.Name, err)
			}
		}
	}
	return nil
}

// disjoint reports selectors that provably never select the same labels:
// one requires a label value the other excludes.
func disjoint(a, b config.Selector) bool {
	return excludes(a, b) || excludes(b, a)
}

func excludes(a, b config.Selector) bool {
	for k, v := range a.MatchLabels {
		if w, ok := b.MatchLabels[k]; ok && w != v {
			return true
		}
		for _, e := range b.MatchExpressions {
			if e.Key != k {
				continue
			}
			switch e.Operator {
			case "DoesNotExist":
				return true
			case "NotIn":
				if slices.Contains(e.Values, v) {
					return true
				}
			case "In":
				if !slices.Contains(e.Values, v) {
					return true
				}
			}
		}
	}
	return false
}

// merger accumulates fragments into the global lists of a ProxyConfig.
type merger struct {
	issuers    []config.Issuer
	issuerJSON map[string][]byte
	keys       map[string]config.APIKey
	keyJSON    map[string][]byte
	keyOfHash  map[string]string
	policies   []config.Policy
}

func (m *merger) add(f *translate.Fragment) error {
	if m.issuerJSON == nil {
		m.issuerJSON, m.keys, m.keyJSON, m.keyOfHash = map[string][]byte{}, map[string]config.APIKey{}, map[string][]byte{}, map[string]string{}
	}
	if ak := f.Policy.Authentication.APIKeys; ak != nil && len(ak.Keys) == 0 {
		return errors.New("accepts API keys but names none, which would accept every key of the namespace")
	}
	for _, is := range f.Issuers {
		enc, err := json.Marshal(is)
		if err != nil {
			return fmt.Errorf("issuer %q: %w", is.Name, err)
		}
		if prev, ok := m.issuerJSON[is.Name]; ok {
			if !bytes.Equal(prev, enc) {
				return fmt.Errorf("issuer %q is defined differently by another policy", is.Name)
			}
			continue
		}
		m.issuerJSON[is.Name] = enc
		m.issuers = append(m.issuers, is)
	}
	for _, k := range f.APIKeys {
		if err := m.addKey(k); err != nil {
			return err
		}
	}
	m.policies = append(m.policies, f.Policy)
	return nil
}

// addKey deduplicates keys by name. A key shared by two policies (one
// Secret selected twice) must be identical in both; a hash under two names
// would make the key's identity ambiguous.
func (m *merger) addKey(k config.APIKey) error {
	enc, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("api key %q: %w", k.Name, err)
	}
	if prev, ok := m.keyJSON[k.Name]; ok {
		if !bytes.Equal(prev, enc) {
			return fmt.Errorf("api key %q is defined differently by another policy (was its Secret changed while that policy is rejected?)", k.Name)
		}
		return nil
	}
	if other, ok := m.keyOfHash[k.Hash]; ok {
		return fmt.Errorf("api keys %q and %q hold the same key; every Secret needs its own key", other, k.Name)
	}
	m.keyJSON[k.Name], m.keys[k.Name], m.keyOfHash[k.Hash] = enc, k, k.Name
	return nil
}

func (m *merger) config() config.ProxyConfig {
	keys := make([]config.APIKey, 0, len(m.keys))
	for _, k := range m.keys {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b config.APIKey) int { return strings.Compare(a.Name, b.Name) })
	if len(keys) == 0 {
		keys = nil
	}
	// Each policy names its own key sources; the global list stays empty.
	return translate.Config(m.issuers, config.APIKeys{Keys: keys}, m.policies)
}

// marshal renders a config as YAML without the zero values encoding/json
// cannot omit (empty structs, zero durations), which read as settings.
func marshal(cfg *config.ProxyConfig) ([]byte, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	out, err := yaml.Marshal(prune(tree, typeOfConfig))
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return out, nil
}

// Hash identifies a bundle's content for annotations. It is the hash the
// proxy reports for its active configuration (config.Hash), so the two can
// be compared.
func Hash(data []byte) string { return config.Hash(data) }
