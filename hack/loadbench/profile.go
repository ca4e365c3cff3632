package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileResult is a CPU profile of the proxy under saturation load.
type profileResult struct {
	Target  string // the target profiled
	Path    string // the .prof file (gitignored) in the output directory
	TopCum  string // pprof -top -cum
	TopFlat string // pprof -top
}

// profile runs the profiling variant of the proxy (cmd/authgate-proxy's
// wiring plus runtime/pprof, built from hack/loadbench/profproxy) with t's
// configuration under the saturation load, and summarises where the CPU
// went.
func profile(ctx context.Context, e *env, o options, t *target, out io.Writer) (*profileResult, error) {
	fmt.Fprintf(out, "\nprofiling authgate-proxy (%s) at saturation for %s ...\n", t.Name, o.SatDuration)
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil { //nolint:gosec // documentation directory
		return nil, fmt.Errorf("output dir: %w", err)
	}
	prof, err := filepath.Abs(filepath.Join(o.OutDir, t.Name+".cpu.prof"))
	if err != nil {
		return nil, fmt.Errorf("profile path: %w", err)
	}
	addr, procs, err := e.startProxy(ctx, e.bins.ProfProxy, "profproxy-"+t.Name, t.Config, []string{"--cpuprofile", prof})
	if err != nil {
		return nil, err
	}
	req := newRequest(addr, t.Path, t.Headers)
	if err := preflight(req); err != nil {
		procs[0].stop()
		return nil, err
	}
	_, err = saturate(ctx, o.Wrk, req, t.Path, t.Headers, o.Conns, o.SatDuration)
	procs[0].stop() // SIGTERM writes the profile
	if err != nil {
		return nil, err
	}
	res := &profileResult{Target: t.Name, Path: prof}
	if res.TopCum, err = pprofTop(ctx, e.bins.ProfProxy, prof, "-cum", 30); err != nil {
		return res, err
	}
	res.TopFlat, err = pprofTop(ctx, e.bins.ProfProxy, prof, "-flat", 20)
	return res, err
}

// pprofTop runs go tool pprof -top and keeps the header and n rows.
func pprofTop(ctx context.Context, bin, prof, order string, n int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", order, "-nodecount="+fmt.Sprint(n), bin, prof) //nolint:gosec // fixed tool, harness paths
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	var keep []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Type:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n"), nil
}
