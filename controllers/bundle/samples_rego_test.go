package bundle

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/authz"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// TestRegoABACSampleDecides evaluates the Rego of config/samples/rego_abac.yaml
// with the proxy's engine, so the sample does what its comments say.
func TestRegoABACSampleDecides(t *testing.T) {
	t.Parallel()
	s := loadSample(t, filepath.Join(samplesDir, "rego_abac.yaml"))
	f := s.fragments(t, nil)[0]
	// This test checks decisions, not timing: the sample's 100ms budget can
	// be spent loading a time zone on a loaded machine.
	rego := *f.Policy.Rego
	rego.Timeout = config.D(time.Minute)
	engine, err := authz.Compile(context.Background(), f.Policy.Name, &rego)
	if err != nil {
		t.Fatal(err)
	}
	wednesday10Berlin := time.Date(2024, 1, 3, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		dept       any
		path       string
		ip         string
		at         time.Time
		wantAllow  bool
		wantReason string
	}{
		{name: "own department in office hours from the office", dept: "eng", path: "/departments/eng/reports", ip: "10.20.3.4", at: wednesday10Berlin, wantAllow: true},
		{name: "one of several departments", dept: []any{"hr", "eng"}, path: "/departments/eng", ip: "2001:db8:100::7", at: wednesday10Berlin, wantAllow: true},
		{name: "another department", dept: "hr", path: "/departments/eng/reports", ip: "10.20.3.4", at: wednesday10Berlin, wantReason: "department_mismatch"},
		{name: "saturday", dept: "eng", path: "/departments/eng/reports", ip: "10.20.3.4", at: wednesday10Berlin.AddDate(0, 0, 3), wantReason: "outside_business_hours"},
		{name: "evening", dept: "eng", path: "/departments/eng/reports", ip: "10.20.3.4", at: wednesday10Berlin.Add(9 * time.Hour), wantReason: "outside_business_hours"},
		{name: "from outside", dept: "eng", path: "/departments/eng/reports", ip: "203.0.113.9", at: wednesday10Berlin, wantReason: "outside_office_network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := &identity.Identity{Kind: identity.KindJWT, Subject: "alice", Issuer: "https://idp.example.com/",
				Claims: map[string]any{"sub": "alice", "department": tt.dept}}
			req := authz.Request{Method: "GET", Path: tt.path, ClientIP: tt.ip, Segments: strings.Split(strings.Trim(tt.path, "/"), "/")}
			dec, err := engine.Eval(context.Background(), authz.NewInput(req, id, f.Policy.Name, "departments", tt.at, nil))
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if dec.Allow != tt.wantAllow || dec.Reason != tt.wantReason {
				t.Fatalf("got allow=%v reason=%q, want allow=%v reason=%q", dec.Allow, dec.Reason, tt.wantAllow, tt.wantReason)
			}
			if tt.wantAllow && dec.Headers["X-Authgate-Department"] != "eng" {
				t.Fatalf("got headers %v, want X-Authgate-Department: eng", dec.Headers)
			}
		})
	}
}
