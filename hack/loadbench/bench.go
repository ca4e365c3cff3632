package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// measurement is everything measured for one target.
type measurement struct {
	T    *target
	Open openLoopResult
	Sat  satResult
	// CPUPerReq is the CPU time of the target's processes per request at
	// saturation; UpstreamCPUPerReq the upstream's, GenCPUPerReq the load
	// generator's (wrk, or the harness itself).
	CPUPerReq, UpstreamCPUPerReq, GenCPUPerReq time.Duration
	RSSIdle, RSSLoad                           int64
	// ForeignOpen and ForeignSat are the CPU (% of one CPU) that processes
	// the harness did not start used during each run: interference.
	ForeignOpen, ForeignSat float64
	// Paired is the baseline's saturation run right after this target's
	// (-paired), so a machine whose speed drifts during the run compares
	// each target with the baseline of the same minute; nil when not run.
	Paired *pairedBase
	Err    error
}

// pairedBase is one saturation run of the baseline next to a target's.
type pairedBase struct {
	RPS      float64
	TotalCPU time.Duration // baseline + upstream + generator CPU per request
}

// selectTargets is the baseline, the proxy's configurations, the peers
// with -peers, narrowed by -only.
func (e *env) selectTargets(o options, out io.Writer) []*target {
	targets := e.coreTargets()
	if o.Peers {
		targets = append(targets, e.peerTargets(o.BinDir, out)...)
	}
	if o.Only != "" {
		keep := strings.Split(o.Only, ",")
		targets = slices.DeleteFunc(targets, func(t *target) bool {
			return t.Kind != kindBaseline && !slices.Contains(keep, t.Name)
		})
	}
	return targets
}

// profiles takes a CPU profile of each of -profile-targets.
func profiles(ctx context.Context, e *env, o options, targets []*target, out io.Writer) []*profileResult {
	var ps []*profileResult
	for _, t := range targets {
		if t.Config == nil || !slices.Contains(o.ProfileTargets, t.Name) {
			continue
		}
		p, err := profile(ctx, e, o, t, out)
		if err != nil {
			fmt.Fprintf(out, "profile %s: %v\n", t.Name, err)
			continue
		}
		ps = append(ps, p)
	}
	return ps
}

// bench runs the whole harness and writes the report.
func bench(ctx context.Context, o options, out io.Writer) (*report, error) {
	start := time.Now()
	e, err := setup(ctx, out)
	if err != nil {
		return nil, err
	}
	e.keep = o.Keep
	defer e.close()
	targets := e.selectTargets(o, out)
	gen := "saturation: wrk -t1 (" + o.Wrk + ")"
	if o.Wrk == "" {
		gen = "saturation: Go closed loop"
	}
	fmt.Fprintf(out, "open loop: %d req/s for %s over up to %d connections; %s, %d connections for %s\n\n",
		o.Rate, o.Duration, o.OpenConns, gen, o.Conns, o.SatDuration)

	rep := &report{Opts: o, Machine: describeMachine(ctx)}
	quiet := o.QuietWait
	var paired *pairedRunner
	if o.Paired && len(targets) > 1 && targets[0].Kind == kindBaseline {
		if paired, err = startPaired(ctx, e, o, targets[0]); err != nil {
			fmt.Fprintf(out, "paired baseline: %v (ratios use the one baseline run)\n", err)
		} else {
			defer paired.stop()
		}
	}
	for i, t := range targets {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t0 := time.Now()
		m := measure(ctx, e, o, t, &quiet)
		printProgress(out, m)
		// Measure a noisy target again if the run still fits in its budget.
		perTarget := time.Since(start) / time.Duration(i+1)
		if m.Err == nil && m.foreign() > quietThreshold &&
			time.Since(start)+time.Since(t0)+perTarget*time.Duration(len(targets)-i-1) < o.Budget {
			fmt.Fprintf(out, "%-13s other processes took %.0f%% of a CPU: measuring again\n", t.Name, m.foreign())
			if m2 := measure(ctx, e, o, t, &quiet); m2.Err == nil && m2.foreign() < m.foreign() {
				m = m2
				printProgress(out, m)
			}
		}
		if paired != nil && m.Err == nil && t.Kind != kindBaseline {
			if m.Paired, err = paired.run(ctx); err != nil {
				fmt.Fprintf(out, "%-13s paired baseline: %v\n", t.Name, err)
			} else {
				fmt.Fprintf(out, "%-13s paired baseline %6.0f req/s: %.2f ×\n", t.Name, m.Paired.RPS, m.Sat.RPS/m.Paired.RPS)
			}
		}
		rep.Ms = append(rep.Ms, m)
	}
	rep.Startup, err = measureStartup(ctx, e, o.Starts)
	if err != nil {
		fmt.Fprintf(out, "start-to-ready: %v\n", err)
	}
	if st, err := os.Stat(e.bins.Proxy); err == nil {
		rep.BinarySize = st.Size()
	}
	rep.evaluate()
	if o.Profile == "always" || (o.Profile == "auto" && rep.failed() > 0) {
		rep.Profiles = profiles(ctx, e, o, targets, out)
	}
	rep.Elapsed = time.Since(start)
	if err := rep.write(out, o.OutDir); err != nil {
		return rep, err
	}
	return rep, nil
}

