package main

import (
	"github.com/authgate/authgate/proxy/config"
)

// demoLabels are the labels of the demo "pod"; both policies select them.
var demoLabels = map[string]string{"app": "demo-fn"}

const demoABAC = `package authgate.authz

import rego.v1

# Department ABAC: the caller's department claim must equal the second path
# segment of /departments/{dept}/...
default decision := {"allow": false, "reason": "department claim does not match the path"}

decision := {"allow": true, "headers": {"X-Authgate-Department": input.identity.claims.department}} if {
	input.request.segments[0] == "departments"
	input.identity.claims.department == input.request.segments[1]
}
`

// demoConfig is the ProxyConfig the demo runs: an enforcing policy with
// scopes, MFA, Rego ABAC and API keys, and an audit-mode policy.
func demoConfig(issuerURL string, jwks config.JSONWebKeySet, upstreamURL, partnerKeyHash string) *config.ProxyConfig {
	return &config.ProxyConfig{
		APIVersion: config.APIVersion,
		Kind:       config.Kind,
		Upstream:   config.Upstream{URL: upstreamURL},
		Issuers: []config.Issuer{{
			Name:       "dev",
			IssuerURL:  issuerURL,
			JWKS:       &jwks,
			JWKSURL:    issuerURL + "/jwks",
			Audiences:  []string{"demo"},
			Algorithms: []string{"RS256", "ES256"},
		}},
		APIKeys: config.APIKeys{Keys: []config.APIKey{{Name: "partner-acme", Hash: partnerKeyHash, Scopes: []string{"orders:read"}}}},
		Policies: []config.Policy{
			{
				Name:     "demo/functions",
				Selector: config.Selector{MatchLabels: demoLabels},
				Authentication: config.Authentication{
					Issuers: []string{"dev"},
					APIKeys: &config.APIKeyAccess{Keys: []string{"partner-acme"}},
				},
				Routes: []config.Route{
					{Name: "health", Paths: []string{"/healthz"}, Public: true},
					{Name: "orders-read", Methods: []string{"GET"}, Paths: []string{"/orders/**"}, RequireScopes: []string{"orders:read"}, SkipRego: true},
					{Name: "admin", Paths: []string{"/admin/**"}, RequireMFA: &config.MFA{}, SkipRego: true},
					{Name: "departments", Paths: []string{"/departments/*/**"}},
				},
				Rego: &config.Rego{Modules: []config.RegoModule{{Name: "abac.rego", Source: demoABAC}}},
				Headers: config.IdentityHeaders{
					Claims: []config.ClaimHeader{{Header: "X-Authgate-Email", Claim: "email"}},
				},
			},
			{
				Name:     "demo/gold-tier-shadow",
				Mode:     config.ModeAudit,
				Selector: config.Selector{MatchLabels: demoLabels},
				Authentication: config.Authentication{
					Issuers: []string{"dev"},
					APIKeys: &config.APIKeyAccess{},
				},
				Routes: []config.Route{
					{Name: "orders-gold-only", Paths: []string{"/orders/**"}, RequireClaims: []config.ClaimRequirement{{Claim: "tier", Values: []string{"gold"}}}},
					{Name: "everything-else", Paths: []string{"/**"}, Public: true},
				},
			},
		},
	}
}
