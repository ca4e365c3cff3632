package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/internal/keygen"
	"github.com/authgate/authgate/internal/serve"
	"github.com/authgate/authgate/proxy/app"
)

// demoEnv is everything the demo started.
type demoEnv struct {
	issuer    *devissuer.Issuer
	proxyURL  string
	adminURL  string
	apiKey    string
	dir       string
	client    *http.Client
	out       io.Writer
	failures  int
	stepCount int
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep everything running for manual curl until interrupted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	env, wait, err := startDemo(ctx, stdout)
	if err != nil {
		return err
	}
	defer os.RemoveAll(env.dir)
	env.walkthrough(ctx)
	if *keep {
		env.printManual()
		<-ctx.Done()
	}
	cancel()
	if err := wait(); err != nil {
		return err
	}
	if env.failures > 0 {
		return fmt.Errorf("%d demo step(s) did not behave as expected", env.failures)
	}
	return nil
}

// startDemo starts the dev issuer, the echo function and the proxy on
// loopback ports, with no network beyond loopback.
func startDemo(ctx context.Context, out io.Writer) (*demoEnv, func() error, error) {
	dir, err := os.MkdirTemp("", "authgate-demo-")
	if err != nil {
		return nil, nil, fmt.Errorf("temp dir: %w", err)
	}
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		return nil, nil, err
	}
	issLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	iss.SetURL("http://" + issLn.Addr().String())
	go func() { _ = serve.Until(ctx, issLn, iss.Handler()) }()
	fnLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	go func() { _ = serve.Until(ctx, fnLn, echo.New()) }()

	key, err := keygen.Generate()
	if err != nil {
		return nil, nil, err
	}
	cfg := demoConfig(iss.URL(), iss.PublicJWKS(), "http://"+fnLn.Addr().String(), HashKey(key))
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("render config: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return nil, nil, fmt.Errorf("write config: %w", err)
	}
	logFile, err := os.Create(filepath.Join(dir, "proxy.log"))
	if err != nil {
		return nil, nil, fmt.Errorf("log file: %w", err)
	}
	a, err := app.New(app.Options{
		ConfigPath: cfgPath, Labels: demoLabels, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		ShutdownTimeout: 5 * time.Second, Logger: slog.New(slog.NewJSONHandler(logFile, nil)),
	})
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Started():
	case err := <-done:
		return nil, nil, fmt.Errorf("proxy did not start: %w", err)
	case <-time.After(30 * time.Second):
		return nil, nil, errors.New("proxy did not start within 30s")
	}
	env := &demoEnv{
		issuer: iss, proxyURL: "http://" + a.Addr(), adminURL: "http://" + a.AdminAddr(), apiKey: key, dir: dir,
		client: &http.Client{Timeout: 10 * time.Second}, out: out,
	}
	fmt.Fprintf(out, "authgate demo (everything on loopback, no cluster, no internet)\n")
	fmt.Fprintf(out, "  dev OIDC issuer  %s\n  echo function    http://%s\n  authgate-proxy   %s (admin %s)\n  config           %s\n\n",
		iss.URL(), fnLn.Addr(), env.proxyURL, env.adminURL, cfgPath)
	wait := func() error {
		err := <-done
		logFile.Close()
		return err
	}
	return env, wait, nil
}

// step is one request of the walkthrough and what it should produce.
type step struct {
	title   string
	method  string
	path    string
	token   string
	apiKey  string
	headers map[string]string
	want    int
	show    func(h http.Header, body []byte) string
}

func (e *demoEnv) mint(claims map[string]any) string {
	base := map[string]any{"sub": "alice", "aud": "demo", "email": "alice@example.com"}
	for k, v := range claims {
		base[k] = v
	}
	tok, err := e.issuer.Mint(base)
	if err != nil {
		panic(fmt.Sprintf("mint: %v", err))
	}
	return tok
}

func (e *demoEnv) walkthrough(ctx context.Context) {
	reader := e.mint(map[string]any{"scope": "orders:read", "tier": "gold"})
	steps := []step{
		{title: "no token", method: "GET", path: "/orders/42", want: 401, show: showHeader("WWW-Authenticate")},
		{title: "valid token, scope orders:read", method: "GET", path: "/orders/42", token: reader, want: 200, show: showIdentity},
		{title: "spoofed identity headers are stripped", method: "GET", path: "/orders/42", token: reader, want: 200,
			headers: map[string]string{"X-Authgate-Subject": "root", "X-Authgate-Scopes": "admin"}, show: showIdentity},
		{title: "spoofed header on a public route", method: "GET", path: "/healthz", want: 200,
			headers: map[string]string{"X-Authgate-Subject": "root"}, show: showIdentity},
		{title: "token without the scope", method: "GET", path: "/orders/42", token: e.mint(map[string]any{"scope": "profile"}), want: 403, show: showReason},
		{title: "admin route without MFA", method: "GET", path: "/admin/users", token: reader, want: 403, show: showReason},
		{title: "admin route with MFA (amr: [pwd, otp])", method: "GET", path: "/admin/users", token: e.mint(map[string]any{"amr": []string{"pwd", "otp"}}), want: 200, show: showIdentity},
		{title: "Rego ABAC: department sales → /departments/sales", method: "GET", path: "/departments/sales/reports", token: e.mint(map[string]any{"department": "sales"}), want: 200, show: showIdentity},
		{title: "Rego ABAC: department eng → /departments/sales", method: "GET", path: "/departments/sales/reports", token: e.mint(map[string]any{"department": "eng"}), want: 403, show: showReason},
		{title: "API key for partner-acme", method: "GET", path: "/orders/7", apiKey: e.apiKey, want: 200, show: showIdentity},
		{title: "audit mode: silver tier would be denied, forwarded", method: "GET", path: "/orders/42", token: e.mint(map[string]any{"scope": "orders:read", "tier": "silver"}), want: 200, show: showIdentity},
		{title: "path tricks are canonicalised: /orders/../admin/x", method: "GET", path: "/orders/%2e%2e/admin/x", token: reader, want: 403, show: showReason},
	}
	for _, s := range steps {
		e.run(ctx, s)
	}
	e.showMetrics(ctx)
	e.showAuditLog()
}