// measure starts t, measures it and stops it. Errors are recorded in the
// measurement so one broken target does not lose the others.
func measure(ctx context.Context, e *env, o options, t *target, quiet *time.Duration) (m measurement) {
	m.T = t
	addr, procs, err := t.start(ctx)
	if err != nil {
		m.Err = err
		return m
	}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	main := procs[0]
	ours := func() time.Duration { return cpuOf(procs) + cpuOf([]*proc{e.upstream}) + selfCPU() }
	waitQuiet(ctx, ours, quiet) // at least the 1 s idle before the idle RSS
	m.RSSIdle, _ = rssBytes(main.pid())

	req := newRequest(addr, t.Path, t.Headers)
	if err := preflight(req); err != nil {
		m.Err = fmt.Errorf("%w: %s", err, main.logTail())
		return m
	}
	if _, err := saturateGo(req, 4, time.Second); err != nil { // warm-up: pools, caches, heap
		m.Err = fmt.Errorf("warm-up: %w", err)
		return m
	}
	fm := startForeign(ours)
	m.Open, err = runOpenLoop(req, o.Rate, o.Duration, o.OpenConns)
	m.ForeignOpen = fm.Stop(0)
	if err != nil {
		m.Err = fmt.Errorf("open loop: %w", err)
		return m
	}
	cpu0, up0, self0 := cpuOf(procs), cpuOf([]*proc{e.upstream}), selfCPU()
	rss := sampleRSS(main.pid(), 100*time.Millisecond)
	fm = startForeign(ours)
	m.Sat, err = saturate(ctx, o.Wrk, req, t.Path, t.Headers, o.Conns, o.SatDuration)
	m.ForeignSat = fm.Stop(m.Sat.GenCPU)
	m.RSSLoad = rss.Stop()
	if err != nil {
		m.Err = fmt.Errorf("saturation: %w", err)
		return m
	}
	if m.Sat.Total > 0 {
		m.CPUPerReq = (cpuOf(procs) - cpu0) / time.Duration(m.Sat.Total)
		m.UpstreamCPUPerReq = (cpuOf([]*proc{e.upstream}) - up0) / time.Duration(m.Sat.Total)
		m.GenCPUPerReq = (m.Sat.GenCPU + selfCPU() - self0) / time.Duration(m.Sat.Total)
	}
	return m
}

// quietThreshold is the foreign CPU (% of one CPU) above which the harness
// waits before measuring.
const quietThreshold = 20

// waitQuiet idles for a second, then keeps waiting in one-second steps
// while other processes use more than quietThreshold of a CPU, spending at
// most *budget over the whole run.
func waitQuiet(ctx context.Context, ours func() time.Duration, budget *time.Duration) {
	for first := true; ; first = false {
		fm := startForeign(ours)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if !first {
			*budget -= time.Second
		}
		if fm.Stop(0) < quietThreshold || *budget <= 0 {
			return
		}
	}
}

// preflight sends one request and wants a 200, so a misconfigured target
// fails loudly instead of being measured answering 401s.
func preflight(req request) error {
	c, err := dial(req.addr)
	if err != nil {
		return err
	}
	defer c.close()
	status, err := c.roundTrip(req)
	if err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	if status != 200 {
		return fmt.Errorf("preflight: got status %d, want 200", status)
	}
	return nil
}

func selfCPU() time.Duration {
	d, _ := cpuTime(os.Getpid())
	return d
}

func cpuOf(ps []*proc) time.Duration {
	var sum time.Duration
	for _, p := range ps {
		if d, err := cpuTime(p.pid()); err == nil {
			sum += d
		}
	}
	return sum
}

