// Command pushbench is the push channel's scale benchmark (issue 12): a
// real kube-apiserver and etcd (envtest) with the CRDs, the real
// controller (controllers.NewManager with the injector and the push
// channel) in a child process of its own, and N simulated sidecars
// (proxy/push Clients, one HTTP/2 connection each) in this process, all on
// loopback. It measures:
//
//  1. the time from an AuthPolicy update (the Update call) to each
//     sidecar's acknowledgement of the new generation, and to the
//     policy's status.coverage.enforcement reading "N/N at generation G";
//  2. the controller's CPU time, heap, RSS and goroutines per stream (the
//     controller alone: it is the child process, the sidecars are not);
//  3. a reconnect storm: the controller stopped (SIGTERM) and started
//     again on the same port, the time until every stream is back and has
//     acknowledged, and the TokenReviews that reached the API server.
//
// Run it from the repository:
//
//	go run ./hack/pushbench -streams 1000      # or make bench-push
//
// It is a harness: it reports (a table and `figure <name> <value> <unit>`
// lines, or JSON with -json) and fails only when a phase does not complete
// within -timeout. It is not part of make test. See docs/performance.md,
// "Push channel at scale", for the method and the figures measured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Roles of the binary: the harness, and the controller it runs as a
// child process.
const (
	roleBench      = "bench"
	roleController = "controller"
)

// options are the harness's flags.
type options struct {
	Role    string
	Streams int
	Updates int
	Gap     time.Duration
	Idle    time.Duration
	Timeout time.Duration
	Workers int
	JSON    bool
	Restart bool
	Cold    bool
	// CPUProfile is where the controller's CPU profile of the updates
	// phase is written ("": none).
	CPUProfile string
	Keep       bool
	Verbose    bool
	child      controllerFlags
	progress   io.Writer
}

func (o *options) validate() error {
	var errs []error
	if o.Role != roleBench && o.Role != roleController {
		errs = append(errs, fmt.Errorf("-role %q: want %s or %s", o.Role, roleBench, roleController))
	}
	if o.Streams < 1 || o.Streams > 5000 {
		errs = append(errs, errors.New("-streams must be between 1 and 5000"))
	}
	if o.Updates < 1 {
		errs = append(errs, errors.New("-updates must be at least 1"))
	}
	if o.Gap < 0 || o.Idle < 0 {
		errs = append(errs, errors.New("-gap and -idle must not be negative"))
	}
	if o.Timeout < time.Second {
		errs = append(errs, errors.New("-timeout must be at least 1s"))
	}
	if o.Workers < 1 {
		errs = append(errs, errors.New("-workers must be at least 1"))
	}
	return errors.Join(errs...)
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pushbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pushbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.Role, "role", roleBench, "internal: bench (the harness) or controller (the child process it starts)")
	fs.IntVar(&o.Streams, "streams", 1000, "simulated sidecars, each with its Pod, pod-bound token and HTTP/2 stream")
	fs.IntVar(&o.Updates, "updates", 10, "AuthPolicy updates measured, one after the other")
	fs.DurationVar(&o.Gap, "gap", time.Second, "pause after each update has been acknowledged by every sidecar")
	fs.DurationVar(&o.Idle, "idle", 30*time.Second, "window over which the controller's idle CPU with every stream open is measured (the sidecars PING every 15 s)")
	fs.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "bound of each phase (connect, one update, the storm)")
	fs.IntVar(&o.Workers, "workers", 16, "parallel API calls creating the Pods and tokens")
	fs.BoolVar(&o.JSON, "json", false, "print the results as JSON instead of the table and figure lines")
	fs.BoolVar(&o.Restart, "restart", true, "measure the reconnect storm after a controller restart")
	fs.BoolVar(&o.Cold, "cold", true, "measure one more update after the push server's TokenReview cache expired (waits about a minute)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write the controller's CPU profile of the updates phase to this file (go tool pprof)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temp dir (controller logs, kubeconfig, tokens) and print its path")
	fs.BoolVar(&o.Verbose, "v", false, "progress on stderr")
	o.child.bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Role == roleController {
		return runController(ctx, o.child, stderr)
	}
	o.progress = io.Discard
	if o.Verbose {
		o.progress = stderr
	}
	res, err := bench(ctx, o)
	if err != nil {
		return err
	}
	if o.JSON {
		return res.writeJSON(stdout)
	}
	res.writeTable(stdout)
	return nil
}
