// Package otlpgrpc is the OTLP/gRPC span exporter for
// tracing.NewWith, linked by authgate-controller only: gRPC would not fit
// authgate-proxy's binary budget.
package otlpgrpc

import (
	"context"
	"crypto/tls"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"

	"github.com/authgate/authgate/internal/tracing"
)

// Exporter builds OpenTelemetry's OTLP/gRPC exporter; it dials lazily.
var _ tracing.ExporterFunc = Exporter

// Exporter is a tracing.ExporterFunc.
func Exporter(ctx context.Context, hostPort string, insecure bool, tlsCfg *tls.Config) (sdktrace.SpanExporter, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(hostPort)}
	switch {
	case insecure:
		opts = append(opts, otlptracegrpc.WithInsecure())
	case tlsCfg != nil:
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
	}
	return otlptracegrpc.New(ctx, opts...)
}
