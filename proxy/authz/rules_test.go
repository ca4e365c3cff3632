package authz

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// decodeClaims decodes like authn does: one decoding, json.Number numbers.
func decodeClaims(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	return m
}

func TestCheckRoute(t *testing.T) {
	t.Parallel()
	id := &identity.Identity{
		Kind: identity.KindJWT, Subject: "alice",
		Scopes: []string{"orders:read", "orders:write"},
		Roles:  []string{"editor"},
	}
	defaultMFA := &config.MFA{AMR: []string{"mfa", "otp", "hwk", "swk", "fido"}}
	fresh := &config.MFA{AMR: defaultMFA.AMR, MaxAge: config.D(5 * time.Minute)}
	tests := []struct {
		name       string
		route      config.Route
		claims     string
		noIdentity bool
		wantOK     bool
		wantReason string
	}{
		{name: "no rules", route: config.Route{}, claims: `{}`, wantOK: true},
		{name: "no rules, no identity", route: config.Route{}, noIdentity: true, wantOK: true},
		{name: "rules, no identity", route: config.Route{RequireScopes: []string{"x"}}, noIdentity: true, wantReason: ReasonUnauthenticated},
		{name: "all scopes held", route: config.Route{RequireScopes: []string{"orders:read", "orders:write"}}, claims: `{}`, wantOK: true},
		{name: "one scope missing", route: config.Route{RequireScopes: []string{"orders:read", "orders:delete"}}, claims: `{}`, wantReason: ReasonMissingScope},
		{name: "scope prefix is not the scope", route: config.Route{RequireScopes: []string{"orders"}}, claims: `{}`, wantReason: ReasonMissingScope},
		{name: "any role", route: config.Route{RequireRoles: []string{"admin", "editor"}}, claims: `{}`, wantOK: true},
		{name: "no role", route: config.Route{RequireRoles: []string{"admin"}}, claims: `{}`, wantReason: ReasonMissingRole},
		{name: "claim value", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "tier", Values: []string{"gold", "silver"}}}},
			claims: `{"tier":"gold"}`, wantOK: true},
		{name: "claim wrong value", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "tier", Values: []string{"gold"}}}},
			claims: `{"tier":"bronze"}`, wantReason: ReasonClaimMismatch},
		{name: "claim missing", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "tier"}}},
			claims: `{}`, wantReason: ReasonClaimMismatch},
		{name: "claim presence", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "tier"}}},
			claims: `{"tier":""}`, wantOK: true},
		{name: "null claim is absent", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "tier"}}},
			claims: `{"tier":null}`, wantReason: ReasonClaimMismatch},
		{name: "nested claim", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "org.tier", Values: []string{"gold"}}}},
			claims: `{"org":{"tier":"gold"}}`, wantOK: true},
		{name: "dotted claim name", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "https://example.com/tier", Values: []string{"gold"}}}},
			claims: `{"https://example.com/tier":"gold"}`, wantOK: true},
		{name: "list claim any element", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "groups", Values: []string{"ops"}}}},
			claims: `{"groups":["dev","ops"]}`, wantOK: true},
		{name: "list claim no element", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "groups", Values: []string{"ops"}}}},
			claims: `{"groups":["dev",["ops"]]}`, wantReason: ReasonClaimMismatch},
		{name: "number claim compared as string", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "level", Values: []string{"3"}}}},
			claims: `{"level":3}`, wantOK: true},
		{name: "object claim never matches", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "org", Values: []string{"map[]"}}}},
			claims: `{"org":{}}`, wantReason: ReasonClaimMismatch},
		{name: "every claim must hold", route: config.Route{RequireClaims: []config.ClaimRequirement{{Claim: "a", Values: []string{"1"}}, {Claim: "b", Values: []string{"2"}}}},
			claims: `{"a":"1","b":"3"}`, wantReason: ReasonClaimMismatch},
		{name: "mfa amr", route: config.Route{RequireMFA: defaultMFA}, claims: `{"amr":["pwd","otp"]}`, wantOK: true},
		{name: "mfa amr string", route: config.Route{RequireMFA: defaultMFA}, claims: `{"amr":"hwk"}`, wantOK: true},
		{name: "mfa password only", route: config.Route{RequireMFA: defaultMFA}, claims: `{"amr":["pwd"]}`, wantReason: ReasonMFARequired},
		{name: "mfa none", route: config.Route{RequireMFA: defaultMFA}, claims: `{}`, wantReason: ReasonMFARequired},
		{name: "mfa acr", route: config.Route{RequireMFA: &config.MFA{ACR: []string{"urn:gold"}}}, claims: `{"acr":"urn:gold","amr":["pwd"]}`, wantOK: true},
		{name: "mfa wrong acr", route: config.Route{RequireMFA: &config.MFA{ACR: []string{"urn:gold"}}}, claims: `{"acr":"urn:bronze","amr":["otp"]}`, wantReason: ReasonMFARequired},
		{name: "mfa nested amr is not amr", route: config.Route{RequireMFA: defaultMFA}, claims: `{"x":{"amr":["otp"]}}`, wantReason: ReasonMFARequired},
		// Freshness (maxAge 5m) against the fixed now of the test, 1.8e9.
		{name: "mfa recent", route: config.Route{RequireMFA: fresh}, claims: `{"amr":["otp"],"auth_time":1799999900}`, wantOK: true},
		{name: "mfa exactly at max age", route: config.Route{RequireMFA: fresh}, claims: `{"amr":["otp"],"auth_time":1799999700}`, wantOK: true},
		{name: "mfa too old", route: config.Route{RequireMFA: fresh}, claims: `{"amr":["otp"],"auth_time":1799999699}`, wantReason: ReasonMFATooOld},
		{name: "mfa auth_time missing", route: config.Route{RequireMFA: fresh}, claims: `{"amr":["otp"]}`, wantReason: ReasonMFATooOld},
		{name: "mfa auth_time a string", route: config.Route{RequireMFA: fresh}, claims: `{"amr":["otp"],"auth_time":"1799999900"}`, wantReason: ReasonMFATooOld},
		{name: "mfa auth_time in the future within skew", route: config.Route{RequireMFA: fresh}, claims: `{"amr":["otp"],"auth_time":1800000050}`, wantOK: true},
		{name: "mfa auth_time far in the future", route: config.Route{RequireMFA: fresh}, claims: `{"amr":["otp"],"auth_time":1800003600}`, wantReason: ReasonMFATooOld},
		{name: "mfa evidence checked before freshness", route: config.Route{RequireMFA: fresh}, claims: `{"amr":["pwd"],"auth_time":1799999900}`, wantReason: ReasonMFARequired},
		{name: "no max age ignores auth_time", route: config.Route{RequireMFA: defaultMFA}, claims: `{"amr":["otp"],"auth_time":1}`, wantOK: true},
		{name: "scopes checked before mfa", route: config.Route{RequireScopes: []string{"nope"}, RequireMFA: defaultMFA}, claims: `{}`, wantReason: ReasonMissingScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var who *identity.Identity
			if !tc.noIdentity {
				// A new Identity, not a copy of id: identities are never
				// copied (Derived must not be).
				who = &identity.Identity{Kind: id.Kind, Subject: id.Subject, Scopes: id.Scopes, Roles: id.Roles,
					Claims: decodeClaims(t, tc.claims)}
			}
			ok, reason := CheckRoute(&tc.route, who, time.Unix(1_800_000_000, 0))
			if ok != tc.wantOK || reason != tc.wantReason {
				t.Errorf("got (%v, %q), want (%v, %q)", ok, reason, tc.wantOK, tc.wantReason)
			}
		})
	}
}
