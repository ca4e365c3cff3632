package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/proxy/app"
	"github.com/authgate/authgate/test/wait"
)

// policyYAML is a config whose policy makes route public, requires an API
// key on /private, and carries extra policy-level YAML (indented under the
// policy), plus top-level YAML.
func policyYAML(upstream, route, policyExtra, topExtra string) string {
	return fmt.Sprintf(`apiVersion: authgate.dev/v1alpha1
kind: ProxyConfig
upstream: {url: %q}
apiKeys:
  keys: [{name: k, hash: "sha256:f0992dacd3492d57ea3de793332ac43c28d7b65ac787eb85ae67a8f1b50d4616"}]
policies:
  - name: p
    authentication: {apiKeys: {}}
    routes:
      - {name: r, paths: [%q], public: true}
      - {name: private, paths: [/private]}
%s%s`, upstream, route, policyExtra, topExtra)
}

// startWith runs the app with opts on loopback until the test ends.
func startWith(t *testing.T, opts app.Options) *app.App {
	t.Helper()
	opts.Listen, opts.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	opts.PollInterval, opts.ShutdownTimeout = 50*time.Millisecond, 5*time.Second
	opts.Logger, opts.Registry = slog.New(slog.NewJSONHandler(io.Discard, nil)), prometheus.NewRegistry()
	a, err := app.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-a.Started():
	case err := <-done:
		t.Fatalf("app stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("app did not start")
	}
	return a
}

// reloadTo projects cfg and waits until the proxy enforces it: it makes
// route public, which the previous config must not.
func reloadTo(t *testing.T, dir, base, cfg, route string) {
	t.Helper()
	writeAtomic(t, dir, cfg)
	wait.For(t, 15*time.Second, func() bool { return get(t, base+route) != http.StatusForbidden }, "the new config to be enforced")
}

// rawPost starts a POST of length bytes and sends the first part of it.
func rawPost(t *testing.T, addr, path string, length int, first string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_, _ = io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: fn.example\r\nContent-Length: "+strconv.Itoa(length)+"\r\n\r\n"+first)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	return conn
}

func TestPolicyReadTimeoutShortensTheServersOnReload(t *testing.T) {
	fn := httptest.NewServer(echo.New())
	defer fn.Close()
	dir := t.TempDir()
	writeAtomic(t, dir, policyYAML(fn.URL, "/a", "", ""))
	a := startWith(t, app.Options{ConfigPath: filepath.Join(dir, "config.yaml")})
	reloadTo(t, dir, "http://"+a.Addr(), policyYAML(fn.URL, "/b", "    limits: {readTimeout: 300ms}\n", ""), "/b")
	// The server's own read timeout is the first config's 60s: only the
	// policy's can end this upload within the 20s the test waits.
	conn := rawPost(t, a.Addr(), "/b", 100, "0123456789")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("got %v, want a 408 answer", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("got %d, want 408", resp.StatusCode)
	}
}

func TestPolicyReadTimeoutOutlastsTheServersOnReload(t *testing.T) {
	entered := make(chan struct{}, 1)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	}))
	defer fn.Close()
	dir := t.TempDir()
	writeAtomic(t, dir, policyYAML(fn.URL, "/a", "", "limits: {readTimeout: 300ms, readHeaderTimeout: 300ms}\n"))
	a := startWith(t, app.Options{ConfigPath: filepath.Join(dir, "config.yaml")})
	reloadTo(t, dir, "http://"+a.Addr(), policyYAML(fn.URL, "/b", "    limits: {readTimeout: 30s}\n", "limits: {readTimeout: 300ms, readHeaderTimeout: 300ms}\n"), "/b")

	upload := rawPost(t, a.Addr(), "/b", 20, "0123456789")
	<-entered
	// A canary that never finishes its headers is cut by the server's
	// 300ms header timeout. It started after the upload, so once it is cut
	// the server's 300ms read timeout has passed for the upload too.
	canary, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer canary.Close()
	_, _ = io.WriteString(canary, "GET /b HTTP/1.1\r\nHost: x\r\n")
	_ = canary.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, canary); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the canary was not cut by the server's header timeout")
		}
	}
	_, _ = io.WriteString(upload, "0123456789")
	resp, err := http.ReadResponse(bufio.NewReader(upload), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "20" {
		t.Fatalf("got %d %q, want 200 and the whole 20-byte body received", resp.StatusCode, body)
	}
}

func TestPolicyUpstreamTimeoutOnReload(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	dir := t.TempDir()
	writeAtomic(t, dir, policyYAML(hung.URL, "/a", "", ""))
	a := startWith(t, app.Options{ConfigPath: filepath.Join(dir, "config.yaml"), UpstreamTimeout: time.Hour})
	// Nothing reaches the hung function before the second config, whose
	// timeout replaces the flag's hour.
	reloadTo(t, dir, "http://"+a.Addr(), policyYAML(hung.URL, "/b", "    limits: {upstreamTimeout: 200ms}\n", ""), "/b")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + a.Addr() + "/b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("got %d, want 504", resp.StatusCode)
	}
}

func TestUpstreamTimeoutFlag(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	dir := t.TempDir()
	writeAtomic(t, dir, policyYAML(hung.URL, "/a", "", ""))
	a := startWith(t, app.Options{ConfigPath: filepath.Join(dir, "config.yaml"), UpstreamTimeout: 200 * time.Millisecond})
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + a.Addr() + "/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("got %d, want 504 after the flag's 200ms", resp.StatusCode)
	}
}

func TestPolicyBodyLimitOnReload(t *testing.T) {
	fn := httptest.NewServer(echo.New())
	defer fn.Close()
	dir := t.TempDir()
	writeAtomic(t, dir, policyYAML(fn.URL, "/a", "", ""))
	a := startWith(t, app.Options{ConfigPath: filepath.Join(dir, "config.yaml")})
	reloadTo(t, dir, "http://"+a.Addr(), policyYAML(fn.URL, "/b", "    limits: {maxBodyBytes: 8}\n", ""), "/b")
	for body, want := range map[string]int{"12345678": http.StatusOK, "123456789": http.StatusRequestEntityTooLarge} {
		resp, err := http.Post("http://"+a.Addr()+"/b", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("got %d for %d bytes, want %d", resp.StatusCode, len(body), want)
		}
	}
}

// The flag's trusted proxies and the config's apply together.
func TestTrustedProxiesFlagAddsToTheConfig(t *testing.T) {
	fn := httptest.NewServer(echo.New())
	defer fn.Close()
	dir := t.TempDir()
	writeAtomic(t, dir, policyYAML(fn.URL, "/a", "", "trustedProxies: [192.0.2.0/24]\n"))
	a := startWith(t, app.Options{ConfigPath: filepath.Join(dir, "config.yaml"), TrustedProxies: []string{"127.0.0.1"}})
	for xff, want := range map[string]string{
		"203.0.113.9":                      "203.0.113.9, 127.0.0.1",
		"6.6.6.6, 198.51.100.1, 192.0.2.5": "198.51.100.1, 192.0.2.5, 127.0.0.1",
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr()+"/a", nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rec echo.Received
		err = json.NewDecoder(resp.Body).Decode(&rec)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Headers["X-Forwarded-For"]; len(got) != 1 || got[0] != want {
			t.Errorf("XFF %q: got %q at the function, want [%q]", xff, got, want)
		}
	}
}
