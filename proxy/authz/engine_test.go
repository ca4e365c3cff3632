package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

func compileSrc(t *testing.T, timeout time.Duration, srcs ...string) (*Engine, error) {
	t.Helper()
	mods := make([]config.RegoModule, len(srcs))
	for i, s := range srcs {
		mods[i] = config.RegoModule{Name: "policy" + string(rune('0'+i)) + ".rego", Source: s}
	}
	return Compile(context.Background(), "test-policy", &config.Rego{
		Modules: mods, Query: config.DefaultRegoQuery, Timeout: config.Duration{Duration: timeout},
	})
}

func mustCompile(t *testing.T, srcs ...string) *Engine {
	t.Helper()
	e, err := compileSrc(t, time.Second, srcs...)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return e
}

func testInput(t testing.TB) *Input {
	id := &identity.Identity{
		Kind: identity.KindJWT, Subject: "alice", Issuer: "https://idp.example", Source: "idp",
		Scopes: []string{"orders:read"}, Roles: []string{"editor"},
		Claims: decodeClaims(t, `{"sub":"alice","department":"eng","n":12345678901234567890,"amr":["pwd","otp"]}`),
	}
	req := Request{
		Method: "GET", Path: "/departments/eng/reports", Host: "fn.example", ClientIP: "10.0.0.7",
		Query:   url.Values{"x": {"abc"}, "page": {"2"}},
		Headers: http.Header{"Accept": {"application/json"}, "X-Multi": {"a", "b"}},
	}
	return NewInput(req, id, "test-policy", "reports", time.Date(2024, 1, 3, 9, 0, 0, 0, time.UTC), nil)
}

func TestEvalResults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		src         string
		wantAllow   bool
		wantReason  string
		wantHeaders map[string]string
	}{
		{name: "boolean allow", src: "decision := true", wantAllow: true},
		{name: "boolean deny", src: "decision := false"},
		{name: "object allow with headers", wantAllow: true,
			src:         `decision := {"allow": true, "reason": "ok", "headers": {"x-authgate-dept": input.identity.claims.department}}`,
			wantReason:  "ok",
			wantHeaders: map[string]string{"X-Authgate-Dept": "eng"}},
		{name: "object deny with reason", src: `decision := {"allow": false, "reason": "nope"}`, wantReason: "nope"},
		{name: "empty headers", src: `decision := {"allow": true, "headers": {}}`, wantAllow: true},
		{name: "library import", wantAllow: true, src: `import data.authgate.lib.scopes
decision if scopes.has("orders:read")`},
		{name: "library deny", src: `import data.authgate.lib.scopes
default decision := false
decision if scopes.has("orders:write")`},
		{name: "print is erased", wantAllow: true, src: `decision if { print("debug", input.request.path); true }`},
		{name: "exact big numbers", wantAllow: true, src: `decision if input.identity.claims.n == 12345678901234567890`},
	}
	in := testInput(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := mustCompile(t, "package authgate.authz\n"+tc.src)
			dec, err := e.Eval(context.Background(), in)
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if dec.Allow != tc.wantAllow || dec.Reason != tc.wantReason {
				t.Errorf("got (%v, %q), want (%v, %q)", dec.Allow, dec.Reason, tc.wantAllow, tc.wantReason)
			}
			if len(dec.Headers) != len(tc.wantHeaders) {
				t.Fatalf("got headers %v, want %v", dec.Headers, tc.wantHeaders)
			}
			for k, v := range tc.wantHeaders {
				if dec.Headers[k] != v {
					t.Errorf("header %s: got %q, want %q", k, dec.Headers[k], v)
				}
			}
		})
	}
}

