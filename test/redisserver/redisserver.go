// Package redisserver runs a real redis-server (Debian's package, found on
// PATH or in $REDIS_SERVER) for tests: on a unix socket or a loopback port,
// optionally with a password and TLS, with no persistence. A test can kill
// it, start it again at the same address, and make it stall (DEBUG SLEEP),
// which is what a shared limit must survive.
package redisserver

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/test/testca"
)

// Options shape the server.
type Options struct {
	// TCP listens on a loopback port instead of a unix socket.
	TCP bool
	// Password requires AUTH.
	Password string
	// TLS serves TLS (on a loopback port) with a certificate of a test CA.
	TLS bool
}

// Server is a running redis-server.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	opts Options
	// Network and Address are what a client dials ("unix" and the socket
	// path, or "tcp" and 127.0.0.1:port).
	Network, Address string
	// CA is the test CA of a TLS server; nil otherwise.
	CA *testca.CA

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

// Binary returns the redis-server to run. With CI set a missing one fails
// the test (make test installs it); otherwise the test is skipped.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redis-server not found (make redis-server installs Debian's package): %v", err)
	}
	t.Skipf("redis-server not found; run make redis-server (apt-get install -y redis-server): %v", err)
	return ""
}

// Start starts a server stopped when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), opts: o}
	if o.TLS {
		o.TCP = true
		s.opts.TCP = true
		s.CA = testca.New(t)
		s.writeTLSFiles()
	}
	if o.TCP {
		s.Network, s.Address = "tcp", "127.0.0.1:"+strconv.Itoa(freePort(t))
	} else {
		// A unix socket path must stay under ~107 bytes: t.TempDir can be
		// long, so the socket lives in its own short directory.
		d, err := os.MkdirTemp("", "rds")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		s.Network, s.Address = "unix", filepath.Join(d, "r.sock")
	}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) args() []string {
	a := []string{
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no",
		"--enable-debug-command", "local", "--loglevel", "warning", "--protected-mode", "no",
	}
	switch {
	case s.opts.TLS:
		_, port, _ := net.SplitHostPort(s.Address)
		a = append(a, "--port", "0", "--bind", "127.0.0.1", "--tls-port", port,
			"--tls-cert-file", filepath.Join(s.dir, "tls.crt"), "--tls-key-file", filepath.Join(s.dir, "tls.key"),
			"--tls-ca-cert-file", filepath.Join(s.dir, "ca.crt"), "--tls-auth-clients", "no")
	case s.opts.TCP:
		_, port, _ := net.SplitHostPort(s.Address)
		a = append(a, "--port", port, "--bind", "127.0.0.1")
	default:
		a = append(a, "--port", "0", "--unixsocket", s.Address, "--unixsocketperm", "700")
	}
	if s.opts.Password != "" {
		a = append(a, "--requirepass", s.opts.Password)
	}
	return a
}

// Restart starts the server again at the same address (after Kill) and
// waits until it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redisserver: already running")
	}
	logPath := filepath.Join(s.dir, "redis.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		s.t.Fatalf("redisserver: start %s: %v", s.bin, err)
	}
	_ = lf.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s.reachable() {
			return
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logPath)
			s.cmd = nil
			s.t.Fatalf("redisserver: exited at start: %v\n%s", err, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			s.t.Fatalf("redisserver: not reachable at %s %s after 30s\n%s", s.Network, s.Address, out)
		}
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
	if s.Network == "unix" {
		_ = os.Remove(s.Address)
	}
}

// Log returns what the server wrote (for failure messages).
func (s *Server) Log() string {
	out, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(out)
}

// reachable reports whether the server answers a TCP or unix connect (for
// TLS and passwords the listener accepting is enough).
func (s *Server) reachable() bool {
	c, err := net.DialTimeout(s.Network, s.Address, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Client returns a go-redis client of the server (plain, not TLS), closed
// when the test ends: for a test to look at what is stored.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Network: s.Network, Addr: s.Address, Password: s.opts.Password, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Do sends one command over a plain connection (not for TLS servers) and
// returns the first line of the reply: a test's own redis-cli.
func (s *Server) Do(args ...string) (string, error) {
	if s.opts.TLS {
		return "", errors.New("redisserver: Do does not speak TLS")
	}
	c, err := net.DialTimeout(s.Network, s.Address, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	write := func(args []string) {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if s.opts.Password != "" {
		write([]string{"AUTH", s.opts.Password})
	}
	write(args)
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	if s.opts.Password != "" {
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return "", fmt.Errorf("redisserver: AUTH: %q %w", line, err)
		}
	}
	line, err := r.ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func (s *Server) writeTLSFiles() {
	s.t.Helper()
	crt := s.CA.ServerCertificate(s.t)
	der, err := x509.MarshalECPrivateKey(crt.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		s.t.Fatal(err)
	}
	files := map[string][]byte{
		"ca.crt":  []byte(s.CA.PEM),
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt.Certificate[0]}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
