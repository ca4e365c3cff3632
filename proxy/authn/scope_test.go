package authn

import (
	"context"
	"testing"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/testca"
)

// TestScopesShareVerifiersAndKeySets: two policies trusting the same IdP
// with the same settings share one verifier (one verification, one cache
// entry); an issuer that differs only in audience shares the key set (one
// fetch) but not the verifier; each scope accepts only its own issuers.
func TestScopesShareVerifiersAndKeySets(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	orders, billing, reports := is.issuerConfig("ns/orders/jwt-0"), is.issuerConfig("ns/billing/jwt-0"), is.issuerConfig("ns/reports/jwt-0")
	reports.Audiences = []string{"reports-api"}
	cfg := baseConfig(clk, orders, billing, reports)
	pol := func(name, issuer string) *config.Policy {
		return &config.Policy{Name: name, Authentication: config.Authentication{Issuers: []string{issuer}}}
	}
	a := newAuthn(t, cfg, clk)
	if n := len(a.verifiers); n != 2 {
		t.Fatalf("got %d verifiers, want 2 (orders and billing are the same)", n)
	}
	if n := len(a.keySets()); n != 1 {
		t.Fatalf("got %d key sets, want 1 for one IdP", n)
	}
	scope := func(p *config.Policy) *Scope {
		s, err := a.Scope(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	so, sb, sr := scope(pol("orders", orders.Name)), scope(pol("billing", billing.Name)), scope(pol("reports", reports.Name))
	tok := is.mint(t, nil)
	at := a.NewAttempt(bearer(tok), nil)
	for _, s := range []*Scope{so, sb} {
		if _, err := at.Authenticate(context.Background(), s); err != nil {
			t.Fatalf("got %v, want the token accepted by both policies of the same IdP", err)
		}
	}
	if _, err := at.Authenticate(context.Background(), sr); err == nil || err.Reason != ReasonInvalidAudience {
		t.Fatalf("got %v, want invalid_audience from the reports issuer", err)
	}
	if got := a.verifications(orders.Name); got != 1 {
		t.Fatalf("got %d verifications for two policies of one IdP, want 1", got)
	}
	if n := is.JWKSRequests(); n != 1 {
		t.Fatalf("got %d JWKS fetches for one IdP, want 1", n)
	}
	if _, err := a.Scope(pol("x", "ns/unknown")); err == nil {
		t.Fatal("got a scope for an issuer the config does not hold, want an error")
	}
}

// TestIssuersWithDifferentCABundlesShareNoKeySet: the CA bundle decides
// which server is trusted to serve the keys, so issuers that differ only in
// it never share a key set (nor a verifier); the same bundle shares.
func TestIssuersWithDifferentCABundlesShareNoKeySet(t *testing.T) {
	t.Parallel()
	clk := newClock()
	is := newIssuer(t, clk)
	ca, other := testca.New(t).PEM, testca.New(t).PEM
	first, same, different, none := is.issuerConfig("ns/a/jwt-0"), is.issuerConfig("ns/b/jwt-0"), is.issuerConfig("ns/c/jwt-0"), is.issuerConfig("ns/d/jwt-0")
	first.CABundle, same.CABundle, different.CABundle = ca, ca, other
	a := newAuthn(t, baseConfig(clk, first, same, different, none), clk)
	if n := len(a.keySets()); n != 3 {
		t.Fatalf("got %d key sets, want 3 (one per CA bundle, one for the system roots)", n)
	}
	if n := len(a.verifiers); n != 3 {
		t.Fatalf("got %d verifiers, want 3", n)
	}
}