func TestEvalFailuresDeny(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		src        string
		wantReason string
		wantErr    string
	}{
		{name: "undefined", src: `decision if input.request.method == "POST"`, wantReason: ReasonRegoUndefined, wantErr: "undefined"},
		{name: "strict builtin error beats default allow", wantReason: ReasonRegoError, wantErr: "to_number",
			src: "default decision := true\ndecision := false if to_number(input.request.query.x[0]) < 0"},
		{name: "string result", src: `decision := "yes"`, wantReason: ReasonRegoResult, wantErr: "boolean or an object"},
		{name: "number result", src: `decision := 1`, wantReason: ReasonRegoResult, wantErr: "got number"},
		{name: "object without allow", src: `decision := {"reason": "x"}`, wantReason: ReasonRegoResult, wantErr: "no allow"},
		{name: "allow not boolean", src: `decision := {"allow": "true"}`, wantReason: ReasonRegoResult, wantErr: "allow must be a boolean"},
		{name: "unknown key", src: `decision := {"allow": true, "header": {}}`, wantReason: ReasonRegoResult, wantErr: "unknown key"},
		{name: "reason not string", src: `decision := {"allow": false, "reason": 3}`, wantReason: ReasonRegoResult, wantErr: "reason must be a string"},
		{name: "headers not object", src: `decision := {"allow": true, "headers": ["X-Authgate-A"]}`, wantReason: ReasonRegoResult, wantErr: "headers must be an object"},
		{name: "header outside prefix", src: `decision := {"allow": true, "headers": {"X-User": "a"}}`, wantReason: ReasonRegoResult, wantErr: "X-Authgate-"},
		{name: "header prefix only", src: `decision := {"allow": true, "headers": {"X-Authgate-": "a"}}`, wantReason: ReasonRegoResult, wantErr: "X-Authgate-"},
		{name: "header name with CRLF", src: `decision := {"allow": true, "headers": {"X-Authgate-A\r\nX-Evil": "a"}}`, wantReason: ReasonRegoResult, wantErr: "valid header name"},
		{name: "header name with underscore", src: `decision := {"allow": true, "headers": {"X_Authgate_Subject": "a"}}`, wantReason: ReasonRegoResult, wantErr: "valid header name"},
		{name: "header value with CRLF", src: `decision := {"allow": true, "headers": {"X-Authgate-A": "a\r\nX-Evil: 1"}}`, wantReason: ReasonRegoResult, wantErr: "control characters"},
		{name: "header value with NUL", src: `decision := {"allow": true, "headers": {"X-Authgate-A": "a\u0000"}}`, wantReason: ReasonRegoResult, wantErr: "control characters"},
		{name: "header value not string", src: `decision := {"allow": true, "headers": {"X-Authgate-A": 1}}`, wantReason: ReasonRegoResult, wantErr: "string value"},
		{name: "header set twice", src: `decision := {"allow": true, "headers": {"X-Authgate-A": "1", "x-authgate-a": "2"}}`, wantReason: ReasonRegoResult, wantErr: "twice"},
		{name: "conflicting rules", src: "decision := true\ndecision := false if true", wantReason: ReasonRegoError, wantErr: "conflict"},
	}
	in := testInput(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := compileSrc(t, time.Second, "package authgate.authz\n"+tc.src)
			if err != nil {
				// Some conflicts are caught at compile time; that also denies.
				if tc.wantReason == ReasonRegoError && strings.Contains(err.Error(), tc.wantErr) {
					return
				}
				t.Fatalf("compile: %v", err)
			}
			dec, err := e.Eval(context.Background(), in)
			if err == nil {
				t.Fatalf("got no error (decision %+v), want one", dec)
			}
			if dec.Allow || dec.Reason != tc.wantReason {
				t.Errorf("got (%v, %q), want (false, %q)", dec.Allow, dec.Reason, tc.wantReason)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %q, want it to contain %q", err, tc.wantErr)
			}
			if (tc.wantReason == ReasonRegoUndefined) != errors.Is(err, ErrUndefined) {
				t.Errorf("got errors.Is(err, ErrUndefined) = %v, want %v", errors.Is(err, ErrUndefined), tc.wantReason == ReasonRegoUndefined)
			}
		})
	}
}

