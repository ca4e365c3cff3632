package authz

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

func benchIdentity(b *testing.B) *identity.Identity {
	return &identity.Identity{
		Kind: identity.KindJWT, Subject: "alice", Issuer: "https://idp.example", Source: "idp",
		Scopes: []string{"orders:read", "orders:write"}, Roles: []string{"editor"},
		Claims: decodeClaims(b, `{"iss":"https://idp.example","sub":"alice","aud":"fn","exp":1704276000,"iat":1704272400,
			"scope":"orders:read orders:write","department":"eng","roles":["editor"],"amr":["pwd","otp"]}`),
	}
}

func benchRequest() Request {
	return Request{
		Method: "GET", Path: "/departments/eng/reports", Segments: []string{"departments", "eng", "reports"},
		Host: "fn.example", ClientIP: "10.0.0.7", Query: url.Values{"page": {"2"}},
		Headers: http.Header{
			"Accept": {"application/json"}, "User-Agent": {"bench/1.0"}, "Authorization": {"Bearer x"},
			"X-Request-Id": {"abc"}, "Accept-Encoding": {"gzip"},
		},
	}
}

func BenchmarkNewInput(b *testing.B) {
	id, req, now := benchIdentity(b), benchRequest(), time.Unix(1704272400, 0)
	b.ReportAllocs()
	for b.Loop() {
		NewInput(req, id, "pol", "route", now, nil)
	}
}

// BenchmarkEval is a small realistic policy: input built per request, as
// the proxy does, then evaluated.
func BenchmarkEval(b *testing.B) {
	e, err := Compile(context.Background(), "bench", &config.Rego{
		Modules: []config.RegoModule{{Name: "p.rego", Source: `package authgate.authz
import data.authgate.lib.scopes
import data.authgate.lib.path

default decision := {"allow": false, "reason": "denied"}

decision := {"allow": true, "headers": {"X-Authgate-Department": input.request.segments[1]}} if {
	scopes.has("orders:read")
	input.request.segments[0] == "departments"
	path.claim_equals_segment("department", 1)
}`}},
		Query: config.DefaultRegoQuery, Timeout: config.Duration{Duration: time.Second},
	})
	if err != nil {
		b.Fatalf("compile: %v", err)
	}
	id, req, now := benchIdentity(b), benchRequest(), time.Unix(1704272400, 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		dec, err := e.Eval(ctx, NewInput(req, id, "bench", "route", now, nil))
		if err != nil || !dec.Allow {
			b.Fatalf("got (%+v, %v), want allow", dec, err)
		}
	}
}

func BenchmarkRouterMatch(b *testing.B) {
	r, err := NewRouter([]config.Route{
		{Name: "health", Methods: []string{"GET"}, Paths: []string{"/healthz"}},
		{Name: "admin", Paths: []string{"/admin/**"}},
		{Name: "orders", Methods: []string{"GET", "POST"}, Paths: []string{"/orders", "/orders/*", "/orders/*/items/**"}},
	})
	if err != nil {
		b.Fatalf("NewRouter: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Match("POST", "/orders/42/items/7")
	}
}
