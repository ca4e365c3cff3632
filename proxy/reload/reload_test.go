package reload_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/reload"
)

const bundle = `apiVersion: authgate.dev/v1alpha1
kind: ProxyConfig
upstream: {url: 'http://127.0.0.1:8080'}
apiKeys:
  keys: [{name: k, hash: 'sha256:f0992dacd3492d57ea3de793332ac43c28d7b65ac787eb85ae67a8f1b50d4616'}]
policies:
  - name: fn
    selector: {matchLabels: {app: fn}}
    authentication: {apiKeys: {}}
    routes: [{name: r, paths: ['/**']}]
  - name: other
    selector: {matchLabels: {app: other}}
    authentication: {apiKeys: {}}
    routes: [{name: r, paths: ['/**']}]
    rego:
      modules:
        - name: authz.rego
          source: |
            package authgate.authz
            decision := REGO
`

func newLoader(t *testing.T, rego string) (*reload.Loader, *gateway.Switch, *metrics.Metrics) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	content := []byte(bundle[:len(bundle)-len("REGO\n")] + rego + "\n")
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	sw := &gateway.Switch{}
	build := func(ctx context.Context, cfg *config.ProxyConfig, hash string, lbls map[string]string) (*gateway.Runtime, error) {
		return gateway.Build(ctx, cfg, hash, lbls, gateway.Deps{Logger: logger, Metrics: m})
	}
	l := reload.New(reload.Options{ConfigPath: p, Labels: map[string]string{"app": "fn"}, Build: build, Switch: sw, Logger: logger, Metrics: m})
	return l, sw, m
}

func TestCheckIsLoadWithoutTheSwap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, rego string
		wantErr    bool
	}{
		{"every policy builds", "true", false},
		{"a policy these labels do not select does not compile (not built here)", "{", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, sw, m := newLoader(t, tt.rego)
			rt, checkErr := l.Check(t.Context())
			if (checkErr != nil) != tt.wantErr || (rt == nil) != tt.wantErr {
				t.Fatalf("got runtime %v and error %v from Check, want an error: %v", rt != nil, checkErr, tt.wantErr)
			}
			if sw.Load() != nil || testutil.CollectAndCount(m.ConfigReloads) != 0 {
				t.Fatal("Check activated a runtime or counted a reload, want neither")
			}
			loadErr := l.Load(t.Context())
			if (loadErr != nil) != tt.wantErr || tt.wantErr && loadErr.Error() != checkErr.Error() {
				t.Fatalf("got %v from Load and %v from Check, want the same outcome", loadErr, checkErr)
			}
			if tt.wantErr {
				return
			}
			if got := rt.Policies(); len(got) != 1 || got[0] != "fn" {
				t.Fatalf("got policies %v, want [fn]: only the selected policy is kept", got)
			}
			if err := l.Load(t.Context()); !errors.Is(err, reload.ErrUnchanged) {
				t.Fatalf("got %v from a second Load, want ErrUnchanged", err)
			}
			if _, err := l.Check(t.Context()); err != nil {
				t.Fatalf("got %v from Check of the active config, want it checked again, not skipped", err)
			}
		})
	}
}
