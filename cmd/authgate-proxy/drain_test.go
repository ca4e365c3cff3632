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
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	body := "apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:1'}\n" +
		"policies: [{name: p, routes: [{name: all, paths: ['/**'], public: true}]}]\n"
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
	addr := make(chan string, 1)
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
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "authgate-proxy serving" {
				addr <- line.Address
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
	case p.addr = <-addr:
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
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo:" + line)
			_ = brw.Flush()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// upgraded is a client's end of an upgraded connection through the proxy.
type upgraded struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialUpgrade(t *testing.T, addr string) *upgraded {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: fn\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got status %d, want 101", resp.StatusCode)
	}
	return &upgraded{conn: conn, br: br}
}

func (u *upgraded) echo(msg string) error {
	if _, err := io.WriteString(u.conn, msg+"\n"); err != nil {
		return err
	}
	got, err := u.br.ReadString('\n')
	if err != nil {
		return err
	}
	if got != "echo:"+msg+"\n" {
		return fmt.Errorf("got %q, want echo:%s", got, msg)
	}
	return nil
}

// A WebSocket opened before SIGTERM keeps working while the proxy drains,
// and the proxy exits only once it is closed. Without the proxy's own wait
// (http.Server.Shutdown forgets hijacked connections) the process exits
// right after closing its listener and the connection dies with it.
func TestSIGTERMWaitsForOpenWebSocket(t *testing.T) {
	fn := lineEcho(t)
	p := startProc(t, fn.URL, "--shutdown-timeout", "60s")
	ws := dialUpgrade(t, p.addr)
	if err := ws.echo("before"); err != nil {
		t.Fatalf("before SIGTERM: %v", err)
	}
	p.term(t)
	for i := range 20 {
		if err := ws.echo(fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatalf("message %d over the WebSocket after SIGTERM: %v (proxy running: %v)", i, err, p.running())
		}
	}
	if !p.running() {
		t.Fatal("the proxy exited while a WebSocket was open and the shutdown timeout had not passed")
	}
	_ = ws.conn.Close()
	if err := p.waitExit(t); err != nil {
		t.Fatalf("exit after the last WebSocket closed: %v", err)
	}
}

// At the shutdown timeout the proxy closes what is still open, says so in
// its log, and exits cleanly.
func TestSIGTERMClosesWebSocketAtShutdownTimeout(t *testing.T) {
	fn := lineEcho(t)
	p := startProc(t, fn.URL, "--shutdown-timeout", "1s")
	ws := dialUpgrade(t, p.addr)
	if err := ws.echo("before"); err != nil {
		t.Fatal(err)
	}
	p.term(t)
	if err := p.waitExit(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if _, err := ws.br.ReadString('\n'); !errors.Is(err, io.EOF) {
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
