package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
)

// regoMethodDepartment allows a department's members to read (GET) their
// department's paths, and only admins to write; the decision names who and
// what it allowed, so a decision served for another request shows.
const regoMethodDepartment = `package authgate.authz

default decision := {"allow": false, "reason": "department mismatch"}

decision := {"allow": true, "headers": {"X-Authgate-Decided": concat(" ", [input.identity.subject, input.request.method, input.request.path, input.route])}} if {
	input.identity.claims.department == input.request.segments[1]
	allowed_method
}

allowed_method if input.request.method == "GET"

allowed_method if "admin" in input.identity.roles
`

// regoTenantHeader reads a request header: its decisions are never cached.
const regoTenantHeader = `package authgate.authz

default decision := false

decision if input.request.headers["x-tenant"] == input.identity.claims.department
`

func decisionHits(e *env) float64 {
	return testutil.ToFloat64(e.metrics.DecisionCache.WithLabelValues("fn", "hit"))
}

func decisionMisses(e *env) float64 {
	return testutil.ToFloat64(e.metrics.DecisionCache.WithLabelValues("fn", "miss"))
}

func decided(t *testing.T, r result) string {
	t.Helper()
	got := header(r.mustForward(t), "X-Authgate-Decided")
	if len(got) != 1 {
		t.Fatalf("got X-Authgate-Decided %v, want one value", got)
	}
	return got[0]
}

// Class 9: the decision cache answers a request only with the decision of
// the same verified credential, policy version, method and canonical path.
// Every attempt to make it answer for a different request is evaluated
// afresh, and the function receives exactly what a fresh evaluation gives.
func TestDecisionCacheAnswersOnlyTheSameRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRego(regoMethodDepartment, 0), func(c *config.ProxyConfig) {
		c.Issuers[0].RolesClaim = "roles"
	})
	if got := testutil.ToFloat64(e.metrics.DecisionCacheEnabled.WithLabelValues("fn")); got != 1 {
		t.Fatalf("got decision cache enabled %v, want 1", got)
	}
	alice := e.mint(map[string]any{"department": "sales"})
	if got := decided(t, e.get("/api/sales/report", bearer(alice)...)); got != "alice GET /api/sales/report any" {
		t.Fatalf("got %q", got)
	}
	hits := decisionHits(e)
	if got := decided(t, e.get("/api/sales/report", bearer(alice)...)); got != "alice GET /api/sales/report any" {
		t.Fatalf("got %q from the cache", got)
	}
	if decisionHits(e) != hits+1 {
		t.Fatalf("got %v hits, want %v: the repeated request was not served from the cache", decisionHits(e), hits+1)
	}

	t.Run("another token of the same subject", func(t *testing.T) {
		other := e.mint(map[string]any{"department": "hr"})
		e.get("/api/sales/report", bearer(other)...).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
	})
	t.Run("another subject with the same claims", func(t *testing.T) {
		bob := e.mint(map[string]any{"sub": "bob", "department": "sales"})
		if got := decided(t, e.get("/api/sales/report", bearer(bob)...)); got != "bob GET /api/sales/report any" {
			t.Fatalf("got %q, want bob's own decision", got)
		}
	})
	t.Run("another path", func(t *testing.T) {
		e.get("/api/hr/report", bearer(alice)...).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
		if got := decided(t, e.get("/api/sales/q1", bearer(alice)...)); got != "alice GET /api/sales/q1 any" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("another method", func(t *testing.T) {
		e.request(http.MethodPost, "/api/sales/report", bearer(alice)...).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
		e.request(http.MethodPut, "/api/sales/report", bearer(alice)...).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
	})
	t.Run("the same token with more roles is another token", func(t *testing.T) {
		admin := e.mint(map[string]any{"department": "sales", "roles": []string{"admin"}})
		if got := decided(t, e.request(http.MethodPost, "/api/sales/report", bearer(admin)...)); got != "alice POST /api/sales/report any" {
			t.Fatalf("got %q", got)
		}
		e.request(http.MethodPost, "/api/sales/report", bearer(alice)...).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
	})
	t.Run("another spelling of the same canonical path", func(t *testing.T) {
		for _, p := range []string{"/api/./sales/report", "/api/sal%65s/report", "/api/x/../sales/report"} {
			if got := decided(t, e.rawGet(p, bearer(alice)...)); got != "alice GET /api/sales/report any" {
				t.Fatalf("%s: got %q", p, got)
			}
		}
		e.rawGet("/api/sales/../hr/report", bearer(alice)...).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
	})
	t.Run("an API key", func(t *testing.T) {
		e.get("/api/sales/report", "X-API-Key", partnerKey).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
		h := decisionHits(e)
		e.get("/api/sales/report", "X-API-Key", partnerKey).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
		if decisionHits(e) != h+1 {
			t.Fatalf("got %v hits, want %v: an API key's decision is cached too", decisionHits(e), h+1)
		}
	})
	t.Run("identity headers sent by the client", func(t *testing.T) {
		r := e.get("/api/sales/report", append(bearer(alice), "X-Authgate-Decided", "mallory DELETE / any")...)
		if got := decided(t, r); got != "alice GET /api/sales/report any" {
			t.Fatalf("got %q", got)
		}
	})
}

// A credential past its exp is refused before the cache is asked, and an
// entry is never kept past the credential's exp: a token renewed with the
// same claims after its predecessor expired is evaluated afresh.
func TestDecisionCacheNeverOutlivesTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRego(regoMethodDepartment, 0))
	start := time.Now()
	e.now = func() time.Time { return start }
	tok := e.mint(map[string]any{"department": "sales", "exp": start.Add(90 * time.Second).Unix()})
	decided(t, e.get("/api/sales/report", bearer(tok)...))
	decided(t, e.get("/api/sales/report", bearer(tok)...))
	if decisionHits(e) != 1 {
		t.Fatalf("got %v hits, want 1", decisionHits(e))
	}
	e.now = func() time.Time { return start.Add(2 * time.Minute) }
	r := e.get("/api/sales/report", bearer(tok)...)
	r.mustDeny(t, http.StatusUnauthorized, "")
	if decisionHits(e) != 1 {
		t.Fatalf("got %v hits, want 1: an expired token reached the decision cache", decisionHits(e))
	}
}

