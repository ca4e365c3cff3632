// Package app wires authgate-proxy together: configuration loader, the
// proxied listener and the admin listener, with graceful shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/proxy/admin"
	"github.com/authgate/authgate/proxy/appprobe"
	"github.com/authgate/authgate/proxy/assertion"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/push"
	"github.com/authgate/authgate/proxy/reload"
	"github.com/authgate/authgate/proxy/sharedlimit"
	"github.com/authgate/authgate/proxy/upstream"
	"github.com/authgate/authgate/proxy/urlrule"
)

// Options configure the proxy process.
type Options struct {
	// ConfigPath is the ProxyConfig file (required).
	ConfigPath string
	// LabelsPath is the downward API labels file of this pod (optional).
	LabelsPath string
	// Labels are fixed workload labels (optional).
	Labels map[string]string
	// Listen and AdminListen override the config's addresses.
	Listen, AdminListen string
	// Upstream overrides the config's upstream.url: a namespace bundle is
	// shared by pods whose functions listen on different ports.
	Upstream string
	// UpstreamH2C forces cleartext HTTP/2 to the upstream (config
	// upstream.h2c): the injector sets it for Knative h2c revisions, since
	// the namespace bundle cannot know each function's protocol.
	UpstreamH2C bool
	// UpstreamTimeout, when positive, replaces upstream.timeout (how long
	// the function may take to send its response headers): the injector
	// passes the platform's request timeout. A selecting policy's
	// limits.upstreamTimeout replaces it in turn.
	UpstreamTimeout time.Duration
	// TrustedProxies are added to the config's trustedProxies (the union of
	// both applies): the injector passes the platform's hops. A selecting
	// policy's clientIdentity.trustedProxies replaces the union.
	TrustedProxies []string
	// ShutdownTimeout bounds draining in-flight requests on shutdown.
	ShutdownTimeout time.Duration
	// DrainDelay is how long the proxy keeps accepting and serving after
	// the shutdown signal, already not ready, before it closes its
	// listener and drains: the platform removes a terminating pod from
	// its endpoints asynchronously, so requests keep arriving for a few
	// seconds. Keep-alive connections are closed after their next response
	// meanwhile, so clients reconnect to a pod that stays. 0: none.
	DrainDelay time.Duration
	// PollInterval re-reads the config as a fallback to file events.
	PollInterval time.Duration
	// AppProbes are the function's kubelet probes that the injector moved
	// to the admin port (package appprobe): inbound capture sends every
	// outside connection to the function's port to the proxy.
	AppProbes []appprobe.Probe
	// AssertionKeysPath is the identity assertion key ring (the mounted
	// Secret authgate-assertion-key); empty: policies with
	// identityAssertion are refused (503) for want of a key. It is
	// re-read every PollInterval; its public keys are served on the admin
	// listener at admin.JWKSPath.
	AssertionKeysPath string
	// Push, when set, connects to the controller's push channel.
	Push *PushOptions
	// SharedLimits, when set, is the Redis that policies with sharedLimits
	// keep their buckets in (metrics and logger are the app's).
	SharedLimits *sharedlimit.Options
	// Tracing exports OpenTelemetry spans (docs/tracing.md); the zero
	// value is off.
	Tracing tracing.Options
	// Logger; nil logs JSON to stderr.
	Logger *slog.Logger
	// Registry; nil creates one with Go and process collectors.
	Registry *prometheus.Registry
}

// Validate checks options without side effects.
func (o *Options) Validate() error {
	var errs []error
	if o.ConfigPath == "" {
		errs = append(errs, errors.New("--config is required"))
	}
	for _, a := range []string{o.Listen, o.AdminListen} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("address %q: %w", a, err))
		}
	}
	if o.Listen != "" && o.Listen == o.AdminListen && !strings.HasSuffix(o.Listen, ":0") {
		errs = append(errs, errors.New("--listen and --admin-listen must differ"))
	}
	if o.Upstream != "" {
		if err := urlrule.Upstream(o.Upstream); err != nil {
			errs = append(errs, fmt.Errorf("--upstream %q: %w (want http://host:port)", o.Upstream, err))
		}
	}
	if o.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("--shutdown-timeout must not be negative"))
	}
	if o.DrainDelay < 0 {
		errs = append(errs, errors.New("--drain-delay must not be negative"))
	}
	if o.UpstreamTimeout < 0 {
		errs = append(errs, errors.New("--upstream-timeout must not be negative"))
	}
	if err := o.Tracing.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, tp := range o.TrustedProxies {
		if _, err := config.ParseTrustedProxy(tp); err != nil {
			errs = append(errs, fmt.Errorf("--trusted-proxies %q: must be an IP address or CIDR: %w", tp, err))
		}
	}
	return errors.Join(errs...)
}

