package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of an AuthPolicy.
const (
	// ConditionAccepted is True when the spec is valid, its references resolve
	// and its Rego compiles.
	ConditionAccepted = "Accepted"
	// ConditionReady is True when the policy is rendered into the namespace's
	// proxy configuration bundle.
	ConditionReady = "Ready"
	// ConditionIssuersReady is True when every JWT issuer's keys were fetched.
	ConditionIssuersReady = "IssuersReady"
	// ConditionEnforced is True when every pod the policy selects runs the
	// sidecar and reported, over the push channel, that it enforces the
	// policy's current generation (Unknown when the push channel is off).
	ConditionEnforced = "Enforced"
)

// Mode says whether a policy's denials are enforced.
// +kubebuilder:validation:Enum=enforce;audit
type Mode string

// Modes.
const (
	ModeEnforce Mode = "enforce"
	ModeAudit   Mode = "audit"
)

// AuthPolicySpec says which workloads are protected and how.
// +kubebuilder:validation:XValidation:rule="has(self.selector) || has(self.targets)",message="set selector or targets to say which workloads this policy protects"
// +kubebuilder:validation:XValidation:rule="self.routes.all(r, has(r.public) && r.public) || (has(self.authentication) && ((has(self.authentication.jwt) && size(self.authentication.jwt) > 0) || has(self.authentication.apiKeys)))",message="a non-public route needs authentication.jwt or authentication.apiKeys"
type AuthPolicySpec struct {
	// Selector selects the pods this policy protects by their labels.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// Targets select pods by the function they belong to, as a convenience
	// over a label selector. Combined with selector, a pod must match both.
	// +optional
	Targets *Targets `json:"targets,omitempty"`

	// Mode is "enforce" (denials are answered) or "audit" (denials are only
	// recorded in metrics and the decision log, and the request is forwarded).
	// +kubebuilder:default=enforce
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// Authentication lists the credentials this policy accepts.
	// +optional
	Authentication *Authentication `json:"authentication,omitempty"`

	// Routes are matched in order against the request's canonical path and
	// method; the first match decides. A request no route matches is denied.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	Routes []Route `json:"routes"`

	// Rego is an optional policy evaluated after a route's rules, with the
	// request, the verified identity and the route as input. Undefined,
	// errors and timeouts deny.
	// +optional
	Rego *Rego `json:"rego,omitempty"`

	// Headers maps the verified identity to request headers for the function.
	// +optional
	Headers *IdentityHeaders `json:"headers,omitempty"`

	// RateLimits are token buckets applied to requests this policy handles.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	RateLimits []RateLimit `json:"rateLimits,omitempty"`

	// SharedLimits, when set, keeps the buckets of rateLimits and of the
	// auth-failure throttle for this policy's requests in Redis (the chart's
	// redis values), so they hold across every replica of every function
	// the policy selects: a client throttled by one sidecar is throttled by
	// all, and a scale-up resets nothing. Unset: each sidecar counts alone.
	// +optional
	SharedLimits *SharedLimits `json:"sharedLimits,omitempty"`

	// ClientIdentity says which hops in front of the sidecar may report the
	// client's address, for the pods this policy selects. Default: what the
	// injector set up for the platform (see clientIdentity.trustedProxies).
	// +optional
	ClientIdentity *ClientIdentity `json:"clientIdentity,omitempty"`

	// Limits replaces the sidecar's timeouts and request body limit for the
	// pods this policy selects.
	// +optional
	Limits *Limits `json:"limits,omitempty"`

	// IdentityAssertion, when set, has the sidecar sign the verified
	// identity of every request it forwards with a credential (a short-lived
	// ES256 JWT in a header), so the function can prove the identity came
	// from its gateway. The controller keeps the namespace's signing keys in
	// Secret authgate-assertion-key and publishes the public keys in
	// ConfigMap authgate-assertion-jwks; see docs/identity-assertion.md.
	// +optional
	IdentityAssertion *IdentityAssertion `json:"identityAssertion,omitempty"`

	// Revocations refuse JWTs this policy would otherwise accept, by their
	// jti (one token), sub (every token of a subject) or sid (every token
	// of a login session), until each entry's expiresAt. A matching token
	// is answered 401 invalid_token, like any invalid token, and the
	// sidecars drop it from their verified-token cache as soon as the
	// change reaches them (it propagates like any change of the policy).
	// They apply to JWTs only: an API key is revoked by deleting its
	// Secret (or its authgate.dev/api-key label), see docs/revocation.md.
	// At most 1000 entries; set expiresAt to the revoked token's exp so the
	// list stays short.
	// +kubebuilder:validation:MaxItems=1000
	// +listType=atomic
	// +optional
	Revocations []Revocation `json:"revocations,omitempty"`
}

