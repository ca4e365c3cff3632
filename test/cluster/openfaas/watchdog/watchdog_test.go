package watchdog_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/cluster/openfaas/watchdog"
	"github.com/authgate/authgate/test/wait"
)

func TestFromEnv(t *testing.T) {
	t.Parallel()
	base := []string{"mode=http", "fprocess=fn serve", "upstream_url=http://127.0.0.1:5000"}
	c, err := watchdog.FromEnv(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.MetricsPort != 8081 || c.WriteTimeout != 30*time.Second || c.ExecTimeout != 30*time.Second ||
		c.HealthcheckInterval != c.WriteTimeout || !c.PrefixLogs || c.SuppressLock || !strings.HasSuffix(c.LockPath, "/.lock") {
		t.Errorf("defaults: got %+v", c)
	}
	c, err = watchdog.FromEnv(append(base, "port=8082", "write_timeout=10", "exec_timeout=1m30s", "read_timeout=bogus",
		"function_process=other", "http_upstream_url=http://127.0.0.1:6000", "suppress_lock=1", "prefix_logs=false",
		"max_inflight=3", "healthcheck_interval=2s", "log_callid=true"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8082 || c.WriteTimeout != 10*time.Second || c.ExecTimeout != 90*time.Second || c.ReadTimeout != 30*time.Second ||
		c.FunctionProcess != "other" || c.UpstreamURL != "http://127.0.0.1:6000" || !c.SuppressLock || c.PrefixLogs ||
		c.MaxInflight != 3 || c.HealthcheckInterval != 2*time.Second || !c.LogCallID {
		t.Errorf("parsed: got %+v", c)
	}
	if c, _ := watchdog.FromEnv(append(base, "port=http")); c.Port != 0 {
		t.Errorf("port=http: got %d, want 0 (the original ignores Atoi's error)", c.Port)
	}
	for _, tt := range []struct {
		env  []string
		want error
	}{
		{[]string{"mode=http", "upstream_url=http://x"}, watchdog.ErrNoProcess},
		{append(base, "write_timeout=0"), watchdog.ErrWriteTimeout},
		{[]string{"mode=http", "fprocess=fn"}, watchdog.ErrNoUpstream},
	} {
		if _, err := watchdog.FromEnv(tt.env); !errors.Is(err, tt.want) {
			t.Errorf("%v: got %v, want %v", tt.env, err, tt.want)
		}
	}
	if _, err := watchdog.FromEnv([]string{"fprocess=fn", "upstream_url=http://x"}); err == nil {
		t.Error("no mode: got no error, want one (only mode=http is reproduced)")
	}
}

func TestForwardsToTheFunction(t *testing.T) {
	t.Parallel()
	h := start(t, nil, nil)
	h.upstreamUp(t)

	req, _ := http.NewRequest(http.MethodGet, h.base+"/a/b?x=1&y=2", nil)
	req.Host = "fn.example"
	req.Header.Add("X-Custom", "one")
	req.Header.Add("X-Custom", "two")
	res, body := do(t, req)
	var got struct {
		RequestURI, Host string
		Header           http.Header
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%d %q: %v", res.StatusCode, body, err)
	}
	if got.RequestURI != "/a/b?x=1&y=2" || got.Host != "fn.example" || strings.Join(got.Header["X-Custom"], ",") != "one,two" {
		t.Errorf("got %+v, want the path, query, Host and both X-Custom values", got)
	}
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Call-Id"} {
		if v, ok := got.Header[h]; ok {
			t.Errorf("the function got %s: %q, want none (the watchdog adds no forwarding header)", h, v)
		}
	}
	if res.Header.Get("X-Duration-Seconds") == "" {
		t.Error("no X-Duration-Seconds on the response")
	}

	res, body = do(t, mustReq(t, http.MethodPost, h.base+"/", "hello"))
	var post struct {
		Body             string
		TransferEncoding []string
		ContentLength    int64
	}
	_ = json.Unmarshal([]byte(body), &post)
	if post.Body != "hello" || strings.Join(post.TransferEncoding, ",") != "chunked" || post.ContentLength != -1 {
		t.Errorf("POST: got %d %+v, want the body sent chunked (not buffered)", res.StatusCode, post)
	}

	res, body = get(t, h.base+"/status/201")
	if res.StatusCode != 201 || body != "status body" || res.Header.Get("X-Upstream") != "yes" {
		t.Errorf("got %d %q %v, want the function's 201, body and headers", res.StatusCode, body, res.Header)
	}

	dated := regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d stdout: upstream listening$`)
	wait.For(t, 0, func() bool { return dated.MatchString(h.stdout.String()) }, "the function's stdout, dated and prefixed")
	wait.For(t, 0, func() bool { return strings.Contains(h.stderr.String(), "stderr: upstream says hello on stderr") },
		"the function's stderr, prefixed")
}

func TestBufferedBodyAndPlainLogs(t *testing.T) {
	t.Parallel()
	h := start(t, []string{"buffer_http=true", "prefix_logs=false"}, nil)
	h.upstreamUp(t)
	_, body := do(t, mustReq(t, http.MethodPost, h.base+"/", "hello"))
	var post struct {
		TransferEncoding []string
		ContentLength    int64
	}
	_ = json.Unmarshal([]byte(body), &post)
	if len(post.TransferEncoding) != 0 || post.ContentLength != 5 {
		t.Errorf("got %+v, want Content-Length 5 with buffer_http", post)
	}
	wait.For(t, 0, func() bool { return strings.Contains(h.stdout.String(), "upstream listening\n") }, "the function's stdout")
	if strings.Contains(h.stdout.String(), "stdout:") {
		t.Errorf("prefix_logs=false: got %q, want lines as written", h.stdout)
	}
}

func TestHealthDoesNotAskTheFunction(t *testing.T) {
	t.Parallel()
	// The function waits an hour before it listens: the lock file is
	// written anyway, so /_/health is 200 and a request gets 500.
	h := start(t, []string{"ready_path=/ready"}, nil, "-delay=1h")
	if res, body := get(t, h.base+"/_/health"); res.StatusCode != 200 || body != "OK" {
		t.Errorf("/_/health: got %d %q, want 200 OK", res.StatusCode, body)
	}
	res, body := get(t, h.base+"/anything")
	if res.StatusCode != 500 || body != "" || res.Header.Get("X-OpenFaaS-Internal") != "of-watchdog" {
		t.Errorf("function not listening: got %d %q %v, want 500, no body, X-OpenFaaS-Internal: of-watchdog", res.StatusCode, body, res.Header)
	}
	if res, _ := get(t, h.base+"/_/ready"); res.StatusCode != 500 {
		t.Errorf("/_/ready with ready_path: got %d, want the function's answer (500: not listening)", res.StatusCode)
	}
	if res, _ := do(t, mustReq(t, http.MethodPost, h.base+"/_/health", "")); res.StatusCode != 405 {
		t.Errorf("POST /_/health: got %d, want 405", res.StatusCode)
	}
	if err := os.Remove(h.cfg.LockPath); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/_/health", "/_/ready"} {
		if res, _ := get(t, h.base+p); res.StatusCode != 503 {
			t.Errorf("%s without the lock file: got %d, want 503", p, res.StatusCode)
		}
	}
}

func TestReadyPathAsksTheFunction(t *testing.T) {
	t.Parallel()
	h := start(t, []string{"ready_path=/ready"}, nil)
	h.upstreamUp(t)
	if res, body := get(t, h.base+"/_/ready"); res.StatusCode != 200 || body != "ready from the function" {
		t.Errorf("/_/ready: got %d %q, want the function's /ready", res.StatusCode, body)
	}
}

func TestSuppressLock(t *testing.T) {
	t.Parallel()
	h := start(t, []string{"suppress_lock=true"}, nil)
	h.upstreamUp(t)
	if res, _ := get(t, h.base+"/_/health"); res.StatusCode != 503 {
		t.Errorf("/_/health with suppress_lock: got %d, want 503 (no lock file, as in the original)", res.StatusCode)
	}
	if res, _ := get(t, h.base+"/status/200"); res.StatusCode != 200 {
		t.Errorf("request with suppress_lock: got %d, want 200", res.StatusCode)
	}
	if _, err := os.Stat(h.cfg.LockPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file: got %v, want none", err)
	}
}

func TestExecTimeout(t *testing.T) {
	t.Parallel()
	h := start(t, []string{"exec_timeout=200ms"}, nil)
	h.upstreamUp(t)
	for _, xt := range []string{"", "50ms", "1h"} {
		req := mustReq(t, http.MethodGet, h.base+"/sleep?d=1h", "")
		if xt != "" {
			req.Header.Set("X-Timeout", xt)
		}
		res, body := do(t, req)
		if res.StatusCode != 504 || body != "" || res.Header.Get("X-OpenFaaS-Internal") != "of-watchdog" {
			t.Errorf("X-Timeout %q: got %d %q %v, want 504 from the watchdog", xt, res.StatusCode, body, res.Header)
		}
	}
	if !strings.Contains(h.log.String(), "Upstream HTTP killed due to exec_timeout: 200ms") {
		t.Errorf("log: got %q", h.log)
	}
}

func TestMaxInflight(t *testing.T) {
	t.Parallel()
	h := start(t, []string{"max_inflight=1"}, nil)
	h.upstreamUp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/sleep?d=1h", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	wait.For(t, 0, func() bool { res, _ := get(t, h.base+"/_/ready"); return res.StatusCode == 429 }, "/_/ready to say 429")
	res, body := get(t, h.base+"/status/200")
	if res.StatusCode != 429 || body != "Concurrent request limit exceeded. Max concurrent requests: 1\n" ||
		res.Header.Get("X-OpenFaaS-Internal") != "faas-middleware" {
		t.Errorf("got %d %q %v, want the limiter's 429", res.StatusCode, body, res.Header)
	}
}

func mustReq(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
