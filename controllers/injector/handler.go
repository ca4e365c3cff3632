package injector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Handler is the admission handler: it decodes the Pod, reads its Namespace
// and answers with the JSON patch Mutate's changes amount to.
type Handler struct {
	// Config is defaulted and valid (NewHandler sees to it).
	Config Config
	// Client reads Namespaces and, with Config.RequirePolicy, AuthPolicies
	// (the manager's cached client).
	Client client.Reader
	// Decoder decodes the Pod.
	Decoder admission.Decoder
	// Metrics counts every answer by result.
	Metrics *Metrics
}

// NewHandler defaults and validates cfg.
func NewHandler(cfg Config, c client.Reader, d admission.Decoder, m *Metrics) (*Handler, error) {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("injector config: %w", err)
	}
	if c == nil || d == nil || m == nil {
		return nil, errors.New("injector: a client, a decoder and metrics are required")
	}
	return &Handler{Config: cfg, Client: c, Decoder: d, Metrics: m}, nil
}

// Register serves the injector at Path on the manager's webhook server,
// reading Namespaces through the manager's cache. m is created by the
// caller (NewMetrics on the manager's registry) rather than here because
// Register may run late, once the webhook certificate exists.
func Register(mgr ctrl.Manager, cfg Config, m *Metrics) error {
	h, err := NewHandler(cfg, mgr.GetClient(), admission.NewDecoder(mgr.GetScheme()), m)
	if err != nil {
		return err
	}
	mgr.GetWebhookServer().Register(Path, &admission.Webhook{Handler: h})
	return nil
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, result := h.handle(ctx, req)
	h.Metrics.observe(result)
	return resp
}

// handle answers the request and says which result it counts as.
func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	logger := log.FromContext(ctx)
	if req.Operation != admissionv1.Create || req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" {
		return admission.Allowed("authgate injects Pods at CREATE only"), ResultSkipped
	}
	pod := &corev1.Pod{}
	if err := h.Decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode pod: %w", err)), ResultError
	}
	// At CREATE the namespace often comes only from the request URL.
	nsName := req.Namespace
	if nsName == "" {
		nsName = pod.Namespace
	}
	ns := &corev1.Namespace{}
	if err := h.Client.Get(ctx, client.ObjectKey{Name: nsName}, ns); err != nil {
		// failurePolicy Fail: a pod whose opt-in cannot be decided does not start.
		logger.Error(err, "reading the namespace failed", "namespace", nsName)
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("authgate injection: read namespace %s: %w", nsName, err)), ResultError
	}
	cfg := h.Config
	if cfg.Push.URL != "" {
		// The CA is read at every admission, so a renewed one reaches new
		// pods. Without it the pod gets no push channel (it follows the
		// mounted bundle, and its AuthPolicies report it as not enforcing
		// their generation), rather than no pod at all.
		ca, err := cfg.Push.ReadCA()
		if err != nil {
			logger.Error(err, "no push channel for this pod")
		}
		cfg.Push.CA = ca
	}
	changed, reason, err := Mutate(pod, ns, cfg)
	if err != nil {
		logger.Info("pod denied", "reason", err.Error())
		return admission.Denied(err.Error()), ResultDenied
	}
	if !changed {
		logger.V(1).Info("pod not injected", "reason", reason)
		return admission.Allowed(reason), ResultSkipped
	}
	if h.Config.RequirePolicy {
		if resp, result, refused := h.requirePolicy(ctx, pod, nsName); refused {
			return resp, result
		}
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode pod: %w", err)), ResultError
	}
	logger.Info("pod injected", "reason", reason)
	return admission.PatchResponseFromRaw(req.Object.Raw, raw), ResultInjected
}
