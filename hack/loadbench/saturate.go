package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// satResult is one closed-loop run at saturation.
type satResult struct {
	RPS    float64
	Total  int64
	Errors int64
	Tool   string // "wrk" or "go"
	// GenCPU is wrk's own CPU time (the Go generator is the harness's).
	GenCPU time.Duration
}

// saturate runs a closed loop over conns keep-alive connections for d,
// with wrk when wrkPath is set, else with the Go generator.
func saturate(ctx context.Context, wrkPath string, req request, path string, headers [][2]string, conns int, d time.Duration) (satResult, error) {
	if wrkPath != "" {
		return saturateWrk(ctx, wrkPath, req.addr, path, headers, conns, d)
	}
	return saturateGo(req, conns, d)
}

// saturateGo is the closed loop in Go: one goroutine per connection, each
// sending its next request as soon as the previous response is read.
func saturateGo(req request, conns int, d time.Duration) (satResult, error) {
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			c, err := dial(req.addr)
			if err != nil {
				once.Do(func() { firstErr = err })
				return
			}
			defer c.close()
			for time.Now().Before(deadline) {
				status, err := c.roundTrip(req)
				switch {
				case err != nil:
					bad.Add(1)
					once.Do(func() { firstErr = err })
					return
				case status != 200:
					bad.Add(1)
				default:
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	res := satResult{RPS: float64(ok.Load()) / el.Seconds(), Total: ok.Load(), Errors: bad.Load(), Tool: "go"}
	if ok.Load() == 0 && firstErr != nil {
		return res, firstErr
	}
	return res, nil
}

// saturateWrk runs wrk with one thread, which costs far less CPU per
// request than any Go client.
func saturateWrk(ctx context.Context, wrkPath, addr, path string, headers [][2]string, conns int, d time.Duration) (satResult, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s"}
	for _, h := range headers {
		args = append(args, "-H", h[0]+": "+h[1])
	}
	args = append(args, "http://"+addr+path)
	cmd := exec.CommandContext(ctx, wrkPath, args...) //nolint:gosec // wrk path found by LookPath, args built here
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return satResult{}, fmt.Errorf("wrk: %w: %s", err, out.String())
	}
	res := satResult{Tool: "wrk", GenCPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			res.RPS, _ = strconv.ParseFloat(f[1], 64)
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			res.Total, _ = strconv.ParseInt(f[0], 10, 64)
		case len(f) == 5 && f[0] == "Non-2xx":
			n, _ := strconv.ParseInt(f[4], 10, 64)
			res.Errors += n
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			res.Errors += socketErrors(f[2:])
		}
	}
	if res.RPS == 0 {
		return res, fmt.Errorf("wrk: no throughput in output: %s", out.String())
	}
	return res, nil
}

// socketErrors sums "connect 0, read 0, write 0, timeout 0".
func socketErrors(f []string) int64 {
	var n int64
	for i := 1; i < len(f); i += 2 {
		v, _ := strconv.ParseInt(strings.TrimSuffix(f[i], ","), 10, 64)
		n += v
	}
	return n
}