// A configuration change starts every decision cache empty, even when the
// verified-token cache (kept in the State across configurations) hands out
// the same identity: a policy that now denies denies at once, and a
// revocation refuses at once.
func TestDecisionCacheDroppedOnConfigChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRevoker(t, e)
	allow := baseConfig(e.idp.URL, e.issuer.PublicJWKS(), e.fnTS.URL)
	allow.Policies[0].Rego = &config.Rego{Modules: []config.RegoModule{{Name: "p.rego", Source: regoMethodDepartment}}}
	r.load(allow)
	tok := e.mint(map[string]any{"department": "sales", "jti": "t-1"})
	r.get("/api/sales/report", tok).mustForward(t)
	r.get("/api/sales/report", tok).mustForward(t)
	if decisionHits(e) != 1 {
		t.Fatalf("got %v hits, want 1", decisionHits(e))
	}

	deny := baseConfig(e.idp.URL, e.issuer.PublicJWKS(), e.fnTS.URL)
	deny.Policies[0].Rego = &config.Rego{Modules: []config.RegoModule{{Name: "p.rego", Source: "package authgate.authz\n\ndecision := {\"allow\": false, \"reason\": \"closed\"}\n"}}}
	tokenHits := r.cacheHits()
	r.load(deny)
	r.get("/api/sales/report", tok).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
	if r.cacheHits() != tokenHits+1 {
		t.Fatalf("the token cache missed: the test did not reuse the identity")
	}

	r.load(allow)
	r.get("/api/sales/report", tok).mustForward(t)
	r.get("/api/sales/report", tok).mustForward(t)
	revoked := withRevocations(e, revoke("jti", "t-1", time.Now().Add(time.Hour)))
	revoked.Policies[0].Rego = allow.Policies[0].Rego
	r.load(revoked)
	r.get("/api/sales/report", tok).mustRevoke(t, tok)
}

// A policy whose Rego reads a request header is never cached: the header
// decides each request.
func TestDecisionCacheOffWhenRegoReadsMore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRego(regoTenantHeader, 0))
	if got := testutil.ToFloat64(e.metrics.DecisionCacheEnabled.WithLabelValues("fn")); got != 0 {
		t.Fatalf("got decision cache enabled %v, want 0", got)
	}
	tok := e.mint(map[string]any{"department": "sales"})
	e.get("/api/x", append(bearer(tok), "X-Tenant", "sales")...).mustForward(t)
	e.get("/api/x", append(bearer(tok), "X-Tenant", "hr")...).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
	e.get("/api/x", append(bearer(tok), "X-Tenant", "sales")...).mustForward(t)
	if decisionHits(e)+decisionMisses(e) != 0 {
		t.Fatalf("got %v lookups, want none", decisionHits(e)+decisionMisses(e))
	}
	if !strings.Contains(e.logs.String(), `"why":"p.rego:5: reads input.request.headers`) {
		t.Fatalf("the log does not say why the policy is not cached:\n%s", e.logs.String())
	}
}

// Errors are never cached, and without the token cache a JWT's identity is
// new on every request, so its decisions are not kept (API keys still are).
func TestDecisionCacheSkips(t *testing.T) {
	t.Parallel()
	t.Run("undefined", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withRego("package authgate.authz\n\ndecision if input.request.method == \"POST\"\n", 0))
		tok := e.mint(nil)
		for range 2 {
			e.get("/api/x", bearer(tok)...).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoUndefined)
		}
		if decisionHits(e) != 0 {
			t.Fatalf("got %v hits, want 0: an undefined result was cached", decisionHits(e))
		}
	})
	t.Run("no token cache", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withRego(regoMethodDepartment, 0), func(c *config.ProxyConfig) { c.TokenCache.MaxEntries = -1 })
		tok := e.mint(map[string]any{"department": "sales"})
		for range 3 {
			decided(t, e.get("/api/sales/report", bearer(tok)...))
		}
		if n := decisionHits(e) + decisionMisses(e); n != 0 {
			t.Fatalf("got %v lookups for fresh identities, want none", n)
		}
		for range 2 {
			e.get("/api/sales/report", "X-API-Key", partnerKey).mustDeny(t, http.StatusForbidden, gateway.ReasonRegoDenied)
		}
		if decisionHits(e) != 1 {
			t.Fatalf("got %v hits, want 1 for the API key", decisionHits(e))
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withRego(regoMethodDepartment, 0), func(c *config.ProxyConfig) { c.DecisionCache.MaxEntries = -1 })
		tok := e.mint(map[string]any{"department": "sales"})
		for range 2 {
			decided(t, e.get("/api/sales/report", bearer(tok)...))
		}
		if n := decisionHits(e) + decisionMisses(e); n != 0 {
			t.Fatalf("got %v lookups, want none", n)
		}
	})
}
