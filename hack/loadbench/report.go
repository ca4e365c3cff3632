package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// machine describes where the numbers were taken.
type machine struct {
	CPUs                           int
	Model, Kernel, GoVersion, Date string
}

func describeMachine(ctx context.Context) machine {
	m := machine{CPUs: runtime.NumCPU(), Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(b)) // the toolchain that built the proxy
	}
	return m
}

// check is one target from docs/performance.md and how the run did.
type check struct {
	What, Target, Measured, Status string
}

const (
	statusPass = "pass"
	statusFail = "FAIL"
	statusNA   = "n/a"
)

// report is the whole run.
type report struct {
	Opts       options
	Machine    machine
	Ms         []measurement
	Startup    []time.Duration
	BinarySize int64
	Checks     []check
	Profiles   []*profileResult
	Elapsed    time.Duration
}

func (r *report) find(name string) *measurement {
	for i := range r.Ms {
		if r.Ms[i].T.Name == name && r.Ms[i].Err == nil {
			return &r.Ms[i]
		}
	}
	return nil
}

func (r *report) failed() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == statusFail {
			n++
		}
	}
	return n
}

func status(ok bool) string {
	if ok {
		return statusPass
	}
	return statusFail
}

// evaluate checks every target of docs/performance.md that this harness
// measures.
func (r *report) evaluate() {
	base, rego := r.find("baseline"), r.find("jwt-rego")
	at := fmt.Sprintf("%d rps", r.Opts.Rate)
	if base != nil && rego != nil {
		d50 := us(rego.Open.Latency.P50 - base.Open.Latency.P50)
		d99 := us(rego.Open.Latency.P99 - base.Open.Latency.P99)
		r.Checks = append(r.Checks,
			check{"added p50 latency at " + at + ", cached JWT + Rego", "≤ 30 µs", fmt.Sprintf("%+.0f µs", d50), status(d50 <= 30)},
			check{"added p99 latency at " + at + ", cached JWT + Rego", "≤ 250 µs", fmt.Sprintf("%+.0f µs", d99), status(d99 <= 250)})
	}
	r.ratioCheck(base, rego, "throughput at saturation, cached JWT + Rego", "≥ 0.75 × baseline", 0.75)
	r.ratioCheck(base, r.find("jwt-fresh"), "throughput at saturation, fresh RS256 per request", "≥ 0.5 × baseline", 0.5)
	r.ratioCheck(base, r.find("public"), "throughput at saturation, public route", "≥ 0.85 × baseline", 0.85)
	r.ratioCheck(base, r.find("jwt"), "throughput at saturation, cached JWT", "≥ 0.85 × baseline", 0.85)
	r.ratioCheck(base, r.find("apikey"), "throughput at saturation, API key", "≥ 0.85 × baseline", 0.85)
	r.redisChecks(base, at)
	r.ratioCheck(r.find("jwt"), r.find("jwt-traced"), "throughput at saturation, cached JWT with tracing at 1 % vs without", "≥ 0.97 × cached JWT", 0.97)
	for _, peer := range []string{"oauth2-proxy", "opa-proxy"} {
		if p := r.find(peer); p != nil {
			r.ratioCheck(p, rego, "throughput vs "+peer+", cached JWT + Rego", "≥ 3.5 × "+peer, 3.5)
		} else {
			r.Checks = append(r.Checks, check{"throughput vs " + peer, "≥ 3.5 ×", "peer not run", statusNA})
		}
	}
	var idle int64
	for _, m := range r.Ms {
		if m.T.Kind == kindProxy && m.Err == nil {
			idle = max(idle, m.RSSIdle)
		}
	}
	if idle > 0 {
		r.Checks = append(r.Checks, check{"idle RSS of the proxy (largest of its configs)", "≤ 25 MiB",
			fmt.Sprintf("%.1f MiB", mib(idle)), status(idle <= 25<<20)})
	}
	if len(r.Startup) > 0 {
		med := median(append([]time.Duration(nil), r.Startup...))
		r.Checks = append(r.Checks, check{fmt.Sprintf("start to ready, inline JWKS + Rego, median of %d", len(r.Startup)), "≤ 20 ms",
			fmt.Sprintf("%.1f ms", float64(med)/float64(time.Millisecond)), status(med <= 20*time.Millisecond)})
	}
	if r.BinarySize > 0 {
		r.Checks = append(r.Checks, check{"proxy binary size (-trimpath)", "≤ 40 MB",
			fmt.Sprintf("%.1f MB (%.1f MiB)", float64(r.BinarySize)/1e6, mib(r.BinarySize)), status(r.BinarySize <= 40e6)})
	}
}

