package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/proxy/config"
)

const regoDepartments = `package authgate.authz

import rego.v1

default decision := {"allow": false, "reason": "department mismatch"}

decision := {"allow": true, "headers": {"X-Authgate-Department": input.identity.claims.department}} if {
	input.identity.claims.department == input.request.segments[1]
}
`

func withRego(src string, timeout time.Duration) envOption {
	return func(c *config.ProxyConfig) {
		c.Policies[0].Rego = &config.Rego{Modules: []config.RegoModule{{Name: "p.rego", Source: src}}, Timeout: config.D(timeout)}
	}
}

func TestRegoDecisions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRego(regoDepartments, 0))
	t.Run("allow with headers", func(t *testing.T) {
		rec := e.get("/api/sales/report", bearer(e.mint(map[string]any{"department": "sales"}))...).mustForward(t)
		if got := header(rec, "X-Authgate-Department"); len(got) != 1 || got[0] != "sales" {
			t.Fatalf("got department header %v, want [sales]", got)
		}
	})
	t.Run("deny with reason", func(t *testing.T) {
		r := e.get("/api/sales/report", bearer(e.mint(map[string]any{"department": "eng"}))...)
		r.mustDeny(t, http.StatusForbidden, "rego_denied")
		if r.body.Description != "department mismatch" {
			t.Fatalf("got description %q, want the policy's reason", r.body.Description)
		}
	})
	t.Run("public routes skip rego", func(t *testing.T) {
		e.get("/healthz").mustForward(t)
	})
}

// Class 8: policy engine faults all deny.
func TestRegoFaultsDeny(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		timeout   time.Duration
		path      string
		reason    string
	}{
		{"undefined", "package authgate.authz\n\nimport rego.v1\n\ndecision := true if { false }\n", 0, "/api/x", "rego_undefined"},
		{"builtin error on attacker input", "package authgate.authz\n\nimport rego.v1\n\ndecision := to_number(input.request.segments[1]) > 0\n", 0, "/api/notanumber", "rego_error"},
		{"wrong result type", "package authgate.authz\n\ndecision := \"yes\"\n", 0, "/api/x", "rego_invalid_result"},
		{"timeout", "package authgate.authz\n\nimport rego.v1\n\ndecision := count([x | some i in numbers.range(1, 100000000); x := i * 2]) > 0\n", time.Millisecond, "/api/x", "rego_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withRego(tt.src, tt.timeout))
			r := e.get(tt.path, bearer(e.mint(nil))...)
			r.mustDeny(t, http.StatusForbidden, tt.reason)
			if got := testutil.ToFloat64(e.metrics.RegoEvalErrors.WithLabelValues("fn", tt.reason)); got != 1 {
				t.Fatalf("got %v rego errors counted, want 1", got)
			}
		})
	}
}

func TestAuditModeForwardsAndRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.ProxyConfig) {
		c.Policies = append(c.Policies, config.Policy{
			Name: "shadow", Mode: config.ModeAudit,
			Authentication: config.Authentication{Issuers: []string{"dev"}},
			Routes:         []config.Route{{Name: "gold", Paths: []string{"/orders/**"}, RequireClaims: []config.ClaimRequirement{{Claim: "tier", Values: []string{"gold"}}}}},
		})
	})
	e.get("/orders/1", bearer(e.mint(map[string]any{"tier": "silver"}))...).mustForward(t)
	if got := testutil.ToFloat64(e.metrics.RequestsTotal.WithLabelValues("shadow", "gold", "audit_deny", "claim_mismatch")); got != 1 {
		t.Fatalf("got %v audit denials, want 1", got)
	}
	if !strings.Contains(e.logs.String(), "audit_denials") {
		t.Fatalf("decision log has no audit denial: %s", e.logs.String())
	}
	// The enforcing policy still enforces.
	e.get("/orders/1").mustDeny(t, http.StatusUnauthorized, "missing_credential")
}

func TestUnselectedWorkloadIsDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.ProxyConfig) {
		c.Policies[0].Selector = config.Selector{MatchLabels: map[string]string{"app": "other"}}
	})
	e.get("/healthz").mustDeny(t, http.StatusForbidden, "no_policy")
}

func TestNoRouteIsDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.get("/unknown", bearer(e.mint(nil))...).mustDeny(t, http.StatusForbidden, "no_route")
}

func TestScopesAndMFA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.get("/orders/1", bearer(e.mint(map[string]any{"scope": "profile"}))...).mustDeny(t, 403, "missing_scope")
	e.get("/admin/x", bearer(e.mint(nil))...).mustDeny(t, 403, "mfa_required")
	e.get("/admin/x", bearer(e.mint(map[string]any{"amr": []string{"mfa"}}))...).mustForward(t)
	// API keys carry no MFA evidence.
	e.get("/admin/x", "X-API-Key", partnerKey).mustDeny(t, 403, "mfa_required")
}