// IdentityAssertion configures the signed identity assertion. Its JWT
// holds iss "authgate://<namespace>", sub, aud, iat, nbf, exp, jti, kind
// (jwt or apikey), token_iss (the verified token's issuer), scope
// (space-separated) and, under "claims", the chosen claims of the verified
// token. Requests on public routes carry no assertion; a client's copy of
// the header is always removed.
type IdentityAssertion struct {
	// Header carrying the assertion. It must start with X-Authgate- (a
	// client's copy is removed in every spelling). Default
	// X-Authgate-Assertion.
	// +kubebuilder:validation:Pattern=`^[Xx]-[Aa][Uu][Tt][Hh][Gg][Aa][Tt][Ee]-[A-Za-z0-9-]{1,100}$`
	// +kubebuilder:default=X-Authgate-Assertion
	// +optional
	Header string `json:"header,omitempty"`

	// TTL is the assertion's lifetime (never past the credential's own
	// expiry). Default 60s; at least 10s, at most 5m.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('5m')",message="ttl must be between 10s and 5m"
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// Audience is the assertion's aud: the function checks it, so an
	// assertion minted for one function is refused by another of the
	// namespace. Default: the AuthPolicy's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[\x21-\x7e]+$`
	// +optional
	Audience string `json:"audience,omitempty"`

	// Claims are dotted paths into the verified claims (as in
	// headers.claims) copied into the assertion's "claims" object, keyed by
	// the path; a claim the credential lacks is left out.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	// +optional
	Claims []string `json:"claims,omitempty"`
}

// ClientIdentity says which peers the sidecar trusts to report the client.
type ClientIdentity struct {
	// TrustedProxies replaces, for the pods this policy selects, the hops the
	// injector trusts on the platform's behalf (Knative: queue-proxy on
	// loopback plus the cluster's activator and ingress ranges; OpenFaaS: the
	// gateway's; other pods: the cluster default or the pod annotation
	// authgate.dev/trusted-proxies). Each entry is an IP address or a CIDR,
	// never a /0. The sidecar walks X-Forwarded-For from the right, skipping
	// these addresses; the first address that is not one of them is the
	// client that rate limits by ip, the authentication-failure throttle,
	// Rego's input.request.client_ip and the function's X-Forwarded-For see.
	// An empty list trusts nobody: the connection's peer is the client.
	// Trusting an address lets whatever sends from it name any client, so
	// list only hops that append to X-Forwarded-For and that clients cannot
	// reach around. All policies that select a pod and set this must list
	// the same addresses; otherwise the pod's sidecar refuses the new
	// configuration and keeps its last good one.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="self.all(e, isIP(e) || isCIDR(e))",message="every entry must be an IP address or a CIDR such as 10.0.0.0/8"
	// +kubebuilder:validation:XValidation:rule="self.all(e, !isCIDR(e) || cidr(e).prefixLength() > 0)",message="a /0 prefix would trust every address"
	// +listType=atomic
	TrustedProxies []string `json:"trustedProxies"`
}

// Limits replaces sidecar limits for the pods a policy selects. When several
// policies select a pod, the largest timeouts and the smallest body limit
// among those that set them apply.
// +kubebuilder:validation:XValidation:rule="has(self.upstreamTimeout) || has(self.readTimeout) || has(self.maxBodyBytes)",message="set upstreamTimeout, readTimeout or maxBodyBytes"
type Limits struct {
	// UpstreamTimeout is how long the function may take to send its response
	// headers before the caller gets 504. Default: the platform's request
	// timeout (a Knative revision's timeoutSeconds, the OpenFaaS watchdog's
	// exec_timeout or write_timeout), else 60s. At most 1h.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('1h')",message="upstreamTimeout must be more than 0s and at most 1h"
	// +optional
	UpstreamTimeout *metav1.Duration `json:"upstreamTimeout,omitempty"`

	// ReadTimeout is how long a client may take to send the request body,
	// counted from when its headers were read, before it gets 408. Default
	// 60s. At most 1h.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('1h')",message="readTimeout must be more than 0s and at most 1h"
	// +optional
	ReadTimeout *metav1.Duration `json:"readTimeout,omitempty"`

	// MaxBodyBytes is the largest request body, in bytes, the sidecar
	// forwards; a larger one gets 413. Default 10 MiB (10485760). At most
	// 10 GiB (10737418240).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10737418240
	// +optional
	MaxBodyBytes *int64 `json:"maxBodyBytes,omitempty"`
}