// measureStartup execs the proxy with the jwt-rego config (inline JWKS, a
// Rego module to compile, no network) n times and takes the time from exec
// to the first 200 from /readyz, polled every millisecond.
func measureStartup(ctx context.Context, e *env, n int) ([]time.Duration, error) {
	cfg := e.proxyConfig()
	addRego(cfg)
	path, err := e.writeConfig("startup", cfg)
	if err != nil {
		return nil, err
	}
	var ds []time.Duration
	var errs []error
	for i := range n {
		addr, err1 := freeAddr()
		admin, err2 := freeAddr()
		if err := errors.Join(err1, err2); err != nil {
			return ds, err
		}
		args := []string{"--config", path, "--labels", proxyLabels, "--listen", addr, "--admin-listen", admin}
		t0 := time.Now()
		p, err := startProc("startup", e.bins.Proxy, args, nil, filepath.Join(e.dir, fmt.Sprintf("startup-%d.log", i)))
		if err != nil {
			return ds, err
		}
		ready, err := waitReady(ctx, p, "http://"+admin+"/readyz", time.Millisecond, 10*time.Second)
		p.stop()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ds = append(ds, ready.Sub(t0))
	}
	return ds, errors.Join(errs...)
}

func printProgress(out io.Writer, m measurement) {
	if m.Err != nil {
		fmt.Fprintf(out, "%-13s ERROR %v\n", m.T.Name, m.Err)
		return
	}
	l := m.Open.Latency
	fmt.Fprintf(out, "%-13s p50 %5.0f µs p90 %6.0f p99 %6.0f max %7.0f (%d ok, %d err) | %6.0f req/s (%s) %4.0f µs CPU/req | RSS %.1f → %.1f MiB | foreign CPU %.0f%%/%.0f%%\n",
		m.T.Name, us(l.P50), us(l.P90), us(l.P99), us(l.Max), l.N, m.Open.Errors,
		m.Sat.RPS, m.Sat.Tool, us(int64(m.CPUPerReq)), mib(m.RSSIdle), mib(m.RSSLoad), m.ForeignOpen, m.ForeignSat)
}

// foreign is the larger foreign CPU share of the two runs.
func (m *measurement) foreign() float64 { return max(m.ForeignOpen, m.ForeignSat) }

// totalCPU is all the CPU one request costs at saturation: target,
// upstream and generator.
func (m *measurement) totalCPU() time.Duration {
	return m.CPUPerReq + m.UpstreamCPUPerReq + m.GenCPUPerReq
}

// cpuRatio estimates the throughput ratio from CPU per request: with every
// CPU busy, throughput is inversely proportional to the total CPU a request
// costs. Unlike req/s it barely moves when other processes take CPU away.
func cpuRatio(base, m *measurement) float64 {
	if m.totalCPU() == 0 {
		return 0
	}
	return float64(base.totalCPU()) / float64(m.totalCPU())
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// pairedRunner keeps a baseline process for the saturation runs paired
// with each target's.
type pairedRunner struct {
	e     *env
	o     options
	t     *target
	req   request
	procs []*proc
}

func startPaired(ctx context.Context, e *env, o options, base *target) (*pairedRunner, error) {
	addr, procs, err := base.start(ctx)
	if err != nil {
		return nil, err
	}
	p := &pairedRunner{e: e, o: o, t: base, req: newRequest(addr, base.Path, base.Headers), procs: procs}
	if err := preflight(p.req); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// run saturates the baseline as measure does a target and returns its
// throughput and total CPU per request.
func (p *pairedRunner) run(ctx context.Context) (*pairedBase, error) {
	cpu0, up0, self0 := cpuOf(p.procs), cpuOf([]*proc{p.e.upstream}), selfCPU()
	sat, err := saturate(ctx, p.o.Wrk, p.req, p.t.Path, p.t.Headers, p.o.Conns, p.o.SatDuration)
	if err != nil {
		return nil, err
	}
	if sat.Total == 0 {
		return nil, errors.New("no requests completed")
	}
	n := time.Duration(sat.Total)
	total := (cpuOf(p.procs)-cpu0)/n + (cpuOf([]*proc{p.e.upstream})-up0)/n + (sat.GenCPU+selfCPU()-self0)/n
	return &pairedBase{RPS: sat.RPS, TotalCPU: total}, nil
}

func (p *pairedRunner) stop() {
	for _, pr := range p.procs {
		pr.stop()
	}
}