// A sensitive route with maxAge: the user must have authenticated within
// it (auth_time), checked on every request, for a cached token too; the
// challenge names max_age and the acr the route accepts.
func TestMFAFreshness(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	e := newEnv(t, func(c *config.ProxyConfig) {
		c.Policies[0].Routes = append([]config.Route{{Name: "payout", Paths: []string{"/payout/**"},
			RequireMFA: &config.MFA{AMR: []string{"otp"}, ACR: []string{"urn:gold"}, MaxAge: config.D(5 * time.Minute)}}}, c.Policies[0].Routes...)
	})
	e.now = func() time.Time { return time.Unix(0, now.Load()) }
	t0 := time.Unix(0, now.Load())
	long := map[string]any{"amr": []string{"otp"}, "exp": t0.Add(time.Hour).Unix()}
	with := func(authTime time.Time) map[string]any {
		m := map[string]any{"auth_time": authTime.Unix()}
		for k, v := range long {
			m[k] = v
		}
		return m
	}
	fresh := e.mint(with(t0.Add(-time.Minute)))
	e.get("/payout/1", bearer(fresh)...).mustForward(t)
	e.get("/payout/1", bearer(e.mint(map[string]any{"auth_time": t0.Unix()}))...).mustDeny(t, 403, "mfa_required") // no amr
	stale := e.get("/payout/1", bearer(e.mint(with(t0.Add(-6*time.Minute))))...)
	stale.mustDeny(t, 401, "mfa_too_old")
	ch := stale.header.Get("WWW-Authenticate")
	for _, want := range []string{`error="insufficient_user_authentication"`, `max_age=300`, `acr_values="urn:gold"`} {
		if !strings.Contains(ch, want) {
			t.Fatalf("WWW-Authenticate %q lacks %s", ch, want)
		}
	}
	e.get("/payout/1", bearer(e.mint(long))...).mustDeny(t, 401, "mfa_too_old") // no auth_time
	// The fresh token, now cached, ages past maxAge: refused, though still valid.
	now.Add(int64(5 * time.Minute))
	e.get("/payout/1", bearer(fresh)...).mustDeny(t, 401, "mfa_too_old")
	e.get("/orders/1", bearer(fresh)...).mustForward(t) // other routes do not ask
}

func TestIdentityHeadersInjected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.ProxyConfig) { c.Policies[0].Headers.ClaimsJSON = "X-Authgate-Claims" })
	rec := e.get("/orders/1", bearer(e.mint(map[string]any{"scope": "orders:read orders:write"}))...).mustForward(t)
	want := map[string]string{
		"X-Authgate-Subject":         "alice",
		"X-Authgate-Issuer":          e.issuer.URL(),
		"X-Authgate-Credential-Kind": "jwt",
		"X-Authgate-Scopes":          "orders:read orders:write",
		"X-Authgate-Email":           "alice@example.com",
	}
	for k, v := range want {
		if got := header(rec, k); len(got) != 1 || got[0] != v {
			t.Errorf("got %s %v, want [%s]", k, got, v)
		}
	}
	if got := header(rec, "X-Authgate-Claims"); len(got) != 1 || len(got[0]) < 20 {
		t.Errorf("got claims header %v, want base64url JSON", got)
	}
}

func TestForwardAuthorizationWhenAsked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.ProxyConfig) { c.Policies[0].Headers.ForwardAuthorization = true })
	tok := e.mint(nil)
	rec := e.get("/orders/1", bearer(tok)...).mustForward(t)
	if got := header(rec, "Authorization"); len(got) != 1 || got[0] != "Bearer "+tok {
		t.Fatalf("got Authorization %v, want it forwarded", got)
	}
}

// Class 7: resource exhaustion.
func TestResourceLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Run("oversized token", func(t *testing.T) {
		e.get("/orders/1", bearer(strings.Repeat("a", 9000))...).mustDeny(t, 401, "")
	})
	t.Run("a million dots", func(t *testing.T) {
		e.get("/orders/1", bearer(strings.Repeat(".", 7000))...).mustDeny(t, 401, "")
	})
	t.Run("large body with a bad token is refused without reading it", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() { _, _ = pw.Write(make([]byte, 64<<10)) }() // then never finishes the body
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.proxy.URL+"/orders/1", pr)
		req.Header.Set("Authorization", "Bearer bad.bad.bad")
		e.do(req).mustDeny(t, 401, "")
	})
	t.Run("body over the cap", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.proxy.URL+"/orders/1", strings.NewReader(strings.Repeat("x", 11<<20)))
		req.Header.Set("Authorization", "Bearer "+e.mint(nil))
		e.do(req).mustDeny(t, http.StatusRequestEntityTooLarge, "body_too_large")
	})
}

func TestAuthFailureFloodIsThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.ProxyConfig) {
		c.Limits.AuthFailures = config.AuthFailureLimit{PerMinute: 6, Burst: 5}
	})
	var throttled result
	for i := 0; i < 20; i++ {
		r := e.get("/orders/1", "X-API-Key", "agk_guess_"+strings.Repeat("x", i))
		if r.status == http.StatusTooManyRequests {
			throttled = r
			break
		}
		r.mustDeny(t, 401, "")
	}
	if throttled.status != http.StatusTooManyRequests {
		t.Fatal("got no 429 after 20 bad credentials, want throttling")
	}
	if throttled.header.Get("Retry-After") == "" {
		t.Fatal("got 429 without Retry-After")
	}
	// Random-kid floods cause no JWKS traffic while throttled (inline keys, no fetch).
	for i := 0; i < 5; i++ {
		tok := e.mint(nil, kidOpt(i))
		e.get("/orders/1", bearer(tok)...).mustDeny(t, 429, "auth_failures")
	}
	if n := e.issuer.JWKSRequests(); n != 0 {
		t.Fatalf("got %d JWKS requests caused by a flood, want 0", n)
	}
}

func TestRateLimitBySubject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.ProxyConfig) {
		c.Policies[0].RateLimits = []config.RateLimit{{Key: config.RateKeySubject, RequestsPerSecond: 0.001, Burst: 2}}
	})
	tok := e.mint(nil)
	e.get("/orders/1", bearer(tok)...).mustForward(t)
	e.get("/orders/1", bearer(tok)...).mustForward(t)
	r := e.get("/orders/1", bearer(tok)...)
	r.mustDeny(t, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("got 429 without Retry-After")
	}
	// Another subject has its own bucket.
	e.get("/orders/1", bearer(e.mint(map[string]any{"sub": "bob"}))...).mustForward(t)
}

// Class 9: the verified-token cache never outlives exp.
func TestTokenCacheHonoursExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := time.Now()
	tok := e.mint(map[string]any{"exp": start.Add(2 * time.Minute).Unix()})
	e.get("/orders/1", bearer(tok)...).mustForward(t)
	e.get("/orders/1", bearer(tok)...).mustForward(t)
	if hits := testutil.ToFloat64(e.metrics.TokenCache.WithLabelValues("hit")); hits < 1 {
		t.Fatalf("got %v cache hits, want at least 1", hits)
	}
	e.now = func() time.Time { return start.Add(10 * time.Minute) }
	e.get("/orders/1", bearer(tok)...).mustDeny(t, 401, "")
}

func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.mint(nil)
	e.get("/orders/1", bearer(tok)...)
	e.get("/orders/1", bearer(tok+"x")...)
	e.get("/orders/1", "X-API-Key", partnerKey)
	e.get("/orders/1", "X-API-Key", partnerKey+"wrong")
	logs := e.logs.String()
	for _, secret := range []string{tok, partnerKey, strings.Split(tok, ".")[2]} {
		if strings.Contains(logs, secret) {
			t.Fatal("a credential appears in the logs")
		}
	}
	if !strings.Contains(logs, `"decision"`) {
		t.Fatalf("no decision log lines: %s", logs)
	}
}

func TestRegoCannotOverrideVerifiedIdentity(t *testing.T) {
	t.Parallel()
	src := "package authgate.authz\n\ndecision := {\"allow\": true, \"headers\": {\"X-Authgate-Subject\": \"root\", \"X-Authgate-Team\": \"blue\"}}\n"
	e := newEnv(t, withRego(src, 0))
	rec := e.get("/api/x", bearer(e.mint(nil))...).mustForward(t)
	if got := header(rec, "X-Authgate-Subject"); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("got subject %v, want [alice]: Rego must not override verified identity", got)
	}
	if got := header(rec, "X-Authgate-Team"); len(got) != 1 || got[0] != "blue" {
		t.Fatalf("got team %v, want [blue] from Rego", got)
	}
}

func TestAuthorizationStrippedEvenWhenNotACredentialSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.get("/healthz", "Authorization", "Basic YWxpY2U6cGFzcw==").mustForward(t)
	if got := header(rec, "Authorization"); got != nil {
		t.Fatalf("got Authorization %v at the function, want it stripped", got)
	}
	// Beside an API key, any Authorization header is a second credential.
	e.get("/orders/1", "X-API-Key", partnerKey, "Authorization", "Basic YWxpY2U6cGFzcw==").mustDeny(t, http.StatusBadRequest, "ambiguous_credential")
}
