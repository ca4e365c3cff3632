package watchdog_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/test/wait"
)

// inFlight scrapes http_requests_in_flight from the metrics server.
func (h *harness) inFlight(t *testing.T) string {
	t.Helper()
	_, body := get(t, "http://"+h.w.MetricsAddr().String()+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "http_requests_in_flight "); ok {
			return v
		}
	}
	return ""
}

func TestSIGTERMDrains(t *testing.T) {
	t.Parallel()
	const interval = time.Second
	h := start(t, []string{"healthcheck_interval=1s", "write_timeout=20s", "exec_timeout=20s"}, nil, "-term=ignore")
	h.upstreamUp(t)

	slow := make(chan string, 1)
	go func() {
		res, err := http.Get(h.base + "/sleep?d=3s")
		if err != nil {
			slow <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		slow <- strconv.Itoa(res.StatusCode) + " " + string(b)
	}()
	wait.For(t, 0, func() bool { return h.inFlight(t) == "1" }, "the slow request to be in flight")

	signalled := time.Now()
	h.sig <- syscall.SIGTERM
	wait.For(t, 0, func() bool { return strings.Contains(h.stdout.String(), "upstream got SIGTERM") }, "SIGTERM to reach the function")
	wait.For(t, 0, func() bool {
		res, _ := get(t, h.base+"/_/health")
		return res.StatusCode == http.StatusServiceUnavailable
	}, "/_/health to say 503")
	if _, err := os.Stat(h.cfg.LockPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after SIGTERM: got %v, want it removed", err)
	}
	// Still serving during healthcheck_interval (this request is sent well
	// within it: the slow one holds the drain for 3 s anyway).
	if res, _ := get(t, h.base+"/status/200"); res.StatusCode != 200 {
		t.Errorf("during the interval: got %d, want 200", res.StatusCode)
	}
	if err := h.w.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if took := time.Since(signalled); took < interval {
		t.Errorf("stopped %s after SIGTERM, want at least healthcheck_interval (%s)", took, interval)
	}
	if got := <-slow; got != "200 slept" {
		t.Errorf("request in flight: got %q, want it completed", got)
	}
	for _, line := range []string{"SIGTERM: no new connections in 1s", "No new connections allowed, draining: 1 requests",
		"Exiting. Active connections: 0"} {
		if !strings.Contains(h.log.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, h.log)
		}
	}
	if _, err := http.Get(h.base + "/_/health"); err == nil {
		t.Error("after the drain: got an answer, want the port closed")
	}
}

func TestFunctionKilledBySIGTERMStopsTheWatchdogAtOnce(t *testing.T) {
	t.Parallel()
	h := start(t, []string{"healthcheck_interval=1h"}, nil) // -term=default: SIGTERM kills the function
	h.upstreamUp(t)
	h.sig <- syscall.SIGTERM
	done := make(chan error, 1)
	go func() { done <- h.w.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "signal: terminated") {
			t.Errorf("Wait: got %v, want the function's death (exit 1 in the original)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watchdog still runs 30 s after its function died (the original exits at once)")
	}
}

func TestFunctionExitingZeroLeavesTheDrainRunning(t *testing.T) {
	t.Parallel()
	h := start(t, []string{"healthcheck_interval=300ms"}, nil, "-term=exit0")
	h.upstreamUp(t)
	h.sig <- syscall.SIGTERM
	wait.For(t, 0, func() bool { return strings.Contains(h.stdout.String(), "upstream got SIGTERM") }, "SIGTERM to reach the function")
	if err := h.w.Wait(); err != nil {
		t.Errorf("Wait: got %v, want nil (a function exiting 0 does not end the watchdog)", err)
	}
}

// TestCommandSIGTERM runs the command in a process of its own and sends it
// a real SIGTERM; -run-healthcheck reads the same lock file.
func TestCommandSIGTERM(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr, up, metrics := freeAddr(t), freeAddr(t), freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	_, metricsPort, _ := strings.Cut(metrics, ":")
	env := append(os.Environ(), "TMPDIR="+t.TempDir(), "mode=http", "port="+port, "healthcheck_interval=200ms",
		"fprocess="+self+" repro-upstream "+up+" -term=exit0", "upstream_url=http://"+up)
	args := []string{"repro-watchdog", "-listen-host=127.0.0.1", "-metrics-port=" + metricsPort}
	healthcheck := func() int {
		c := exec.Command(self, "repro-watchdog", "-run-healthcheck")
		c.Env = env
		if err := c.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			t.Fatal(err)
		}
		return 0
	}
	var stderr bytes.Buffer
	cmd := exec.Command(self, args...)
	cmd.Env, cmd.Stderr = env, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	wait.For(t, 0, func() bool {
		res, err := http.Get("http://" + addr + "/_/health")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, "the command's /_/health")
	if code := healthcheck(); code != 0 {
		t.Errorf("-run-healthcheck while running: got exit %d, want 0", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: got %v, want exit 0; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "SIGTERM: no new connections in 200ms") {
		t.Errorf("stderr lacks the drain:\n%s", stderr.String())
	}
	if code := healthcheck(); code != 1 {
		t.Errorf("-run-healthcheck after the drain: got exit %d, want 1", code)
	}
}
