package gateway

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/proxy/assertion"
	"github.com/authgate/authgate/proxy/authn"
	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/headers"
	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/pathcanon"
)

// Reasons the pipeline itself reports (authn and authz add their own).
const (
	ReasonInvalidPath         = "invalid_path"
	ReasonBodyTooLarge        = "body_too_large"
	ReasonInvalidBody         = "invalid_body"
	ReasonNoPolicy            = "no_policy"
	ReasonDefaultAllow        = "default_allow"
	ReasonNoRoute             = "no_route"
	ReasonPublic              = "public_route"
	ReasonAllowed             = "allowed"
	ReasonNotAccepted         = authn.ReasonNotAccepted
	ReasonRateLimited         = "rate_limited"
	ReasonAuthFailures        = "auth_failures"
	ReasonRegoDenied          = "rego_denied"
	ReasonRegoError           = authz.ReasonRegoError
	ReasonRegoUndefined       = authz.ReasonRegoUndefined
	ReasonUnsafeIdentity      = "unsafe_identity_value"
	ReasonUpstreamUnavailable = "upstream_unavailable"
	ReasonUpstreamTimeout     = "upstream_timeout"
	ReasonRequestTimeout      = "request_timeout"
	ReasonAssertionFailed     = "assertion_unavailable"
	ReasonLimitUnavailable    = "limit_backend_unavailable"
)

type scopeKey struct{}

// reqScope carries what Rewrite needs; headers are computed (and checked)
// before forwarding so Rewrite cannot fail.
type reqScope struct {
	client    netip.Addr
	requestID string
	inject    http.Header
	body      *bodyReader
}

// authState memoises extraction and authentication across policies so a
// credential is verified at most once per verifier per request, and a
// failure counts against the client at most once.
type authState struct {
	cred    authn.Credential
	credErr error
	started bool
	// throttle is the auth-failure throttle of the first policy that
	// authenticates (nil: off). A local one is read before authenticating
	// (blocked, retry); a shared one (lazy) only when its answer matters:
	// a credential that cannot be proved from what is known, or a failure,
	// so a cached credential costs it no Redis call.
	throttle bucket
	lazy     *throttleRead
	blocked  bool          // the client is throttled
	retry    time.Duration // when it may try again
	attempt  authn.Attempt
	counted  bool               // the request's failure was counted (throttle or 429 metric)
	id       *identity.Identity // the last identity a policy accepted
	authnDur time.Duration
}

// keysRetryAfter is the Retry-After of a 503 for unavailable keys: key
// sets retry a failing IdP within about a second.
const keysRetryAfter = 2 * time.Second

// outcome is one policy's decision for one request.
type outcome struct {
	policy  *policyRuntime
	route   string
	allow   bool
	status  int
	reason  string
	detail  string // for logs and the response body; never a credential
	retry   time.Duration
	id      *identity.Identity
	headers map[string]string
	// challenge replaces the WWW-Authenticate header of a 401 (step-up).
	challenge string
}

