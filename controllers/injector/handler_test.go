package injector_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/test/metrictest"
)

// newTestHandler returns a handler reading the given namespaces and the
// registry its metrics are registered on.
func newTestHandler(t *testing.T, objs ...*corev1.Namespace) (*injector.Handler, *prometheus.Registry) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, o := range objs {
		b = b.WithObjects(o)
	}
	reg := prometheus.NewRegistry()
	h, err := injector.NewHandler(injector.Config{Image: "img"}, b.Build(), admission.NewDecoder(scheme), injector.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

func podRequest(t *testing.T, op admissionv1.Operation, ns string, pod *corev1.Pod) admission.Request {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "1", Operation: op, Namespace: ns,
		Kind:     metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Object:   runtime.RawExtension{Raw: raw},
	}}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	garbage := podRequest(t, admissionv1.Create, "functions", knativePod())
	garbage.Object.Raw = []byte(`{"spec": 7}`)
	for _, tc := range []struct {
		name    string
		req     admission.Request
		allowed bool
		patched bool
		code    int32  // of a refusal
		message string // in a refusal
		result  string // the admission counted
	}{
		{name: "opted-in pod injected", req: podRequest(t, admissionv1.Create, "functions", knativePod(func(p *corev1.Pod) { p.Namespace = "" })),
			allowed: true, patched: true, result: injector.ResultInjected},
		{name: "namespace without opt-in", req: podRequest(t, admissionv1.Create, "quiet", plainPod()),
			allowed: true, result: injector.ResultSkipped},
		{name: "UPDATE left alone", req: podRequest(t, admissionv1.Update, "functions", knativePod()),
			allowed: true, result: injector.ResultSkipped},
		{name: "opted in but cannot be wired", req: podRequest(t, admissionv1.Create, "functions", plainPod(withoutAnnotation(injector.AnnotationAppPort))),
			code: http.StatusForbidden, message: injector.AnnotationAppPort, result: injector.ResultDenied},
		// A namespace that cannot be read fails the request (failurePolicy Fail).
		{name: "namespace unreadable", req: podRequest(t, admissionv1.Create, "missing", knativePod()),
			code: http.StatusInternalServerError, message: "read namespace missing", result: injector.ResultError},
		{name: "undecodable pod", req: garbage, code: http.StatusBadRequest, message: "decode pod", result: injector.ResultError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, reg := newTestHandler(t, namespace("functions", "enabled"), namespace("quiet", ""))
			resp := h.Handle(t.Context(), tc.req)
			if resp.Allowed != tc.allowed || (len(resp.Patches) > 0) != tc.patched {
				t.Fatalf("got allowed=%v with %d patches, want allowed=%v patched=%v", resp.Allowed, len(resp.Patches), tc.allowed, tc.patched)
			}
			if tc.patched && resp.PatchType == nil {
				t.Error("got patches without a patch type")
			}
			for _, p := range resp.Patches {
				if p.Path == "/metadata/namespace" {
					t.Errorf("got a patch of the namespace, want it left to the request: %v", p)
				}
			}
			if !tc.allowed && (resp.Result.Code != tc.code || !strings.Contains(resp.Result.Message, tc.message)) {
				t.Errorf("got %d %q, want %d naming %q", resp.Result.Code, resp.Result.Message, tc.code, tc.message)
			}
			for _, result := range []string{injector.ResultInjected, injector.ResultSkipped, injector.ResultDenied, injector.ResultError} {
				want := 0.0
				if result == tc.result {
					want = 1
				}
				if got := metrictest.Sum(t, reg, "authgate_injector_admissions_total", "result", result); got != want {
					t.Errorf("got authgate_injector_admissions_total{result=%q} %v, want %v", result, got, want)
				}
			}
		})
	}
}

func TestNewHandlerValidates(t *testing.T) {
	t.Parallel()
	if _, err := injector.NewHandler(injector.Config{}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "image") {
		t.Fatalf("got %v, want the missing image reported", err)
	}
	if _, err := injector.NewHandler(injector.Config{Image: "img"}, fake.NewClientBuilder().Build(), admission.NewDecoder(runtime.NewScheme()), nil); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Fatalf("got %v, want the missing metrics reported", err)
	}
}