// App is a running proxy.
type App struct {
	opts     Options
	logger   *slog.Logger
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	keys     *assertion.Keys
	sw       *gateway.Switch
	loader   *reload.Loader
	push     *push.Client
	shared   *sharedlimit.Backend // nil: no Redis
	tracing  *tracing.Provider
	// activated is signalled at every activation, so the first
	// configuration (pushed ones included) is served at once.
	activated chan struct{}
	draining  atomic.Bool
	addr      atomic.Pointer[string]
	adminAddr atomic.Pointer[string]
	started   chan struct{}
}

// New prepares the app; Run starts it.
func New(opts Options) (*App, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 25 * time.Second
	}
	a := &App{opts: opts, logger: opts.Logger, registry: opts.Registry, sw: &gateway.Switch{}, started: make(chan struct{})}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	if a.registry == nil {
		a.registry = prometheus.NewRegistry()
		a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a.metrics = metrics.New(a.registry)
	transports := upstream.NewCache()
	pool := upstream.NewBufferPool()
	jwksClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 10 * time.Second,
	}}
	// One State for the app's life: buckets, throttle, token cache and key
	// sets survive every reload that does not change them.
	if opts.AssertionKeysPath != "" {
		a.keys = assertion.NewKeys(opts.AssertionKeysPath, nil, a.logger)
		_ = a.keys.Load() // a missing ring is logged; requests needing it get 503
		a.metrics.SetAssertionKeySource(func() (float64, bool) {
			age, ok := a.keys.SignerAge()
			return age.Seconds(), ok
		})
	}
	if opts.Tracing.ServiceName == "" {
		opts.Tracing.ServiceName = "authgate-proxy"
	}
	var err error
	if a.tracing, err = tracing.New(context.Background(), opts.Tracing, a.logger, os.Getenv); err != nil {
		return nil, err
	}
	if opts.SharedLimits != nil {
		o := *opts.SharedLimits
		o.Metrics, o.Logger = a.metrics, a.logger
		if a.shared, err = sharedlimit.New(o); err != nil {
			return nil, fmt.Errorf("shared limits: %w", err)
		}
	}
	state := gateway.NewState(gateway.StateOptions{Metrics: a.metrics, Logger: a.logger, HTTPClient: jwksClient, Tracing: a.tracing, SharedLimits: a.shared})
	build := func(ctx context.Context, cfg *config.ProxyConfig, hash string, lbls map[string]string) (*gateway.Runtime, error) {
		if opts.Upstream != "" {
			cfg.Upstream.URL = opts.Upstream
		}
		if opts.UpstreamH2C {
			cfg.Upstream.H2C = true
		}
		if opts.UpstreamTimeout > 0 {
			cfg.Upstream.Timeout = config.D(opts.UpstreamTimeout)
		}
		cfg.TrustedProxies = union(cfg.TrustedProxies, opts.TrustedProxies)
		return gateway.Build(ctx, cfg, hash, lbls, gateway.Deps{
			Logger: a.logger, Metrics: a.metrics, HTTPClient: jwksClient, BufferPool: pool, State: state, Assertions: a.keys, Tracing: a.tracing,
			Transports: func(u config.Upstream) http.RoundTripper { return transports.Get(u) },
		})
	}
	a.loader = reload.New(reload.Options{
		ConfigPath: opts.ConfigPath, LabelsPath: opts.LabelsPath, Labels: opts.Labels,
		PollInterval: opts.PollInterval, Build: build, Switch: a.sw, Logger: a.logger, Metrics: a.metrics,
	})
	if opts.Push != nil {
		if a.push, err = a.newPushClient(opts.Push); err != nil {
			return nil, err
		}
	}
	a.activated = make(chan struct{}, 1)
	a.loader.SetOnActivate(func() {
		select {
		case a.activated <- struct{}{}:
		default:
		}
		if a.push != nil {
			a.push.Notify()
		}
	})
	return a, nil
}

