package config

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/proxy/cabundle"
	"github.com/authgate/authgate/proxy/headername"
	"github.com/authgate/authgate/proxy/pathpattern"
	"github.com/authgate/authgate/proxy/urlrule"
)

// supportedAlgorithms are the JWS algorithms an issuer may allow.
var supportedAlgorithms = [...]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// SupportedAlgorithms returns the JWS algorithms an issuer may allow ("none"
// and HMAC never are), a fresh copy.
func SupportedAlgorithms() []string { return slices.Clone(supportedAlgorithms[:]) }

// IsSupportedAlgorithm reports whether an issuer may allow alg (exact case).
func IsSupportedAlgorithm(alg string) bool { return slices.Contains(supportedAlgorithms[:], alg) }

// Validate reports every invalid field. It has no side effects and expects a
// defaulted config.
func (c *ProxyConfig) Validate() ErrorList {
	var errs ErrorList
	if c.APIVersion != APIVersion {
		errs.add(Path{}.child("apiVersion"), "must be %q, got %q", APIVersion, c.APIVersion)
	}
	if c.Kind != Kind {
		errs.add(Path{}.child("kind"), "must be %q, got %q", Kind, c.Kind)
	}
	if c.Revision < 0 {
		errs.add(Path{}.child("revision"), "must not be negative, got %d", c.Revision)
	}
	if c.DefaultAction != "deny" && c.DefaultAction != "allow" {
		errs.add(Path{}.child("defaultAction"), "must be deny or allow, got %q", c.DefaultAction)
	}
	validateListen(&errs, Path{}.child("listen"), c.Listen)
	validateUpstream(&errs, Path{}.child("upstream"), c.Upstream)
	issuers := map[string]bool{}
	for i := range c.Issuers {
		p := Path{}.child("issuers").index(i)
		c.Issuers[i].validate(&errs, p)
		if issuers[c.Issuers[i].Name] {
			errs.add(p.child("name"), "duplicate issuer name %q", c.Issuers[i].Name)
		}
		issuers[c.Issuers[i].Name] = true
	}
	keys := c.APIKeys.validate(&errs, Path{}.child("apiKeys"))
	policies := map[string]bool{}
	for i := range c.Policies {
		p := Path{}.child("policies").index(i)
		c.Policies[i].validate(&errs, p, issuers, keys, c.APIKeys.Keys)
		c.validateRevocations(&errs, p, &c.Policies[i])
		if policies[c.Policies[i].Name] {
			errs.add(p.child("name"), "duplicate policy name %q", c.Policies[i].Name)
		}
		policies[c.Policies[i].Name] = true
	}
	c.validateHeaderCollisions(&errs)
	c.validateSourcePrefixes(&errs)
	c.Limits.validate(&errs, Path{}.child("limits"))
	validateTrustedProxies(&errs, Path{}.child("trustedProxies"), c.TrustedProxies)
	if c.TokenCache.MaxEntries < -1 {
		errs.add(Path{}.child("tokenCache", "maxEntries"), "must be -1 (disabled) or positive")
	}
	if c.TokenCache.TTL.Duration < 0 {
		errs.add(Path{}.child("tokenCache", "ttl"), "must not be negative")
	}
	if c.DecisionCache.MaxEntries < -1 {
		errs.add(Path{}.child("decisionCache", "maxEntries"), "must be -1 (disabled) or positive")
	}
	if c.DecisionCache.TTL.Duration < 0 {
		errs.add(Path{}.child("decisionCache", "ttl"), "must not be negative")
	}
	if r := c.DecisionLog.SampleRate; r != nil && (*r < 0 || *r > 1) {
		errs.add(Path{}.child("decisionLog", "sampleRate"), "must be between 0 and 1, got %v", *r)
	}
	return errs
}

// reservedNormPrefix is ReservedHeaderPrefix normalised.
const reservedNormPrefix = "xauthgate"

// ParsePrefix parses an IP address or CIDR into a prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func validateListen(errs *ErrorList, p Path, l Listen) {
	if _, _, err := net.SplitHostPort(l.Address); err != nil {
		errs.add(p.child("address"), "must be host:port, got %q", l.Address)
	}
	if _, _, err := net.SplitHostPort(l.AdminAddress); err != nil {
		errs.add(p.child("adminAddress"), "must be host:port, got %q", l.AdminAddress)
	}
	if l.Address == l.AdminAddress {
		errs.add(p.child("adminAddress"), "must differ from listen.address so function traffic cannot reach it")
	}
}

