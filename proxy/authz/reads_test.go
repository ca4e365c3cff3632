package authz

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A policy's decisions are cached only when every rule its query can reach
// reads nothing but the identity, the method, the canonical path and the
// route and policy names. Each refusal names what was read.
func TestDecisionCacheable(t *testing.T) {
	t.Parallel()
	const head = "package authgate.authz\n\n"
	tests := []struct {
		name    string
		srcs    []string
		want    bool
		wantWhy string
	}{
		{name: "identity and segments", want: true,
			srcs: []string{head + `decision := {"allow": true} if input.identity.claims.department == input.request.segments[1]
default decision := {"allow": false}`}},
		{name: "method, path, route, policy", want: true,
			srcs: []string{head + `default decision := false
decision if {
	input.request.method == "GET"
	startswith(input.request.path, "/a")
	input.route == "r"
	input.policy == "p"
}`}},
		{name: "bracketed constant keys", want: true,
			srcs: []string{head + `decision if input["request"]["method"] == "GET"`}},
		{name: "library roles helper", want: true,
			srcs: []string{head + `import data.authgate.lib.roles
decision if roles.has("admin")`}},
		{name: "an unreachable rule reads headers", want: true,
			srcs: []string{head + `decision if input.identity.subject == "alice"
other if input.request.headers["x-a"] == "1"`}},
		{name: "headers", wantWhy: "policy0.rego:3: reads input.request.headers",
			srcs: []string{head + `decision if input.request.headers["x-tenant"] == "a"`}},
		{name: "query parameters", wantWhy: "reads input.request.query",
			srcs: []string{head + `decision if input.request.query.a[0] == "1"`}},
		{name: "host", wantWhy: "reads input.request.host",
			srcs: []string{head + `decision if input.request.host == "a"`}},
		{name: "time", wantWhy: "reads input.time.unix_ns",
			srcs: []string{head + `decision if input.time.unix_ns > 0`}},
		{name: "the whole request", wantWhy: "reads input.request",
			srcs: []string{head + `decision if count(input.request) > 0`}},
		{name: "a variable key", wantWhy: "reads input.request[",
			srcs: []string{head + `decision if { some k; input.request[k] == "GET" }`}},
		{name: "a variable top-level key", wantWhy: "not a constant",
			srcs: []string{head + `decision if { some k; input[k].method == "GET" }`}},
		{name: "the whole input", wantWhy: "reads input (the input document",
			srcs: []string{head + `decision if object.get(input, ["request", "host"], "") == "a"`}},
		{name: "iteration over headers", wantWhy: "reads input.request.headers",
			srcs: []string{head + `decision if { some h in input.request.headers; h == "x" }`}},
		{name: "a with modifier", wantWhy: "with modifier",
			srcs: []string{head + `decision if allowed with input.identity.subject as "alice"
allowed if input.identity.subject == "alice"`}},
		{name: "through a helper function", wantWhy: "reads input.request.client_ip",
			srcs: []string{head + `decision if from_office("10.0.0.0/8")
from_office(c) if net.cidr_contains(c, input.request.client_ip)`}},
		{name: "through the library", wantWhy: "reads input.request.client_ip",
			srcs: []string{head + `import data.authgate.lib.ip
decision if ip.in_ranges(["10.0.0.0/8"])`}},
		{name: "through another module", wantWhy: "policy1.rego:3: reads input.request.headers",
			srcs: []string{head + `import data.helpers
decision if helpers.tenant == "a"`, "package helpers\n\ntenant := input.request.headers[\"x-tenant\"]"}},
		{name: "through a dynamic data reference", wantWhy: "reads input.request.headers",
			srcs: []string{head + `decision if { some k; data.helpers[k] == 1 }`, "package helpers\n\na := 1\nb := 1 if input.request.headers.a"}},
		{name: "in an else branch", wantWhy: "reads input.request.host",
			srcs: []string{head + `decision := true if input.identity.subject == "a"
else := true if input.request.host == "h"`}},
		{name: "in a comprehension", wantWhy: "reads input.request.headers",
			srcs: []string{head + `decision if count([v | some v in input.request.headers]) > 0`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := mustCompile(t, tc.srcs...)
			got, why := e.Cacheable()
			if got != tc.want {
				t.Fatalf("got cacheable %v (%q), want %v", got, why, tc.want)
			}
			if !tc.want && !strings.Contains(why, tc.wantWhy) {
				t.Fatalf("got reason %q, want it to contain %q", why, tc.wantWhy)
			}
		})
	}
}

// Every example policy shipped in policies/examples is analysed; the ones
// that read only identity and path are cacheable, the time-based one not.
func TestDecisionCacheableExamples(t *testing.T) {
	t.Parallel()
	want := map[string]bool{
		"admin_mfa.rego": true, "department_abac.rego": true, "scopes_per_method.rego": true, "business_hours.rego": false, "ip_allowlist.rego": false,
	}
	files, err := filepath.Glob("../../policies/examples/*.rego")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e := mustCompile(t, string(src))
		got, why := e.Cacheable()
		w, known := want[filepath.Base(f)]
		if !known {
			t.Errorf("%s: not in the table (cacheable %v: %q)", f, got, why)
			continue
		}
		if got != w {
			t.Errorf("%s: got cacheable %v (%q), want %v", f, got, why, w)
		}
	}
}
