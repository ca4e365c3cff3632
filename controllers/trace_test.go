package controllers_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/test/faultidp"
	"github.com/authgate/authgate/test/wait"
)

// suiteSpans records every span of the suite's controller with the
// OpenTelemetry SDK's own recorder (the sidecar's spans are tested against
// the collector's OTLP receiver in proxy/gateway; here what matters is
// which spans the controller starts and what they carry).
var suiteSpans = &spanRecorder{rec: tracetest.NewSpanRecorder()}

type spanRecorder struct {
	rec *tracetest.SpanRecorder
}

func (s *spanRecorder) tracer() trace.Tracer {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(s.rec))
	return tp.Tracer(controllers.TracerName)
}

// ended returns the ended spans named name whose attribute key is value.
func (s *spanRecorder) ended(name, key, value string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, sp := range s.rec.Ended() {
		if sp.Name() != name {
			continue
		}
		for _, a := range sp.Attributes() {
			if string(a.Key) == key && a.Value.String() == value {
				out = append(out, sp)
			}
		}
	}
	return out
}

// The controller traces every reconcile of a namespace and every fetch of
// an issuer's keys; a failing fetch is an error span whose message is the
// status's (no response body), and no span carries the policy's secrets.
func TestControllerTraces(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	idp := faultidp.New(t)
	p := policyFromYAML(t, ns, fmt.Sprintf(`
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: traced}
spec:
  targets: {knativeService: orders}
  authentication:
    jwt: [{issuerURL: %q, audiences: [orders]}]
  routes: [{name: all, paths: ["/**"]}]
`, idp.URL))
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "traced", v1alpha1.ConditionIssuersReady, metav1.ConditionTrue, controllers.ReasonKeysFetched)
	wait.For(t, 30*time.Second, func() bool {
		return len(suiteSpans.ended("reconcile", "k8s.namespace.name", ns)) > 0
	}, "a reconcile span of namespace %s", ns)
	for _, sp := range suiteSpans.ended("reconcile", "k8s.namespace.name", ns) {
		if sp.SpanKind() != trace.SpanKindInternal || !sp.SpanContext().IsValid() {
			t.Fatalf("reconcile span %+v", sp)
		}
	}
	u, err := url.Parse(idp.URL)
	if err != nil {
		t.Fatal(err)
	}
	host := u.Hostname()
	wait.For(t, 30*time.Second, func() bool {
		return len(suiteSpans.ended("jwks.fetch", "server.address", host)) > 0
	}, "a jwks.fetch span for %s", host)

	// The IdP answers garbage: the next fetch is an error span.
	idp.Set(faultidp.All, faultidp.Garbage)
	waitCondition(t, ns, "traced", v1alpha1.ConditionIssuersReady, metav1.ConditionFalse, controllers.ReasonRefreshFailed)
	wait.For(t, 30*time.Second, func() bool {
		for _, sp := range suiteSpans.ended("jwks.fetch", "server.address", host) {
			if sp.Status().Code.String() == "Error" {
				return true
			}
		}
		return false
	}, "an error jwks.fetch span")
	for _, sp := range suiteSpans.rec.Ended() {
		texts := []string{sp.Status().Description}
		for _, a := range sp.Attributes() {
			texts = append(texts, a.Value.String())
		}
		for _, tx := range texts {
			if strings.Contains(tx, "<html") || strings.Contains(tx, "not json") {
				t.Fatalf("span %s carries a response body: %q", sp.Name(), tx)
			}
		}
	}
	idp.Set(faultidp.All, faultidp.None)
}
