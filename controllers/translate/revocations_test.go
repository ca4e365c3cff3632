package translate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/config"
)

// revNow is the translation clock of these tests.
var revNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func revClock() time.Time { return revNow }

// revocationSpec is a policy trusting two issuers with the given
// revocations (YAML list items).
func revocationSpec(items ...string) string {
	return `selector: {}
authentication:
  jwt:
    - {issuerURL: "https://idp.example.com/", audiences: [api]}
    - {issuerURL: "https://other.example.com/", audiences: [api]}
routes: [{}]
revocations:
` + "  - " + strings.Join(items, "\n  - ")
}

func TestTranslateRevocations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		items []string
		want  []config.Revocation
	}{
		{
			name:  "each claim, its issuer, UTC RFC 3339, no reason",
			items: []string{`{jti: tok-1, expiresAt: "2030-01-02T05:04:05+01:00", reason: "INC-42 leaked in a log"}`, `{sub: alice, issuer: "https://other.example.com/", expiresAt: "2030-02-01T00:00:00Z"}`, `{sid: sess-9, expiresAt: "2031-01-01T00:00:00Z"}`},
			want: []config.Revocation{
				{Claim: "jti", Value: "tok-1", ExpiresAt: "2030-01-02T04:04:05Z"},
				{Claim: "sid", Value: "sess-9", ExpiresAt: "2031-01-01T00:00:00Z"},
				{Claim: "sub", Value: "alice", Issuer: "https://other.example.com/", ExpiresAt: "2030-02-01T00:00:00Z"},
			},
		},
		{
			name:  "ended entries are left out",
			items: []string{`{jti: ended, expiresAt: "2030-01-02T03:04:05Z"}`, `{jti: long-ended, expiresAt: "2001-01-01T00:00:00Z"}`, `{jti: live, expiresAt: "2030-01-02T03:04:06Z"}`},
			want:  []config.Revocation{{Claim: "jti", Value: "live", ExpiresAt: "2030-01-02T03:04:06Z"}},
		},
		{
			name:  "sorted by claim, value, issuer",
			items: []string{`{sub: b, expiresAt: "2030-06-01T00:00:00Z"}`, `{sub: a, issuer: "https://other.example.com/", expiresAt: "2030-06-01T00:00:00Z"}`, `{sub: a, expiresAt: "2030-06-01T00:00:00Z"}`, `{jti: z, expiresAt: "2030-06-01T00:00:00Z"}`},
			want: []config.Revocation{
				{Claim: "jti", Value: "z", ExpiresAt: "2030-06-01T00:00:00Z"},
				{Claim: "sub", Value: "a", ExpiresAt: "2030-06-01T00:00:00Z"},
				{Claim: "sub", Value: "a", Issuer: "https://other.example.com/", ExpiresAt: "2030-06-01T00:00:00Z"},
				{Claim: "sub", Value: "b", ExpiresAt: "2030-06-01T00:00:00Z"},
			},
		},
		{
			name:  "a repeated entry keeps its latest end",
			items: []string{`{sid: s, expiresAt: "2030-03-01T00:00:00Z"}`, `{sid: s, expiresAt: "2030-09-01T00:00:00Z", reason: again}`, `{sid: s, expiresAt: "2030-05-01T00:00:00Z"}`},
			want:  []config.Revocation{{Claim: "sid", Value: "s", ExpiresAt: "2030-09-01T00:00:00Z"}},
		},
		{
			name:  "all ended: no revocations",
			items: []string{`{jti: x, expiresAt: "2020-01-01T00:00:00Z"}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := mustTranslate(t, Input{Policy: policyYAML(t, "rev", revocationSpec(tt.items...)), Now: revClock})
			if got, want := toJSON(t, f.Policy.Revocations), toJSON(t, tt.want); got != want {
				t.Fatalf("got revocations %s, want %s", got, want)
			}
			if strings.Contains(toJSON(t, f), "reason") || strings.Contains(toJSON(t, f), "INC-42") {
				t.Fatal("a revocation's reason reached the fragment")
			}
			// The order entries are written in never changes the fragment.
			rev := make([]string, len(tt.items))
			for i, it := range tt.items {
				rev[len(tt.items)-1-i] = it
			}
			g := mustTranslate(t, Input{Policy: policyYAML(t, "rev", revocationSpec(rev...)), Now: revClock})
			if toJSON(t, g) != toJSON(t, f) {
				t.Fatalf("got a different fragment for the reversed list:\n%s\nwant\n%s", toJSON(t, g), toJSON(t, f))
			}
		})
	}
}

// Problems name the spec entry as written, whatever the rendered order.
func TestTranslateRevocationProblems(t *testing.T) {
	t.Parallel()
	many := make([]string, config.MaxRevocations+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{jti: t-%d, expiresAt: "2031-01-01T00:00:00Z"}`, i)
	}
	tests := []struct {
		name string
		spec string
		want string
	}{
		{"issuer the policy does not trust", revocationSpec(`{sub: z, expiresAt: "2031-01-01T00:00:00Z"}`, `{sub: a, issuer: "https://idp.example.com", expiresAt: "2031-01-01T00:00:00Z"}`),
			`spec.revocations[1].issuer: "https://idp.example.com" is not the issuerURL of an issuer of this policy`},
		{"two claims in one entry", revocationSpec(`{jti: a, expiresAt: "2031-01-01T00:00:00Z"}`, `{jti: a, sub: b, expiresAt: "2031-01-01T00:00:00Z"}`),
			"spec.revocations[1]: set exactly one of jti, sub or sid"},
		{"no claim", revocationSpec(`{issuer: "https://idp.example.com/", expiresAt: "2031-01-01T00:00:00Z"}`),
			"spec.revocations[0]: set exactly one of jti, sub or sid"},
		{"no expiry", revocationSpec(`{sid: s}`), "spec.revocations[0].expiresAt: is required"},
		{"too many", revocationSpec(many...), "spec.revocations: at most 1000 entries, got 1001"},
		{"a policy accepting API keys only", "selector: {}\nauthentication: {apiKeys: {secretNames: [partner]}}\nroutes: [{}]\nrevocations: [{sub: partner, expiresAt: \"2031-01-01T00:00:00Z\"}]",
			"spec.revocations: revocations apply to JWTs, and this policy accepts none (revoke an API key by removing it"},
	}
	secrets := []corev1.Secret{secret("partner", "0123456789abcdefGHIJKLmnop", nil)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, prob := Translate(context.Background(), Input{Policy: policyYAML(t, "rev", tt.spec), Secrets: secrets, Now: revClock})
			if prob == nil || prob.Reason != ReasonInvalidSpec || !strings.Contains(prob.Message, tt.want) {
				t.Fatalf("got problem %v, want InvalidSpec containing %q", prob, tt.want)
			}
			if strings.Contains(prob.Message, "policies[0]") {
				t.Fatalf("got message %q, want no config path", prob.Message)
			}
		})
	}
}

