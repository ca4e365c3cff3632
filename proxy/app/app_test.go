package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/atomicwriter"
	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/proxy/app"
	"github.com/authgate/authgate/test/metrictest"
	"github.com/authgate/authgate/test/wait"
)

func configYAML(upstream, route string, public bool) string {
	return fmt.Sprintf(`apiVersion: authgate.dev/v1alpha1
kind: ProxyConfig
upstream: {url: %q}
apiKeys:
  keys: [{name: k, hash: "sha256:f0992dacd3492d57ea3de793332ac43c28d7b65ac787eb85ae67a8f1b50d4616"}]
policies:
  - name: p
    authentication: {apiKeys: {}}
    routes:
      - {name: r, paths: [%q], public: %v}
`, upstream, route, public)
}

// writeAtomic projects the config the way the kubelet does for a mounted
// ConfigMap (..data symlink swap).
func writeAtomic(t *testing.T, dir, content string) {
	t.Helper()
	if err := atomicwriter.Write(dir, map[string]string{"config.yaml": content}); err != nil {
		t.Fatal(err)
	}
}

type running struct {
	a      *app.App
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfgPath string, opts ...func(*app.Options)) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := app.Options{
		ConfigPath: cfgPath, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		PollInterval: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registry: reg,
	}
	for _, f := range opts {
		f(&o)
	}
	a, err := app.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	select {
	case <-a.Started():
	case err := <-r.done:
		t.Fatalf("app stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("app did not start")
	}
	return r
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestReloadThroughConfigMapSymlinkSwap(t *testing.T) {
	fn := httptest.NewServer(echo.New())
	defer fn.Close()
	dir := t.TempDir()
	writeAtomic(t, dir, configYAML(fn.URL, "/a", true))
	r := start(t, filepath.Join(dir, "config.yaml"))
	base := "http://" + r.a.Addr()
	admin := "http://" + r.a.AdminAddr()

	if got := get(t, admin+"/readyz"); got != 200 {
		t.Fatalf("got readyz %d, want 200", got)
	}
	if got := get(t, base+"/a"); got != 200 {
		t.Fatalf("got %d for /a, want 200", got)
	}
	// Admin endpoints are not reachable on the proxied port.
	if got := get(t, base+"/metrics"); got == 200 {
		t.Fatalf("got 200 for /metrics on the traffic port, want it unreachable")
	}

	// New policy: /a is no longer public, /b is.
	writeAtomic(t, dir, configYAML(fn.URL, "/b", true))
	wait.For(t, 15*time.Second, func() bool { return get(t, base+"/b") == 200 }, "the new policy to be enforced")
	if got := get(t, base+"/a"); got != 403 {
		t.Fatalf("got %d for /a after reload, want 403", got)
	}

	// A bad config keeps the last good one, and is counted.
	writeAtomic(t, dir, "apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'ftp://x'}\n")
	wait.For(t, 15*time.Second, func() bool {
		return metrictest.Sum(t, r.reg, "authgate_config_reloads_total", "result", "failure") >= 1
	}, "the bad config to be rejected")
	if got := get(t, base+"/b"); got != 200 {
		t.Fatalf("got %d for /b after a bad config, want the last good config (200)", got)
	}
	if got := get(t, admin+"/readyz"); got != 200 {
		t.Fatalf("got readyz %d after a bad config, want still ready", got)
	}
}

func TestNotReadyUntilValidConfig(t *testing.T) {
	fn := httptest.NewServer(echo.New())
	defer fn.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("kind: nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{ConfigPath: path, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if a.Ready() {
		t.Fatal("got ready with an invalid config, want not ready")
	}
	if err := os.WriteFile(path, []byte(configYAML(fn.URL, "/a", true)), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Started():
	case <-time.After(15 * time.Second):
		t.Fatal("did not start after a valid config appeared")
	}
	if !a.Ready() {
		t.Fatal("got not ready after a valid config, want ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	defer slow.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(configYAML(slow.URL, "/a", true)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := start(t, path)
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + r.a.Addr() + "/a")
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-entered
	r.cancel() // SIGTERM equivalent
	wait.For(t, 15*time.Second, func() bool { return !r.a.Ready() }, "readiness to drop while draining")
	close(release)
	if got := <-result; got != "200 done" {
		t.Fatalf("got %q for the in-flight request, want it drained to completion", got)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("run: %v", err)
	}
	r.done <- nil // for Cleanup
}

func TestSlowHeadersAreCut(t *testing.T) {
	fn := httptest.NewServer(echo.New())
	defer fn.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := configYAML(fn.URL, "/a", true) + "limits: {readHeaderTimeout: 200ms}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := start(t, path)
	conn, err := net.Dial("tcp", r.a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /a HTTP/1.1\r\nHost: x\r\n") // never finishes the headers
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	// The server closes the connection (EOF) or answers 408; it must not wait forever.
	if err == nil && !strings.Contains(string(buf[:n]), "408") {
		t.Fatalf("got %q, want the connection closed or 408", buf[:n])
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the proxy kept a slow-header connection open for 10s")
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    app.Options
		ok   bool
	}{
		{"ok", app.Options{ConfigPath: "c"}, true},
		{"no config", app.Options{}, false},
		{"same ports", app.Options{ConfigPath: "c", Listen: ":1", AdminListen: ":1"}, false},
		{"bad address", app.Options{ConfigPath: "c", Listen: "nope"}, false},
		// --upstream obeys upstream.url's rule (proxy/urlrule.Upstream): the
		// override replaces a URL that config validation already checked.
		{"upstream", app.Options{ConfigPath: "c", Upstream: "http://127.0.0.1:8080"}, true},
		{"upstream https", app.Options{ConfigPath: "c", Upstream: "https://127.0.0.1:8080"}, false},
		{"upstream path", app.Options{ConfigPath: "c", Upstream: "http://127.0.0.1:8080/p"}, false},
		{"upstream query", app.Options{ConfigPath: "c", Upstream: "http://127.0.0.1:8080?x=1"}, false},
		{"upstream user info", app.Options{ConfigPath: "c", Upstream: "http://u:p@127.0.0.1:8080"}, false},
		{"upstream fragment", app.Options{ConfigPath: "c", Upstream: "http://127.0.0.1:8080#f"}, false},
	}
	for _, tt := range tests {
		if err := tt.o.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// With the admin address given by flag (as the injector does), /healthz is
// alive and /readyz is 503 while the proxy waits for a valid config.
func TestAdminServesWhileWaitingForConfig(t *testing.T) {
	fn := httptest.NewServer(echo.New())
	defer fn.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	a, err := app.New(app.Options{ConfigPath: path, Listen: "127.0.0.1:0", AdminListen: adminAddr, PollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	wait.For(t, 15*time.Second, func() bool {
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "/healthz before any config")
	if got := get(t, "http://"+adminAddr+"/readyz"); got != 503 {
		t.Fatalf("got readyz %d without config, want 503", got)
	}
	if err := os.WriteFile(path, []byte(configYAML(fn.URL, "/a", true)), 0o644); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 15*time.Second, func() bool { return get(t, "http://"+adminAddr+"/readyz") == 200 }, "ready after a valid config")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
