// Package config defines ProxyConfig, the versioned configuration of
// authgate-proxy. It has no Kubernetes imports so the proxy can run from a
// plain file; the controller renders exactly this type. Struct-valued and
// duration fields are tagged omitzero, so an encoded config leaves out what
// would only restate a zero value (an empty struct, "0s").
package config

import (
	"slices"
	"time"
)

const (
	// APIVersion is the only accepted apiVersion.
	APIVersion = "authgate.dev/v1alpha1"
	// Kind is the only accepted kind.
	Kind = "ProxyConfig"
	// ReservedHeaderPrefix is stripped from every client request.
	ReservedHeaderPrefix = "X-Authgate-"
)

// ProxyConfig is the whole configuration of one authgate-proxy.
type ProxyConfig struct {
	// APIVersion must be "authgate.dev/v1alpha1".
	APIVersion string `json:"apiVersion"`
	// Kind must be "ProxyConfig".
	Kind string `json:"kind"`
	// Revision orders the bundles the controller writes: it increases with
	// every change of a namespace's bundle. A sidecar never replaces the
	// configuration it enforces with one of a lower revision, whichever way
	// it arrives (push channel or mounted file), so a file the kubelet
	// projects late cannot undo a pushed change. 0 (omitted) for files
	// written by hand.
	Revision int64 `json:"revision,omitempty"`
	// Listen holds the addresses the proxy serves on.
	Listen Listen `json:"listen,omitzero"`
	// Upstream is the function the proxy forwards to.
	Upstream Upstream `json:"upstream"`
	// Issuers are the JWT issuers policies may accept, referenced by name.
	Issuers []Issuer `json:"issuers,omitempty"`
	// APIKeys configures API-key authentication.
	APIKeys APIKeys `json:"apiKeys,omitzero"`
	// Policies are the authorization policies; only those whose selector
	// matches the workload's labels apply.
	Policies []Policy `json:"policies,omitempty"`
	// DefaultAction applies when no policy selects the workload: "deny"
	// (default, fail closed) or "allow".
	DefaultAction string `json:"defaultAction,omitempty"`
	// Limits bound what a client may send and how fast.
	Limits Limits `json:"limits,omitzero"`
	// TrustedProxies lists peer addresses or CIDRs whose X-Forwarded-* and
	// X-Request-Id headers are trusted. Empty by default: nobody is trusted.
	// The proxy's --trusted-proxies flag adds to this list (the union of
	// both applies); a selecting policy's clientIdentity.trustedProxies
	// replaces both for its workloads. A prefix of length 0 (trust every
	// address) is refused.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// TokenCache bounds the verified-token cache.
	TokenCache TokenCache `json:"tokenCache,omitzero"`
	// DecisionCache bounds the Rego decision cache.
	DecisionCache DecisionCache `json:"decisionCache,omitzero"`
	// DecisionLog configures the per-request decision log line.
	DecisionLog DecisionLog `json:"decisionLog,omitzero"`
}

// Listen holds listen addresses.
type Listen struct {
	// Address is where function traffic is served. Default ":8090".
	Address string `json:"address,omitempty"`
	// AdminAddress serves /healthz, /readyz and /metrics. It must differ from
	// Address. Default ":8091".
	AdminAddress string `json:"adminAddress,omitempty"`
}

// Upstream is the protected function.
type Upstream struct {
	// URL of the function, normally on localhost, e.g. "http://127.0.0.1:8080".
	// Only http is supported; the path must be empty.
	URL string `json:"url"`
	// H2C speaks cleartext HTTP/2 to the upstream (Knative h2c revisions).
	H2C bool `json:"h2c,omitempty"`
	// Timeout bounds waiting for the upstream's response headers. Default 60s.
	Timeout Duration `json:"timeout,omitzero"`
	// MaxIdleConns is the keep-alive pool size to the upstream. Default 256.
	MaxIdleConns int `json:"maxIdleConns,omitempty"`
}

