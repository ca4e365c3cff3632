package translate

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/config"
)

// issuerName is the config name of spec.authentication.jwt[i].
func issuerName(policy string, i int) string { return policy + "/jwt-" + strconv.Itoa(i) }

// issuers converts spec.authentication.jwt. When the controller fetched an
// issuer's keys they are shipped inline, so a cold sidecar verifies without
// any network call; jwksURL or discovery stays enabled so the sidecar can
// still refresh when a token names an unknown key id. An issuer's CA
// bundle is shipped as caBundle; every issuer whose bundle does not resolve
// is reported, of the first kind of problem found.
func issuers(policy, ns string, in []v1alpha1.JWTIssuer, cas map[string]*corev1.ConfigMap, keys func(string) (config.JSONWebKeySet, bool)) ([]config.Issuer, *Problem) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]config.Issuer, 0, len(in))
	var bad *Problem
	for i, j := range in {
		ca, prob := CABundle(ns, i, j, cas)
		switch {
		case prob != nil && bad == nil:
			bad = prob
		case prob != nil && prob.Reason == bad.Reason:
			bad.Message += "; " + prob.Message
		}
		is := config.Issuer{
			Name:           issuerName(policy, i),
			IssuerURL:      j.IssuerURL,
			JWKSURL:        j.JWKSURL,
			Audiences:      slices.Clone(j.Audiences),
			ClientIDs:      slices.Clone(j.ClientIDs),
			Algorithms:     slices.Clone(j.Algorithms),
			Type:           j.Type,
			RequiredClaims: claims(j.RequiredClaims),
			Sources:        sources(j.Sources),
			ScopeClaims:    slices.Clone(j.ScopeClaims),
			RolesClaim:     j.RolesClaim,
			CABundle:       ca,
		}
		if j.ClockSkew != nil {
			is.ClockSkew = config.D(j.ClockSkew.Duration)
		}
		if keys != nil {
			if set, ok := keys(j.IssuerURL); ok {
				is.JWKS = usableKeySet(set)
				if is.JWKS != nil && is.JWKSURL == "" {
					discovery := true
					is.Discovery = &discovery
				}
			}
		}
		out = append(out, is)
	}
	if bad != nil {
		return nil, bad
	}
	return out, nil
}

// usableKeySet copies the keys the proxy accepts as public signature keys
// (config.CheckPublicSigningKey), in a stable order so that a key set the
// issuer merely reordered renders to the same bundle. Issuers often publish
// encryption keys next to signing keys; those are dropped rather than
// failing the policy. It returns nil when no key is usable, leaving the
// sidecar to fetch keys itself.
func usableKeySet(set config.JSONWebKeySet) *config.JSONWebKeySet {
	out := &config.JSONWebKeySet{}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil || config.CheckPublicSigningKey(&k) != "" {
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			continue
		}
		out.Keys = append(out.Keys, config.RawJSON(compact.Bytes()))
	}
	if len(out.Keys) == 0 {
		return nil
	}
	slices.SortFunc(out.Keys, func(a, b config.RawJSON) int { return bytes.Compare(a, b) })
	out.Keys = slices.CompactFunc(out.Keys, func(a, b config.RawJSON) bool { return bytes.Equal(a, b) })
	return out
}