// ServeHTTP runs the pipeline.
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := rt.deps.Now()
	ev := &event{start: start, method: r.Method}
	if rt.tracer != nil {
		r = rt.startRequest(r, ev)
		defer rt.endRequest(ev)
	} else if tp := r.Header["Traceparent"]; len(tp) == 1 {
		ev.traceparent = tp[0] // for the decision log's trace_id
	}
	ev.requestID = rt.trust.RequestID(r)
	ev.client = rt.trust.ClientIP(r)
	w.Header().Set("X-Request-Id", ev.requestID)

	// Strip before anything else, on every route: the function must only
	// ever see identity headers the gateway set.
	rt.stripper.Strip(r.Header)

	canon, err := pathcanon.Canonicalize(pathcanon.RequestPath(r.URL))
	if err != nil {
		rt.finish(w, r, ev, &outcome{status: http.StatusBadRequest, reason: ReasonInvalidPath, detail: err.Error()})
		return
	}
	pathcanon.Apply(r.URL, canon)
	ev.path = canon.Path

	if o := rt.limitBody(w, r, ev); o != nil {
		rt.finish(w, r, ev, o)
		return
	}
	if o := rt.checkLimits(r.Context(), rt.global, ev, "", nil); o != nil {
		rt.finish(w, r, ev, o)
		return
	}
	if len(rt.policies) == 0 {
		if rt.cfg.DefaultAction == "allow" {
			rt.forward(w, r, ev, &outcome{allow: true, reason: ReasonDefaultAllow}, nil)
			return
		}
		rt.finish(w, r, ev, &outcome{status: http.StatusForbidden, reason: ReasonNoPolicy, detail: "no policy selects this workload"})
		return
	}

	st := &authState{}
	st.cred, st.credErr = rt.authn.Extract(r)
	if ae, ok := asAuthnError(st.credErr); ok && ae.Status == http.StatusBadRequest {
		rt.finish(w, r, ev, &outcome{status: http.StatusBadRequest, reason: ae.Reason, detail: ae.Description})
		return
	}
	if st.credErr == nil && st.cred.Source.Type == config.SourceQuery {
		// Query credentials never reach the function, its logs or Rego.
		rt.authn.Strip(r, st.cred)
	}
	rt.decide(w, r, ev, canon, st)
}

// decide evaluates every selected policy and answers or forwards.
func (rt *Runtime) decide(w http.ResponseWriter, r *http.Request, ev *event, canon pathcanon.Result, st *authState) {
	authzStart := rt.deps.Now()
	var deny, identified *outcome
	extra := map[string]string(nil)
	for _, p := range rt.policies {
		o := rt.evalPolicy(r.Context(), p, r, canon, ev, st)
		o.policy = p
		if !o.allow {
			if p.enforce {
				if deny == nil {
					deny = o
				}
				rt.count(p.cfg.Name, o.route, metrics.DecisionDeny, o.reason)
			} else {
				ev.audit = append(ev.audit, p.cfg.Name+":"+o.reason)
				rt.count(p.cfg.Name, o.route, metrics.DecisionAuditDeny, o.reason)
			}
			continue
		}
		rt.count(p.cfg.Name, o.route, metrics.DecisionAllow, o.reason)
		if o.id != nil && (identified == nil || (!identified.policy.enforce && p.enforce)) {
			identified = o
		}
		if p.enforce && len(o.headers) > 0 {
			if extra == nil {
				extra = map[string]string{}
			}
			maps.Copy(extra, o.headers)
		}
	}
	authzDur := rt.deps.Now().Sub(authzStart) - st.authnDur
	rt.observe(stageAuthz, authzDur)
	if st.started {
		rt.observe(stageAuthn, st.authnDur)
	}
	if deny != nil {
		rt.finish(w, r, ev, deny)
		return
	}
	if st.id != nil {
		// Only a verified credential makes the proxy read a body.
		if o := formCredential(r, ev); o != nil {
			rt.finish(w, r, ev, o)
			return
		}
	}
	final := &outcome{allow: true, reason: ReasonAllowed}
	if identified == nil && st.id != nil {
		// Only audit policies or public routes: forward the verified identity anyway.
		identified = &outcome{id: st.id, policy: rt.policies[0]}
	}
	if identified != nil {
		final.id = identified.id
		final.policy = identified.policy
		final.route = identified.route
	} else if len(rt.policies) > 0 {
		final.reason = ReasonPublic
	}
	forwardCred := final.policy != nil && final.policy.cfg.Headers.ForwardAuthorization
	if !forwardCred {
		if st.credErr == nil {
			rt.authn.Strip(r, st.cred)
		}
		// Whatever scheme it carries, Authorization is a credential the
		// function does not need unless a policy asks for it.
		r.Header.Del("Authorization")
	}
	rt.forward(w, r, ev, final, extra)
}

