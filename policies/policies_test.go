package policies_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/authgate/authgate/policies"
	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// runRegoTests runs every test_ rule in mods through OPA's tester with
// strict built-in errors and fails t on any failure, error or when no test
// ran.
func runRegoTests(t *testing.T, mods []config.RegoModule) {
	t.Helper()
	parsed := make(map[string]*ast.Module, len(mods))
	for _, m := range mods {
		mod, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("parse %s: %v", m.Name, err)
		}
		parsed[m.Name] = mod
	}
	ch, err := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).
		SetTimeout(10*time.Second).
		SetModules(parsed).
		RunTests(context.Background(), nil)
	if err != nil {
		t.Fatalf("compile rego tests: %v", err)
	}
	ran := 0
	for res := range ch {
		ran++
		switch {
		case res.Error != nil:
			t.Errorf("%s.%s: error: %v", res.Package, res.Name, res.Error)
		case res.Fail:
			t.Errorf("%s.%s: failed", res.Package, res.Name)
		case res.Skip:
			t.Errorf("%s.%s: skipped; remove todo_ tests or make them real", res.Package, res.Name)
		}
	}
	if ran == 0 {
		t.Fatalf("got 0 rego tests run, want at least one")
	}
	t.Logf("%d rego tests ran", ran)
}

func TestLibraryRegoTests(t *testing.T) {
	t.Parallel()
	lib := policies.Library()
	tests := policies.LibraryTests()
	if len(lib) == 0 || len(tests) == 0 {
		t.Fatalf("got %d library modules and %d test modules, want both non-zero", len(lib), len(tests))
	}
	runRegoTests(t, append(lib, tests...))
}

// exampleNames lists the examples (files without _test), e.g. "ip_allowlist".
func exampleNames(t *testing.T) []string {
	t.Helper()
	ents, err := fs.ReadDir(policies.Examples(), ".")
	if err != nil {
		t.Fatalf("read examples: %v", err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if path.Ext(n) == ".rego" && !strings.HasSuffix(n, "_test.rego") {
			names = append(names, strings.TrimSuffix(n, ".rego"))
		}
	}
	sort.Strings(names)
	return names
}

func readExample(t *testing.T, file string) config.RegoModule {
	t.Helper()
	b, err := fs.ReadFile(policies.Examples(), file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return config.RegoModule{Name: file, Source: string(b)}
}

// Every example shares package authgate.authz, so each runs on its own with
// the library.
func TestExampleRegoTests(t *testing.T) {
	t.Parallel()
	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mods := append(policies.Library(), readExample(t, name+".rego"), readExample(t, name+"_test.rego"))
			runRegoTests(t, mods)
		})
	}
}

// exampleCase is one example evaluated through authz with inputs built by
// NewInput, the way the proxy builds them.
type exampleCase struct {
	allow, deny caseInput
}

type caseInput struct {
	req authz.Request
	id  *identity.Identity
	now time.Time
}

func jwtID(scopes, roles []string, claimsJSON string) *identity.Identity {
	var cl map[string]any
	dec := json.NewDecoder(strings.NewReader(claimsJSON))
	dec.UseNumber()
	if err := dec.Decode(&cl); err != nil {
		panic(err)
	}
	return &identity.Identity{Kind: identity.KindJWT, Subject: "alice", Issuer: "https://idp.example",
		Source: "idp", Scopes: scopes, Roles: roles, Claims: cl}
}

func get(p string) authz.Request {
	return authz.Request{Method: "GET", Path: p, Host: "fn.example", ClientIP: "10.20.1.1",
		Headers: http.Header{"Accept": {"application/json"}}}
}

