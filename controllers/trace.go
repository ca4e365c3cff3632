package controllers

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TracerName is the instrumentation scope of the controller's spans.
const TracerName = "github.com/authgate/authgate/controllers"

// startReconcile starts the span of one namespace's Reconcile; the issuer
// fetches it triggers are its children. nil tracer: no span.
func startReconcile(ctx context.Context, t trace.Tracer, ns string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	return t.Start(ctx, "reconcile", trace.WithAttributes(attribute.String("k8s.namespace.name", ns)))
}

// endReconcile records the result: "requeue" with its delay, or "error"
// with the error's text (an API or bundle error; never a Secret's data).
func endReconcile(span trace.Span, res reconcile.Result, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetAttributes(attribute.String("authgate.result", "error"))
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.String("authgate.result", "success"),
			attribute.Float64("authgate.requeue_after_seconds", res.RequeueAfter.Seconds()))
	}
	span.End()
}
