package translate

import (
	"context"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/proxy/authn"
	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/config"
)

// Translate runs config.Validate only (and the Rego compiler): whatever it
// accepts, the proxy's router and authenticator must build for a pod the
// policy alone selects, and what they refuse Translate must refuse.
func TestAcceptedFragmentsBuild(t *testing.T) {
	t.Parallel()
	secrets := []corev1.Secret{secret("k", "0123456789abcdefGHIJKLmnop", nil)}
	const jwt = `{issuerURL: "https://a.example.com", audiences: [a]`
	tests := []struct {
		name, spec string
		accept     bool
	}{
		{"sources agreeing in another case", "authentication:\n  jwt: [" + jwt + ", sources: [{type: header, name: X-Token, prefix: \"Token \"}]}]\n  apiKeys: {secretNames: [k], sources: [{type: header, name: x-token, prefix: \"token \"}]}\nroutes: [{}]", true},
		{"issuers sharing a cookie", "authentication: {jwt: [" + jwt + ", sources: [{type: cookie, name: t}]}, {issuerURL: \"https://b.example.com\", audiences: [a], sources: [{type: cookie, name: t}, {type: bearer}]}]}\nroutes: [{}]", true},
		{"issuers disagreeing on a prefix", "authentication: {jwt: [" + jwt + ", sources: [{type: header, name: X-T, prefix: \"A \"}]}, {issuerURL: \"https://b.example.com\", audiences: [a], sources: [{type: header, name: x-t}]}]}\nroutes: [{}]", false},
		{"api keys read from the bearer header", "authentication:\n  jwt: [" + jwt + "}]\n  apiKeys: {secretNames: [k], sources: [{type: header, name: Authorization}]}\nroutes: [{}]", false},
		{"every path pattern form", "routes: [{public: true, paths: [/, /a/b/, /a/*/c, /a/**, /**, /a/*]}]", true},
		{"empty segment before **", "routes: [{public: true, paths: [/a//**]}]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, prob := Translate(context.Background(), Input{Policy: policyYAML(t, "b", "selector: {}\n"+tt.spec), Secrets: secrets})
			if (prob == nil) != tt.accept {
				t.Fatalf("got problem %v, want accepted: %v", prob, tt.accept)
			}
			if prob != nil {
				return
			}
			cfg, err := defaultedCopy(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := authz.NewRouter(cfg.Policies[0].Routes); err != nil {
				t.Fatalf("got router error %v for an accepted policy", err)
			}
			if _, err := authn.New(cfg.Scoped([]*config.Policy{&cfg.Policies[0]}), authn.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
				t.Fatalf("got authenticator error %v for an accepted policy", err)
			}
		})
	}
}
