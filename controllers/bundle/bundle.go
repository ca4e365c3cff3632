// Package bundle renders the accepted AuthPolicies of one namespace into the
// ProxyConfig its authgate-proxy sidecars load (one Secret per
// namespace), and splits an existing bundle back into per-policy fragments,
// which a controller that starts reads to learn the last good generation
// of each policy.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
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
// --upstream; a workload no policy selects is denied.
//
// Fragments come out of translate.Translate validated one by one; Render
// checks only what the merge adds (see check), so a bundle Render returns
// is one a sidecar accepts.
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
	data, err := yaml.Marshal(&cfg)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	if err := check(data, &cfg); err != nil {
		return nil, err
	}
	return data, nil
}

// check refuses a merged bundle that sidecars would refuse although every
// fragment is valid on its own:
//
//   - config.Parse, the sidecar's own decoding and validation of these
//     very bytes. Some of its rules span policies (an identity header of
//     one policy that another reads a credential from is stripped before
//     any credential is read), a last good fragment's keys were read again
//     from the Secrets as they are now (translate.RefreshKeys) without
//     being validated again, and the strict decoding proves the encoding
//     round-trips. It builds nothing.
//   - checkSidecars, the authenticator of every two policies that may
//     select one pod.
func check(data []byte, cfg *config.ProxyConfig) error {
	parsed, err := config.Parse(data)
	if err != nil {
		var errs config.ErrorList
		if errors.As(err, &errs) {
			return fmt.Errorf("rendered bundle is invalid: %s", describe(errs, cfg))
		}
		return fmt.Errorf("rendered bundle is invalid: %w", err)
	}
	if err := checkSidecars(parsed); err != nil {
		return fmt.Errorf("rendered bundle is rejected by the proxy: %w", err)
	}
	return nil
}

// describe lists field errors of the bundle, naming the policy, issuer or
// API key an error lies in rather than its index.
func describe(errs config.ErrorList, cfg *config.ProxyConfig) string {
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, where(e.Path, cfg)+": "+e.Message)
	}
	return strings.Join(msgs, "; ")
}

// where renders a path of the bundle, leading with the name of the policy,
// issuer or API key it lies in.
func where(p config.Path, cfg *config.ProxyConfig) string {
	name, rest := "", p
	if i, r, ok := p.CutElem("policies"); ok && i < len(cfg.Policies) {
		name, rest = "policy "+strconv.Quote(cfg.Policies[i].Name), r
	} else if i, r, ok := p.CutElem("issuers"); ok && i < len(cfg.Issuers) {
		name, rest = "issuer "+strconv.Quote(cfg.Issuers[i].Name), r
	} else if keys, ok := p.CutField("apiKeys"); ok {
		if i, r, ok := keys.CutElem("keys"); ok && i < len(cfg.APIKeys.Keys) {
			name, rest = "api key "+strconv.Quote(cfg.APIKeys.Keys[i].Name), r
		}
	}
	switch {
	case name == "":
		return p.String()
	case len(rest) == 0:
		return name
	}
	return name + ": " + rest.String()
}

// checkSidecars builds authentication the way a sidecar does, for every
// two policies that could select the same pod: sources the two read with
// different prefixes show only together. Each policy alone was checked by
// config.Validate when it was translated; policies that can never share a
// pod never constrain each other.
func checkSidecars(cfg *config.ProxyConfig) error {
	build := func(ps ...*config.Policy) error {
		_, err := authn.New(cfg.Scoped(ps), authn.Options{Logger: slog.New(slog.DiscardHandler)})
		return err
	}
	for i := range cfg.Policies {
		a := &cfg.Policies[i]
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

// Hash identifies a bundle's content for annotations. It is the hash the
// proxy reports for its active configuration (config.Hash), so the two can
// be compared.
func Hash(data []byte) string { return config.Hash(data) }