// redisChecks are issue 14's: a Redis-backed limit adds ≤ 150 µs p50 to
// the cached-JWT route and keeps ≥ 0.5 × the baseline's throughput.
func (r *report) redisChecks(base *measurement, at string) {
	jwt, red := r.find("jwt"), r.find("jwt-redis")
	if jwt != nil && red != nil {
		d50 := us(red.Open.Latency.P50 - jwt.Open.Latency.P50)
		r.Checks = append(r.Checks, check{"added p50 latency at " + at + ", Redis-backed limit (vs cached JWT)", "≤ 150 µs",
			fmt.Sprintf("%+.0f µs", d50), status(d50 <= 150)})
	}
	r.ratioCheck(base, red, "throughput at saturation, cached JWT + Redis-backed limit", "≥ 0.5 × baseline", 0.5)
}

func (r *report) ratioCheck(base, m *measurement, what, target string, want float64) {
	if base == nil || m == nil || base.Sat.RPS == 0 {
		r.Checks = append(r.Checks, check{what, target, "not measured", statusNA})
		return
	}
	ratio, cratio := r.rel(m)
	if base.T.Kind != kindBaseline { // a peer: compare both with the baseline
		br, bc := r.rel(base)
		ratio, cratio = ratio/br, cratio/bc
	}
	how := ""
	if m.Paired != nil {
		how = ", paired"
	}
	r.Checks = append(r.Checks, check{what, target,
		fmt.Sprintf("%.2f × (by CPU/req %.2f ×%s)", ratio, cratio, how), status(ratio >= want)})
}

// rel is m's throughput relative to the baseline, and the same estimated
// from CPU per request: against the baseline run paired with m when there
// is one, else against the single baseline run.
func (r *report) rel(m *measurement) (thr, cpu float64) {
	if m.T.Kind == kindBaseline {
		return 1, 1
	}
	if p := m.Paired; p != nil && p.RPS > 0 && m.totalCPU() > 0 {
		return m.Sat.RPS / p.RPS, float64(p.TotalCPU) / float64(m.totalCPU())
	}
	base := r.find("baseline")
	if base == nil || base.Sat.RPS == 0 {
		return 0, 0
	}
	return m.Sat.RPS / base.Sat.RPS, cpuRatio(base, m)
}

// write prints the report and saves results.md and latency.svg in dir.
func (r *report) write(out io.Writer, dir string) error {
	md := r.markdown()
	fmt.Fprintf(out, "\n%s", md)
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // documentation directory
		return fmt.Errorf("output dir: %w", err)
	}
	mdPath, svgPath := filepath.Join(dir, "results.md"), filepath.Join(dir, "latency.svg")
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil { //nolint:gosec // a public document
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(svgPath, []byte(r.svg()), 0o644); err != nil { //nolint:gosec // a public document
		return fmt.Errorf("write chart: %w", err)
	}
	fmt.Fprintf(out, "\nwrote %s and %s (%s)\n", mdPath, svgPath, r.Elapsed.Round(time.Second))
	return nil
}