func validateUpstream(errs *ErrorList, p Path, u Upstream) {
	if err := urlrule.Upstream(u.URL); err != nil {
		errs.add(p.child("url"), "%v", err)
	}
	if u.Timeout.Duration <= 0 {
		errs.add(p.child("timeout"), "must be positive")
	}
	if u.MaxIdleConns < 1 {
		errs.add(p.child("maxIdleConns"), "must be at least 1")
	}
}

func (i *Issuer) validate(errs *ErrorList, p Path) {
	if !isName(i.Name) {
		errs.add(p.child("name"), "must be 1-253 characters of [a-zA-Z0-9._/-], got %q", i.Name)
	}
	if err := urlrule.Issuer(i.IssuerURL); err != nil {
		errs.add(p.child("issuerURL"), "%v", err)
	}
	if i.JWKSURL != "" {
		if err := urlrule.JWKS(i.JWKSURL); err != nil {
			errs.add(p.child("jwksURL"), "%v", err)
		}
	}
	if i.JWKS == nil && i.JWKSURL == "" && (i.Discovery == nil || !*i.Discovery) {
		errs.add(p, "needs jwks, jwksURL or discovery to find keys")
	}
	if i.JWKS != nil {
		validateJWKS(errs, p.child("jwks"), i.JWKS)
	}
	if i.CABundle != "" {
		if _, err := cabundle.Parse(i.CABundle); err != nil {
			errs.add(p.child("caBundle"), "%v", err)
		}
	}
	if len(i.Audiences) == 0 && len(i.ClientIDs) == 0 {
		errs.add(p.child("audiences"), "at least one audience (or clientIDs) is required: a token for any client must not be accepted")
	}
	for j, a := range i.Audiences {
		if strings.TrimSpace(a) == "" {
			errs.add(p.child("audiences").index(j), "must not be empty")
		}
	}
	for j, a := range i.ClientIDs {
		if strings.TrimSpace(a) == "" {
			errs.add(p.child("clientIDs").index(j), "must not be empty")
		}
	}
	for j, a := range i.Algorithms {
		if !IsSupportedAlgorithm(a) {
			errs.add(p.child("algorithms").index(j), "unsupported algorithm %q (supported: %s)", a, strings.Join(supportedAlgorithms[:], ", "))
		}
	}
	if i.ClockSkew.Duration < 0 || i.ClockSkew.Duration > 5*time.Minute {
		errs.add(p.child("clockSkew"), "must be between 0 and 5m, got %s", i.ClockSkew.Duration)
	}
	if i.MaxTokenAge.Duration < 0 {
		errs.add(p.child("maxTokenAge"), "must not be negative")
	}
	for j, rc := range i.RequiredClaims {
		if !isClaimPath(rc.Claim) {
			errs.add(p.child("requiredClaims").index(j).child("claim"), "must be a dotted claim path, got %q", rc.Claim)
		}
	}
	validateSources(errs, p.child("sources"), i.Sources, true)
	for j, s := range i.ScopeClaims {
		if !isClaimPath(s) {
			errs.add(p.child("scopeClaims").index(j), "must be a dotted claim path, got %q", s)
		}
	}
	if !isClaimPath(i.RolesClaim) {
		errs.add(p.child("rolesClaim"), "must be a dotted claim path, got %q", i.RolesClaim)
	}
	f := p.child("fetch")
	if i.Fetch.Timeout.Duration <= 0 || i.Fetch.Timeout.Duration > time.Minute {
		errs.add(f.child("timeout"), "must be between 0 and 1m")
	}
	if i.Fetch.MaxBytes < 1024 || i.Fetch.MaxBytes > 16<<20 {
		errs.add(f.child("maxBytes"), "must be between 1KiB and 16MiB")
	}
	if i.Fetch.RefreshCooldown.Duration < time.Second {
		errs.add(f.child("refreshCooldown"), "must be at least 1s")
	}
	if i.Fetch.RefreshInterval.Duration < time.Second {
		errs.add(f.child("refreshInterval"), "must be at least 1s")
	}
	if i.Fetch.MaxStaleness.Duration < i.Fetch.RefreshInterval.Duration {
		errs.add(f.child("maxStaleness"), "must be at least refreshInterval")
	}
}

