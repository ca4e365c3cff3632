package jwks

import (
	"context"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of jwks.fetch spans.
const TracerName = "github.com/authgate/authgate/proxy/jwks"

// startFetch starts a jwks.fetch span (discovery and key set), a child of
// whatever ctx carries: the request whose token needed a key, or nothing
// for a background refresh. It records the issuer's name and host only:
// never a URL's path or query, a response body or a header.
func (k *KeySet) startFetch(ctx context.Context) (context.Context, trace.Span) {
	if k.tracer == nil {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{attribute.String("authgate.issuer", k.name)}
	if u, err := url.Parse(k.issuerURL); err == nil && u.Host != "" {
		attrs = append(attrs, attribute.String("server.address", u.Hostname()))
	}
	return k.tracer.Start(ctx, "jwks.fetch", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endFetch ends the span; a failure's message is the one the key set's
// status shows, which never quotes the response.
func endFetch(span trace.Span, keys int, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetAttributes(attribute.String("authgate.result", "error"))
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.String("authgate.result", "success"), attribute.Int("authgate.jwks.keys", keys))
	}
	span.End()
}