func TestEvalTimeout(t *testing.T) {
	t.Parallel()
	// About ten million iterations: far beyond a 1ms budget on any machine.
	e, err := compileSrc(t, time.Millisecond, `package authgate.authz
decision if {
	count([x | some i in numbers.range(1, 3200); some j in numbers.range(1, 3200); x := i * j]) > 0
}`)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	dec, err := e.Eval(context.Background(), testInput(t))
	if err == nil {
		t.Fatalf("got no error (decision %+v), want a timeout", dec)
	}
	if !errors.Is(err, context.DeadlineExceeded) || dec.Allow || dec.Reason != ReasonRegoTimeout {
		t.Errorf("got (%+v, %v), want a denying %s decision wrapping context.DeadlineExceeded", dec, err, ReasonRegoTimeout)
	}
}

func TestEvalCanceledContext(t *testing.T) {
	t.Parallel()
	e := mustCompile(t, "package authgate.authz\ndecision := true")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dec, err := e.Eval(ctx, testInput(t))
	if err == nil || dec.Allow {
		t.Errorf("got (%+v, %v), want a denial with an error", dec, err)
	}
}

// A caller's cancellation stops an evaluation under way and denies.
func TestEvalCanceledDuringEvaluation(t *testing.T) {
	t.Parallel()
	e, err := compileSrc(t, time.Hour, `package authgate.authz
decision if {
	count([x | some i in numbers.range(1, 3200); some j in numbers.range(1, 3200); x := i * j]) > 0
}`)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(5*time.Millisecond, cancel)
	dec, err := e.Eval(ctx, testInput(t))
	if !errors.Is(err, context.Canceled) || dec.Allow || dec.Reason != ReasonRegoError {
		t.Errorf("got (%+v, %v), want a denying %s decision wrapping context.Canceled", dec, err, ReasonRegoError)
	}
}

func TestEvalRecoversPanic(t *testing.T) {
	t.Parallel()
	// A zero Engine has no prepared query: OPA dereferences nil inside.
	e := &Engine{policy: "broken", timeout: time.Second}
	dec, err := e.Eval(context.Background(), testInput(t))
	if err == nil || dec.Allow || dec.Reason != ReasonRegoPanic {
		t.Errorf("got (%+v, %v), want a %s denial", dec, err, ReasonRegoPanic)
	}
}

func TestEvalNilInput(t *testing.T) {
	t.Parallel()
	e := mustCompile(t, "package authgate.authz\ndecision := true")
	if dec, err := e.Eval(context.Background(), nil); err == nil || dec.Allow {
		t.Errorf("got (%+v, %v), want a denial with an error", dec, err)
	}
}

func TestEvalMultipleResults(t *testing.T) {
	t.Parallel()
	e, err := Compile(context.Background(), "p", &config.Rego{
		Modules: []config.RegoModule{{Name: "m.rego", Source: `package p
xs := [{"allow": true}, {"allow": true}]`}},
		Query: "data.p.xs[_]", Timeout: config.Duration{Duration: time.Second},
	})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if dec, err := e.Eval(context.Background(), testInput(t)); err == nil || dec.Allow {
		t.Errorf("got (%+v, %v), want a denial with an error", dec, err)
	}
}

func TestEvalConcurrent(t *testing.T) {
	t.Parallel()
	e := mustCompile(t, `package authgate.authz
import data.authgate.lib.scopes
decision := {"allow": scopes.has("orders:read"), "headers": {"X-Authgate-Route": input.route}}`)
	in := testInput(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for range 50 {
				dec, err := e.Eval(context.Background(), in)
				if err != nil || !dec.Allow || dec.Headers["X-Authgate-Route"] != "reports" {
					errs <- errors.Join(err, errors.New("unexpected decision"))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
