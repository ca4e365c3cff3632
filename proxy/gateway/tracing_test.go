package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/test/otlpsink"
	"github.com/authgate/authgate/test/wait"
)

// tracedEnv is the env with tracing exported over OTLP/HTTP to the
// OpenTelemetry Collector's real OTLP receiver (test/otlpsink runs the
// collector's otlpreceiver as a loopback process and returns what it
// decoded).
func tracedEnv(t *testing.T, sink *otlpsink.Sink, ratio float64, opts ...envOption) *env {
	t.Helper()
	p, err := tracing.New(context.Background(), tracing.Options{
		Endpoint: sink.HTTP, Insecure: true, SamplingRatio: ratio, ServiceName: "authgate-proxy",
		BatchTimeout: 20 * time.Millisecond,
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return newEnvDeps(t, gateway.Deps{Tracing: p}, opts...)
}

const (
	traceID      = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID = "00f067aa0ba902b7"
	cookieValue  = "session-cookie-value-7f3a9c"
)

func traceparent(flags string) string { return "00-" + traceID + "-" + callerSpanID + "-" + flags }

// TestTracingSpans sends a JWT request and an API-key request through the
// real proxy with a sampled caller trace context and checks the spans the
// collector's receiver got: parents, attributes, the context the function
// received, the decision log's trace_id, and that no span carries a
// credential anywhere.
func TestTracingSpans(t *testing.T) {
	sink := otlpsink.Start(t)
	// Ratio 0: only the caller's sampled flag makes these traced.
	e := tracedEnv(t, sink, 0, withRego(regoDepartments, 0))
	tok := e.mint(map[string]any{"department": "sales"})
	rec := e.get("/api/sales/report?q=1", append(bearer(tok),
		"Traceparent", traceparent("01"), "Baggage", "tenant=acme", "Cookie", "sid="+cookieValue)...).mustForward(t)

	spans := waitSpans(t, sink, 5)
	server := one(t, spans, "authgate GET any")
	if server.Kind != "Server" || server.TraceID != traceID || server.ParentSpanID != callerSpanID {
		t.Fatalf("got server span %+v, want a server span continuing the caller's trace %s under %s", server, traceID, callerSpanID)
	}
	for k, want := range map[string]string{
		"http.request.method": "GET", "url.path": "/api/sales/report", "http.response.status_code": "200",
		"authgate.policy": "fn", "authgate.route": "any", "authgate.decision": "allow", "authgate.reason": "allowed",
		"authgate.credential.kind": "jwt", "authgate.credential.source": "dev",
	} {
		if got := server.Attributes[k]; got != want {
			t.Errorf("server span %s: got %q, want %q", k, got, want)
		}
	}
	if _, ok := server.Attributes["enduser.id"]; ok {
		t.Error("server span records enduser.id, want the subject left out")
	}
	authn := one(t, spans, "authenticate")
	authz := one(t, spans, "authorize")
	rego := one(t, spans, "rego.eval")
	up := one(t, spans, "upstream")
	for _, c := range []struct {
		span   otlpsink.Span
		parent string
	}{{authn, server.SpanID}, {authz, server.SpanID}, {rego, authz.SpanID}, {up, server.SpanID}} {
		if c.span.ParentSpanID != c.parent || c.span.TraceID != traceID {
			t.Errorf("span %s: got parent %s trace %s, want parent %s trace %s", c.span.Name, c.span.ParentSpanID, c.span.TraceID, c.parent, traceID)
		}
	}
	if up.Kind != "Client" || up.Attributes["http.response.status_code"] != "200" || rego.Attributes["authgate.rego.cache"] != "miss" {
		t.Errorf("got upstream %+v and rego %+v", up, rego)
	}

	// The function continues the trace under the upstream span and gets
	// the caller's baggage.
	if got := header(rec, "Traceparent"); len(got) != 1 || got[0] != "00-"+traceID+"-"+up.SpanID+"-01" {
		t.Errorf("function got traceparent %v, want one under the upstream span %s", got, up.SpanID)
	}
	if got := header(rec, "Baggage"); len(got) != 1 || got[0] != "tenant=acme" {
		t.Errorf("function got baggage %v, want [tenant=acme]", got)
	}
	if !strings.Contains(e.logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("decision log has no trace_id %s: %s", traceID, e.logs.String())
	}

	// An API key (which the Rego policy denies: no department) and a
	// token without MFA on an admin route: their spans too.
	e.get("/orders/1", "X-API-Key", partnerKey, "Traceparent", traceparent("01")).mustDeny(t, http.StatusForbidden, "rego_denied")
	e.get("/admin/x", append(bearer(tok), "Traceparent", traceparent("01"))...).mustDeny(t, http.StatusForbidden, "")
	spans = waitSpans(t, sink, 5+4+3) // + server, authenticate, authorize, rego.eval; + server, authenticate, authorize
	for _, s := range spans {
		for _, v := range s.Strings {
			for _, secret := range []string{tok, partnerKey, cookieValue, "Bearer", tok[strings.LastIndexByte(tok, '.')+1:]} {
				if strings.Contains(v, secret) {
					t.Errorf("span %s carries a credential (%.12s...) in %q", s.Name, secret, v)
				}
			}
		}
	}
	deny := one(t, spans, "authgate GET admin")
	if deny.Attributes["authgate.decision"] != "deny" || deny.Attributes["http.response.status_code"] != "403" {
		t.Errorf("got denied span %+v", deny)
	}
}

// TestTracingSampling: ratio 0 without a caller context records nothing;
// a caller's unsampled flag is followed too; a sampled one is traced.
func TestTracingSampling(t *testing.T) {
	sink := otlpsink.Start(t)
	e := tracedEnv(t, sink, 0)
	tok := e.mint(nil)
	e.get("/orders/1", bearer(tok)...).mustForward(t)
	rec := e.get("/orders/1", append(bearer(tok), "Traceparent", traceparent("00"))...).mustForward(t)
	if got := header(rec, "Traceparent"); len(got) != 1 || !strings.HasPrefix(got[0], "00-"+traceID+"-") || !strings.HasSuffix(got[0], "-00") {
		t.Errorf("function got traceparent %v, want the caller's trace, unsampled", got)
	}
	e.get("/orders/1", append(bearer(tok), "Traceparent", traceparent("01"))...).mustForward(t)
	spans := waitSpans(t, sink, 4)
	for _, s := range spans {
		if s.TraceID != traceID {
			t.Fatalf("got span %s of trace %s, want only the sampled caller's trace", s.Name, s.TraceID)
		}
	}
}

// TestTraceIDLoggedWithTracingOff: the decision log names the caller's
// trace id even when the proxy does not trace.
func TestTraceIDLoggedWithTracingOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.get("/orders/1", append(bearer(e.mint(nil)), "Traceparent", traceparent("01"))...).mustForward(t)
	e.get("/orders/1", append(bearer(e.mint(nil)), "Traceparent", "00-zz-bad")...).mustForward(t)
	logs := e.logs.String()
	if strings.Count(logs, `"trace_id":"`+traceID+`"`) != 1 || strings.Count(logs, `"trace_id"`) != 1 {
		t.Fatalf("got logs %s, want one trace_id %s and none for the malformed traceparent", logs, traceID)
	}
}

// waitSpans waits until the receiver holds n spans; more never arrive in
// these tests, so it checks the count after a last flush interval too.
func waitSpans(t *testing.T, sink *otlpsink.Sink, n int) []otlpsink.Span {
	t.Helper()
	var spans []otlpsink.Span
	wait.For(t, 0, func() bool { spans = sink.Spans(t); return len(spans) >= n }, "%d spans at the OTLP receiver", n)
	if len(spans) != n {
		t.Fatalf("got %d spans, want %d: %+v", len(spans), n, spans)
	}
	return spans
}

func one(t *testing.T, spans []otlpsink.Span, name string) otlpsink.Span {
	t.Helper()
	var found []otlpsink.Span
	for _, s := range spans {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		names := make([]string, len(spans))
		for i, s := range spans {
			names[i] = s.Name
		}
		t.Fatalf("got %d spans named %q among %v, want 1", len(found), name, names)
	}
	return found[0]
}
