// Command authgate-proxy is the authgate sidecar: it authenticates and
// authorizes every request before forwarding it to the function on
// localhost. It reads a ProxyConfig file and reloads it on change.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/authgate/authgate/internal/assertionkey"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/admin"
	"github.com/authgate/authgate/proxy/app"
	"github.com/authgate/authgate/proxy/appprobe"
	"github.com/authgate/authgate/proxy/cabundle"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/labels"
	"github.com/authgate/authgate/proxy/sharedlimit"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authgate-proxy:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "capture" {
		return runCapture(args[1:], stderr)
	}
	fs := flag.NewFlagSet("authgate-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts      app.Options
		labelFlag string
		logLevel  string
		check     bool
		pushOpts  app.PushOptions
		pushCA    string
	)
	fs.StringVar(&opts.ConfigPath, "config", config.DefaultPath, "ProxyConfig file (YAML or JSON); reloaded on change")
	fs.StringVar(&opts.LabelsPath, "labels-file", "", "downward API file with this pod's labels (selects the policies that apply)")
	fs.StringVar(&labelFlag, "labels", "", "this workload's labels as k=v,k2=v2 (outside Kubernetes)")
	fs.StringVar(&opts.Listen, "listen", "", "override listen.address")
	fs.StringVar(&opts.AdminListen, "admin-listen", "", "override listen.adminAddress")
	fs.StringVar(&opts.Upstream, "upstream", "", "override upstream.url (the function on localhost, e.g. http://127.0.0.1:8080)")
	fs.BoolVar(&opts.UpstreamH2C, "upstream-h2c", false, "speak cleartext HTTP/2 (h2c) to the upstream (overrides upstream.h2c when set)")
	fs.DurationVar(&opts.UpstreamTimeout, "upstream-timeout", 0, "override upstream.timeout: how long the function may take to send its response headers "+
		"(a selecting AuthPolicy's limits.upstreamTimeout overrides this in turn)")
	fs.Func("trusted-proxies", "comma-separated peer IPs or CIDRs trusted to report the client in X-Forwarded-For, added to the config's "+
		"trustedProxies (a selecting AuthPolicy's clientIdentity.trustedProxies replaces both)", func(s string) error {
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				opts.TrustedProxies = append(opts.TrustedProxies, e)
			}
		}
		return nil
	})
	fs.Func("app-probe", "<name>=<http|https|tcp>://127.0.0.1:<port>[/path]: a function probe served on the admin port at "+
		appprobe.PathPrefix+"<name> (the injector moves the kubelet's probes of a captured port here; repeatable)", func(s string) error {
		p, err := appprobe.Parse(s)
		if err != nil {
			return err
		}
		for _, q := range opts.AppProbes {
			if q.Name == p.Name {
				return fmt.Errorf("app probe %q given twice", p.Name)
			}
		}
		opts.AppProbes = append(opts.AppProbes, p)
		return nil
	})
	bindRuntimeFlags(fs, &opts)
	fs.StringVar(&opts.AssertionKeysPath, "assertion-keys", "", "identity assertion key ring (the mounted Secret "+assertionkey.SecretName+
		", e.g. "+assertionkey.DefaultPath+"); re-read every --poll-interval; its public keys are served on the admin listener at "+admin.JWKSPath)
	bindPushFlags(fs, &pushOpts, &pushCA)
	redis := bindRedisFlags(fs)
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&check, "check", false, "run what a reload runs (validate the config, read the labels, build the selected policies: Rego compiled, verifiers built; no network I/O, no listener), then build every other policy too, and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := finish(&opts, labelFlag, logLevel, stderr); err != nil {
		return err
	}
	if err := connections(&opts, &pushOpts, pushCA, redis); err != nil {
		return err
	}
	a, err := app.New(opts)
	if err != nil {
		return err
	}
	if check {
		// The reload path itself, minus the swap: same build, same error.
		if err := a.Check(context.Background()); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "config is valid")
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// connections completes the push channel's and Redis's options.
func connections(opts *app.Options, push *app.PushOptions, pushCA string, redis *redisFlags) error {
	if push.URL != "" {
		push.CA = []byte(pushCA)
		opts.Push = push
	}
	shared, err := redis.options()
	opts.SharedLimits = shared
	return err
}

// redisFlags are the connection to the Redis of shared limits
// (docs/shared-limits.md).
type redisFlags struct {
	o          sharedlimit.Options
	tls        bool
	caFile     string
	serverName string
}