func TestExamplesThroughAuthz(t *testing.T) {
	t.Parallel()
	wedMorning := time.Date(2024, 1, 3, 9, 0, 0, 0, time.UTC) // 10:00 Berlin
	saturday := time.Date(2024, 1, 6, 9, 0, 0, 0, time.UTC)
	outside := get("/orders")
	outside.ClientIP = "198.51.100.7"
	del := get("/orders/1")
	del.Method = "DELETE"
	cases := map[string]exampleCase{
		"department_abac": {
			allow: caseInput{req: get("/departments/eng/reports"), id: jwtID(nil, nil, `{"department":"eng"}`)},
			deny:  caseInput{req: get("/departments/finance/payroll"), id: jwtID(nil, nil, `{"department":"eng"}`)},
		},
		"business_hours": {
			allow: caseInput{req: get("/x"), id: jwtID(nil, nil, `{}`), now: wedMorning},
			deny:  caseInput{req: get("/x"), id: jwtID(nil, nil, `{}`), now: saturday},
		},
		"ip_allowlist": {
			allow: caseInput{req: get("/orders"), id: jwtID(nil, nil, `{}`)},
			deny:  caseInput{req: outside, id: jwtID(nil, nil, `{}`)},
		},
		"admin_mfa": {
			allow: caseInput{req: get("/admin/users"), id: jwtID(nil, []string{"admin"}, `{"amr":["pwd","hwk"]}`)},
			deny:  caseInput{req: get("/admin/users"), id: jwtID(nil, []string{"admin"}, `{"amr":["pwd"]}`)},
		},
		"scopes_per_method": {
			allow: caseInput{req: get("/orders/1"), id: jwtID([]string{"orders:read"}, nil, `{}`)},
			deny:  caseInput{req: del, id: jwtID([]string{"orders:read", "orders:write"}, nil, `{}`)},
		},
	}
	names := exampleNames(t)
	if len(names) != len(cases) {
		t.Fatalf("got %d examples %v, want %d with allow/deny cases here", len(names), names, len(cases))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc, ok := cases[name]
			if !ok {
				t.Fatalf("example %s has no allow/deny case in this test", name)
			}
			eng, err := authz.Compile(context.Background(), "example", &config.Rego{
				Modules: []config.RegoModule{readExample(t, name+".rego")},
				Query:   config.DefaultRegoQuery,
				Timeout: config.Duration{Duration: time.Second},
			})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, c := range []struct {
				label string
				in    caseInput
				want  bool
			}{{"allow", tc.allow, true}, {"deny", tc.deny, false}} {
				now := c.in.now
				if now.IsZero() {
					now = wedMorning
				}
				in := authz.NewInput(c.in.req, c.in.id, "example", "route-0", now, nil)
				dec, err := eng.Eval(context.Background(), in)
				if err != nil {
					t.Fatalf("%s: eval: %v", c.label, err)
				}
				if dec.Allow != c.want {
					t.Errorf("%s: got allow %v (reason %q), want %v", c.label, dec.Allow, dec.Reason, c.want)
				}
			}
		})
	}
}

// TestClaimPathMatchesGo holds the Rego claim() to the cases Go's
// claims.Lookup is tested against: one rule for claim paths, whichever side
// reads them.
func TestClaimPathMatchesGo(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../proxy/claims/testdata/lookup.json")
	if err != nil {
		t.Fatal(err)
	}
	var lc struct {
		Claims map[string]any `json:"claims"`
		Cases  []struct {
			Path    string `json:"path"`
			Want    any    `json:"want"`
			Missing bool   `json:"missing"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &lc); err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("x := data.authgate.lib.path.claim(input.path)"), rego.StrictBuiltinErrors(true)}
	for _, m := range policies.Library() {
		opts = append(opts, rego.Module(m.Name, m.Source))
	}
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range lc.Cases {
		t.Run(tc.Path, func(t *testing.T) {
			input := map[string]any{"identity": map[string]any{"claims": lc.Claims}, "path": tc.Path}
			rs, err := pq.Eval(context.Background(), rego.EvalInput(input))
			if err != nil {
				t.Fatal(err)
			}
			if tc.Missing {
				if len(rs) != 0 {
					t.Fatalf("claim(%q) = %v, want undefined", tc.Path, rs[0].Bindings["x"])
				}
				return
			}
			if len(rs) != 1 {
				t.Fatalf("claim(%q) undefined, want %v", tc.Path, tc.Want)
			}
			got, want := mustJSON(t, rs[0].Bindings["x"]), mustJSON(t, tc.Want)
			if got != want {
				t.Fatalf("claim(%q) = %s, want %s", tc.Path, got, want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
