// Package otlpsink gives tests a real OTLP receiver: the OpenTelemetry
// Collector's own otlpreceiver with a consumertest.TracesSink, run as a
// small loopback process (bin/otlpsink, built from hack/otlpsink by
// hack/otlpsink.sh, on demand here when missing). It runs out of process
// only because the collector's configuration packages and OPA need
// incompatible versions of one library; the spans a test reads are what
// the collector's receiver decoded from what the exporter really sent.
package otlpsink

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Span is one received span.
type Span struct {
	Name         string            `json:"name"`
	Kind         string            `json:"kind"` // Server, Client, Internal, ...
	TraceID      string            `json:"traceId"`
	SpanID       string            `json:"spanId"`
	ParentSpanID string            `json:"parentSpanId"`
	Attributes   map[string]string `json:"attributes"`
	Status       string            `json:"status"` // Unset, Ok, Error
	Resource     map[string]string `json:"resource"`
	// Strings is every string value the span carries (attributes, status
	// message, trace state, events, links, resource).
	Strings []string `json:"strings"`
}

// Sink is a running receiver.
type Sink struct {
	// GRPC and HTTP are the receiver's loopback endpoints (host:port).
	GRPC, HTTP string
	control    string
}

var build sync.Once

// Start runs the receiver until the test ends. Without the binary (and
// unable to build it) it skips t, or fails it under CI=true.
func Start(t testing.TB) *Sink {
	t.Helper()
	bin, err := binary()
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("otlpsink: %v", err)
		}
		t.Skipf("otlpsink: %v (run hack/otlpsink.sh ./bin)", err)
	}
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe() // closed at cleanup: the sink exits
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start otlpsink: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	var addr map[string]string
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &addr) != nil {
		t.Fatalf("otlpsink did not report its addresses: %v (%q)", err, line)
	}
	return &Sink{GRPC: addr["grpc"], HTTP: addr["http"], control: addr["control"]}
}

// Spans returns every span received so far.
func (s *Sink) Spans(t testing.TB) []Span {
	t.Helper()
	resp, err := http.Get("http://" + s.control + "/spans") //nolint:noctx // loopback test helper
	if err != nil {
		t.Fatalf("otlpsink spans: %v", err)
	}
	defer resp.Body.Close()
	var out []Span
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("otlpsink spans: %v", err)
	}
	return out
}

// Reset forgets the spans received so far.
func (s *Sink) Reset(t testing.TB) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+s.control+"/spans", nil) //nolint:noctx // loopback test helper
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("otlpsink reset: %v", err)
	}
	resp.Body.Close()
}

// Named returns the spans named name, or whose name starts with name and
// a space.
func Named(spans []Span, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Name == name || strings.HasPrefix(s.Name, name+" ") {
			out = append(out, s)
		}
	}
	return out
}

// binary returns bin/otlpsink, building it first when it is missing
// (OTLPSINK names another binary).
func binary() (string, error) {
	if b := os.Getenv("OTLPSINK"); b != "" {
		return b, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "otlpsink")
	var berr error
	build.Do(func() {
		cmd := exec.Command(filepath.Join(root, "hack", "otlpsink.sh"), filepath.Join(root, "bin"))
		if out, err := cmd.CombinedOutput(); err != nil {
			berr = fmt.Errorf("build %s: %w\n%s", bin, err, out)
		}
	})
	if _, err := os.Stat(bin); err != nil {
		return "", errors.Join(err, berr)
	}
	return bin, nil
}

// repoRoot is the directory of the main module's go.mod above the test's
// working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/authgate/authgate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no github.com/authgate/authgate go.mod above the working directory")
		}
		dir = parent
	}
}
