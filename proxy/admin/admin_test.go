package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/admin"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/metrics"
)

type readiness bool

func (r readiness) Ready() bool { return bool(r) }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(w.Body)
	return w.Code, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	sw := &gateway.Switch{}
	h := admin.Handler(sw, readiness(true), reg, nil, nil)

	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("healthz: got %d, want 200", code)
	}
	if code, _ := get(t, h, "/readyz"); code != 503 {
		t.Fatalf("readyz without config: got %d, want 503", code)
	}

	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	iss.SetURL("https://idp.example.com")
	jwks := iss.PublicJWKS()
	cfg := &config.ProxyConfig{
		APIVersion: config.APIVersion, Kind: config.Kind, Upstream: config.Upstream{URL: "http://127.0.0.1:1"},
		Issuers: []config.Issuer{{Name: "corp", IssuerURL: "https://idp.example.com", JWKS: &jwks, Audiences: []string{"a"}}},
		Policies: []config.Policy{{Name: "p", Authentication: config.Authentication{Issuers: []string{"corp"}},
			Routes: []config.Route{{Name: "r"}}}},
	}
	cfg.Default()
	rt, err := gateway.Build(context.Background(), cfg, "abc123", nil, gateway.Deps{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	sw.Store(rt)
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("readyz with config: got %d, want 200", code)
	}
	if code, _ := get(t, admin.Handler(sw, readiness(false), reg, nil, nil), "/readyz"); code != 503 {
		t.Fatalf("readyz while draining: got %d, want 503", code)
	}
	code, body := get(t, h, "/status")
	if code != 200 {
		t.Fatalf("status: got %d", code)
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.ConfigHash != "abc123" || len(st.Policies) != 1 || len(st.Issuers) != 1 || st.Issuers[0].Keys != 2 {
		t.Fatalf("got status %+v, want hash, one policy and one issuer with 2 keys", st)
	}
	m.ConfigReloads.WithLabelValues("success").Inc()
	if _, body := get(t, h, "/metrics"); !strings.Contains(body, `authgate_config_reloads_total{result="success"} 1`) {
		t.Fatalf("metrics lack the reload counter:\n%s", body)
	}
	if code, _ := get(t, h, "/anything"); code != 404 {
		t.Fatalf("unknown admin path: got %d, want 404", code)
	}
}
