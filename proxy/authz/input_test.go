package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/proxy/identity"
)

func inputJSON(t testing.TB, in *Input) map[string]any {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("marshal input: %v", err)
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode input: %v", err)
	}
	return m
}

func TestNewInputDocument(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 3, 9, 0, 0, 123, time.FixedZone("X", 3600))
	id := &identity.Identity{
		Kind: identity.KindAPIKey, Subject: "ci", Source: "apikey", KeyName: "ci",
		Scopes: []string{"deploy"},
		Claims: decodeClaims(t, `{"sub":"ci","scope":"deploy","n":1.50,"nested":{"l":[1,"a",null,true]}}`),
	}
	req := Request{
		Method: "POST", Path: "/a/b/", Host: "fn.example:8080", ClientIP: "2001:db8::1",
		Query: url.Values{"q": {"1", "2"}},
		Headers: http.Header{
			"Accept":              {"a", "b"},
			"Authorization":       {"Bearer secret-token"},
			"Proxy-Authorization": {"Basic c2VjcmV0"},
			"Cookie":              {"session=secret"},
			"X-Api-Key":           {"secret-key"},
			"X-Token":             {"secret-2"},
			"X-Authgate-Subject":  {"spoofed"},
			"x_authgate_subject":  {"spoofed"},
			"authorization":       {"non-canonical secret"},
			"X-Dup":               {"1"},
			"x-dup":               {"2"},
		},
	}
	in := NewInput(req, id, "pol", "r1", now, []string{"x-api-key", "X-TOKEN"})
	got := inputJSON(t, in)
	want := map[string]any{
		"request": map[string]any{
			"method": "POST", "path": "/a/b/", "segments": []any{"a", "b", ""},
			"query":   map[string]any{"q": []any{"1", "2"}},
			"headers": map[string]any{"accept": "a, b", "x-dup": "x"},
			"host":    "fn.example:8080", "client_ip": "2001:db8::1",
		},
		"identity": map[string]any{
			"kind": "apikey", "subject": "ci", "issuer": "", "source": "apikey",
			"scopes": []any{"deploy"}, "roles": []any{},
			"claims": map[string]any{"sub": "ci", "scope": "deploy", "n": json.Number("1.50"),
				"nested": map[string]any{"l": []any{json.Number("1"), "a", nil, true}}},
		},
		"route":  "r1",
		"policy": "pol",
		"time":   map[string]any{"unix_ns": json.Number("1704268800000000123"), "rfc3339": "2024-01-03T08:00:00.000000123Z"},
	}
	// Map iteration order decides which duplicate comes first.
	dup := got["request"].(map[string]any)["headers"].(map[string]any)["x-dup"]
	if dup != "1, 2" && dup != "2, 1" {
		t.Errorf("got x-dup %q, want both values merged", dup)
	}
	want["request"].(map[string]any)["headers"].(map[string]any)["x-dup"] = dup
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", "  ")
		wb, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("got input\n%s\nwant\n%s", gb, wb)
	}
	b, _ := json.Marshal(in)
	for _, secret := range []string{"secret", "c2VjcmV0", "spoofed"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("got input containing %q, want credentials and client identity headers left out", secret)
		}
	}
}

func TestNewInputPublicRoute(t *testing.T) {
	t.Parallel()
	in := NewInput(Request{Method: "GET", Path: "/"}, nil, "pol", "public", time.Unix(0, 0), nil)
	got := inputJSON(t, in)
	if _, ok := got["identity"]; ok {
		t.Errorf("got an identity on a public route, want none")
	}
	req := got["request"].(map[string]any)
	if segs := req["segments"].([]any); len(segs) != 0 {
		t.Errorf("got segments %v for /, want none", segs)
	}
	if q := req["query"].(map[string]any); len(q) != 0 {
		t.Errorf("got query %v, want empty object", q)
	}
}

func TestNewInputKeepsGivenSegments(t *testing.T) {
	t.Parallel()
	in := NewInput(Request{Method: "GET", Path: "/a/b", Segments: []string{"a", "b"}}, nil, "p", "r", time.Unix(0, 0), nil)
	segs := inputJSON(t, in)["request"].(map[string]any)["segments"]
	if !reflect.DeepEqual(segs, []any{"a", "b"}) {
		t.Errorf("got segments %v, want [a b]", segs)
	}
}

// The documented input is what policies actually see: every field is read
// by a policy through the real engine.
func TestPolicySeesDocumentedInput(t *testing.T) {
	t.Parallel()
	e := mustCompile(t, `package authgate.authz
decision if {
	input.request.method == "GET"
	input.request.path == "/departments/eng/reports"
	input.request.segments == ["departments", "eng", "reports"]
	input.request.query.page == ["2"]
	input.request.headers["x-multi"] == "a, b"
	input.request.host == "fn.example"
	input.request.client_ip == "10.0.0.7"
	input.identity.kind == "jwt"
	input.identity.subject == "alice"
	input.identity.issuer == "https://idp.example"
	input.identity.source == "idp"
	"orders:read" in input.identity.scopes
	input.identity.roles == ["editor"]
	input.identity.claims.department == "eng"
	input.route == "reports"
	input.policy == "test-policy"
	input.time.unix_ns == 1704272400000000000
	input.time.rfc3339 == "2024-01-03T09:00:00Z"
	time.weekday(input.time.unix_ns) == "Wednesday"
}`)
	dec, err := e.Eval(context.Background(), testInput(t))
	if err != nil || !dec.Allow {
		t.Errorf("got (%+v, %v), want allow", dec, err)
	}
}

func TestClaimValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want string
	}{
		{json.Number("12345678901234567890"), "12345678901234567890"},
		{float64(1.5), "1.5"},
		{int64(-3), "-3"},
		{7, "7"},
		{[]string{"a"}, `["a"]`},
		{struct{}{}, "null"},
	}
	for _, tc := range tests {
		if got := (&builder{}).claim(tc.in).String(); got != tc.want {
			t.Errorf("claim(%#v): got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func FuzzNewInputHeaders(f *testing.F) {
	for _, s := range []string{"Authorization", "x_authgate_subject", "COOKIE", "X-Api-Key", "Accept", "", "x-authgate-", "X-Api_Key"} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		in := NewInput(Request{Method: "GET", Path: "/", Headers: http.Header{name: {value}}}, nil, "p", "r", time.Unix(0, 0), []string{"x-api-key"})
		headers, ok := in.Value().(ast.Object).Get(ast.StringTerm("request")).Value.(ast.Object).Get(ast.StringTerm("headers")).Value.(ast.Object)
		if !ok {
			t.Fatalf("got no headers object")
		}
		lower := asciiLower(name)
		norm := strings.ReplaceAll(lower, "_", "-")
		secret := norm == "authorization" || norm == "proxy-authorization" || norm == "cookie" ||
			norm == "x-api-key" || strings.HasPrefix(norm, "x-authgate-") || !httpguts.ValidHeaderFieldName(name)
		if headers.Len() > 1 {
			t.Fatalf("got %d headers from one, want at most one", headers.Len())
		}
		got := headers.Get(ast.StringTerm(lower))
		if secret && headers.Len() != 0 {
			t.Fatalf("header %q reached the input, want it left out", name)
		}
		if !secret && (got == nil || got.Value.(ast.String) != ast.String(value)) {
			t.Fatalf("header %q: got %v, want %q", name, got, value)
		}
	})
}