// A last good generation kept while the current one is rejected refuses
// what the current spec revokes (the entries it can carry), not what it
// revoked itself: a revocation is never held back by an unrelated error.
func TestRefreshRevocations(t *testing.T) {
	t.Parallel()
	kept := mustTranslate(t, Input{Policy: policyYAML(t, "rev", revocationSpec(
		`{jti: removed-since, expiresAt: "2031-01-01T00:00:00Z"}`,
		`{jti: kept, expiresAt: "2031-01-01T00:00:00Z"}`)), Now: revClock})
	before := toJSON(t, kept)
	current := policyYAML(t, "rev", revocationSpec(
		`{sub: mallory, expiresAt: "2031-01-01T00:00:00Z"}`,
		`{jti: kept, expiresAt: "2032-01-01T00:00:00Z"}`,
		`{jti: ends-soon, expiresAt: "2030-01-02T03:05:00Z"}`,
		`{sid: elsewhere, issuer: "https://new-idp.example.com/", expiresAt: "2031-01-01T00:00:00Z"}`,
		`{sid: s, sub: two-claims, expiresAt: "2031-01-01T00:00:00Z"}`))
	later := revNow.Add(time.Hour) // ends-soon has ended
	got := RefreshRevocations(kept, current, later)
	want := []config.Revocation{
		{Claim: "jti", Value: "kept", ExpiresAt: "2032-01-01T00:00:00Z"},
		{Claim: "sub", Value: "mallory", ExpiresAt: "2031-01-01T00:00:00Z"},
	}
	if g, w := toJSON(t, got.Policy.Revocations), toJSON(t, want); g != w {
		t.Fatalf("got revocations %s, want %s", g, w)
	}
	if toJSON(t, kept) != before {
		t.Fatal("RefreshRevocations modified its input")
	}
	cfg, err := defaultedCopy(got)
	if err != nil {
		t.Fatal(err)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("the refreshed fragment is invalid: %v", errs)
	}
	none := RefreshRevocations(kept, policyYAML(t, "rev", "selector: {}\nroutes: [{}]"), later)
	if len(none.Policy.Revocations) != 0 {
		t.Fatalf("got revocations %v kept although the current spec has none", none.Policy.Revocations)
	}

	keysOnly := mustTranslate(t, Input{Policy: policyYAML(t, "keys", "selector: {}\nauthentication: {apiKeys: {secretNames: [partner]}}\nroutes: [{}]"),
		Secrets: []corev1.Secret{secret("partner", "0123456789abcdefGHIJKLmnop", nil)}})
	spec := &v1alpha1.AuthPolicy{Spec: v1alpha1.AuthPolicySpec{Revocations: []v1alpha1.Revocation{{Sub: "partner", ExpiresAt: metav1.NewTime(revNow.Add(time.Hour))}}}}
	if got := RefreshRevocations(keysOnly, spec, revNow); got != keysOnly {
		t.Fatal("got revocations added to a policy that accepts no JWT, want it unchanged")
	}
}