// Issuer is one trusted JWT issuer.
type Issuer struct {
	// Name identifies the issuer inside this config; policies refer to it.
	Name string `json:"name"`
	// IssuerURL must equal the token's iss claim exactly.
	IssuerURL string `json:"issuerURL"`
	// JWKSURL fetches keys from this URL instead of OIDC discovery.
	JWKSURL string `json:"jwksURL,omitempty"`
	// JWKS is an inline JSON Web Key Set (public keys only). When set, the
	// proxy verifies without any network call; JWKSURL or discovery is used
	// only to refresh on an unknown key id.
	JWKS *JSONWebKeySet `json:"jwks,omitempty"`
	// Discovery enables OIDC discovery (issuerURL +
	// /.well-known/openid-configuration) when neither JWKS nor JWKSURL is set.
	// Default true in that case.
	Discovery *bool `json:"discovery,omitempty"`
	// Audiences: the token's aud (string or array) must contain one of them.
	// Required unless ClientIDs is set.
	Audiences []string `json:"audiences,omitempty"`
	// ClientIDs: the token's client_id claim must be one of them (Cognito-style
	// access tokens that carry no aud).
	ClientIDs []string `json:"clientIDs,omitempty"`
	// Algorithms allowed for signatures. Default [RS256, ES256]. "none" and
	// HMAC algorithms are refused.
	Algorithms []string `json:"algorithms,omitempty"`
	// ClockSkew tolerated on exp, nbf and iat. Default 30s, at most 5m.
	ClockSkew Duration `json:"clockSkew,omitzero"`
	// MaxTokenAge rejects tokens whose iat is older than this; 0 disables.
	MaxTokenAge Duration `json:"maxTokenAge,omitzero"`
	// RequireIAT rejects tokens without an iat claim.
	RequireIAT bool `json:"requireIAT,omitempty"`
	// Type, when set, must equal the JOSE typ header (case-insensitive, an
	// "application/" prefix ignored), e.g. "at+jwt".
	Type string `json:"type,omitempty"`
	// RequiredClaims must be present with one of the listed values.
	RequiredClaims []ClaimRequirement `json:"requiredClaims,omitempty"`
	// Sources lists where the token may be presented. Default: the
	// Authorization Bearer header.
	Sources []CredentialSource `json:"sources,omitempty"`
	// ScopeClaims names the claims read as scopes (space-separated string or
	// array). Default ["scope", "scp"].
	ScopeClaims []string `json:"scopeClaims,omitempty"`
	// RolesClaim is a dotted path to the roles list. Default "roles".
	RolesClaim string `json:"rolesClaim,omitempty"`
	// Fetch tunes JWKS and discovery fetching.
	Fetch JWKSFetch `json:"fetch,omitzero"`
	// CABundle is PEM: one or more CERTIFICATE blocks that verify the TLS
	// certificate of the discovery document and JWKS URL instead of the
	// system roots, which are then not trusted for this issuer.
	CABundle string `json:"caBundle,omitempty"`
}

// JWKSFetch tunes remote key fetching.
type JWKSFetch struct {
	// Timeout of one fetch. Default 5s.
	Timeout Duration `json:"timeout,omitzero"`
	// MaxBytes caps the response body. Default 1 MiB.
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// RefreshCooldown is the window of the limit on fetches triggered by an
	// unknown key id: while usable keys are loaded, at most 3 such fetches
	// start in any RefreshCooldown, so a key rotated in right after a fetch
	// is picked up at once and a flood of random key ids costs at most 3
	// fetches. While no usable key is loaded (cold start, stale keys) they
	// are spaced 250ms apart instead and the background refresh retries
	// with a backoff of at most 1s. Default 30s.
	RefreshCooldown Duration `json:"refreshCooldown,omitzero"`
	// RefreshInterval refreshes the key set in the background. Default 15m.
	RefreshInterval Duration `json:"refreshInterval,omitzero"`
	// MaxStaleness is how long the last good key set is used after refreshes
	// fail. Inline keys never go stale. Default 24h.
	MaxStaleness Duration `json:"maxStaleness,omitzero"`
}

// JSONWebKeySet is an RFC 7517 key set kept as raw JSON keys.
type JSONWebKeySet struct {
	// Keys are the JSON Web Keys.
	Keys []RawJSON `json:"keys"`
}

// ClaimRequirement requires a claim (dotted path) to hold one of Values. A
// list claim matches when any element matches. Empty Values only requires
// presence.
type ClaimRequirement struct {
	// Claim is a dotted path into the verified claims, e.g. "org.tier" or
	// "kubernetes.io.namespace" (a key containing dots is matched whole).
	Claim string `json:"claim"`
	// Values accepted; compared as strings.
	Values []string `json:"values,omitempty"`
}

// Credential source types.
const (
	SourceBearer = "bearer"
	SourceHeader = "header"
	SourceCookie = "cookie"
	SourceQuery  = "query"
)