// formCredential refuses a form body carrying a second credential beside
// the request's verified one; it runs only once the request is allowed. A
// body that breaks the workload's limits while being read is answered as
// the forward would answer it (413, 408).
func formCredential(r *http.Request, ev *event) *outcome {
	err := authn.FormCredential(r)
	if err == nil {
		return nil
	}
	if ae, ok := asAuthnError(err); ok {
		return &outcome{status: ae.Status, reason: ae.Reason, detail: ae.Description}
	}
	if errors.Is(err, authn.ErrFormTooLarge) {
		return &outcome{status: http.StatusRequestEntityTooLarge, reason: ReasonBodyTooLarge, detail: "a form body sent with a credential may hold at most 1 MiB"}
	}
	if status, reason, detail, ok := ev.body.failure(); ok {
		return &outcome{status: status, reason: reason, detail: detail}
	}
	return &outcome{status: http.StatusBadRequest, reason: ReasonInvalidBody, detail: "the request body could not be read"}
}

// evalPolicy decides one policy. Every path that is not an explicit allow
// denies (fail closed).
func (rt *Runtime) evalPolicy(ctx context.Context, p *policyRuntime, r *http.Request, canon pathcanon.Result, ev *event, st *authState) *outcome {
	route, ok := p.router.Match(r.Method, canon.Path)
	if !ok {
		return &outcome{status: http.StatusForbidden, reason: ReasonNoRoute, detail: "no route of policy " + p.cfg.Name + " matches " + r.Method + " " + canon.Path}
	}
	o := &outcome{route: route.Name}
	if route.Public {
		o.allow, o.reason = true, ReasonPublic
		return o
	}
	id, ao := rt.authenticate(ctx, p, ev, st)
	if ao != nil {
		ao.route = route.Name
		return ao
	}
	if lo := rt.checkLimits(ctx, p.limits, ev, route.Name, id); lo != nil {
		lo.route = route.Name
		return lo
	}
	actx, span := rt.span(ctx, spanAuthorize, p, trace.SpanKindInternal)
	o = rt.authorize(actx, p, r, canon, ev, route, id, o)
	endAuthz(span, route.Name, o)
	return o
}

// authorize applies the route's rules, then the policy's Rego.
func (rt *Runtime) authorize(ctx context.Context, p *policyRuntime, r *http.Request, canon pathcanon.Result, ev *event, route *config.Route, id *identity.Identity, o *outcome) *outcome {
	if ok, reason := authz.CheckRoute(route, id, rt.deps.Now()); !ok {
		if reason == authz.ReasonMFATooOld {
			return stepUp(route, reason, id)
		}
		return &outcome{route: route.Name, status: http.StatusForbidden, reason: reason, id: id}
	}
	if p.engine != nil && !route.SkipRego {
		dec, err := rt.evalRego(ctx, p, r, canon, ev, route.Name, id)
		if err != nil {
			// The engine says why (undefined, error, timeout, panic,
			// invalid result); the reason reaches the response, the
			// decision log and both metrics unchanged.
			reason := dec.Reason
			if reason == "" {
				reason = ReasonRegoError
			}
			rt.deps.Metrics.RegoEvalErrors.WithLabelValues(p.cfg.Name, reason).Inc()
			return &outcome{route: route.Name, status: http.StatusForbidden, reason: reason, detail: err.Error(), id: id}
		}
		if !dec.Allow {
			return &outcome{route: route.Name, status: http.StatusForbidden, reason: ReasonRegoDenied, detail: dec.Reason, id: id}
		}
		o.headers = dec.Headers
	}
	o.allow, o.reason, o.id = true, ReasonAllowed, id
	return o
}