// Check runs what a reload runs (read and validate the config and the
// labels, build the runtime for the policies the labels select: Rego
// compiled, verifiers and routers built) with no network I/O and no
// listener, and returns the error a reload would log. A file that would
// load is then also checked whole: every other policy is built too, so a
// policy for another workload that could never load is reported.
func (a *App) Check(ctx context.Context) error {
	rt, err := a.loader.Check(ctx)
	if err != nil {
		return err
	}
	return gateway.CheckPolicies(ctx, rt.Config(), gateway.Deps{Logger: a.logger, Metrics: a.metrics})
}

// Ready reports whether a valid config is active, the proxy listens for
// traffic and the app is not draining. In a Knative pod queue-proxy (and
// through it the activator) sends traffic once this is true, so it must not
// be true before the listener is.
func (a *App) Ready() bool {
	return a.sw.Load() != nil && a.addr.Load() != nil && !a.draining.Load()
}

// Started is closed once both listeners accept connections.
func (a *App) Started() <-chan struct{} { return a.started }

// Addr is the proxied listener's address (after Started).
func (a *App) Addr() string { return deref(a.addr.Load()) }

// AdminAddr is the admin listener's address (after Started).
func (a *App) AdminAddr() string { return deref(a.adminAddr.Load()) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Run serves until ctx is done, then drains in-flight requests. When the
// admin address is given by flag, /healthz answers (and /readyz says 503)
// from the start, so a liveness probe never kills a proxy that is correctly
// waiting for its first valid configuration.
func (a *App) Run(ctx context.Context) error {
	defer a.flushTraces()
	errc := make(chan error, 2)
	var adminLn net.Listener
	var jwks admin.JWKSSource
	if a.keys != nil {
		jwks = a.keys.JWKS
	}
	adminSrv := &http.Server{Handler: admin.Handler(a.sw, a, a.registry, appprobe.Handler(a.opts.AppProbes), jwks), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	if a.opts.AdminListen != "" {
		var err error
		if adminLn, err = net.Listen("tcp", a.opts.AdminListen); err != nil {
			return fmt.Errorf("listen admin %s: %w", a.opts.AdminListen, err)
		}
		go func() { errc <- serve(adminSrv, adminLn) }()
	}
	// The push channel runs from the start: a bundle it delivers before
	// the kubelet projects the file is a first configuration too.
	pushCtx, stopPush := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPush()
	if a.push != nil {
		go a.push.Run(pushCtx)
	}
	cfg, err := a.firstConfig(ctx)
	if err != nil {
		_ = adminSrv.Close()
		return err
	}
	listen := cfg.Listen.Address
	if a.opts.Listen != "" {
		listen = a.opts.Listen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		_ = adminSrv.Close()
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	if adminLn == nil {
		if adminLn, err = net.Listen("tcp", cfg.Listen.AdminAddress); err != nil {
			ln.Close()
			return fmt.Errorf("listen admin %s: %w", cfg.Listen.AdminAddress, err)
		}
		go func() { errc <- serve(adminSrv, adminLn) }()
	}
	ups := newUpgrades(a.metrics.UpgradedConnections)
	srv := newServer(ups.wrap(a.sw), cfg.Limits, a.logger)
	srv.ConnContext = connContext
	addr, adminAddr := ln.Addr().String(), adminLn.Addr().String()
	a.addr.Store(&addr)
	a.adminAddr.Store(&adminAddr)

	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	go a.loader.Run(watchCtx)
	if a.keys != nil {
		go a.keys.Run(watchCtx, a.pollInterval())
	}
	go func() { errc <- serve(srv, ln) }()
	a.logger.Info("authgate-proxy serving", slog.String("address", addr), slog.String("admin_address", adminAddr))
	if a.shared != nil {
		defer func() { _ = a.shared.Close() }()
		go a.pingShared(watchCtx)
	}
	close(a.started)

	select {
	case <-ctx.Done():
	case err := <-errc:
		_ = srv.Close()
		_ = adminSrv.Close()
		return err
	}
	return a.stop(srv, adminSrv, ups, errc, stopWatch)
}

// stop is the shutdown sequence after the signal: not ready at once, the
// drain delay (still serving), then requests, streams and upgraded
// connections drained up to the shutdown timeout.
func (a *App) stop(srv, adminSrv *http.Server, ups *upgrades, errc <-chan error, stopWatch context.CancelFunc) error {
	a.draining.Store(true)
	if d := a.opts.DrainDelay; d > 0 {
		a.logger.Info("shutting down: not ready, still serving while the platform removes the pod", slog.Duration("drain_delay", d))
		srv.SetKeepAlivesEnabled(false)
		select {
		case <-time.After(d):
		case err := <-errc:
			_ = srv.Close()
			_ = adminSrv.Close()
			return err
		}
	}
	a.logger.Info("shutting down: draining in-flight requests", slog.Duration("timeout", a.opts.ShutdownTimeout),
		slog.Int("upgraded_connections", ups.open()))
	sctx, cancel := context.WithTimeout(context.Background(), a.opts.ShutdownTimeout)
	defer cancel()
	// Shutdown waits for requests (streamed responses and HTTP/2 streams
	// included) but not for upgraded connections: wait for those too, so a
	// WebSocket opened before the signal may run to the timeout.
	err := srv.Shutdown(sctx)
	if closed := ups.wait(sctx); closed > 0 {
		a.logger.Warn("shutdown timeout: closed upgraded connections still open", slog.Int("closed", closed))
	}
	if err != nil {
		_ = srv.Close()
	}
	_ = adminSrv.Shutdown(sctx)
	stopWatch()
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	a.logger.Info("authgate-proxy stopped")
	return nil
}

// pingShared logs once whether Redis answers: a Redis that is down is not a
// reason not to serve (each shared limit falls back as it chose).
func (a *App) pingShared(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	o := a.opts.SharedLimits
	if err := a.shared.Ping(ctx); err != nil {
		a.logger.Warn("redis for shared limits does not answer; policies with sharedLimits fall back as their onUnavailable says",
			slog.String("network", o.Network), slog.String("address", o.Address), slog.String("error", err.Error()))
		return
	}
	a.logger.Info("redis for shared limits answers", slog.String("network", o.Network), slog.String("address", o.Address), slog.Bool("tls", o.TLS != nil))
}

// firstConfig waits for the first valid configuration: the proxy is not
// ready (and serves nothing) until one is loaded.
func (a *App) firstConfig(ctx context.Context) (*config.ProxyConfig, error) {
	for {
		err := a.loader.Load(context.WithoutCancel(ctx))
		if rt := a.sw.Load(); rt != nil {
			return rt.Config(), nil
		}
		a.logger.Warn("waiting for a valid configuration", slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no valid configuration before shutdown: %w", err)
		case <-a.activated: // pushed
		case <-time.After(time.Second):
		}
	}
}

func newServer(h http.Handler, l config.Limits, logger *slog.Logger) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true) // Knative h2c revisions reach the proxy over h2c.
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.Duration,
		ReadTimeout:       l.ReadTimeout.Duration,
		IdleTimeout:       l.IdleTimeout.Duration,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		Protocols:         p,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          250,
			MaxReceiveBufferPerConnection: 1 << 20,
			MaxReceiveBufferPerStream:     256 << 10,
			MaxDecoderHeaderTableSize:     4096,
			MaxEncoderHeaderTableSize:     4096,
		},
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// union returns a followed by the entries of b it lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, e := range b {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// flushTraces exports the spans still queued, within the tracing
// shutdown bound (5 s), after the last request was answered.
func (a *App) flushTraces() {
	if err := a.tracing.Shutdown(context.Background()); err != nil {
		a.logger.Warn("tracing: spans lost at shutdown", slog.String("error", err.Error()))
	}
}

// pollInterval is how often the assertion key ring is re-read.
func (a *App) pollInterval() time.Duration {
	if a.opts.PollInterval > 0 {
		return a.opts.PollInterval
	}
	return 5 * time.Second
}