// CredentialSource says where a credential is read from.
type CredentialSource struct {
	// Type is one of bearer, header, cookie, query.
	Type string `json:"type"`
	// Name of the header, cookie or query parameter. Unused for bearer.
	Name string `json:"name,omitempty"`
	// Prefix stripped from a header value, e.g. "Token " (case-insensitive).
	Prefix string `json:"prefix,omitempty"`
}

// APIKeys configures API-key authentication.
type APIKeys struct {
	// Sources lists where keys are read. Default: header X-API-Key.
	Sources []CredentialSource `json:"sources,omitempty"`
	// Keys are the accepted keys, by hash only.
	Keys []APIKey `json:"keys,omitempty"`
}

// APIKey is one accepted key. The plaintext never appears in config.
type APIKey struct {
	// Name identifies the key in this config; policies refer to it, and it is
	// the subject unless Subject is set.
	Name string `json:"name"`
	// Subject is the identity the key authenticates as. Default: Name.
	Subject string `json:"subject,omitempty"`
	// Hash is "sha256:" followed by the lowercase hex SHA-256 of the key.
	Hash string `json:"hash"`
	// Scopes granted to the key.
	Scopes []string `json:"scopes,omitempty"`
	// ExpiresAt, when set, rejects the key after this instant (RFC 3339).
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// Policy modes.
const (
	ModeEnforce = "enforce"
	ModeAudit   = "audit"
)

// Policy is one authorization policy.
type Policy struct {
	// Name is unique within the config (the controller uses namespace/name).
	Name string `json:"name"`
	// Version identifies the policy's revision (e.g. the AuthPolicy's
	// generation); the decision log records it with the policy name.
	Version string `json:"version,omitempty"`
	// Mode is "enforce" (default) or "audit": audit evaluates, records the
	// would-be decision and forwards anyway.
	Mode string `json:"mode,omitempty"`
	// Selector picks the workloads this policy applies to. An empty selector
	// selects every workload.
	Selector Selector `json:"selector,omitzero"`
	// Authentication says which credentials this policy accepts.
	Authentication Authentication `json:"authentication,omitzero"`
	// Routes are matched in order; the first match decides. A request that
	// matches no route is denied.
	Routes []Route `json:"routes"`
	// Rego holds the policy's modules; routes opt out with skipRego.
	Rego *Rego `json:"rego,omitempty"`
	// Headers maps identity to headers for the function.
	Headers IdentityHeaders `json:"headers,omitzero"`
	// RateLimits applied to requests this policy handles.
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
	// SharedLimits, when set, makes this policy's rate limits and the
	// auth-failure throttle of the requests it handles hold across every
	// replica: their buckets live in the proxy's Redis (see SharedLimits).
	SharedLimits *SharedLimits `json:"sharedLimits,omitempty"`
	// ClientIdentity, when set, replaces how the proxy finds the client for
	// the workloads this policy selects (see ClientIdentity).
	ClientIdentity *ClientIdentity `json:"clientIdentity,omitempty"`
	// Limits, when set, replaces proxy-wide timeouts and the body limit for
	// the workloads this policy selects (see PolicyLimits).
	Limits *PolicyLimits `json:"limits,omitempty"`
	// IdentityAssertion, when set, has the proxy sign the verified identity
	// of every request this policy forwards with a credential into a
	// short-lived ES256 JWT (see IdentityAssertion).
	IdentityAssertion *IdentityAssertion `json:"identityAssertion,omitempty"`
	// Revocations refuse JWTs this policy would otherwise accept (see
	// Revocation); at most 1000. API keys are revoked by removing them
	// from apiKeys.keys.
	Revocations []Revocation `json:"revocations,omitempty"`
}

// Revocation claims and bounds.
const (
	RevokeJTI = "jti"
	RevokeSub = "sub"
	RevokeSID = "sid"
	// MaxRevocations bounds the revocations of one policy.
	MaxRevocations = 1000
	// MaxRevocationValueLen bounds a revoked value, in characters.
	MaxRevocationValueLen = 512
)

// Revocation refuses every JWT whose Claim equals Value (and, when Issuer
// is set, whose iss equals Issuer) until ExpiresAt. A refused token is
// answered 401 invalid_token, reason "revoked", also when its identity was
// cached; the proxy drops matching identities from its token cache when it
// loads the configuration.
type Revocation struct {
	// Claim is "jti" (one token), "sub" (a subject) or "sid" (a session).
	Claim string `json:"claim"`
	// Value the claim must equal exactly (a string claim, or a number as
	// written in the token).
	Value string `json:"value"`
	// Issuer, when set, limits the entry to tokens whose iss equals it; it
	// must be the issuerURL of one of the policy's issuers. Empty: every
	// issuer the policy accepts.
	Issuer string `json:"issuer,omitempty"`
	// ExpiresAt (RFC 3339) ends the entry: from then on it is ignored.
	ExpiresAt string `json:"expiresAt"`
}

// Identity assertion bounds and defaults.
const (
	DefaultAssertionHeader = "X-Authgate-Assertion"
	DefaultAssertionTTL    = 60 * time.Second
	MinAssertionTTL        = 10 * time.Second
	MaxAssertionTTL        = 5 * time.Minute
)

// IdentityAssertion is a signed copy of the verified identity for the
// function. The proxy signs it with the current key of the ring file given
// by --assertion-keys (the controller's Secret authgate-assertion-key, which
// the injector mounts); with no usable key a request it would sign is
// answered 503 and never forwarded without it.
type IdentityAssertion struct {
	// Header carrying the JWT; must start with X-Authgate-. Default
	// X-Authgate-Assertion.
	Header string `json:"header,omitempty"`
	// TTL is the JWT's lifetime, never past the credential's expiry.
	// Default 60s, between 10s and 5m.
	TTL Duration `json:"ttl,omitzero"`
	// Issuer is the JWT's iss (the controller sets authgate://<namespace>).
	Issuer string `json:"issuer"`
	// Audience is the JWT's aud (the controller defaults it to the
	// AuthPolicy's name).
	Audience string `json:"audience"`
	// Claims are dotted paths into the verified claims copied into the
	// JWT's "claims" object, keyed by path.
	Claims []string `json:"claims,omitempty"`
}

// ClientIdentity says which peers may report the client's address.
type ClientIdentity struct {
	// TrustedProxies replaces, for the workloads this policy selects, the
	// proxy's trusted proxies (the --trusted-proxies flag together with the
	// top-level trustedProxies): peer addresses or CIDRs whose
	// X-Forwarded-For the proxy walks from the right to find the client.
	// An empty list trusts nobody (the peer is the client). When several
	// policies select a workload, all of them that set it must set the same
	// set of addresses, or the configuration is refused for that workload
	// (the last good one stays in force).
	TrustedProxies []string `json:"trustedProxies"`
}

// PolicyLimits overrides proxy-wide limits for the workloads a policy
// selects. Zero fields inherit. When several policies select a workload, the
// largest timeout and the smallest body limit among those that set them
// apply.
type PolicyLimits struct {
	// UpstreamTimeout replaces upstream.timeout (and --upstream-timeout):
	// how long the function may take to send its response headers. At most
	// 1h.
	UpstreamTimeout Duration `json:"upstreamTimeout,omitzero"`
	// ReadTimeout replaces limits.readTimeout: how long the client may take
	// to send the request body, counted from when its headers were read. At
	// most 1h.
	ReadTimeout Duration `json:"readTimeout,omitzero"`
	// MaxBodyBytes replaces limits.maxBodyBytes: the largest request body,
	// 1 byte to 10 GiB.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
}

// Selector is a label selector with the semantics of Kubernetes'
// metav1.LabelSelector.
type Selector struct {
	// MatchLabels must all be present with equal values.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
	// MatchExpressions must all hold.
	MatchExpressions []SelectorRequirement `json:"matchExpressions,omitempty"`
}

// SelectorRequirement is one label expression.
type SelectorRequirement struct {
	// Key is the label key.
	Key string `json:"key"`
	// Operator is In, NotIn, Exists or DoesNotExist.
	Operator string `json:"operator"`
	// Values for In and NotIn.
	Values []string `json:"values,omitempty"`
}

// Authentication lists accepted credentials.
type Authentication struct {
	// Issuers are names from the config's issuers list.
	Issuers []string `json:"issuers,omitempty"`
	// APIKeys accepts API keys; when Keys is empty, every configured key.
	APIKeys *APIKeyAccess `json:"apiKeys,omitempty"`
}

// APIKeyAccess limits which keys a policy accepts.
type APIKeyAccess struct {
	// Keys are key names; empty means all.
	Keys []string `json:"keys,omitempty"`
	// Sources are where this policy reads API keys; a key presented
	// anywhere else is not accepted by this policy. Default: apiKeys.sources.
	Sources []CredentialSource `json:"sources,omitempty"`
	// AllowedScopes bounds the scopes of the keys this policy accepts: a
	// key it names that carries any other scope makes the config invalid.
	// Absent (null): no bound. A list, even an empty one, is a bound; the
	// controller writes the AuthPolicy's apiKeys.allowedScopes when it sets
	// one (omitzero, not omitempty, so an empty bound survives the round
	// trip).
	AllowedScopes []string `json:"allowedScopes,omitzero"`
}

// ScopesOutside returns the scopes that a bound (nil: none) does not
// allow, in their order; nil when all are allowed.
func ScopesOutside(scopes, bound []string) []string {
	if bound == nil {
		return nil
	}
	var out []string
	for _, s := range scopes {
		if !slices.Contains(bound, s) {
			out = append(out, s)
		}
	}
	return out
}

// Route is a set of requests and the rules they must satisfy.
type Route struct {
	// Name appears in metrics and logs. Defaults to "route-<index>".
	Name string `json:"name,omitempty"`
	// Methods matched (upper case); empty matches all.
	Methods []string `json:"methods,omitempty"`
	// Paths matched against the canonical path: exact "/a/b", one segment
	// wildcard "/a/*/c", or a trailing "/**" matching the prefix and anything
	// below it. Empty matches all. The query is never matched.
	Paths []string `json:"paths,omitempty"`
	// Public routes need no credential; identity headers are still stripped.
	Public bool `json:"public,omitempty"`
	// RequireScopes must all be granted.
	RequireScopes []string `json:"requireScopes,omitempty"`
	// RequireRoles: at least one must be held.
	RequireRoles []string `json:"requireRoles,omitempty"`
	// RequireClaims must all hold.
	RequireClaims []ClaimRequirement `json:"requireClaims,omitempty"`
	// RequireMFA requires multi-factor authentication.
	RequireMFA *MFA `json:"requireMFA,omitempty"`
	// SkipRego skips the policy's Rego for this route.
	SkipRego bool `json:"skipRego,omitempty"`
}

// MaxMFAAge bounds MFA.MaxAge.
const MaxMFAAge = 24 * time.Hour

// MFA describes acceptable multi-factor evidence: any listed amr value in
// the token's amr claim, or its acr equal to one listed value.
type MFA struct {
	// AMR values, default ["mfa", "otp", "hwk", "swk", "fido"].
	AMR []string `json:"amr,omitempty"`
	// ACR values accepted instead.
	ACR []string `json:"acr,omitempty"`
	// MaxAge, when set, also requires the user to have authenticated at
	// most this long ago: the token's auth_time (OIDC) must be present and
	// within MaxAge of now (step-up for sensitive routes, RFC 9470's
	// max_age). Between 1s and 24h.
	MaxAge Duration `json:"maxAge,omitzero"`
}

// Rego configures a policy's Rego.
type Rego struct {
	// Modules are Rego source files; each must declare a package.
	Modules []RegoModule `json:"modules"`
	// Query evaluated; its result must be a boolean or an object
	// {allow: bool, reason: string, headers: {name: value}}. Default
	// "data.authgate.authz.decision".
	Query string `json:"query,omitempty"`
	// Timeout of one evaluation. Default 50ms.
	Timeout Duration `json:"timeout,omitzero"`
}

// RegoModule is one Rego source file.
type RegoModule struct {
	// Name is the module's file name, used in error messages.
	Name string `json:"name"`
	// Source is the Rego text.
	Source string `json:"source"`
}

// IdentityHeaders maps identity to request headers for the function. Every
// name must start with X-Authgate- or be listed here, and is stripped from
// client requests in every spelling.
type IdentityHeaders struct {
	// Subject header. Default X-Authgate-Subject.
	Subject string `json:"subject,omitempty"`
	// Issuer header. Default X-Authgate-Issuer.
	Issuer string `json:"issuer,omitempty"`
	// Kind (jwt or apikey) header. Default X-Authgate-Credential-Kind.
	Kind string `json:"kind,omitempty"`
	// Scopes header, space-separated. Default X-Authgate-Scopes.
	Scopes string `json:"scopes,omitempty"`
	// Claims maps header names to dotted claim paths; lists join with ",".
	Claims []ClaimHeader `json:"claims,omitempty"`
	// ClaimsJSON, when set, names a header carrying the verified claims as
	// base64url (unpadded) JSON.
	ClaimsJSON string `json:"claimsJSON,omitempty"`
	// ForwardAuthorization forwards the client's credential header to the
	// function. Off by default.
	ForwardAuthorization bool `json:"forwardAuthorization,omitempty"`
}

// ClaimHeader injects one claim as a header.
type ClaimHeader struct {
	// Header name.
	Header string `json:"header"`
	// Claim is a dotted path into the verified claims.
	Claim string `json:"claim"`
}

// Rate limit keys.
const (
	RateKeyIP      = "ip"
	RateKeySubject = "subject"
	RateKeyAPIKey  = "apikey"
	RateKeyRoute   = "route"
)

// RateLimit is a token bucket per key.
type RateLimit struct {
	// Key is ip, subject, apikey or route.
	Key string `json:"key"`
	// RequestsPerSecond refills the bucket.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// Burst is the bucket size. Default ceil(RequestsPerSecond).
	Burst int `json:"burst,omitempty"`
}

// Limits bound requests.
type Limits struct {
	// MaxHeaderBytes caps request headers. Default 32 KiB.
	MaxHeaderBytes int `json:"maxHeaderBytes,omitempty"`
	// MaxTokenBytes caps a credential's length. Default 8 KiB.
	MaxTokenBytes int `json:"maxTokenBytes,omitempty"`
	// MaxBodyBytes caps request bodies; 0 means the default 10 MiB, -1
	// unlimited.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// ReadHeaderTimeout bounds slow headers. Default 10s.
	ReadHeaderTimeout Duration `json:"readHeaderTimeout,omitzero"`
	// ReadTimeout bounds reading a whole request. Default 60s.
	ReadTimeout Duration `json:"readTimeout,omitzero"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `json:"idleTimeout,omitzero"`
	// RateLimits apply to every request before authentication.
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
	// AuthFailures throttles clients that keep failing authentication.
	AuthFailures AuthFailureLimit `json:"authFailures,omitzero"`
	// SharedLimits, when set, keeps the buckets of rateLimits above and of
	// the auth-failure throttle (for requests of policies without their own
	// sharedLimits) in the proxy's Redis.
	SharedLimits *SharedLimits `json:"sharedLimits,omitempty"`
}

// OnUnavailable values of SharedLimits.
const (
	// SharedFallbackLocal applies each replica's own buckets while Redis
	// cannot answer: limits hold per replica, requests keep flowing.
	SharedFallbackLocal = "local"
	// SharedFallbackDeny refuses with 503 while Redis cannot answer.
	SharedFallbackDeny = "deny"
)

// SharedLimits keeps token buckets in Redis (the proxy's --redis-* flags),
// so a limit holds across every replica of a function: a client throttled
// by one sidecar is throttled by all, and a scale-up resets nothing. Keys
// are the same as the local buckets' (client, subject, API key, route),
// stored as their SHA-256 under the proxy's key prefix. A call to Redis
// waits at most the proxy's --redis-timeout; after repeated failures a
// circuit breaker stops calling it for a while. A proxy with no Redis
// configured treats it as unavailable.
type SharedLimits struct {
	// OnUnavailable is what a request gets while Redis cannot answer (down,
	// slow, refusing, breaker open, not configured): "local" (default) falls
	// back to this replica's own buckets, "deny" answers 503.
	OnUnavailable string `json:"onUnavailable,omitempty"`
}

// AuthFailureLimit throttles repeated authentication failures per client IP.
type AuthFailureLimit struct {
	// PerMinute failures allowed per client IP before 429. Default 60; -1
	// disables.
	PerMinute int `json:"perMinute,omitempty"`
	// Burst of failures. Default 20.
	Burst int `json:"burst,omitempty"`
}

// TokenCache bounds the verified-token cache.
type TokenCache struct {
	// MaxEntries; default 10000, -1 disables caching.
	MaxEntries int `json:"maxEntries,omitempty"`
	// TTL caps an entry's life below the token's exp. Default 5m.
	TTL Duration `json:"ttl,omitzero"`
}

// DecisionCache bounds the Rego decision cache of each policy. Only a
// policy whose Rego provably reads nothing but the identity, the method,
// the canonical path and the route and policy names is cached; an entry is
// keyed by the verified identity (itself cached per token), the policy
// version, the method and the canonical path, never outlives the
// credential's expiry, and every configuration change starts empty.
type DecisionCache struct {
	// MaxEntries per policy; default 10000, -1 disables the cache.
	MaxEntries int `json:"maxEntries,omitempty"`
	// TTL caps an entry's life below the credential's expiry. Default 5m.
	TTL Duration `json:"ttl,omitzero"`
}

// DecisionLog configures decision logging.
type DecisionLog struct {
	// SampleRate of allowed requests logged, 0..1. Denials are always
	// logged. Default 1.
	SampleRate *float64 `json:"sampleRate,omitempty"`
}
