package injector_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/authgate/authgate/controllers/injector"
)

func newTestHandler(t *testing.T, objs ...*corev1.Namespace) *injector.Handler {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, o := range objs {
		b = b.WithObjects(o)
	}
	h, err := injector.NewHandler(injector.Config{Image: "img"}, b.Build(), admission.NewDecoder(scheme))
	if err != nil {
		t.Fatal(err)
	}
	return h
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
	h := newTestHandler(t, namespace("functions", "enabled"), namespace("quiet", ""))
	ctx := context.Background()

	resp := h.Handle(ctx, podRequest(t, admissionv1.Create, "functions", knativePod(func(p *corev1.Pod) { p.Namespace = "" })))
	if !resp.Allowed || len(resp.Patches) == 0 || resp.PatchType == nil {
		t.Fatalf("got allowed=%v with %d patches, want a JSON patch", resp.Allowed, len(resp.Patches))
	}
	for _, p := range resp.Patches {
		if p.Path == "/metadata/namespace" {
			t.Errorf("got a patch of the namespace, want it left to the request: %v", p)
		}
	}

	resp = h.Handle(ctx, podRequest(t, admissionv1.Create, "quiet", plainPod()))
	if !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("got allowed=%v with %d patches in a namespace without opt-in, want allowed unchanged", resp.Allowed, len(resp.Patches))
	}

	resp = h.Handle(ctx, podRequest(t, admissionv1.Create, "functions", plainPod(withoutAnnotation(injector.AnnotationAppPort))))
	if resp.Allowed || resp.Result.Code != http.StatusForbidden || !strings.Contains(resp.Result.Message, injector.AnnotationAppPort) {
		t.Errorf("got allowed=%v %d %q, want a 403 naming the annotation", resp.Allowed, resp.Result.Code, resp.Result.Message)
	}

	resp = h.Handle(ctx, podRequest(t, admissionv1.Update, "functions", knativePod()))
	if !resp.Allowed || len(resp.Patches) != 0 {
		t.Error("got an UPDATE mutated, want it allowed unchanged")
	}

	// A namespace that cannot be read fails the request (failurePolicy Fail).
	resp = h.Handle(ctx, podRequest(t, admissionv1.Create, "missing", knativePod()))
	if resp.Allowed || resp.Result.Code != http.StatusInternalServerError {
		t.Errorf("got allowed=%v code %d, want a 500", resp.Allowed, resp.Result.Code)
	}
}

func TestNewHandlerValidates(t *testing.T) {
	t.Parallel()
	if _, err := injector.NewHandler(injector.Config{}, nil, nil); err == nil || !strings.Contains(err.Error(), "image") {
		t.Fatalf("got %v, want the missing image reported", err)
	}
}
