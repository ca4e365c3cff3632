package tracing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/internal/tracing/otlpgrpc"
	"github.com/authgate/authgate/test/otlpsink"
	"github.com/authgate/authgate/test/wait"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    tracing.Options
		want string // "" means valid
	}{
		{"off", tracing.Options{}, ""},
		{"off with a bad ratio", tracing.Options{SamplingRatio: 2}, "between 0 and 1"},
		{"host port", tracing.Options{Endpoint: "collector:4317", SamplingRatio: 0.5}, ""},
		{"url", tracing.Options{Endpoint: "https://collector:4318/v1/traces", Protocol: tracing.ProtocolHTTP}, ""},
		{"no port", tracing.Options{Endpoint: "collector"}, "want host:port"},
		{"url with user", tracing.Options{Endpoint: "https://u:p@collector:4318"}, "no user"},
		{"bad scheme", tracing.Options{Endpoint: "ftp://collector:21"}, "http(s)"},
		{"bad protocol", tracing.Options{Endpoint: "c:4317", Protocol: "thrift"}, "--tracing-protocol"},
		{"negative ratio", tracing.Options{Endpoint: "c:4317", SamplingRatio: -0.1}, "between 0 and 1"},
		{"two CAs", tracing.Options{Endpoint: "c:4317", CAFile: "/ca", CAPEM: "x"}, "exclusive"},
		{"insecure and CA", tracing.Options{Endpoint: "c:4317", Insecure: true, CAFile: "/ca"}, "exclusive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	t.Parallel()
	if got := (&tracing.Options{}).Args("CA"); got != nil {
		t.Fatalf("got %v for tracing off, want none", got)
	}
	o := tracing.Options{Endpoint: "c:4317", Insecure: true, SamplingRatio: 0.25, CAPEM: ""}
	got := strings.Join(o.Args("CA"), " ")
	if want := "--tracing-endpoint c:4317 --tracing-protocol http/protobuf --tracing-sampling-ratio 0.25 --tracing-insecure"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	o = tracing.Options{Endpoint: "c:4317", CAPEM: "pem", SamplingRatio: 1, Protocol: tracing.ProtocolGRPC}
	if got := strings.Join(o.Args("CA"), " "); !strings.HasSuffix(got, "--tracing-ca $(CA)") || !strings.Contains(got, "grpc") {
		t.Fatalf("got %q, want the CA from $(CA) and grpc", got)
	}
}

func TestDisabledRecordsNothing(t *testing.T) {
	t.Parallel()
	p, err := tracing.New(context.Background(), tracing.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() || p.Tracer("x") != nil {
		t.Fatal("got an enabled provider for empty options, want tracing off")
	}
	_, span := p.TracerProvider().Tracer("x").Start(context.Background(), "s")
	if span.IsRecording() {
		t.Fatal("got a recording span from the disabled provider")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestExportsToTheCollectorsReceiver sends spans over both protocols to
// the OpenTelemetry Collector's real OTLP receiver (run as a loopback
// process, see test/otlpsink) and reads them back with their resource.
func TestExportsToTheCollectorsReceiver(t *testing.T) {
	sink := otlpsink.Start(t)
	for _, tc := range []struct {
		proto, endpoint string
		insecure        bool
	}{
		{tracing.ProtocolGRPC, sink.GRPC, true},
		{tracing.ProtocolHTTP, "http://" + sink.HTTP, false}, // the URL's scheme means no TLS
	} {
		t.Run(tc.proto, func(t *testing.T) {
			sink.Reset(t)
			env := map[string]string{tracing.EnvPodNamespace: "fns", tracing.EnvPodName: "fn-1"}
			p, err := tracing.NewWith(context.Background(), tracing.Options{
				Endpoint: tc.endpoint, Protocol: tc.proto, Insecure: tc.insecure, SamplingRatio: 1,
				ServiceName: "authgate-test", BatchTimeout: 50 * time.Millisecond,
			}, nil, func(k string) string { return env[k] }, otlpgrpc.Exporter)
			if err != nil {
				t.Fatal(err)
			}
			ctx, parent := p.Tracer("test").Start(context.Background(), "parent")
			_, child := p.Tracer("test").Start(ctx, "child")
			child.End()
			parent.End()
			if err := p.Shutdown(context.Background()); err != nil { // flushes
				t.Fatal(err)
			}
			var spans []otlpsink.Span
			wait.For(t, 0, func() bool { spans = sink.Spans(t); return len(spans) == 2 }, "2 spans at the receiver")
			ps, cs := otlpsink.Named(spans, "parent"), otlpsink.Named(spans, "child")
			if len(ps) != 1 || len(cs) != 1 || cs[0].ParentSpanID != ps[0].SpanID || cs[0].TraceID != ps[0].TraceID {
				t.Fatalf("got %+v, want child under parent", spans)
			}
			res := ps[0].Resource
			if res["service.name"] != "authgate-test" || res["k8s.namespace.name"] != "fns" || res["k8s.pod.name"] != "fn-1" {
				t.Fatalf("got resource %v", res)
			}
		})
	}
}

func TestGRPCNeedsAnExporter(t *testing.T) {
	t.Parallel()
	_, err := tracing.New(context.Background(), tracing.Options{Endpoint: "c:4317", Protocol: tracing.ProtocolGRPC, SamplingRatio: 1}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "http/protobuf only") {
		t.Fatalf("got %v, want grpc refused without a gRPC exporter", err)
	}
}

func TestSamplingIsParentBased(t *testing.T) {
	t.Parallel()
	p, err := tracing.New(context.Background(), tracing.Options{Endpoint: "127.0.0.1:1", Insecure: true, SamplingRatio: 0}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	tr := p.Tracer("test")
	if _, s := tr.Start(context.Background(), "root"); s.IsRecording() {
		t.Fatal("got a sampled root at ratio 0")
	}
	for flags, want := range map[string]bool{"01": true, "00": false} {
		carrier := propagation.MapCarrier{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags}
		ctx := p.TextMapPropagator().Extract(context.Background(), carrier)
		if _, s := tr.Start(ctx, "child"); s.IsRecording() != want {
			t.Fatalf("flags %s: got recording %v, want %v", flags, s.IsRecording(), want)
		}
	}
}
