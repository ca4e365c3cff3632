// Command otlpsink runs the OpenTelemetry Collector's real OTLP receiver
// (go.opentelemetry.io/collector/receiver/otlpreceiver, the component the
// collector binary runs, with a consumertest.TracesSink behind it) on
// loopback for the tests of test/otlpsink. It is a separate module, built
// by hack/otlpsink.sh into bin/otlpsink: the collector's configuration
// packages need github.com/gobwas/glob v0.2.x while OPA, linked by the
// proxy, needs v1, so the receiver cannot be linked into the main module's
// tests.
//
// It prints one JSON line {"grpc": host:port, "http": host:port,
// "control": host:port} once listening; GET http://control/spans returns
// every span received so far (flattened, see span), DELETE forgets them.
// It exits when its standard input closes (the test process is gone) or on
// SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// span is one received span as the tests read it.
type span struct {
	Name         string            `json:"name"`
	Kind         string            `json:"kind"`
	TraceID      string            `json:"traceId"`
	SpanID       string            `json:"spanId"`
	ParentSpanID string            `json:"parentSpanId,omitempty"`
	Attributes   map[string]string `json:"attributes"`
	Status       string            `json:"status"`
	Resource     map[string]string `json:"resource"`
	// Strings is every string the span carries: attribute values, the
	// status message, the trace state, event names and attributes, link
	// trace states and attributes, resource attributes.
	Strings []string `json:"strings"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "otlpsink:", err)
		os.Exit(1)
	}
}

func run() error {
	sink := new(consumertest.TracesSink)
	var (
		r    receiver.Traces
		addr map[string]string
		err  error
	)
	for range 5 { // a probed free port may be taken before the receiver binds it
		if r, addr, err = start(sink); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr["control"] = ln.Addr().String()
	srv := &http.Server{Handler: control(sink), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	if err := json.NewEncoder(os.Stdout).Encode(addr); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-done:
	case <-sig:
	}
	return nil
}

func start(sink *consumertest.TracesSink) (receiver.Traces, map[string]string, error) {
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	g, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	h, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = g
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = h
	r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		return nil, nil, fmt.Errorf("create receiver: %w", err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		_ = r.Shutdown(context.Background())
		return nil, nil, fmt.Errorf("start receiver: %w", err)
	}
	return r, map[string]string{"grpc": g, "http": h}, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func control(sink *consumertest.TracesSink) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(flattenAll(sink.AllTraces()))
		case http.MethodDelete:
			sink.Reset()
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
}

func flattenAll(all []ptrace.Traces) []span {
	out := []span{}
	for _, td := range all {
		rss := td.ResourceSpans()
		for i := range rss.Len() {
			rs := rss.At(i)
			res := attrs(rs.Resource().Attributes())
			sss := rs.ScopeSpans()
			for j := range sss.Len() {
				spans := sss.At(j).Spans()
				for k := range spans.Len() {
					out = append(out, flatten(spans.At(k), res))
				}
			}
		}
	}
	return out
}

func flatten(sp ptrace.Span, res map[string]string) span {
	s := span{
		Name: sp.Name(), Kind: sp.Kind().String(), TraceID: sp.TraceID().String(), SpanID: sp.SpanID().String(),
		Attributes: attrs(sp.Attributes()), Status: sp.Status().Code().String(), Resource: res,
	}
	if !sp.ParentSpanID().IsEmpty() {
		s.ParentSpanID = sp.ParentSpanID().String()
	}
	for _, v := range s.Attributes {
		s.Strings = append(s.Strings, v)
	}
	for _, v := range res {
		s.Strings = append(s.Strings, v)
	}
	s.Strings = append(s.Strings, sp.Status().Message(), sp.TraceState().AsRaw())
	evs := sp.Events()
	for i := range evs.Len() {
		s.Strings = append(s.Strings, evs.At(i).Name())
		for _, v := range attrs(evs.At(i).Attributes()) {
			s.Strings = append(s.Strings, v)
		}
	}
	links := sp.Links()
	for i := range links.Len() {
		s.Strings = append(s.Strings, links.At(i).TraceState().AsRaw())
		for _, v := range attrs(links.At(i).Attributes()) {
			s.Strings = append(s.Strings, v)
		}
	}
	return s
}

func attrs(m pcommon.Map) map[string]string {
	out := make(map[string]string, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		out[k] = v.AsString()
		return true
	})
	return out
}
