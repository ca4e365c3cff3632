package gateway

import (
	"context"
	"net/http"
	"net/http/httputil"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/proxy/authn"
	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/identity"
)

// Span names (docs/tracing.md). The server span is "authgate <METHOD>
// <route>": route names come from the configuration, never the raw path.
const (
	spanAuthenticate = "authenticate"
	spanAuthorize    = "authorize"
	spanRego         = "rego.eval"
	spanUpstream     = "upstream"
)

// TracerName is the instrumentation scope of the proxy's spans.
const TracerName = "github.com/authgate/authgate/proxy/gateway"

// Attribute keys. Never a credential, header value, cookie, query or
// subject: only configuration names, fixed reasons and the canonical path
// (which the decision log records as well).
const (
	attrMethod     = "http.request.method"
	attrStatus     = "http.response.status_code"
	attrPath       = "url.path"
	attrServerAddr = "server.address"
	attrPolicy     = "authgate.policy"
	attrVersion    = "authgate.policy_version"
	attrRoute      = "authgate.route"
	attrDecision   = "authgate.decision"
	attrReason     = "authgate.reason"
	attrRequestID  = "authgate.request_id"
	attrCredKind   = "authgate.credential.kind"   //nolint:gosec // an attribute name, not a credential
	attrCredSource = "authgate.credential.source" //nolint:gosec // an attribute name, not a credential
	attrRegoCache  = "authgate.rego.cache"
	attrRegoAllow  = "authgate.rego.allow"
)

// reqTrace is one request's server span; span is nil when tracing is off.
type reqTrace struct {
	span   trace.Span
	remote bool // the request carried a valid trace context
}

// serverNames are the server spans' names before the route is known, one
// string per method (no concatenation per request).
var serverNames = func() map[string]string {
	m := map[string]string{"_OTHER": "authgate _OTHER"}
	for _, v := range methods {
		m[v] = "authgate " + v
	}
	return m
}()

// headerCarrier is propagation.HeaderCarrier without the per-call key
// canonicalisation (an allocation each) for the keys the W3C propagators
// use.
type headerCarrier http.Header

var canonicalKeys = map[string]string{"traceparent": "Traceparent", "tracestate": "Tracestate", "baggage": "Baggage"}

func canonical(k string) string {
	if c, ok := canonicalKeys[k]; ok {
		return c
	}
	return http.CanonicalHeaderKey(k)
}

func (h headerCarrier) Get(k string) string {
	if v := h[canonical(k)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h headerCarrier) Set(k, v string) { h[canonical(k)] = []string{v} }

func (h headerCarrier) Keys() []string { return propagation.HeaderCarrier(h).Keys() }

// methods are the methods a span names as themselves; others are
// "_OTHER" (a client chooses the method: span names stay bounded).
var methods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete,
	http.MethodConnect: http.MethodConnect, http.MethodOptions: http.MethodOptions, http.MethodTrace: http.MethodTrace,
}

// serverKind is the server span's start option, built once.
var serverKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

func spanMethod(m string) string {
	if s, ok := methods[m]; ok {
		return s
	}
	return "_OTHER"
}

// startRequest extracts the caller's trace context (W3C traceparent,
// tracestate, baggage) and starts the server span; the parent-based
// sampler follows the caller's sampled flag.
func (rt *Runtime) startRequest(r *http.Request, ev *event) *http.Request {
	ctx := rt.prop.Extract(r.Context(), headerCarrier(r.Header))
	remote := trace.SpanContextFromContext(ctx).IsValid()
	ctx, span := rt.tracer.Start(ctx, serverNames[spanMethod(r.Method)], serverKind...)
	ev.trace = reqTrace{span: span, remote: remote}
	return r.WithContext(ctx)
}

// endRequest names the server span after the matched route, records the
// decision and ends it.
func (rt *Runtime) endRequest(ev *event) {
	span := ev.trace.span
	if span.IsRecording() {
		name := "authgate " + spanMethod(ev.method)
		if ev.route != "" {
			name += " " + ev.route
		}
		span.SetName(name)
		attrs := []attribute.KeyValue{
			attribute.String(attrMethod, spanMethod(ev.method)),
			attribute.Int(attrStatus, ev.status),
			attribute.String(attrDecision, ev.decision),
			attribute.String(attrReason, ev.reason),
			attribute.String(attrRequestID, ev.requestID),
		}
		if ev.path != "" {
			attrs = append(attrs, attribute.String(attrPath, ev.path))
		}
		if ev.policy != "" {
			attrs = append(attrs, attribute.String(attrPolicy, ev.policy), attribute.String(attrVersion, ev.version))
		}
		if ev.route != "" {
			attrs = append(attrs, attribute.String(attrRoute, ev.route))
		}
		if ev.id != nil {
			attrs = append(attrs, attribute.String(attrCredKind, string(ev.id.Kind)), attribute.String(attrCredSource, ev.id.Source))
		}
		span.SetAttributes(attrs...)
		if ev.status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, ev.reason)
		}
	}
	span.End()
}