func (e *demoEnv) run(ctx context.Context, s step) {
	e.stepCount++
	req, err := http.NewRequestWithContext(ctx, s.method, e.proxyURL+s.path, nil)
	if err != nil {
		e.fail(s, err)
		return
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if s.apiKey != "" {
		req.Header.Set("X-API-Key", s.apiKey)
	}
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.fail(s, err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	mark := "ok  "
	if resp.StatusCode != s.want {
		mark = "FAIL"
		e.failures++
	}
	fmt.Fprintf(e.out, "%s %2d. %-52s %s %-28s → %d (want %d)\n", mark, e.stepCount, s.title, s.method, s.path, resp.StatusCode, s.want)
	if extra := s.show(resp.Header, body); extra != "" {
		fmt.Fprintf(e.out, "         %s\n", extra)
	}
	if len(s.headers) > 0 {
		keys := make([]string, 0, len(s.headers))
		for k, v := range s.headers {
			keys = append(keys, k+": "+v)
		}
		sort.Strings(keys)
		fmt.Fprintf(e.out, "         client sent: %s\n", strings.Join(keys, "; "))
	}
}

func (e *demoEnv) fail(s step, err error) {
	e.failures++
	fmt.Fprintf(e.out, "FAIL %2d. %s: %v\n", e.stepCount, s.title, err)
}

func showHeader(name string) func(http.Header, []byte) string {
	return func(h http.Header, _ []byte) string { return name + ": " + h.Get(name) }
}

func showReason(_ http.Header, body []byte) string {
	var b struct {
		Reason      string `json:"reason"`
		Description string `json:"description"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	if b.Description != "" {
		return "reason: " + b.Reason + " (" + b.Description + ")"
	}
	return "reason: " + b.Reason
}

func showIdentity(_ http.Header, body []byte) string {
	var rec echo.Received
	if json.Unmarshal(body, &rec) != nil {
		return ""
	}
	ids := rec.IdentityHeaders()
	if len(ids) == 0 {
		return "function saw no identity headers"
	}
	keys := make([]string, 0, len(ids))
	for k, v := range ids {
		keys = append(keys, k+": "+v)
	}
	sort.Strings(keys)
	return "function saw " + strings.Join(keys, "; ")
}

func (e *demoEnv) showMetrics(ctx context.Context) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.adminURL+"/metrics", nil)
	resp, err := e.client.Do(req)
	if err != nil {
		fmt.Fprintf(e.out, "\nmetrics unavailable: %v\n", err)
		e.failures++
		return
	}
	defer resp.Body.Close()
	fmt.Fprintf(e.out, "\nProxy metrics excerpt (%s/metrics):\n", e.adminURL)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "authgate_requests_total") || strings.HasPrefix(line, "authgate_config_reloads_total") ||
			strings.HasPrefix(line, "authgate_jwks_keys") || strings.HasPrefix(line, "authgate_token_cache_requests_total") {
			fmt.Fprintf(e.out, "  %s\n", line)
		}
	}
}

func (e *demoEnv) showAuditLog() {
	data, err := os.ReadFile(filepath.Join(e.dir, "proxy.log"))
	if err != nil {
		return
	}
	fmt.Fprintf(e.out, "\nDecision log, requests an audit-mode policy would have denied (credentials are never logged):\n")
	for _, line := range strings.Split(string(data), "\n") {
		var entry struct {
			Msg          string   `json:"msg"`
			RequestID    string   `json:"request_id"`
			Method       string   `json:"method"`
			Path         string   `json:"path"`
			Status       int      `json:"status"`
			Subject      string   `json:"subject"`
			AuditDenials []string `json:"audit_denials"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil || entry.Msg != "decision" || len(entry.AuditDenials) == 0 || entry.Status != http.StatusOK {
			continue
		}
		fmt.Fprintf(e.out, "  request_id=%s %s %s status=%d subject=%s audit_denials=%v\n",
			entry.RequestID, entry.Method, entry.Path, entry.Status, entry.Subject, entry.AuditDenials)
	}
}

func (e *demoEnv) printManual() {
	fmt.Fprintf(e.out, `
Everything keeps running; press Ctrl-C to stop. Try:
  TOKEN=$(curl -s '%s/token?sub=bob&aud=demo&scope=orders:read' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  curl -i -H "Authorization: Bearer $TOKEN" %s/orders/1
  curl -i -H 'X-API-Key: %s' %s/orders/1
  curl -s %s/metrics | grep authgate_
`, e.issuer.URL(), e.proxyURL, e.apiKey, e.proxyURL, e.adminURL)
}