func (r *report) markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# Load benchmark results\n\n")
	fmt.Fprintf(&b, "%s; %d vCPU (%s), Linux %s, %s; everything on loopback, sharing the CPUs.\n\n",
		m.Date, m.CPUs, m.Model, m.Kernel, m.GoVersion)
	gen := "wrk -t1"
	if r.Opts.Wrk == "" {
		gen = "the Go closed-loop generator"
	}
	fmt.Fprintf(&b, "Open loop: %d req/s for %s, scheduled on a fixed timeline, latency from the scheduled send "+
		"(no coordinated omission), Go generator over raw keep-alive connections. Saturation: %s, %d connections, %s. "+
		"CPU/req is the measured processes' user+system CPU over the saturation run divided by its requests; "+
		"\"× baseline by CPU\" is baseline total CPU/req (target + upstream + generator) over the target's, "+
		"the throughput ratio a quiet 2-CPU machine would show, and a cross-check when other work shares the machine. "+
		"With -paired (the default) the baseline is saturated again right after each target (\"paired baseline\"), "+
		"and the goal table compares each target with that run, so a machine whose speed drifts during the run "+
		"compares each target with the baseline of the same minute.\n\n",
		r.Opts.Rate, r.Opts.Duration, gen, r.Opts.Conns, r.Opts.SatDuration)
	r.latencyTable(&b)
	b.WriteString("\n![latency per target](latency.svg)\n\n")
	fmt.Fprintf(&b, "| target | goal | measured | |\n|---|---|---|---|\n")
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.What, c.Target, c.Measured, c.Status)
	}
	if len(r.Startup) > 0 {
		parts := make([]string, len(r.Startup))
		for i, d := range r.Startup {
			parts[i] = fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
		}
		fmt.Fprintf(&b, "\nStart to ready (ms, each start): %s.\n", strings.Join(parts, ", "))
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(&b, "\n## CPU profile: %s at saturation\n\n`%s` (profiling build of the proxy, hack/loadbench/profproxy).\n\n", p.Target, filepath.Base(p.Path))
		fmt.Fprintf(&b, "By cumulative CPU:\n\n```\n%s\n```\n\nBy own CPU:\n\n```\n%s\n```\n", p.TopCum, p.TopFlat)
	}
	return b.String()
}

func (r *report) latencyTable(b *strings.Builder) {
	base := r.find("baseline")
	worst := 0.0
	fmt.Fprintf(b, "| target | p50 µs | p90 µs | p99 µs | max µs | +p50 | +p99 | sat. req/s | × baseline | paired baseline req/s: × | CPU µs/req | upstream, generator CPU µs/req | × baseline by CPU | RSS idle → load MiB | foreign CPU %% |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range r.Ms {
		if m.Err != nil {
			fmt.Fprintf(b, "| %s | error: %s ||||||||||||||\n", m.T.Title, oneLine(m.Err.Error()))
			continue
		}
		l := m.Open.Latency
		d50, d99, ratio, cratio := "—", "—", "—", "—"
		if base != nil && m.T.Kind != kindBaseline {
			d50 = fmt.Sprintf("%+.0f", us(l.P50-base.Open.Latency.P50))
			d99 = fmt.Sprintf("%+.0f", us(l.P99-base.Open.Latency.P99))
		}
		if base != nil && base.Sat.RPS > 0 {
			ratio = fmt.Sprintf("%.2f", m.Sat.RPS/base.Sat.RPS)
			cratio = fmt.Sprintf("%.2f", cpuRatio(base, &m))
		}
		errs := ""
		if n := int64(m.Open.Errors) + m.Sat.Errors; n > 0 {
			errs = fmt.Sprintf(" (%d errors)", n)
		}
		paired := "—"
		if p := m.Paired; p != nil && p.RPS > 0 {
			paired = fmt.Sprintf("%.0f: %.2f", p.RPS, m.Sat.RPS/p.RPS)
		}
		fmt.Fprintf(b, "| %s%s | %.0f | %.0f | %.0f | %.0f | %s | %s | %.0f | %s | %s | %.0f | %.0f, %.0f | %s | %.1f → %.1f | %.0f / %.0f |\n",
			m.T.Title, errs, us(l.P50), us(l.P90), us(l.P99), us(l.Max), d50, d99, m.Sat.RPS, ratio, paired,
			us(int64(m.CPUPerReq)), us(int64(m.UpstreamCPUPerReq)), us(int64(m.GenCPUPerReq)), cratio,
			mib(m.RSSIdle), mib(m.RSSLoad), m.ForeignOpen, m.ForeignSat)
		worst = max(worst, m.ForeignOpen, m.ForeignSat)
	}
	if worst > 10 {
		fmt.Fprintf(b, "\n**Noisy run:** processes the harness did not start used up to %.0f%% of a CPU during a measurement "+
			"(\"foreign CPU\", open loop / saturation); compare rows with low foreign CPU, or re-run on a quiet machine.\n", worst)
	}
	if base != nil {
		pl := base.Open.PacerLate
		fmt.Fprintf(b, "\nGenerator noise (baseline run): the pacer sent p50 %.0f µs / p99 %.0f µs after the scheduled time.\n",
			us(pl.P50), us(pl.P99))
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
