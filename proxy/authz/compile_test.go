package authz

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/policies"
	"github.com/authgate/authgate/proxy/config"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		src        string
		wantModule string
		wantRow    int
		wantCode   string
		wantText   string
	}{
		{name: "parse error", src: "package authgate.authz\n\ndecision := )\n", wantModule: "policy0.rego", wantRow: 3, wantCode: "rego_parse_error"},
		{name: "empty module", src: "# only a comment\n", wantModule: "policy0.rego", wantCode: "rego_parse_error", wantText: "empty module"},
		{name: "rego v0 syntax", src: "package authgate.authz\n\ndecision { true }\n", wantModule: "policy0.rego", wantRow: 3, wantCode: "rego_parse_error"},
		{name: "unsafe var", src: "package authgate.authz\n\ndecision if x == 1\n", wantModule: "policy0.rego", wantRow: 3, wantCode: "rego_unsafe_var_error"},
		{name: "type error", src: "package authgate.authz\n\ndecision if count(1) > 0\n", wantModule: "policy0.rego", wantRow: 3, wantCode: "rego_type_error"},
		{name: "undefined function", src: "package authgate.authz\n\ndecision if nope(1)\n", wantModule: "policy0.rego", wantRow: 3, wantCode: "rego_type_error"},
		{name: "reserved package", src: "package authgate.lib.scopes\n\nhas(_) := true\n", wantModule: "policy0.rego", wantRow: 1, wantCode: "authgate_reserved_package"},
		{name: "rule inside reserved package", src: "package authgate\n\nlib.scopes.has(_) := true\n", wantModule: "policy0.rego", wantRow: 3, wantCode: "authgate_reserved_package"},
		{name: "http.send refused", wantModule: "policy0.rego", wantRow: 3, wantCode: "rego_type_error", wantText: "http.send",
			src: "package authgate.authz\n\ndecision if http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"}).status_code == 200\n"},
		{name: "net.lookup_ip_addr refused", wantModule: "policy0.rego", wantRow: 2, wantCode: "rego_type_error", wantText: "net.lookup_ip_addr",
			src: "package authgate.authz\ndecision if count(net.lookup_ip_addr(\"example.com\")) > 0\n"},
		{name: "opa.runtime refused", wantModule: "policy0.rego", wantRow: 2, wantCode: "rego_type_error", wantText: "opa.runtime",
			src: "package authgate.authz\ndecision if opa.runtime().env.HOME\n"},
		{name: "time.now_ns refused", wantModule: "policy0.rego", wantRow: 2, wantCode: "rego_type_error", wantText: "time.now_ns",
			src: "package authgate.authz\ndecision if time.now_ns() > 0\n"},
		{name: "rand.intn refused", wantModule: "policy0.rego", wantRow: 2, wantCode: "rego_type_error", wantText: "rand.intn",
			src: "package authgate.authz\ndecision if rand.intn(\"x\", 2) == 1\n"},
		{name: "trace refused", wantModule: "policy0.rego", wantRow: 2, wantCode: "rego_type_error", wantText: "trace",
			src: "package authgate.authz\ndecision if trace(\"x\")\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := compileSrc(t, time.Second, tc.src)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("got error %v (%T), want *CompileError", err, err)
			}
			if ce.Policy != "test-policy" || len(ce.Details) == 0 {
				t.Fatalf("got policy %q with %d details, want test-policy with some", ce.Policy, len(ce.Details))
			}
			d := ce.Details[0]
			if d.Module != tc.wantModule || (tc.wantRow != 0 && d.Row != tc.wantRow) || !strings.HasPrefix(d.Code, tc.wantCode) {
				t.Errorf("got %s:%d code %s, want %s:%d code %s (%v)", d.Module, d.Row, d.Code, tc.wantModule, tc.wantRow, tc.wantCode, err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("got %q, want it to mention %q", err, tc.wantText)
			}
			wantPrefix := tc.wantModule + ":"
			if !strings.HasPrefix(err.Error(), wantPrefix) {
				t.Errorf("got %q, want it to start with %q", err, wantPrefix)
			}
		})
	}
}

func TestCompileErrorFormat(t *testing.T) {
	t.Parallel()
	ce := &CompileError{Policy: "p", Details: []CompileDetail{
		{Module: "module.rego", Row: 3, Col: 5, Code: "rego_parse_error", Message: "unexpected eof"},
		{Module: "other.rego", Code: "rego_type_error", Message: "bad"},
		{Message: "no location"},
	}}
	want := "module.rego:3:5: rego_parse_error: unexpected eof\nother.rego: rego_type_error: bad\nno location"
	if got := ce.Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCompileRejectsDuplicateAndLibraryNames(t *testing.T) {
	t.Parallel()
	lib := policies.Library()
	for _, mods := range [][]config.RegoModule{
		{{Name: "a.rego", Source: "package a\nx := 1"}, {Name: "a.rego", Source: "package b\ny := 1"}},
		{{Name: lib[0].Name, Source: "package authgate.authz\ndecision := true"}},
	} {
		_, err := Compile(context.Background(), "p", &config.Rego{Modules: mods, Timeout: config.Duration{Duration: time.Second}})
		var ce *CompileError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "used twice") {
			t.Errorf("got %v, want a CompileError about a module name used twice", err)
		}
	}
}

func TestCompileDefaultsQuery(t *testing.T) {
	t.Parallel()
	e, err := Compile(context.Background(), "p", &config.Rego{
		Modules: []config.RegoModule{{Name: "m.rego", Source: "package authgate.authz\ndecision := true"}},
		Timeout: config.Duration{Duration: time.Second},
	})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if e.Query() != config.DefaultRegoQuery {
		t.Errorf("got query %q, want %q", e.Query(), config.DefaultRegoQuery)
	}
}

func TestCompileNeedsRegoAndTimeout(t *testing.T) {
	t.Parallel()
	if _, err := Compile(context.Background(), "p", nil); err == nil {
		t.Errorf("got no error for nil rego, want one")
	}
	if _, err := Compile(context.Background(), "p", &config.Rego{
		Modules: []config.RegoModule{{Name: "m.rego", Source: "package authgate.authz\ndecision := true"}},
	}); err == nil {
		t.Errorf("got no error for a zero timeout, want one")
	}
}
