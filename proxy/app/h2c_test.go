package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/app"
)

// TestUpstreamH2COverride: the injector passes --upstream-h2c for Knative
// h2c revisions; the proxy must then speak cleartext HTTP/2 to the function
// even though the shared namespace bundle does not say so.
func TestUpstreamH2COverride(t *testing.T) {
	for _, tt := range []struct {
		name      string
		h2c       bool
		wantProto int
	}{
		{"default http/1.1", false, 1},
		{"--upstream-h2c", true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			protos := make(chan int, 1)
			fn := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case protos <- r.ProtoMajor:
				default:
				}
				_, _ = io.WriteString(w, "ok")
			}))
			p := new(http.Protocols)
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			fn.Config.Protocols = p
			fn.Start()
			defer fn.Close()

			path := filepath.Join(t.TempDir(), "config.yaml")
			// The bundle names another upstream without h2c: both are overridden.
			if err := os.WriteFile(path, []byte(configYAML("http://127.0.0.1:1", "/a", true)), 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := app.New(app.Options{
				ConfigPath: path, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
				Upstream: fn.URL, UpstreamH2C: tt.h2c,
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			}()
			select {
			case <-a.Started():
			case err := <-done:
				t.Fatalf("app stopped: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("app did not start")
			}
			if got := get(t, "http://"+a.Addr()+"/a"); got != http.StatusOK {
				t.Fatalf("got %d, want 200", got)
			}
			if got := <-protos; got != tt.wantProto {
				t.Fatalf("got upstream HTTP/%d, want HTTP/%d", got, tt.wantProto)
			}
		})
	}
}