// Targets select function pods by name.
// +kubebuilder:validation:XValidation:rule="has(self.knativeService) || has(self.openFaaSFunction)",message="name a knativeService or an openFaaSFunction"
type Targets struct {
	// KnativeService selects the pods of a Knative Service (label
	// serving.knative.dev/service).
	// +kubebuilder:validation:MaxLength=63
	// +optional
	KnativeService string `json:"knativeService,omitempty"`

	// OpenFaaSFunction selects the pods of an OpenFaaS function (label
	// faas_function).
	// +kubebuilder:validation:MaxLength=63
	// +optional
	OpenFaaSFunction string `json:"openFaaSFunction,omitempty"`
}

// Authentication lists accepted credentials; any one that verifies
// authenticates the request.
type Authentication struct {
	// JWT lists trusted token issuers.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	JWT []JWTIssuer `json:"jwt,omitempty"`

	// APIKeys accepts API keys held in Secrets of this namespace.
	// +optional
	APIKeys *APIKeys `json:"apiKeys,omitempty"`
}

// JWTIssuer is one trusted OIDC/JWT issuer.
// +kubebuilder:validation:XValidation:rule="(has(self.audiences) && size(self.audiences) > 0) || (has(self.clientIDs) && size(self.clientIDs) > 0)",message="set audiences or clientIDs: a token minted for any client must not be accepted"
type JWTIssuer struct {
	// IssuerURL must equal the token's iss claim exactly (a trailing slash
	// matters). Keys are found through OIDC discovery unless jwksURL is set.
	// Must use https; http is accepted only on localhost, 127.0.0.1 or [::1]
	// (local development). No user info, query or fragment.
	// +kubebuilder:validation:Pattern=`^(https://[^\s?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?(/[^\s?#]*)?)$`
	// +kubebuilder:validation:MaxLength=512
	IssuerURL string `json:"issuerURL"`

	// JWKSURL fetches keys from this URL instead of OIDC discovery. The rules
	// of issuerURL apply, except that a query is allowed.
	// +kubebuilder:validation:Pattern=`^(https://[^\s#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?([/?][^\s#]*)?)$`
	// +kubebuilder:validation:MaxLength=512
	// +optional
	JWKSURL string `json:"jwksURL,omitempty"`

	// Audiences: the token's aud (string or array) must contain one of them.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	Audiences []string `json:"audiences,omitempty"`

	// ClientIDs: the token's client_id claim must be one of them. Use this for
	// access tokens that carry no aud, such as Amazon Cognito's.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	ClientIDs []string `json:"clientIDs,omitempty"`

	// Algorithms accepted for signatures. Default RS256 and ES256.
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:Enum=RS256;RS384;RS512;PS256;PS384;PS512;ES256;ES384;ES512;EdDSA
	// +listType=set
	// +optional
	Algorithms []string `json:"algorithms,omitempty"`

	// ClockSkew tolerated on exp, nbf and iat. Default 30s, at most 5m.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('5m')",message="clockSkew must be between 0s and 5m"
	// +optional
	ClockSkew *metav1.Duration `json:"clockSkew,omitempty"`

	// Type, when set, must equal the token's typ header, e.g. "at+jwt" to
	// accept only access tokens and refuse ID tokens.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Type string `json:"type,omitempty"`

	// RequiredClaims must be present with one of the listed values.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	RequiredClaims []ClaimRequirement `json:"requiredClaims,omitempty"`

	// Sources lists where the token may be presented. Default: the
	// Authorization Bearer header.
	// +kubebuilder:validation:MaxItems=4
	// +listType=atomic
	// +optional
	Sources []CredentialSource `json:"sources,omitempty"`

	// ScopeClaims names the claims read as scopes. Default ["scope", "scp"].
	// +kubebuilder:validation:MaxItems=4
	// +listType=atomic
	// +optional
	ScopeClaims []string `json:"scopeClaims,omitempty"`

	// RolesClaim is a dotted path to the roles list. Default "roles".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	RolesClaim string `json:"rolesClaim,omitempty"`

	// CertificateAuthority names the CA certificates that verify the TLS
	// certificate of this issuer's discovery document and JWKS URL. They
	// replace the system roots for this issuer's fetches (the controller's
	// and the sidecars'); the system roots are then not trusted for it. A
	// missing or unusable bundle refuses the policy: its keys are never
	// fetched with the system roots instead. Every namespace holds the
	// cluster's CA in ConfigMap kube-root-ca.crt, key ca.crt, which signs
	// the certificate of the cluster's own ServiceAccount issuer
	// (https://kubernetes.default.svc.cluster.local).
	// +optional
	CertificateAuthority *IssuerCA `json:"certificateAuthority,omitempty"`
}