// evalRego returns the policy's Rego decision, from its decision cache
// when the policy has one and the identity can be seen again (an API key,
// or a token while the token cache is on). Only decisions evaluated
// without error are cached.
func (rt *Runtime) evalRego(ctx context.Context, p *policyRuntime, r *http.Request, canon pathcanon.Result, ev *event, route string, id *identity.Identity) (authz.Decision, error) {
	now := rt.deps.Now()
	cache := p.decisions
	if cache != nil && id.Kind == identity.KindJWT && !p.cacheJWT {
		cache = nil
	}
	if cache != nil {
		if dec, ok := cache.Get(id, r.Method, canon.Path, now); ok {
			rt.regoCacheHit(ctx)
			return dec, nil
		}
	}
	in := authz.NewInput(authz.Request{
		Method: r.Method, Path: canon.Path, Segments: canon.Segments, Host: r.Host,
		ClientIP: ev.clientString(), Query: r.URL.Query(), Headers: r.Header,
	}, id, p.cfg.Name, route, now, rt.credHdrs)
	ectx, span := rt.span(ctx, spanRego, p, trace.SpanKindInternal)
	dec, err := p.engine.Eval(ectx, in)
	endRego(span, dec, err)
	if err == nil && cache != nil {
		cache.Put(id, r.Method, canon.Path, dec, now)
	}
	return dec, err
}

// authenticate proves the request's credential within the policy's scope.
// Only a presented credential that fails to verify counts against the
// client: a missing credential, one the policy does not accept and a fault
// of the gateway or the IdP (503) never do. A throttled client is refused
// (429) unless its credential verifies from what is already known, so
// nobody's failures can lock out a valid credential.
func (rt *Runtime) authenticate(ctx context.Context, p *policyRuntime, ev *event, st *authState) (*identity.Identity, *outcome) {
	if !st.started {
		st.started = true
		var throttle authn.Throttle
		switch b := p.authFails.(type) {
		case nil:
		case localBucket: // a map lookup: read now
			d := b.Blocked(ctx, ev.clientString())
			st.throttle, st.blocked, st.retry = b, !d.Allowed, d.RetryAfter
			throttle = authn.Fixed(st.blocked)
		default:
			st.throttle = b
			st.lazy = &throttleRead{b: b, ctx: ctx, client: ev.clientString()}
			throttle = st.lazy
		}
		st.attempt = rt.authn.NewAttempt(st.cred, throttle)
	}
	if st.credErr != nil {
		ae, _ := asAuthnError(st.credErr)
		if ae == nil {
			ae = &authn.Error{Reason: authn.ReasonMalformedCredential, Status: http.StatusUnauthorized}
		}
		return nil, rt.authFailure(ctx, ev, st, ae)
	}
	t := rt.deps.Now()
	actx, span := rt.span(ctx, spanAuthenticate, p, trace.SpanKindInternal)
	id, err := st.attempt.Authenticate(actx, p.scope)
	endAuthn(span, id, err)
	st.authnDur += rt.deps.Now().Sub(t)
	if err != nil {
		return nil, rt.authFailure(ctx, ev, st, err)
	}
	// Checked on every request, also for an identity from the token cache:
	// a revocation takes effect with the configuration that carries it.
	if p.revoked != nil && p.revoked.revoked(id, t) {
		ev.id = id // the decision log names whose token it was, never the token
		return nil, rt.authFailure(ctx, ev, st, errRevoked)
	}
	st.id, ev.id = id, id
	return id, nil
}

// authFailure turns an authentication error into the answer and decides
// whether it counts against the client.
func (rt *Runtime) authFailure(ctx context.Context, ev *event, st *authState, ae *authn.Error) *outcome {
	o := &outcome{status: ae.Status, reason: ae.Reason, detail: ae.Description}
	switch {
	case ae.ServerFault():
		o.retry = keysRetryAfter
	case ae.Reason == authn.ReasonMissingCredential || ae.Reason == authn.ReasonNotAccepted:
	default:
		blocked, down := st.throttled()
		switch {
		case down:
			return limitUnavailable("auth-failure throttle")
		case blocked || ae.Reason == authn.ReasonThrottled:
			if !st.counted { // one request, one 429, however many policies
				st.counted = true
				rt.deps.Metrics.RateLimited.WithLabelValues(ReasonAuthFailures).Inc()
			}
			o.status, o.reason, o.retry = http.StatusTooManyRequests, ReasonAuthFailures, st.retry
			o.detail = "too many failed authentication attempts from this client"
		case st.throttle != nil && !st.counted:
			st.counted = true
			st.throttle.Allow(ctx, ev.clientString())
		}
	}
	return o
}