func bindRedisFlags(fs *flag.FlagSet) *redisFlags {
	r := &redisFlags{}
	fs.StringVar(&r.o.Address, "redis-address", "", "Redis for shared limits (policies with sharedLimits): host:port, or a socket path with --redis-network unix; empty: none, those limits act as their onUnavailable says")
	fs.StringVar(&r.o.Network, "redis-network", "tcp", "tcp or unix")
	fs.StringVar(&r.o.Username, "redis-username", "", "Redis ACL user (AUTH username); empty: the default user")
	fs.StringVar(&r.o.PasswordFile, "redis-password-file", "", "file holding the Redis AUTH password (a mounted Secret), re-read at every new connection")
	fs.IntVar(&r.o.DB, "redis-db", 0, "Redis database number")
	fs.BoolVar(&r.tls, "redis-tls", false, "connect to Redis with TLS (verified against --redis-ca-file, or the system roots)")
	fs.StringVar(&r.caFile, "redis-ca-file", "", "PEM CA bundle that signed Redis's certificate (implies --redis-tls)")
	fs.StringVar(&r.serverName, "redis-server-name", "", "name Redis's certificate is verified for (default: the --redis-address host)")
	fs.DurationVar(&r.o.Timeout, "redis-timeout", sharedlimit.DefaultTimeout, "longest wait for one Redis call (connection included); past it the limit falls back")
	fs.StringVar(&r.o.KeyPrefix, "redis-key-prefix", sharedlimit.DefaultKeyPrefix, "prefix of every key written (the injector sets authgate:<namespace>:)")
	fs.IntVar(&r.o.BreakerFailures, "redis-breaker-failures", sharedlimit.DefaultBreakerFailures, "consecutive Redis failures that open the circuit breaker")
	fs.DurationVar(&r.o.BreakerOpen, "redis-breaker-open", sharedlimit.DefaultBreakerOpen, "how long an open breaker makes no Redis call before one probe")
	return r
}

// options returns the shared-limit options, nil without --redis-address.
func (r *redisFlags) options() (*sharedlimit.Options, error) {
	if r.o.Address == "" {
		return nil, nil
	}
	o := r.o
	if r.tls || r.caFile != "" {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.serverName}
		if r.caFile != "" {
			pem, err := os.ReadFile(r.caFile)
			if err != nil {
				return nil, fmt.Errorf("--redis-ca-file: %w", err)
			}
			b, err := cabundle.Parse(string(pem))
			if err != nil {
				return nil, fmt.Errorf("--redis-ca-file %s: %w", r.caFile, err)
			}
			o.TLS.RootCAs = b.Pool
		}
		if o.TLS.ServerName == "" && o.Network != "unix" {
			host, _, err := net.SplitHostPort(o.Address)
			if err != nil {
				return nil, fmt.Errorf("--redis-address %q: %w", o.Address, err)
			}
			o.TLS.ServerName = host
		}
	}
	return &o, nil
}

// bindRuntimeFlags binds the shutdown, reload and tracing flags
// (docs/tracing.md).
func bindRuntimeFlags(fs *flag.FlagSet, opts *app.Options) {
	fs.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", 25*time.Second, "how long to drain in-flight requests on SIGTERM")
	fs.DurationVar(&opts.DrainDelay, "drain-delay", 0, "how long to keep serving after SIGTERM, not ready, before draining (endpoint removal lags the signal)")
	fs.DurationVar(&opts.PollInterval, "poll-interval", 5*time.Second, "config re-read interval (file events trigger faster reloads)")
	opts.Tracing.BindFlags(fs)
}

// bindPushFlags binds the push channel's flags (docs/push-channel.md).
func bindPushFlags(fs *flag.FlagSet, o *app.PushOptions, ca *string) {
	fs.StringVar(&o.URL, "push-url", "", "the controller's push channel (https URL of its push Service): the namespace's bundle streamed as it changes, "+
		"loaded exactly as a file reload; the --config file stays the fallback. Needs --push-ca and --push-token-file")
	fs.StringVar(ca, "push-ca", "", "PEM CA bundle of the push server's certificate (the injector passes it from the environment)")
	fs.StringVar(&o.ServerName, "push-server-name", "", "name the push server's certificate is verified for (default: the --push-url host)")
	fs.StringVar(&o.TokenFile, "push-token-file", "", "projected ServiceAccount token of audience "+pushapi.Audience+", re-read at every connect")
}

// finish sets opts' labels and logger from their flags.
func finish(opts *app.Options, labelFlag, logLevel string, stderr io.Writer) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	lbls, err := labels.ParseFlag(labelFlag)
	if err != nil {
		return fmt.Errorf("--labels: %w", err)
	}
	opts.Labels = lbls
	opts.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	return nil
}