func validateSources(errs *ErrorList, p Path, sources []CredentialSource, allowBearer bool) {
	seen := map[string]bool{}
	for j, s := range sources {
		sp := p.index(j)
		key := s.Type + "/" + strings.ToLower(s.Name)
		if seen[key] {
			errs.add(sp, "duplicate source")
		}
		seen[key] = true
		switch s.Type {
		case SourceBearer:
			if !allowBearer {
				errs.add(sp.child("type"), "bearer is not allowed here")
			}
			if s.Name != "" || s.Prefix != "" {
				errs.add(sp, "bearer takes no name or prefix")
			}
		case SourceHeader:
			if !httpguts.ValidHeaderFieldName(s.Name) {
				errs.add(sp.child("name"), "must be a valid header name, got %q", s.Name)
			} else if headername.Protected(s.Name) {
				errs.add(sp.child("name"), "%q cannot carry a credential", s.Name)
			} else if headername.HasPrefix(s.Name, reservedNormPrefix) {
				errs.add(sp.child("name"), "%q is in the X-Authgate- namespace, which is stripped from every request", s.Name)
			}
		case SourceCookie, SourceQuery:
			if s.Name == "" || strings.ContainsAny(s.Name, " ;=,&\"\t\r\n") {
				errs.add(sp.child("name"), "must be a plain %s name, got %q", s.Type, s.Name)
			}
			if s.Prefix != "" {
				errs.add(sp.child("prefix"), "only header sources take a prefix")
			}
		default:
			errs.add(sp.child("type"), "must be bearer, header, cookie or query, got %q", s.Type)
		}
	}
}

func (pol *Policy) validate(errs *ErrorList, p Path, issuers map[string]bool, keys map[string]int, all []APIKey) {
	if !isName(pol.Name) {
		errs.add(p.child("name"), "must be 1-253 characters of [a-zA-Z0-9._/-], got %q", pol.Name)
	}
	if pol.Mode != ModeEnforce && pol.Mode != ModeAudit {
		errs.add(p.child("mode"), "must be enforce or audit, got %q", pol.Mode)
	}
	validateSelector(errs, p.child("selector"), pol.Selector)
	ap := p.child("authentication")
	for j, n := range pol.Authentication.Issuers {
		if !issuers[n] {
			errs.add(ap.child("issuers").index(j), "no issuer named %q in issuers", n)
		}
	}
	if acc := pol.Authentication.APIKeys; acc != nil {
		acc.validate(errs, ap.child("apiKeys"), pol.Name, keys, all)
	}
	hasAuthn := len(pol.Authentication.Issuers) > 0 || pol.Authentication.APIKeys != nil
	if len(pol.Routes) == 0 {
		errs.add(p.child("routes"), "at least one route is required (unmatched requests are denied)")
	}
	routeNames := map[string]bool{}
	for j := range pol.Routes {
		rp := p.child("routes").index(j)
		r := &pol.Routes[j]
		r.validate(errs, rp)
		if routeNames[r.Name] {
			errs.add(rp.child("name"), "duplicate route name %q", r.Name)
		}
		routeNames[r.Name] = true
		if !r.Public && !hasAuthn {
			errs.add(rp, "a non-public route needs the policy's authentication to name an issuer or API keys")
		}
	}
	if pol.Rego != nil {
		rg := p.child("rego")
		if len(pol.Rego.Modules) == 0 {
			errs.add(rg.child("modules"), "at least one module is required")
		}
		for j, m := range pol.Rego.Modules {
			if m.Name == "" {
				errs.add(rg.child("modules").index(j).child("name"), "is required")
			}
			if strings.TrimSpace(m.Source) == "" {
				errs.add(rg.child("modules").index(j).child("source"), "is required")
			}
		}
		if !strings.HasPrefix(pol.Rego.Query, "data.") {
			errs.add(rg.child("query"), "must be a reference starting with data., got %q", pol.Rego.Query)
		}
		if pol.Rego.Timeout.Duration <= 0 || pol.Rego.Timeout.Duration > 5*time.Second {
			errs.add(rg.child("timeout"), "must be between 0 and 5s")
		}
	}
	pol.Headers.validate(errs, p.child("headers"))
	if pol.IdentityAssertion != nil {
		pol.IdentityAssertion.validate(errs, p.child("identityAssertion"), &pol.Headers)
	}
	validateRateLimits(errs, p.child("rateLimits"), pol.RateLimits)
	pol.SharedLimits.validate(errs, p.child("sharedLimits"))
	pol.validateOverrides(errs, p)
}