// throttled says whether the client is throttled, reading a shared
// throttle if the attempt did not, and whether that throttle could not be
// read and fails closed.
func (st *authState) throttled() (blocked, down bool) {
	if st.lazy == nil {
		return st.blocked, false
	}
	blocked = st.lazy.Throttled()
	st.retry = st.lazy.retry
	return blocked, st.lazy.down
}

// throttleRead is a shared throttle read at most once per request, when
// first needed (authn.Throttle). One that cannot be read and fails closed
// counts as throttled, so nothing needing fresh verification is tried;
// authFailure then answers 503.
type throttleRead struct {
	b      bucket
	ctx    context.Context //nolint:containedctx // the request's, for the read the attempt triggers
	client string
	asked  bool
	block  bool
	down   bool
	retry  time.Duration
}

func (r *throttleRead) Throttled() bool {
	if !r.asked {
		r.asked = true
		d := r.b.Blocked(r.ctx, r.client)
		r.block, r.down, r.retry = !d.Allowed, d.Unavailable, d.RetryAfter
	}
	return r.block
}

// limitUnavailable is the answer while a shared limit that fails closed
// cannot reach Redis.
func limitUnavailable(what string) *outcome {
	return &outcome{status: http.StatusServiceUnavailable, reason: ReasonLimitUnavailable, retry: time.Second,
		detail: "the shared " + what + " cannot be checked"}
}

// checkLimits applies token buckets; keys that are not known yet (subject
// before authentication) are skipped and applied later.
func (rt *Runtime) checkLimits(ctx context.Context, rules []limitRule, ev *event, route string, id *identity.Identity) *outcome {
	for _, l := range rules {
		var key string
		switch l.key {
		case config.RateKeyIP:
			key = ev.clientString()
		case config.RateKeyRoute:
			key = route
		case config.RateKeySubject:
			if id != nil {
				key = string(id.Kind) + "\x00" + id.Source + "\x00" + id.Subject
			}
		case config.RateKeyAPIKey:
			if id != nil && id.Kind == identity.KindAPIKey {
				key = id.KeyName
			}
		}
		if key == "" && l.key != config.RateKeyRoute {
			continue
		}
		d := l.bucket.Allow(ctx, key)
		if d.Unavailable {
			return limitUnavailable("rate limit by " + l.key)
		}
		if !d.Allowed {
			rt.deps.Metrics.RateLimited.WithLabelValues(l.key).Inc()
			return &outcome{status: http.StatusTooManyRequests, reason: ReasonRateLimited, retry: d.RetryAfter, detail: "rate limit by " + l.key}
		}
	}
	return nil
}

// forward injects the verified identity and proxies to the function.
func (rt *Runtime) forward(w http.ResponseWriter, r *http.Request, ev *event, o *outcome, extra map[string]string) {
	scope := &reqScope{client: ev.client, requestID: ev.requestID, body: ev.body}
	if o.id != nil {
		scope.inject = make(http.Header, 8)
		if err := headers.Inject(scope.inject, &o.policy.cfg.Headers, o.id, withoutIdentityHeaders(extra, o.policy)); err != nil {
			rt.finish(w, r, ev, &outcome{status: http.StatusUnauthorized, reason: ReasonUnsafeIdentity, detail: "identity holds a value that cannot be sent as a header", route: o.route, policy: o.policy})
			return
		}
		if a := o.policy.cfg.IdentityAssertion; a != nil {
			if fo := rt.assert(scope.inject, a, o); fo != nil {
				rt.finish(w, r, ev, fo)
				return
			}
		}
		ev.id = o.id
	}
	ev.status = http.StatusOK
	ev.decision, ev.reason = metrics.DecisionAllow, o.reason
	if o.policy != nil {
		ev.policy, ev.version, ev.route = o.policy.cfg.Name, o.policy.cfg.Version, o.route
	} else if o.reason == ReasonDefaultAllow {
		// No policy evaluated this request; count it once here.
		rt.count("", "", metrics.DecisionAllow, o.reason)
	}
	up := rt.deps.Now()
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	ctx, span := rt.startUpstream(context.WithValue(r.Context(), scopeKey{}, scope), r.Method)
	rt.proxy.ServeHTTP(rw, r.WithContext(ctx))
	endUpstream(span, rw.status)
	rt.observe(stageUpstream, rt.deps.Now().Sub(up))
	ev.status = rw.status
	rt.logDecision(ev)
}

