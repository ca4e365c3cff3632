package config

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Default values.
const (
	DefaultAddress          = ":8090"
	DefaultAdminAddress     = ":8091"
	DefaultRegoQuery        = "data.authgate.authz.decision"
	DefaultAPIKeyHeader     = "X-API-Key" //nolint:gosec // a header name, not a credential
	DefaultSubjectHeader    = "X-Authgate-Subject"
	DefaultIssuerHeader     = "X-Authgate-Issuer"
	DefaultKindHeader       = "X-Authgate-Credential-Kind"
	DefaultScopesHeader     = "X-Authgate-Scopes"
	DefaultMaxHeaderBytes   = 32 << 10
	DefaultMaxTokenBytes    = 8 << 10
	DefaultMaxBodyBytes     = 10 << 20
	DefaultTokenCacheSize   = 10000
	DefaultDecisionCache    = 10000
	DefaultJWKSMaxBytes     = 1 << 20
	DefaultUpstreamIdleConn = 256
)

// defaultAlgorithms are accepted when an issuer lists none.
var defaultAlgorithms = [...]string{"RS256", "ES256"}

// DefaultAlgorithms returns the algorithms accepted when an issuer lists
// none, a fresh copy: the one default the proxy and the controller share.
func DefaultAlgorithms() []string { return slices.Clone(defaultAlgorithms[:]) }

// DefaultMFAAMR are amr values accepted as multi-factor evidence.
var defaultMFAAMR = []string{"mfa", "otp", "hwk", "swk", "fido"}

// Default fills every unset field with its documented default. It is
// idempotent and has no side effects beyond the receiver.
func (c *ProxyConfig) Default() {
	if c.DefaultAction == "" {
		c.DefaultAction = "deny"
	}
	setStr(&c.Listen.Address, DefaultAddress)
	setStr(&c.Listen.AdminAddress, DefaultAdminAddress)
	setDur(&c.Upstream.Timeout, 60*time.Second)
	setInt(&c.Upstream.MaxIdleConns, DefaultUpstreamIdleConn)
	for i := range c.Issuers {
		c.Issuers[i].Default()
	}
	for i := range c.APIKeys.Keys {
		setStr(&c.APIKeys.Keys[i].Subject, c.APIKeys.Keys[i].Name)
	}
	if len(c.APIKeys.Sources) == 0 && len(c.APIKeys.Keys) > 0 {
		c.APIKeys.Sources = []CredentialSource{{Type: SourceHeader, Name: DefaultAPIKeyHeader}}
	}
	for i := range c.Policies {
		c.Policies[i].Default()
	}
	c.Limits.Default()
	setInt(&c.TokenCache.MaxEntries, DefaultTokenCacheSize)
	setDur(&c.TokenCache.TTL, 5*time.Minute)
	setInt(&c.DecisionCache.MaxEntries, DefaultDecisionCache)
	setDur(&c.DecisionCache.TTL, 5*time.Minute)
	if c.DecisionLog.SampleRate == nil {
		one := 1.0
		c.DecisionLog.SampleRate = &one
	}
}

// Default fills an issuer's unset fields.
func (i *Issuer) Default() {
	if len(i.Algorithms) == 0 {
		i.Algorithms = DefaultAlgorithms()
	}
	setDur(&i.ClockSkew, 30*time.Second)
	if len(i.Sources) == 0 {
		i.Sources = []CredentialSource{{Type: SourceBearer}}
	}
	if len(i.ScopeClaims) == 0 {
		i.ScopeClaims = []string{"scope", "scp"}
	}
	setStr(&i.RolesClaim, "roles")
	if i.Discovery == nil {
		d := i.JWKS == nil && i.JWKSURL == ""
		i.Discovery = &d
	}
	setDur(&i.Fetch.Timeout, 5*time.Second)
	if i.Fetch.MaxBytes == 0 {
		i.Fetch.MaxBytes = DefaultJWKSMaxBytes
	}
	setDur(&i.Fetch.RefreshCooldown, 30*time.Second)
	setDur(&i.Fetch.RefreshInterval, 15*time.Minute)
	setDur(&i.Fetch.MaxStaleness, 24*time.Hour)
}

// Default fills a policy's unset fields; unnamed routes are named by index.
func (pol *Policy) Default() {
	setStr(&pol.Mode, ModeEnforce)
	for i := range pol.Routes {
		r := &pol.Routes[i]
		setStr(&r.Name, fmt.Sprintf("route-%d", i))
		if r.RequireMFA != nil && len(r.RequireMFA.AMR) == 0 && len(r.RequireMFA.ACR) == 0 {
			r.RequireMFA.AMR = append([]string(nil), defaultMFAAMR...)
		}
	}
	if pol.Rego != nil {
		setStr(&pol.Rego.Query, DefaultRegoQuery)
		setDur(&pol.Rego.Timeout, 50*time.Millisecond)
	}
	h := &pol.Headers
	setStr(&h.Subject, DefaultSubjectHeader)
	setStr(&h.Issuer, DefaultIssuerHeader)
	setStr(&h.Kind, DefaultKindHeader)
	setStr(&h.Scopes, DefaultScopesHeader)
	for i := range pol.RateLimits {
		pol.RateLimits[i].Default()
	}
	pol.SharedLimits.Default()
	if a := pol.IdentityAssertion; a != nil {
		setStr(&a.Header, DefaultAssertionHeader)
		setDur(&a.TTL, DefaultAssertionTTL)
	}
}

// Default sets Burst from the rate.
func (r *RateLimit) Default() {
	if r.Burst == 0 {
		r.Burst = int(math.Ceil(r.RequestsPerSecond))
	}
}

// Default fills limits.
func (l *Limits) Default() {
	setInt(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setInt(&l.MaxTokenBytes, DefaultMaxTokenBytes)
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDur(&l.ReadHeaderTimeout, 10*time.Second)
	setDur(&l.ReadTimeout, 60*time.Second)
	setDur(&l.IdleTimeout, 120*time.Second)
	for i := range l.RateLimits {
		l.RateLimits[i].Default()
	}
	setInt(&l.AuthFailures.PerMinute, 60)
	setInt(&l.AuthFailures.Burst, 20)
	l.SharedLimits.Default()
}

// Default sets the fallback; a nil SharedLimits stays nil (local buckets).
func (s *SharedLimits) Default() {
	if s != nil {
		setStr(&s.OnUnavailable, SharedFallbackLocal)
	}
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if p.Duration == 0 {
		p.Duration = v
	}
}
