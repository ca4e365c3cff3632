package watchdog

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
)

// Main is the command (test/cluster/openfaas/cmd/watchdog): the original's
// flags -version and -run-healthcheck, configuration from env, and its exit
// codes: 0 after a drain, and 0 too when the port cannot be listened on or
// the lock file cannot be written (the original's Start returns nil then); 1
// for a bad configuration or a function that died with an error.
//
// Two flags are this reproduction's own: -listen-host (the original listens
// on every interface) and -metrics-port (fixed at 8081 in the original).
func Main(ctx context.Context, args, env []string, stdout, stderr io.Writer, sig <-chan os.Signal) int {
	fs := flag.NewFlagSet("watchdog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Bool("version", false, "Print the version and exit")
	healthcheck := fs.Bool("run-healthcheck", false,
		"Check for the a lock-file, when using an exec healthcheck. Exit 0 for present, non-zero when not found.")
	host := fs.String("listen-host", "", "reproduction only: the address to listen on (default: every interface, as of-watchdog)")
	metricsPort := fs.Int("metrics-port", 8081, "reproduction only: the metrics port (of-watchdog: always 8081)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := log.New(stderr, "", log.LstdFlags)
	logger.Printf("Version: %v\tSHA: %v\n", "reproduction", Commit)
	if *version {
		return 0
	}
	cfg, err := FromEnv(env)
	if err != nil {
		fmt.Fprintf(stderr, "Error loading config: %s", err.Error())
		return 1
	}
	cfg.ListenHost, cfg.MetricsPort = *host, *metricsPort
	w := New(cfg, Options{Log: logger, Stdout: stdout, Stderr: stderr, Signals: sig})
	if *healthcheck {
		if w.LockFilePresent() {
			return 0
		}
		fmt.Fprintf(stderr, "unable to find lock file.\n")
		return 1
	}
	if err := w.Start(ctx); err != nil {
		if errors.Is(err, errExitZero) {
			return 0
		}
		logger.Printf("Error: %s\n", err.Error())
		return 1
	}
	if err := w.Wait(); err != nil {
		return 1
	}
	return 0
}
