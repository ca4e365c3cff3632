// Command loadbench measures authgate-proxy as a real process on loopback
// against a bare httputil.ReverseProxy baseline with the same transport
// tuning: open-loop latency at a fixed rate, closed-loop throughput at
// saturation, CPU per request, RSS, start-to-ready time and binary size,
// each checked against docs/performance.md's targets. Peers (oauth2-proxy,
// a proxy calling an OPA server) run when their binaries are in ./bin.
//
//	go run ./hack/loadbench            # or hack/bench.sh [--peers]
//
// It is a harness: it reports, it never fails on a missed target unless
// -strict is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	Rate        int
	Duration    time.Duration
	SatDuration time.Duration
	Conns       int
	OpenConns   int
	Starts      int
	OutDir      string
	BinDir      string
	Peers       bool
	Wrk         string
	Profile     string
	// ProfileTargets are the authgate targets profiled.
	ProfileTargets []string
	Strict         bool
	// Paired runs the baseline's saturation again after each target's.
	Paired    bool
	Only      string
	QuietWait time.Duration
	Keep      bool
	Budget    time.Duration
}

func (o *options) validate() error {
	var errs []error
	if o.Rate <= 0 {
		errs = append(errs, errors.New("-rate must be positive"))
	}
	if o.Duration < time.Second || o.SatDuration < time.Second {
		errs = append(errs, errors.New("-duration and -sat-duration must be at least 1s"))
	}
	if o.Conns <= 0 || o.OpenConns <= 0 {
		errs = append(errs, errors.New("-conns and -open-conns must be positive"))
	}
	if o.Starts <= 0 {
		errs = append(errs, errors.New("-starts must be positive"))
	}
	switch o.Profile {
	case "auto", "always", "never":
	default:
		errs = append(errs, fmt.Errorf("-profile %q: want auto, always or never", o.Profile))
	}
	return errors.Join(errs...)
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.Rate, "rate", 1000, "open-loop request rate (req/s)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "open-loop run length")
	fs.DurationVar(&o.SatDuration, "sat-duration", 10*time.Second, "saturation run length")
	fs.IntVar(&o.Conns, "conns", 32, "connections in the saturation run")
	fs.IntVar(&o.OpenConns, "open-conns", 16, "connections available to the open-loop pacer")
	fs.IntVar(&o.Starts, "starts", 5, "proxy starts for the start-to-ready median")
	fs.StringVar(&o.OutDir, "out", "docs/bench", "where results.md and latency.svg are written")
	fs.StringVar(&o.BinDir, "bin", "bin", "where peer binaries (oauth2-proxy, opa) are looked for")
	fs.BoolVar(&o.Peers, "peers", true, "include peers whose binaries are in -bin")
	fs.StringVar(&o.Wrk, "wrk", "auto", `saturation generator: "auto" (wrk if installed), "off" (Go), or a path to wrk`)
	fs.StringVar(&o.Profile, "profile", "auto", "CPU-profile the proxy at saturation: auto (when a target is missed), always, never")
	profTargets := fs.String("profile-targets", "jwt-rego,jwt-fresh,jwt,public", "comma-separated authgate targets to CPU-profile")
	fs.BoolVar(&o.Paired, "paired", true, "saturate the baseline again right after each target and compare with that run")
	fs.BoolVar(&o.Strict, "strict", false, "exit non-zero when a target is missed")
	fs.DurationVar(&o.QuietWait, "quiet-wait", 30*time.Second, "total time to wait, before targets, for other processes' CPU use to drop")
	fs.DurationVar(&o.Budget, "budget", 4*time.Minute, "re-measure targets disturbed by other processes only while the target runs finish within this")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temp dir (binaries, configs, process logs) and print its path")
	fs.StringVar(&o.Only, "only", "", "comma-separated target names to run (baseline always runs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.ProfileTargets = strings.Split(*profTargets, ",")
	if err := o.validate(); err != nil {
		return err
	}
	switch o.Wrk {
	case "auto":
		o.Wrk, _ = exec.LookPath("wrk")
	case "off":
		o.Wrk = ""
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench(ctx, o, stdout)
	if err != nil {
		return err
	}
	if o.Strict && rep.failed() > 0 {
		return fmt.Errorf("%d target(s) missed", rep.failed())
	}
	return nil
}