// assert signs the identity assertion into inject. A request the policy
// wants asserted is never forwarded without one: no key (the Secret not
// mounted yet, or no key signing yet) or a signing error is a 503, a
// fault of the gateway, never counted against the client.
func (rt *Runtime) assert(inject http.Header, a *config.IdentityAssertion, o *outcome) *outcome {
	policy := o.policy.cfg.Name
	reason := "no_key"
	tok, err := "", assertion.ErrNoKey
	if rt.deps.Assertions != nil {
		tok, err = rt.deps.Assertions.Assert(a, o.id)
	}
	if err == nil {
		rt.deps.Metrics.AssertionsSigned.WithLabelValues(policy).Inc()
		inject[http.CanonicalHeaderKey(a.Header)] = []string{tok}
		return nil
	}
	if !errors.Is(err, assertion.ErrNoKey) {
		reason = "sign_error"
	}
	rt.deps.Metrics.AssertionFailures.WithLabelValues(policy, reason).Inc()
	path := ""
	if rt.deps.Assertions != nil {
		path = rt.deps.Assertions.Path()
	}
	rt.deps.Logger.Error("identity assertion not signed: request refused (the function is never sent the request without it)",
		"policy", policy, "route", o.route, "reason", reason, "error", err.Error(), "key_ring", path)
	return &outcome{status: http.StatusServiceUnavailable, reason: ReasonAssertionFailed, retry: keysRetryAfter,
		detail: "the gateway cannot sign the identity assertion", route: o.route, policy: o.policy}
}

// withoutIdentityHeaders drops Rego headers that name one of the policy's
// identity headers in any spelling a server could map onto it
// (headers.Equivalent): verified identity always wins over policy output.
func withoutIdentityHeaders(extra map[string]string, p *policyRuntime) map[string]string {
	for name := range extra {
		for _, idh := range p.managedHeader {
			if headers.Equivalent(name, idh) {
				delete(extra, name)
			}
		}
	}
	return extra
}

// forwardingHeaders is how many headers SetForwarded sets at most.
const forwardingHeaders = 6

func (rt *Runtime) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(rt.target)
	pr.Out.Host = pr.In.Host
	scope, _ := pr.In.Context().Value(scopeKey{}).(*reqScope)
	if scope == nil {
		return
	}
	// The clone ReverseProxy made is sized for the incoming headers; the
	// forwarding and identity headers would grow it once or twice, so
	// they go into a map sized for all of them from the start.
	if out := pr.Out.Header; len(out)+len(scope.inject)+forwardingHeaders > 8 {
		h := make(http.Header, len(out)+len(scope.inject)+forwardingHeaders)
		for k, v := range out {
			h[k] = v
		}
		pr.Out.Header = h
	}
	rt.trust.SetForwarded(pr, scope.client, scope.requestID)
	for k, v := range scope.inject {
		pr.Out.Header[k] = v
	}
	rt.injectTrace(pr)
}

func asAuthnError(err error) (*authn.Error, bool) {
	var ae *authn.Error
	if errors.As(err, &ae) {
		return ae, true
	}
	return nil, false
}