// IssuerCA names a CA bundle of the policy's namespace.
type IssuerCA struct {
	// ConfigMapKeyRef names a key of a ConfigMap in the policy's namespace
	// holding one or more PEM "CERTIFICATE" blocks. The controller reads
	// ConfigMap kube-root-ca.crt and ConfigMaps labelled
	// authgate.dev/role=ca; a change to the ConfigMap takes effect.
	ConfigMapKeyRef CAConfigMapKeyRef `json:"configMapKeyRef"`
}

// CAConfigMapKeyRef names a key of a ConfigMap in the policy's namespace.
type CAConfigMapKeyRef struct {
	// Name of the ConfigMap, e.g. kube-root-ca.crt.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Key of the ConfigMap's data holding the PEM bundle. Default ca.crt.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:default=ca.crt
	// +optional
	Key string `json:"key,omitempty"`
}

// CredentialSource says where a credential is read from.
// +kubebuilder:validation:XValidation:rule="self.type == 'bearer' ? !has(self.name) : has(self.name)",message="bearer takes no name; header, cookie and query sources need one"
type CredentialSource struct {
	// Type is bearer (Authorization: Bearer), header, cookie or query. Query
	// parameters are removed before forwarding and never logged.
	// +kubebuilder:validation:Enum=bearer;header;cookie;query
	Type string `json:"type"`

	// Name of the header, cookie or query parameter.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Name string `json:"name,omitempty"`

	// Prefix stripped from a header's value, e.g. "Token ".
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// ClaimRequirement requires a claim to hold one of Values.
type ClaimRequirement struct {
	// Claim is a dotted path into the verified claims, e.g. "org.tier" or
	// "kubernetes.io.namespace" (a key containing dots is matched whole).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Claim string `json:"claim"`

	// Values accepted (compared as strings; a list claim matches when any
	// element matches). Empty only requires the claim to be present.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Values []string `json:"values,omitempty"`
}

// APIKeys selects the Secrets that hold accepted API keys. Each Secret holds
// one key: data "key" is the key itself (it never leaves the controller; the
// proxy receives only its SHA-256), and optional "subject" (default: the
// Secret's name), "scopes" (space-separated) and "expiresAt" (RFC 3339).
// +kubebuilder:validation:XValidation:rule="(has(self.secretNames) && size(self.secretNames) > 0) || has(self.selector)",message="name Secrets or give a selector"
type APIKeys struct {
	// SecretNames are Secrets of this namespace, each holding one key.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	SecretNames []string `json:"secretNames,omitempty"`

	// Selector selects Secrets of this namespace by label.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// Sources lists where keys are read. Default: header X-API-Key.
	// +kubebuilder:validation:MaxItems=4
	// +listType=atomic
	// +optional
	Sources []CredentialSource `json:"sources,omitempty"`

	// AllowedScopes bounds the scopes a key of these Secrets may carry: a
	// Secret whose "scopes" name any other scope contributes no key
	// (Accepted reason APIKeysExcluded, a Warning event), so whoever can
	// create a labelled Secret in the namespace cannot mint a key with more
	// than the policy grants. Omitted: no bound. An empty list allows keys
	// without scopes only.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	// +optional
	AllowedScopes []string `json:"allowedScopes,omitempty"`
}

// Route is a set of requests and the rules they must satisfy.
// +kubebuilder:validation:XValidation:rule="!(has(self.public) && self.public) || (!has(self.requireScopes) && !has(self.requireRoles) && !has(self.requireClaims) && !has(self.requireMFA))",message="a public route cannot require scopes, roles, claims or MFA"
type Route struct {
	// Name appears in metrics and logs.
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]{1,63}$`
	// +optional
	Name string `json:"name,omitempty"`

	// Methods matched; empty matches all.
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:validation:items:Enum=GET;HEAD;POST;PUT;PATCH;DELETE;OPTIONS;CONNECT;TRACE
	// +listType=set
	// +optional
	Methods []string `json:"methods,omitempty"`

	// Paths matched against the canonical path (never the query): exact
	// "/a/b", "*" for one segment ("/users/*/orders"), or a trailing "/**" for
	// the prefix and everything below it. "*" and "**" are whole segments,
	// "**" only the last; no empty, "." or ".." segments. Empty matches every
	// path.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^/[^?#%\\;]*$`
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	// +optional
	Paths []string `json:"paths,omitempty"`

	// Public routes need no credential. Identity headers sent by clients are
	// still stripped.
	// +optional
	Public bool `json:"public,omitempty"`

	// RequireScopes must all be granted.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	RequireScopes []string `json:"requireScopes,omitempty"`

	// RequireRoles: at least one must be held.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	RequireRoles []string `json:"requireRoles,omitempty"`

	// RequireClaims must all hold.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	RequireClaims []ClaimRequirement `json:"requireClaims,omitempty"`

	// RequireMFA requires multi-factor authentication evidence in the token.
	// +optional
	RequireMFA *MFA `json:"requireMFA,omitempty"`

	// SkipRego skips the policy's Rego for this route.
	// +optional
	SkipRego bool `json:"skipRego,omitempty"`
}

