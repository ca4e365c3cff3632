package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/identity"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/ratelimit"
)

// event accumulates what the decision log line and metrics report.
type event struct {
	start     time.Time
	requestID string
	client    netip.Addr
	clientStr string
	method    string
	path      string
	status    int
	decision  string
	reason    string
	detail    string
	policy    string
	version   string
	route     string
	id        *identity.Identity
	audit     []string
	body      *bodyReader
	// trace is the server span (none with tracing off); traceparent the
	// caller's header with tracing off, for trace_id.
	trace       reqTrace
	traceparent string
}

// clientString keys per-client limits; peers without an IP address (a Unix
// socket) share one named bucket rather than an empty key.
func (ev *event) clientString() string {
	if ev.clientStr == "" {
		if ev.client.IsValid() {
			ev.clientStr = ev.client.String()
		} else {
			ev.clientStr = "non-ip-peer"
		}
	}
	return ev.clientStr
}

// errorBody is the JSON body of every refusal. It never holds a credential.
type errorBody struct {
	Error       string `json:"error"`
	Reason      string `json:"reason"`
	Description string `json:"description,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
}

// finish answers a denial.
func (rt *Runtime) finish(w http.ResponseWriter, r *http.Request, ev *event, o *outcome) {
	ev.status, ev.decision, ev.reason, ev.detail = o.status, metrics.DecisionDeny, o.reason, o.detail
	ev.route = o.route
	if o.policy != nil {
		ev.policy, ev.version = o.policy.cfg.Name, o.policy.cfg.Version
	} else {
		rt.count("", o.route, metrics.DecisionDeny, o.reason)
	}
	if o.status == http.StatusTooManyRequests && o.retry == 0 {
		o.retry = time.Second
	}
	// A refused request's body is never read; close the connection rather
	// than drain an attacker's upload.
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	if o.challenge != "" {
		w.Header().Set("WWW-Authenticate", o.challenge)
	}
	if o.challenge != "" {
		w.Header().Set("WWW-Authenticate", o.challenge)
	}
	writeError(w, o.status, o.reason, publicDetail(o), ev.requestID, o.retry)
	rt.logDecision(ev)
}

// publicDetail is what a client may learn about a denial: Rego reasons and
// authentication descriptions are written for clients; internal errors are
// not.
func publicDetail(o *outcome) string {
	switch o.reason {
	case authz.ReasonRegoError, authz.ReasonRegoUndefined, authz.ReasonRegoTimeout, authz.ReasonRegoPanic, authz.ReasonRegoResult:
		return "the policy could not be evaluated"
	}
	return o.detail
}

func writeError(w http.ResponseWriter, status int, reason, detail, requestID string, retry time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	switch status {
	case http.StatusUnauthorized:
		switch {
		case h.Get("WWW-Authenticate") != "": // a step-up challenge set by the caller
		case reason == "missing_credential":
			h.Set("WWW-Authenticate", `Bearer realm="authgate"`)
		default:
			h.Set("WWW-Authenticate", `Bearer realm="authgate", error="invalid_token"`)
		}
	case http.StatusBadRequest:
		h.Set("WWW-Authenticate", `Bearer realm="authgate", error="invalid_request"`)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if retry > 0 {
			h.Set("Retry-After", ratelimit.RetryAfterSeconds(retry))
		}
	}
	w.WriteHeader(status)
	body, _ := json.Marshal(errorBody{Error: http.StatusText(status), Reason: reason, Description: detail, RequestID: requestID})
	_, _ = w.Write(append(body, '\n'))
}

func (rt *Runtime) count(policy, route, decision, reason string) {
	k := counterKey{policy, route, decision, reason}
	if c, ok := rt.counters.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := rt.deps.Metrics.RequestsTotal.WithLabelValues(policy, route, decision, reason)
	rt.counters.Store(k, c)
	c.Inc()
}

// counterKey names one authgate_requests_total series. The label values
// come from the configuration and fixed reasons, so a runtime holds a
// bounded set; resolving each once saves hashing and validating the four
// labels on every request.
type counterKey struct{ policy, route, decision, reason string }

// Request stages, each resolved to its histogram once per runtime rather
// than looked up by label on every request.
const (
	stageAuthn = iota
	stageAuthz
	stageUpstream
	stageTotal
	stageCount
)

var stageNames = [stageCount]string{"authn", "authz", "upstream", "total"}

func (rt *Runtime) observe(stage int, d time.Duration) {
	rt.stages[stage].Observe(d.Seconds())
}

// logDecision writes the decision log line: every denial, a sample of
// allows. Credentials never appear: only their kind and the subject.
func (rt *Runtime) logDecision(ev *event) {
	total := rt.deps.Now().Sub(ev.start)
	rt.observe(stageTotal, total)
	if ev.decision == metrics.DecisionAllow && len(ev.audit) == 0 && !rt.deps.Sample(*rt.cfg.DecisionLog.SampleRate) {
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("request_id", ev.requestID),
		slog.String("method", ev.method),
		slog.String("path", ev.path),
		slog.String("client_ip", ev.clientString()),
		slog.Int("status", ev.status),
		slog.String("decision", ev.decision),
		slog.String("reason", ev.reason),
		slog.String("policy", ev.policy),
		slog.String("policy_version", ev.version),
		slog.String("route", ev.route),
		slog.String("config", shortHash(rt.hash)),
		slog.Duration("duration", total),
	)
	if ev.detail != "" {
		attrs = append(attrs, slog.String("detail", ev.detail))
	}
	if id, ok := ev.traceID(); ok {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	if ev.id != nil {
		attrs = append(attrs, slog.String("subject", ev.id.Subject), slog.String("credential_kind", string(ev.id.Kind)), slog.String("source", ev.id.Source))
	}
	if len(ev.audit) > 0 {
		attrs = append(attrs, slog.Any("audit_denials", ev.audit))
	}
	rt.deps.Logger.LogAttrs(context.Background(), slog.LevelInfo, "decision", attrs...)
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func errAttr(err error) slog.Attr { return slog.String("error", err.Error()) }

func defaultSample(rate float64) bool {
	return rate >= 1 || (rate > 0 && rand.Float64() < rate) //nolint:gosec // log sampling, not security
}

// statusWriter records the status the upstream answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote && code >= 200 {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack (WebSockets).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush forwards streaming flushes.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack supports protocol upgrades.
func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(s.ResponseWriter).Hijack()
}
