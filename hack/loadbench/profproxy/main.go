// Command profproxy is authgate-proxy with a CPU profile, for the load
// harness only: it runs proxy/app exactly as cmd/authgate-proxy does and
// writes the profile when it is stopped. The production binary has no
// profiling endpoint and gets none.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/authgate/authgate/proxy/app"
	"github.com/authgate/authgate/proxy/labels"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "profproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	var opts app.Options
	var labelFlag, profile string
	flag.StringVar(&opts.ConfigPath, "config", "", "ProxyConfig file")
	flag.StringVar(&labelFlag, "labels", "", "workload labels k=v,k2=v2")
	flag.StringVar(&opts.Listen, "listen", "", "override listen.address")
	flag.StringVar(&opts.AdminListen, "admin-listen", "", "override listen.adminAddress")
	flag.StringVar(&profile, "cpuprofile", "cpu.prof", "CPU profile written on SIGTERM")
	flag.Parse()
	lbls, err := labels.ParseFlag(labelFlag)
	if err != nil {
		return fmt.Errorf("--labels: %w", err)
	}
	opts.Labels = lbls
	opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	a, err := app.New(opts)
	if err != nil {
		return err
	}
	f, err := os.Create(profile)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("start profile: %w", err)
	}
	defer pprof.StopCPUProfile()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