// MFA describes acceptable multi-factor evidence: any of AMR in the token's
// amr claim, or its acr equal to one of ACR. Empty means amr contains one of
// mfa, otp, hwk, swk or fido.
type MFA struct {
	// AMR values accepted.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	AMR []string `json:"amr,omitempty"`

	// ACR values accepted (named in the step-up challenge's acr_values:
	// visible ASCII, no spaces, quotes or backslashes).
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[!#-\[\]-~]+$`
	// +listType=set
	// +optional
	ACR []string `json:"acr,omitempty"`

	// MaxAge, when set, also requires that the user authenticated at most
	// this long ago: the token's auth_time must be within it (step-up for
	// sensitive routes). A token without auth_time, or with an older one,
	// gets 401 with an insufficient_user_authentication challenge naming
	// max_age (RFC 9470), checked on every request, also for a cached
	// token. Between 1s and 24h.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="must be between 1s and 24h"
	// +optional
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`
}

// Rego holds a Rego policy, inline or from a ConfigMap. The library of
// helpers (data.authgate.lib.*) is always available to import.
// +kubebuilder:validation:XValidation:rule="has(self.inline) != has(self.configMapRef)",message="set exactly one of inline or configMapRef"
type Rego struct {
	// Inline Rego source.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Inline string `json:"inline,omitempty"`

	// ConfigMapRef reads the Rego source from a key of a ConfigMap in this
	// namespace; changes to it take effect.
	// +optional
	ConfigMapRef *ConfigMapKeyRef `json:"configMapRef,omitempty"`

	// Query evaluated. Its value must be a boolean or an object {allow,
	// reason, headers}. Default "data.authgate.authz.decision".
	// +kubebuilder:validation:Pattern=`^data(\.[a-zA-Z_][a-zA-Z0-9_]*)+$`
	// +optional
	Query string `json:"query,omitempty"`

	// Timeout of one evaluation. Default 50ms, at most 5s.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('5s')",message="timeout must be between 0s and 5s"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// ConfigMapKeyRef names a key of a ConfigMap in the policy's namespace.
type ConfigMapKeyRef struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key holding the Rego source.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// IdentityHeaders maps identity to headers. Names should start with
// X-Authgate-; every configured name is stripped from client requests.
type IdentityHeaders struct {
	// Subject header. Default X-Authgate-Subject.
	// +optional
	Subject string `json:"subject,omitempty"`
	// Issuer header. Default X-Authgate-Issuer.
	// +optional
	Issuer string `json:"issuer,omitempty"`
	// Kind (jwt or apikey) header. Default X-Authgate-Credential-Kind.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Scopes header, space-separated. Default X-Authgate-Scopes.
	// +optional
	Scopes string `json:"scopes,omitempty"`
	// Claims maps header names to dotted claim paths; lists join with ",".
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Claims []ClaimHeader `json:"claims,omitempty"`
	// ClaimsJSON names a header carrying all verified claims as base64url JSON.
	// +optional
	ClaimsJSON string `json:"claimsJSON,omitempty"`
	// ForwardAuthorization forwards the caller's credential to the function.
	// +optional
	ForwardAuthorization bool `json:"forwardAuthorization,omitempty"`
}

// ClaimHeader injects one claim as a header.
type ClaimHeader struct {
	// Header name.
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9-]{1,128}$`
	Header string `json:"header"`
	// Claim is a dotted path into the verified claims.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Claim string `json:"claim"`
}

// RateLimit is a token bucket per key.
type RateLimit struct {
	// Key is ip, subject, apikey or route.
	// +kubebuilder:validation:Enum=ip;subject;apikey;route
	Key string `json:"key"`
	// RequestsPerSecond refills the bucket; may be fractional ("0.5").
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	RequestsPerSecond string `json:"requestsPerSecond"`
	// Burst is the bucket size. Default: requestsPerSecond rounded up.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	Burst int32 `json:"burst,omitempty"`
}

// SharedLimits keeps a policy's buckets in Redis.
type SharedLimits struct {
	// OnUnavailable is what a request gets while Redis cannot answer
	// (down, slower than the sidecar's redis timeout of a few ms, refusing,
	// circuit breaker open, or no Redis configured): local (default) falls
	// back to each sidecar's own buckets, so limits hold per replica and
	// requests keep flowing; deny answers 503 with Retry-After (fail
	// closed).
	// +kubebuilder:validation:Enum=local;deny
	// +kubebuilder:default=local
	// +optional
	OnUnavailable string `json:"onUnavailable,omitempty"`
}

// Revocation refuses the JWTs that carry one claim value: set exactly one
// of jti, sub or sid.
// +kubebuilder:validation:XValidation:rule="(has(self.jti) ? 1 : 0) + (has(self.sub) ? 1 : 0) + (has(self.sid) ? 1 : 0) == 1",message="set exactly one of jti, sub or sid"
type Revocation struct {
	// JTI refuses the one token whose jti claim equals it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	JTI string `json:"jti,omitempty"`

	// Sub refuses every token whose sub claim equals it: all tokens of that
	// user or client, including ones issued after this entry was added,
	// until expiresAt.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Sub string `json:"sub,omitempty"`

	// Sid refuses every token whose sid claim (the OpenID Connect session
	// id) equals it: all tokens of one login session.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Sid string `json:"sid,omitempty"`

	// Issuer restricts the entry to tokens whose iss equals it exactly; it
	// must be the issuerURL of one of this policy's
	// spec.authentication.jwt entries. Omitted: tokens of every issuer the
	// policy trusts.
	// +kubebuilder:validation:Pattern=`^(https://[^\s?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?(/[^\s?#]*)?)$`
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// ExpiresAt is when the entry stops applying (RFC 3339, e.g.
	// "2030-01-31T12:00:00Z"). Set it to the revoked token's exp (for sub
	// and sid: the latest exp of the tokens issued so far): after that the
	// token is refused as expired anyway. An entry past its expiresAt is
	// ignored and left out of the sidecars' configuration; it may be
	// removed from the list.
	// +required
	ExpiresAt metav1.Time `json:"expiresAt"`

	// Reason is a note for humans (a ticket, an incident). It is never sent
	// to callers nor to the sidecars.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Reason string `json:"reason,omitempty"`
}

// AuthPolicyStatus is what the controller observed.
type AuthPolicyStatus struct {
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Accepted, Ready and IssuersReady.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Issuers reports each JWT issuer's keys.
	// +listType=atomic
	// +optional
	Issuers []IssuerStatus `json:"issuers,omitempty"`

	// Bundle names the Secret in the policy's namespace that the policy is
	// rendered into (key config.yaml) and that the sidecars mount. It is a
	// Secret, not a ConfigMap, because it holds the namespace's API-key
	// hashes.
	// +optional
	Bundle string `json:"bundle,omitempty"`

	// Coverage counts the pods the policy selects and how many of them run
	// the authgate sidecar (docs/coverage.md). It is written by the
	// controller's coverage reconciler alone; the conditions above do not
	// depend on it (Ready means rendered, not that any pod is protected).
	// +optional
	Coverage *CoverageStatus `json:"coverage,omitempty"`
}

// CoverageStatus is what the controller saw of the pods a policy selects.
// It is computed from pod metadata only (labels, annotations, deletion
// timestamp): a pod that has not terminated yet, or is Pending, counts.
type CoverageStatus struct {
	// ObservedGeneration is the policy generation whose selector was used.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// SelectedPods is the number of pods of the namespace the policy's
	// selector matches, not counting pods being deleted.
	SelectedPods int32 `json:"selectedPods"`
	// ProtectedPods is the number of selected pods that run the sidecar
	// (labelled authgate.dev/injected=true) with inbound capture on.
	ProtectedPods int32 `json:"protectedPods"`
	// BypassablePods is the number of selected pods that run the sidecar
	// with inbound capture off (annotation authgate.dev/inbound-capture:
	// "false"): the function's port is reachable on the pod IP around the
	// proxy unless a NetworkPolicy closes it.
	BypassablePods int32 `json:"bypassablePods"`
	// UnprotectedPods is the number of selected pods without the sidecar:
	// nothing enforces the policy for them.
	UnprotectedPods int32 `json:"unprotectedPods"`
	// Unprotected names up to 10 of the unprotected pods, sorted.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	Unprotected []string `json:"unprotected,omitempty"`
	// Summary reads "protected/selected protected", with the unprotected
	// and bypassable counts when there are any, e.g. "2/3 protected, 1
	// unprotected".
	// +optional
	Summary string `json:"summary,omitempty"`
	// EnforcingPods is the number of selected pods whose sidecar reported,
	// over the push channel, that it enforces generation ObservedGeneration
	// of this policy (not merely that it was written to the bundle).
	// +optional
	EnforcingPods int32 `json:"enforcingPods,omitempty"`
	// Enforcement reads "enforcing/selected at generation N", e.g. "3/3 at
	// generation 7". The Enforced condition is True only when every
	// selected pod runs the sidecar and enforces generation N.
	// +optional
	Enforcement string `json:"enforcement,omitempty"`
}

// IssuerStatus is the health of one issuer's keys.
type IssuerStatus struct {
	// IssuerURL of the issuer.
	IssuerURL string `json:"issuerURL"`
	// Keys is the number of usable keys shipped to the proxies.
	Keys int32 `json:"keys"`
	// LastRefresh is when keys were last fetched successfully.
	// +optional
	LastRefresh *metav1.Time `json:"lastRefresh,omitempty"`
	// Error is the last fetch error, empty when the last fetch succeeded.
	// +optional
	Error string `json:"error,omitempty"`
}

// AuthPolicy protects functions: which pods, which credentials, which
// routes, which Rego. The controller validates and compiles it, resolves API
// keys and issuer keys, and renders it for the authgate-proxy sidecars of
// the pods it selects.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ap;authpol,categories=authgate
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].reason`
// +kubebuilder:printcolumn:name="Issuers",type=string,JSONPath=`.status.conditions[?(@.type=="IssuersReady")].status`,priority=1
// +kubebuilder:printcolumn:name="Protected",type=string,JSONPath=`.status.coverage.summary`
// +kubebuilder:printcolumn:name="Enforced",type=string,JSONPath=`.status.coverage.enforcement`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuthPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired protection.
	Spec AuthPolicySpec `json:"spec"`

	// Status is what the controller observed.
	// +optional
	Status AuthPolicyStatus `json:"status,omitempty"`
}

// AuthPolicyList is a list of AuthPolicy.
// +kubebuilder:object:root=true
type AuthPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the policies.
	Items []AuthPolicy `json:"items"`
}