// traceID is the trace id for the decision log: the server span's when it
// records or continues the caller's trace; with tracing off, the caller's
// traceparent's (checked, never logged as sent).
func (ev *event) traceID() (string, bool) {
	if ev.trace.span != nil {
		sc := ev.trace.span.SpanContext()
		if sc.IsValid() && (ev.trace.span.IsRecording() || ev.trace.remote) {
			return sc.TraceID().String(), true
		}
		return "", false
	}
	return traceparentID(ev.traceparent)
}

// traceparentID returns the trace id of a W3C traceparent header value
// (version-traceid-parentid-flags), if it is a valid one.
func traceparentID(v string) (string, bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || v[:2] == "ff" {
		return "", false
	}
	id, err := trace.TraceIDFromHex(v[3:35])
	if err != nil {
		return "", false
	}
	if _, err := trace.SpanIDFromHex(v[36:52]); err != nil {
		return "", false
	}
	return id.String(), true
}

// span starts a child span of ctx's for policy p; with tracing off, or
// in a request that is not sampled (its children would not be either), it
// returns ctx and nil, and costs a nil check.
func (rt *Runtime) span(ctx context.Context, name string, p *policyRuntime, kind trace.SpanKind) (context.Context, trace.Span) {
	if rt.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	var attrs []attribute.KeyValue
	if p != nil {
		attrs = []attribute.KeyValue{attribute.String(attrPolicy, p.cfg.Name)}
	}
	return rt.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// endAuthn ends an authenticate span with the credential's kind and
// source, or the failure's reason (an error only for a server fault).
func endAuthn(span trace.Span, id *identity.Identity, err *authn.Error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetAttributes(attribute.String(attrReason, err.Reason))
		if err.ServerFault() {
			span.SetStatus(codes.Error, err.Reason)
		}
	} else if id != nil {
		span.SetAttributes(attribute.String(attrCredKind, string(id.Kind)), attribute.String(attrCredSource, id.Source))
	}
	span.End()
}

// endAuthz ends an authorize span with the policy's answer.
func endAuthz(span trace.Span, route string, o *outcome) {
	if span == nil {
		return
	}
	decision := "allow"
	if !o.allow {
		decision = "deny"
	}
	span.SetAttributes(attribute.String(attrRoute, route), attribute.String(attrDecision, decision), attribute.String(attrReason, o.reason))
	span.End()
}

// endRego ends a rego.eval span; evaluation errors (which deny) are
// errors, the engine's reason their description (never the input).
func endRego(span trace.Span, dec authz.Decision, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.String(attrRegoCache, "miss"), attribute.Bool(attrRegoAllow, err == nil && dec.Allow))
	if err != nil {
		reason := dec.Reason
		if reason == "" {
			reason = ReasonRegoError
		}
		span.SetAttributes(attribute.String(attrReason, reason))
		span.SetStatus(codes.Error, reason)
	}
	span.End()
}

// regoCacheHit marks the authorize span of ctx when the decision cache
// answered (no rego.eval span then).
func (rt *Runtime) regoCacheHit(ctx context.Context) {
	if rt.tracer != nil {
		trace.SpanFromContext(ctx).SetAttributes(attribute.String(attrRegoCache, "hit"))
	}
}

// startUpstream starts the client span around the forward; an unsampled
// request has none, and the function continues the server span's context.
func (rt *Runtime) startUpstream(ctx context.Context, method string) (context.Context, trace.Span) {
	if rt.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	return rt.tracer.Start(ctx, spanUpstream, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String(attrMethod, spanMethod(method)), attribute.String(attrServerAddr, rt.target.Host)))
}

func endUpstream(span trace.Span, status int) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int(attrStatus, status))
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, strings.ToLower(http.StatusText(status)))
	}
	span.End()
}

// injectTrace writes the upstream span's traceparent and tracestate, and
// the request's baggage, into the forwarded request, so the function
// continues the trace.
func (rt *Runtime) injectTrace(pr *httputil.ProxyRequest) {
	if rt.tracer != nil {
		rt.prop.Inject(pr.In.Context(), headerCarrier(pr.Out.Header))
	}
}
