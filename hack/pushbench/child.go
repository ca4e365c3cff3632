package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// controllerProc is the controller child process.
type controllerProc struct {
	cmd     *exec.Cmd
	flags   controllerFlags
	logPath string
	done    chan struct{}
	err     error
	http    *http.Client
}

// startController runs this binary as -role controller with flags, the
// kubeconfig in $KUBECONFIG, its output appended to logPath.
func startController(flags controllerFlags, kubeconfig, logPath string) (*controllerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("controller log: %w", err)
	}
	cmd := exec.Command(exe, flags.args()...) //nolint:gosec // this binary, the harness's own flags
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start controller: %w", err)
	}
	p := &controllerProc{
		cmd: cmd, flags: flags, logPath: logPath, done: make(chan struct{}),
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM (a pod's deletion, a rolling update) and waits for
// the exit, killing the process after 15 s.
func (p *controllerProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports an exit before stop, with the end of the log.
func (p *controllerProc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("controller exited: %w; log:\n%s", p.exitErr(), tail(p.logPath, 3000))
	default:
		return nil
	}
}

// exitErr is the exit's error, or one saying it exited cleanly.
func (p *controllerProc) exitErr() error {
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stats asks the controller for its figures (gc: after a collection).
func (p *controllerProc) stats(ctx context.Context, gc bool) (procStats, error) {
	u := "http://" + p.flags.StatsAddr + "/stats"
	if gc {
		u += "?gc=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return procStats{}, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return procStats{}, fmt.Errorf("controller stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return procStats{}, fmt.Errorf("controller stats: %s", resp.Status)
	}
	var st procStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return procStats{}, fmt.Errorf("controller stats: %w", err)
	}
	return st, nil
}

// profile starts ("start", writing path) or stops ("stop") the
// controller's CPU profile.
func (p *controllerProc) profile(ctx context.Context, action, path string) error {
	u := "http://" + p.flags.StatsAddr + "/profile/" + action + "?" + url.Values{"path": {path}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("controller profile %s: %w", action, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("controller profile %s: %s %s", action, resp.Status, b)
	}
	return nil
}

// waitServing waits until the stats endpoint answers and the push port
// completes a TLS handshake (the push runnable listens once the manager
// runs), and returns when the push port first did.
func (p *controllerProc) waitServing(ctx context.Context, cfg *tls.Config, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	d := tls.Dialer{Config: cfg}
	for {
		if err := p.exited(); err != nil {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("controller not serving %s within %s; log:\n%s", p.flags.PushAddr, timeout, tail(p.logPath, 3000))
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := d.DialContext(dctx, "tcp", p.flags.PushAddr)
		cancel()
		if err == nil {
			at := time.Now()
			conn.Close()
			// The stats endpoint is up before the push listener.
			if _, err := p.stats(ctx, false); err != nil {
				return time.Time{}, err
			}
			return at, nil
		}
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePort is a TCP port on 127.0.0.1 nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// childCPU is the CPU time (user + system) of this process's child
// running command comm (the kube-apiserver envtest started), from
// /proc/<pid>/stat; 0 and an error when there is none.
func childCPU(comm string) (time.Duration, error) {
	pid, err := childPID(comm)
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read stat of %s: %w", comm, err)
	}
	// The fields after the command, which is in parentheses.
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("stat of %s: too few fields", comm)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

func childPID(comm string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("read /proc: %w", err)
	}
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if strings.TrimSpace(string(name)) != comm {
			continue
		}
		if ppid, _ := statusField(filepath.Join("/proc", e.Name(), "status"), "PPid:"); ppid == self {
			return pid, nil
		}
	}
	return 0, errors.New("no child process " + comm)
}

func statusField(path, key string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", errors.New("no " + key)
}