func (r *Route) validate(errs *ErrorList, p Path) {
	if !isName(r.Name) {
		errs.add(p.child("name"), "must be 1-253 characters of [a-zA-Z0-9._/-], got %q", r.Name)
	}
	for j, m := range r.Methods {
		if m == "" || strings.ToUpper(m) != m || !httpguts.ValidHeaderFieldName(m) {
			errs.add(p.child("methods").index(j), "must be an upper-case HTTP method, got %q", m)
		}
	}
	for j, pat := range r.Paths {
		if _, err := pathpattern.Parse(pat); err != nil {
			errs.add(p.child("paths").index(j), "%v", err)
		}
	}
	if r.Public && (len(r.RequireScopes) > 0 || len(r.RequireRoles) > 0 || len(r.RequireClaims) > 0 || r.RequireMFA != nil) {
		errs.add(p.child("public"), "a public route cannot require scopes, roles, claims or MFA")
	}
	if m := r.RequireMFA; m != nil {
		// They are named in the step-up challenge's acr_values.
		for j, v := range m.ACR {
			if !isChallengeToken(v) {
				errs.add(p.child("requireMFA", "acr").index(j), "must be visible ASCII without spaces, quotes or backslashes, got %q", v)
			}
		}
	}
	if m := r.RequireMFA; m != nil && m.MaxAge.Duration != 0 && (m.MaxAge.Duration < time.Second || m.MaxAge.Duration > MaxMFAAge) {
		errs.add(p.child("requireMFA", "maxAge"), "must be between 1s and %s, got %s", MaxMFAAge, m.MaxAge.Duration)
	}
	for j, s := range r.RequireScopes {
		if !isScope(s) {
			errs.add(p.child("requireScopes").index(j), "must be a non-empty scope without spaces, got %q", s)
		}
	}
	for j, s := range r.RequireRoles {
		if strings.TrimSpace(s) == "" {
			errs.add(p.child("requireRoles").index(j), "must not be empty")
		}
	}
	for j, rc := range r.RequireClaims {
		if !isClaimPath(rc.Claim) {
			errs.add(p.child("requireClaims").index(j).child("claim"), "must be a dotted claim path, got %q", rc.Claim)
		}
	}
}

func (h *IdentityHeaders) validate(errs *ErrorList, p Path) {
	check := func(fp Path, name string, required bool) {
		if name == "" {
			if required {
				errs.add(fp, "is required")
			}
			return
		}
		if !httpguts.ValidHeaderFieldName(name) {
			errs.add(fp, "must be a valid header name, got %q", name)
		} else if headername.Protected(name) {
			errs.add(fp, "%q cannot be used as an identity header", name)
		}
	}
	check(p.child("subject"), h.Subject, true)
	check(p.child("issuer"), h.Issuer, true)
	check(p.child("kind"), h.Kind, true)
	check(p.child("scopes"), h.Scopes, true)
	check(p.child("claimsJSON"), h.ClaimsJSON, false)
	for j, c := range h.Claims {
		check(p.child("claims").index(j).child("header"), c.Header, true)
		if !isClaimPath(c.Claim) {
			errs.add(p.child("claims").index(j).child("claim"), "must be a dotted claim path, got %q", c.Claim)
		}
	}
}

