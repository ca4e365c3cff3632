package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"golang.org/x/net/http/httpguts"
)

// ErrUndefined is returned when the policy's query has no value for an input
// (no rule matched and there is no default). The request is denied.
var ErrUndefined = errors.New("rego query result is undefined")

// Decision reasons set by Eval when it returns an error.
const (
	ReasonRegoUndefined = "rego_undefined"
	ReasonRegoError     = "rego_error"
	ReasonRegoTimeout   = "rego_timeout"
	ReasonRegoResult    = "rego_invalid_result"
	ReasonRegoPanic     = "rego_panic"
)

// Decision is a policy's answer for one request.
type Decision struct {
	// Allow lets the request through.
	Allow bool
	// Reason is the policy's explanation (for logs), or one of the
	// ReasonRego* constants when evaluation failed.
	Reason string
	// Headers are extra X-Authgate-* headers for the function, with
	// canonical names; nil when the policy set none.
	Headers map[string]string
}

// Engine is a compiled policy, prepared once and evaluated per request. It
// is safe for concurrent use.
type Engine struct {
	policy  string
	query   string
	timeout time.Duration
	pq      rego.PreparedEvalQuery
	// cacheable: the query reads only what a decision cache key fixes
	// (see decisionCacheable); uncacheable says why not.
	cacheable   bool
	uncacheable string
}

// Cacheable reports whether the policy's decisions may be cached per
// identity, policy version, method and canonical path, and when not, why.
func (e *Engine) Cacheable() (bool, string) { return e.cacheable, e.uncacheable }

// Query returns the query the engine evaluates.
func (e *Engine) Query() string { return e.query }

// Eval evaluates the policy on in, bounded by the policy's timeout. Every
// failure — undefined result (ErrUndefined), a built-in error, timeout,
// panic, or a result that is not a boolean or a well-formed decision object
// — returns an error together with a denying Decision whose Reason says why;
// callers must deny on any error.
func (e *Engine) Eval(ctx context.Context, in *Input) (dec Decision, err error) {
	defer func() {
		if p := recover(); p != nil {
			dec, err = Decision{Reason: ReasonRegoPanic}, fmt.Errorf("rego evaluation of policy %s panicked: %v", e.policy, p)
		}
	}()
	if in == nil {
		return Decision{Reason: ReasonRegoError}, errors.New("rego input is nil")
	}
	if err := ctx.Err(); err != nil {
		return Decision{Reason: ReasonRegoError}, fmt.Errorf("rego evaluation of policy %s: %w", e.policy, err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	// OPA cancels through a topdown.Cancel. Without one it starts a
	// goroutine per evaluation to watch ctx; context.AfterFunc registers a
	// callback on ctx instead, run only if ctx ends (timeout or the
	// caller's cancellation) before stop.
	halt := topdown.NewCancel()
	stop := context.AfterFunc(ctx, halt.Cancel)
	defer stop()
	rs, err := e.pq.Eval(ctx,
		rego.EvalParsedInput(in.value),
		rego.EvalTime(in.now),
		rego.EvalGenerateJSON(keepTerm),
		rego.EvalExternalCancel(halt),
		// Nothing reads per-evaluation metrics; the default allocates a
		// fresh set and timers on every evaluation.
		rego.EvalMetrics(metrics.NoOp()),
	)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(ctxErr, context.DeadlineExceeded) {
				return Decision{Reason: ReasonRegoTimeout}, fmt.Errorf("rego evaluation of policy %s exceeded %s: %w", e.policy, e.timeout, ctxErr)
			}
			return Decision{Reason: ReasonRegoError}, fmt.Errorf("rego evaluation of policy %s: %w", e.policy, ctxErr)
		}
		return Decision{Reason: ReasonRegoError}, fmt.Errorf("rego evaluation of policy %s: %w", e.policy, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{Reason: ReasonRegoUndefined}, fmt.Errorf("policy %s: %w", e.policy, ErrUndefined)
	}
	if len(rs) > 1 {
		return Decision{Reason: ReasonRegoResult}, fmt.Errorf("policy %s: query %s has %d results, want one", e.policy, e.query, len(rs))
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return Decision{Reason: ReasonRegoResult}, fmt.Errorf("policy %s: unexpected result type %T", e.policy, rs[0].Expressions[0].Value)
	}
	dec, err = decisionFrom(t.Value)
	if err != nil {
		return Decision{Reason: ReasonRegoResult}, fmt.Errorf("policy %s: query %s: %w", e.policy, e.query, err)
	}
	return dec, nil
}

// keepTerm hands the result term over unconverted, saving a conversion to
// Go maps per evaluation.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// decisionFrom reads a boolean or {allow, reason?, headers?}.
func decisionFrom(v ast.Value) (Decision, error) {
	switch t := v.(type) {
	case ast.Boolean:
		return Decision{Allow: bool(t)}, nil
	case ast.Object:
		return decisionObject(t)
	default:
		return Decision{}, fmt.Errorf("result must be a boolean or an object {allow, reason, headers}, got %s", ast.ValueName(v))
	}
}

func decisionObject(obj ast.Object) (Decision, error) {
	var dec Decision
	var sawAllow bool
	err := obj.Iter(func(k, v *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("result object keys must be strings, got %s", ast.ValueName(k.Value))
		}
		switch key {
		case "allow":
			b, ok := v.Value.(ast.Boolean)
			if !ok {
				return fmt.Errorf("result allow must be a boolean, got %s", ast.ValueName(v.Value))
			}
			dec.Allow, sawAllow = bool(b), true
		case "reason":
			s, ok := v.Value.(ast.String)
			if !ok {
				return fmt.Errorf("result reason must be a string, got %s", ast.ValueName(v.Value))
			}
			dec.Reason = string(s)
		case "headers":
			h, err := headersFrom(v.Value)
			if err != nil {
				return err
			}
			dec.Headers = h
		default:
			return fmt.Errorf("result has unknown key %q (want allow, reason, headers)", string(key))
		}
		return nil
	})
	if err != nil {
		return Decision{}, err
	}
	if !sawAllow {
		return Decision{}, errors.New("result object has no allow")
	}
	return dec, nil
}

// headersFrom validates policy-set headers: X-Authgate-* names that are
// valid header field names, values without control characters.
func headersFrom(v ast.Value) (map[string]string, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("result headers must be an object, got %s", ast.ValueName(v))
	}
	if obj.Len() == 0 {
		return nil, nil
	}
	out := make(map[string]string, obj.Len())
	err := obj.Iter(func(k, val *ast.Term) error {
		name, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("result header names must be strings, got %s", ast.ValueName(k.Value))
		}
		value, ok := val.Value.(ast.String)
		if !ok {
			return fmt.Errorf("result header %q must have a string value, got %s", string(name), ast.ValueName(val.Value))
		}
		if !validPolicyHeaderName(string(name)) {
			return fmt.Errorf("result header %q must be a valid header name starting with X-Authgate-", string(name))
		}
		if !httpguts.ValidHeaderFieldValue(string(value)) {
			return fmt.Errorf("result header %q has a value with control characters", string(name))
		}
		canon := http.CanonicalHeaderKey(string(name))
		if _, dup := out[canon]; dup {
			return fmt.Errorf("result header %q is set twice", canon)
		}
		out[canon] = string(value)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// validPolicyHeaderName accepts X-Authgate-<token> (any case) without "_",
// which some servers treat as "-" and so could alias another header.
func validPolicyHeaderName(name string) bool {
	const prefix = "x-authgate-"
	return len(name) > len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) &&
		!strings.Contains(name, "_") && httpguts.ValidHeaderFieldName(name)
}
