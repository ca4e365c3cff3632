package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/test/upgradeecho"
	"github.com/authgate/authgate/test/wait"
)

// These tests run authgate-proxy as its own process (this test binary,
// re-executed with mainEnv set, runs main) and stop it with a real SIGTERM,
// so what they see is what a pod sees: when the process exits, every
// connection it holds is gone.

const mainEnv = "AUTHGATE_PROXY_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is a running authgate-proxy process.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	admin  string
	exited chan error // receives Wait's result once
	mu     sync.Mutex
	logs   bytes.Buffer
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// running reports whether the process has not exited (without waiting).
func (p *proc) running() bool {
	select {
	case err := <-p.exited:
		p.exited <- err
		return false
	default:
		return true
	}
}

// startProc runs the proxy in front of upstream with every route public.
func startProc(t *testing.T, upstream string, args ...string) *proc {
	t.Helper()
	return startProcWith(t, upstream, "policies: [{name: p, routes: [{name: all, paths: ['/**'], public: true}]}]\n", args...)
}

// startProcWith runs the proxy in front of upstream with the ProxyConfig
// whose body (after apiVersion, kind and upstream) is policies.
func startProcWith(t *testing.T, upstream, policies string, args ...string) *proc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	body := "apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:1'}\n" + policies
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--config", cfg, "--upstream", upstream, "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--log-level", "debug"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1)}
	addr := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.Write(sc.Bytes())
			p.logs.WriteByte('\n')
			p.mu.Unlock()
			var line struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
				Admin   string `json:"admin_address"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "authgate-proxy serving" {
				addr <- [2]string{line.Address, line.Admin}
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = cmd.Process.Kill()
		}
		<-p.exited
		if t.Failed() {
			t.Logf("authgate-proxy logs:\n%s", p.logText())
		}
	})
	select {
	case a := <-addr:
		p.addr, p.admin = a[0], a[1]
	case err := <-p.exited:
		t.Fatalf("authgate-proxy exited before serving: %v\n%s", err, p.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("authgate-proxy did not start serving\n%s", p.logText())
	}
	return p
}

// term sends SIGTERM and waits until the listener is closed (the proxy is
// draining: a new connection is refused).
func (p *proc) term(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, func() bool {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, "the proxy to close its listener after SIGTERM")
}

func (p *proc) waitExit(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("authgate-proxy did not exit\n%s", p.logText())
		return nil
	}
}

// lineEcho is a function that upgrades /ws and echoes every line it reads
// until the client closes.
func lineEcho(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(upgradeecho.Handler())
	t.Cleanup(s.Close)
	return s
}

// A WebSocket opened before SIGTERM keeps working while the proxy drains,
// and the proxy exits only once it is closed. Without the proxy's own wait
// (http.Server.Shutdown forgets hijacked connections) the process exits
// right after closing its listener and the connection dies with it.
func TestSIGTERMWaitsForOpenWebSocket(t *testing.T) {
	fn := lineEcho(t)
	p := startProc(t, fn.URL, "--shutdown-timeout", "60s")
	ws := upgradeecho.Dial(t, p.addr, "/ws")
	if err := ws.Echo("before"); err != nil {
		t.Fatalf("before SIGTERM: %v", err)
	}
	p.term(t)
	for i := range 20 {
		if err := ws.Echo(fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatalf("message %d over the WebSocket after SIGTERM: %v (proxy running: %v)", i, err, p.running())
		}
	}
	if !p.running() {
		t.Fatal("the proxy exited while a WebSocket was open and the shutdown timeout had not passed")
	}
	_ = ws.Close()
	if err := p.waitExit(t); err != nil {
		t.Fatalf("exit after the last WebSocket closed: %v", err)
	}
}

// At the shutdown timeout the proxy closes what is still open, says so in
// its log, and exits cleanly.
func TestSIGTERMClosesWebSocketAtShutdownTimeout(t *testing.T) {
	fn := lineEcho(t)
	p := startProc(t, fn.URL, "--shutdown-timeout", "1s")
	ws := upgradeecho.Dial(t, p.addr, "/ws")
	if err := ws.Echo("before"); err != nil {
		t.Fatal(err)
	}
	p.term(t)
	if err := p.waitExit(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if _, err := ws.ReadLine(); !errors.Is(err, io.EOF) {
		t.Fatalf("read after exit: %v, want EOF", err)
	}
	if !strings.Contains(p.logText(), `"closed":1`) {
		t.Fatalf("the log does not say one upgraded connection was closed at the timeout:\n%s", p.logText())
	}
}

// A streamed response that began before SIGTERM is delivered whole: the
// proxy drains it (up to the shutdown timeout) before it exits.
func TestSIGTERMLetsStreamedResponseFinish(t *testing.T) {
	const chunks = 30
	proceed := make(chan struct{})
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range chunks {
			if i == 1 {
				<-proceed // the rest is sent after SIGTERM
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			_ = rc.Flush()
		}
	}))
	t.Cleanup(fn.Close)
	p := startProc(t, fn.URL, "--shutdown-timeout", "60s")
	resp, err := http.Get("http://" + p.addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: 0\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	p.term(t)
	close(proceed)
	body, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the stream after SIGTERM: %v", err)
	}
	if got := strings.Count(string(body), "data: "); got != chunks-1 {
		t.Fatalf("got %d more events after SIGTERM, want %d", got, chunks-1)
	}
	if err := p.waitExit(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// Under load, the process keeps answering every request after SIGTERM for
// its drain delay (not ready meanwhile), then exits cleanly: no request of
// clients that keep sending after the signal fails, with and without
// keep-alive. Without --drain-delay the listener closes at the signal and
// these requests are refused.
func TestSIGTERMUnderLoadNoFailedRequests(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(fn.Close)
	p := startProc(t, fn.URL, "--drain-delay", "10s", "--shutdown-timeout", "30s")
	const clients, afterSignal = 4, 100
	signalled := make(chan struct{})
	type result struct{ before, after, failed int }
	results := make(chan result, clients)
	var started sync.WaitGroup
	started.Add(clients)
	for i := range clients {
		go func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 1}}
			var res result
			first := true
			for res.after < afterSignal {
				after := false
				select {
				case <-signalled:
					after = true
				default:
				}
				resp, err := c.Get("http://" + p.addr + "/x")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					res.failed++
				}
				if after {
					res.after++
				} else {
					res.before++
				}
				if first {
					first = false
					started.Done()
				}
			}
			results <- res
		}()
	}
	started.Wait() // every client has sent before the signal
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	close(signalled)
	wait.For(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, "/readyz to say 503 while the proxy still serves")
	var total result
	for range clients {
		r := <-results
		total.before += r.before
		total.after += r.after
		total.failed += r.failed
	}
	if total.failed != 0 {
		t.Fatalf("%d of %d requests failed around SIGTERM, want 0", total.failed, total.before+total.after)
	}
	t.Logf("%d requests before and %d after SIGTERM, none failed", total.before, total.after)
	if err := p.waitExit(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
}