func (a *IdentityAssertion) validate(errs *ErrorList, p Path, h *IdentityHeaders) {
	switch {
	case !httpguts.ValidHeaderFieldName(a.Header):
		errs.add(p.child("header"), "must be a valid header name, got %q", a.Header)
	case !headername.HasPrefix(a.Header, reservedNormPrefix):
		errs.add(p.child("header"), "must start with %s (a client's copy is then stripped in every spelling), got %q", ReservedHeaderPrefix, a.Header)
	default:
		for _, n := range identityHeaderNames(h) {
			if n != "" && headername.Equivalent(n, a.Header) {
				errs.add(p.child("header"), "%q is also an identity header of this policy", a.Header)
			}
		}
	}
	if a.TTL.Duration < MinAssertionTTL || a.TTL.Duration > MaxAssertionTTL {
		errs.add(p.child("ttl"), "must be between %s and %s, got %s", MinAssertionTTL, MaxAssertionTTL, a.TTL.Duration)
	}
	if strings.TrimSpace(a.Issuer) == "" {
		errs.add(p.child("issuer"), "is required")
	}
	if strings.TrimSpace(a.Audience) == "" {
		errs.add(p.child("audience"), "is required")
	}
	for j, c := range a.Claims {
		if !isClaimPath(c) {
			errs.add(p.child("claims").index(j), "must be a dotted claim path, got %q", c)
		}
	}
}

func identityHeaderNames(h *IdentityHeaders) []string {
	out := []string{h.Subject, h.Issuer, h.Kind, h.Scopes, h.ClaimsJSON}
	for _, c := range h.Claims {
		out = append(out, c.Header)
	}
	return out
}

func validateRateLimits(errs *ErrorList, p Path, rls []RateLimit) {
	for j, rl := range rls {
		rp := p.index(j)
		switch rl.Key {
		case RateKeyIP, RateKeySubject, RateKeyAPIKey, RateKeyRoute:
		default:
			errs.add(rp.child("key"), "must be ip, subject, apikey or route, got %q", rl.Key)
		}
		if rl.RequestsPerSecond <= 0 {
			errs.add(rp.child("requestsPerSecond"), "must be a positive decimal number such as 10 or 0.5, got %v", rl.RequestsPerSecond)
		}
		if rl.Burst < 1 {
			errs.add(rp.child("burst"), "must be at least 1")
		}
	}
}

func (s *SharedLimits) validate(errs *ErrorList, p Path) {
	if s == nil {
		return
	}
	switch s.OnUnavailable {
	case SharedFallbackLocal, SharedFallbackDeny:
	default:
		errs.add(p.child("onUnavailable"), "must be local or deny, got %q", s.OnUnavailable)
	}
}

func (l *Limits) validate(errs *ErrorList, p Path) {
	if l.MaxHeaderBytes < 1024 || l.MaxHeaderBytes > 1<<20 {
		errs.add(p.child("maxHeaderBytes"), "must be between 1KiB and 1MiB")
	}
	if l.MaxTokenBytes < 256 || l.MaxTokenBytes > l.MaxHeaderBytes {
		errs.add(p.child("maxTokenBytes"), "must be between 256 and maxHeaderBytes")
	}
	if l.MaxBodyBytes < -1 {
		errs.add(p.child("maxBodyBytes"), "must be -1 (unlimited) or positive")
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"readHeaderTimeout", l.ReadHeaderTimeout}, {"readTimeout", l.ReadTimeout}, {"idleTimeout", l.IdleTimeout}} {
		if d.v.Duration <= 0 {
			errs.add(p.child(d.name), "must be positive")
		}
	}
	validateRateLimits(errs, p.child("rateLimits"), l.RateLimits)
	l.SharedLimits.validate(errs, p.child("sharedLimits"))
	if l.AuthFailures.PerMinute < -1 {
		errs.add(p.child("authFailures", "perMinute"), "must be -1 (disabled) or positive")
	}
	if l.AuthFailures.Burst < 1 {
		errs.add(p.child("authFailures", "burst"), "must be at least 1")
	}
}

func validateSelector(errs *ErrorList, p Path, s Selector) {
	for j, e := range s.MatchExpressions {
		ep := p.child("matchExpressions").index(j)
		if e.Key == "" {
			errs.add(ep.child("key"), "is required")
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				errs.add(ep.child("values"), "must not be empty for %s", e.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) != 0 {
				errs.add(ep.child("values"), "must be empty for %s", e.Operator)
			}
		default:
			errs.add(ep.child("operator"), "must be In, NotIn, Exists or DoesNotExist, got %q", e.Operator)
		}
	}
}

func isName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '/') {
			return false
		}
	}
	return true
}

func isScope(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n\x00")
}

func isClaimPath(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	return !strings.ContainsAny(s, " \t\r\n\x00")
}

// isChallengeToken reports whether v can stand inside a quoted
// WWW-Authenticate parameter as one space-separated value.
func isChallengeToken(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
