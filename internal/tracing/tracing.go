// Package tracing builds the OpenTelemetry tracer provider of both
// binaries (authgate-proxy and authgate-controller) from one set of
// options: an OTLP exporter (gRPC or HTTP/protobuf, TLS by default), a
// parent-based TraceIDRatio sampler, a resource naming the service and,
// when the pod's environment says, its namespace and pod, and the W3C
// tracecontext + baggage propagator. Disabled (the default), it hands out
// the no-op provider, and callers that check Enabled skip tracing
// altogether. See docs/tracing.md.
package tracing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/authgate/authgate/proxy/cabundle"
)

// Environment variables read for resource attributes (the chart and the
// injector set them from the downward API).
const (
	EnvPodNamespace = "POD_NAMESPACE"
	EnvPodName      = "POD_NAME"
)

// Provider is a process's tracer provider and propagator.
type Provider struct {
	tp   trace.TracerProvider
	sdk  *sdktrace.TracerProvider // nil when disabled
	prop propagation.TextMapPropagator
	opts Options
}

// Propagator is the W3C tracecontext + baggage composite, the one both
// binaries extract and inject.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Disabled returns a provider that records nothing.
func Disabled() *Provider {
	return &Provider{tp: noop.NewTracerProvider(), prop: Propagator()}
}

// New builds the provider o describes; disabled options give Disabled().
// It opens no connection (the exporter dials on its first export). The
// logger receives export errors; as the SDK reports those through
// OpenTelemetry's process-wide error handler, New sets that handler when
// tracing is on (one provider per process).
func New(ctx context.Context, o Options, logger *slog.Logger, getenv func(string) string) (*Provider, error) {
	return NewWith(ctx, o, logger, getenv, nil)
}

// NewWith is New with a gRPC exporter (nil: grpc is refused).
func NewWith(ctx context.Context, o Options, logger *slog.Logger, getenv func(string) string, grpc ExporterFunc) (*Provider, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if !o.Enabled() {
		return Disabled(), nil
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	exp, err := newExporter(ctx, &o, grpc)
	if err != nil {
		return nil, err
	}
	if logger != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			logger.Warn("tracing: span export failed", slog.String("error", err.Error()))
		}))
	}
	var bopts []sdktrace.BatchSpanProcessorOption
	if o.BatchTimeout > 0 {
		bopts = append(bopts, sdktrace.WithBatchTimeout(o.BatchTimeout))
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, bopts...),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SamplingRatio))),
		sdktrace.WithResource(newResource(o.ServiceName, getenv)),
	)
	return &Provider{tp: sdk, sdk: sdk, prop: Propagator(), opts: o}, nil
}

// Enabled reports whether spans are exported.
func (p *Provider) Enabled() bool { return p != nil && p.sdk != nil }

// TracerProvider is the provider (the no-op one when disabled).
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return noop.NewTracerProvider()
	}
	return p.tp
}

// Tracer returns a tracer of the provider, or nil when tracing is off, so
// the request path tests one pointer and allocates nothing.
func (p *Provider) Tracer(name string) trace.Tracer {
	if !p.Enabled() {
		return nil
	}
	return p.tp.Tracer(name)
}

// TextMapPropagator is the propagator.
func (p *Provider) TextMapPropagator() propagation.TextMapPropagator {
	if p == nil {
		return Propagator()
	}
	return p.prop
}

// Shutdown flushes the spans still queued and stops the exporter, within
// ctx and at most Options.ShutdownTimeout (5 s by default).
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	bound := p.opts.ShutdownTimeout
	if bound <= 0 {
		bound = defaultShutdownTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// newResource names the service and, when the environment has them, the
// pod. Schemaless: the attributes are few and stable.
func newResource(service string, getenv func(string) string) *resource.Resource {
	if service == "" {
		service = "authgate"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if ns := getenv(EnvPodNamespace); ns != "" {
		attrs = append(attrs, attribute.String("k8s.namespace.name", ns))
	}
	if pod := getenv(EnvPodName); pod != "" {
		attrs = append(attrs, attribute.String("k8s.pod.name", pod))
	}
	return resource.NewSchemaless(attrs...)
}

// ExporterFunc builds a gRPC span exporter for the options (a binary
// that supports grpc passes one: see internal/tracing/otlpgrpc).
type ExporterFunc func(ctx context.Context, hostPort string, insecure bool, tlsCfg *tls.Config) (sdktrace.SpanExporter, error)

// newExporter builds the span exporter; it does not connect.
func newExporter(ctx context.Context, o *Options, grpc ExporterFunc) (sdktrace.SpanExporter, error) {
	u, hostPort, err := o.endpoint()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	insecure := o.Insecure || (u != nil && u.Scheme == "http")
	if o.protocol() == ProtocolGRPC {
		if grpc == nil {
			return nil, errors.New("--tracing-protocol grpc: this binary exports over http/protobuf only")
		}
		if u != nil {
			hostPort = u.Host
		}
		exp, err := grpc(ctx, hostPort, insecure, tlsCfg)
		if err != nil {
			return nil, fmt.Errorf("tracing exporter: %w", err)
		}
		return exp, nil
	}
	if u == nil {
		u = &url.URL{Scheme: "https", Host: hostPort}
		if insecure {
			u.Scheme = "http"
		}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return newHTTPExporter(u.String(), tlsCfg), nil
}

// tlsConfig is nil (system roots) unless a CA is given.
func tlsConfig(o *Options) (*tls.Config, error) {
	pem := []byte(o.CAPEM)
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--tracing-ca-file: %w", err)
		}
		pem = b
	}
	if strings.TrimSpace(string(pem)) == "" {
		if o.CAFile != "" {
			return nil, errors.New("--tracing-ca-file is empty")
		}
		return nil, nil //nolint:nilnil // no CA: the system roots
	}
	b, err := cabundle.Parse(string(pem))
	if err != nil {
		return nil, fmt.Errorf("tracing CA: %w", err)
	}
	return &tls.Config{RootCAs: b.Pool, MinVersion: tls.VersionTLS12}, nil
}
