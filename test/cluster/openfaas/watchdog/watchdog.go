package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// errExitZero marks the start failures after which the original exits 0.
var errExitZero = errors.New("of-watchdog would exit 0")

// Options are the watchdog's dependencies.
type Options struct {
	// Log receives the watchdog's own lines (the original uses the standard
	// logger: stderr, date and time). Nil discards them.
	Log *log.Logger
	// Stdout and Stderr receive the function's output, line by line
	// (prefixed "stdout: "/"stderr: " and dated when PrefixLogs). Nil
	// discards it.
	Stdout, Stderr io.Writer
	// Signals delivers SIGTERM: it is forwarded to the function at once and
	// starts the drain (the original registers signal.Notify twice, once in
	// the HTTP runner and once in the server, and both get it).
	Signals <-chan os.Signal
}

// Watchdog is one watchdog process: the function child, the HTTP server and
// the metrics server.
type Watchdog struct {
	cfg  Config
	log  *log.Logger
	opts Options

	accepting atomic.Bool // the original's acceptingConnections
	inflight  prometheus.Gauge
	registry  *prometheus.Registry

	child    *child
	srv      *http.Server
	metrics  *http.Server
	ln       net.Listener
	metricLn net.Listener

	done    chan struct{} // closed when the drain has finished
	doneErr error
	once    sync.Once
}

// New returns a watchdog for cfg (see FromEnv; cfg must be valid).
func New(cfg Config, opts Options) *Watchdog {
	if opts.Log == nil {
		opts.Log = log.New(io.Discard, "", 0)
	}
	for _, w := range []*io.Writer{&opts.Stdout, &opts.Stderr} {
		if *w == nil {
			*w = io.Discard
		}
	}
	return &Watchdog{cfg: cfg, log: opts.Log, opts: opts, done: make(chan struct{})}
}

// Start starts the function process, the metrics server and the HTTP
// server, then writes the lock file (or, with suppress_lock, marks the
// watchdog accepting without one), in the original's order. It returns at
// once; Wait waits for the end. Cancelling ctx drains as SIGTERM does
// (without signalling the function), like the original's context.
func (w *Watchdog) Start(ctx context.Context) error {
	w.accepting.Store(false)
	h, err := w.handler()
	if err != nil {
		return err
	}
	w.log.Printf("Watchdog mode: %s\tfprocess: %q\n", w.cfg.Mode, w.cfg.FunctionProcess)
	if err := w.startMetrics(); err != nil {
		w.shutdownNow()
		return err
	}
	w.srv = &http.Server{
		ReadTimeout:    w.cfg.ReadTimeout,
		WriteTimeout:   w.cfg.WriteTimeout,
		MaxHeaderBytes: 1 << 20,
		Handler:        h,
	}
	w.log.Printf("Timeouts: read: %s write: %s hard: %s health: %s\n",
		w.cfg.ReadTimeout, w.cfg.WriteTimeout, w.cfg.ExecTimeout, w.cfg.HealthcheckInterval)
	w.log.Printf("Listening on port: %d\n", w.cfg.Port)
	w.ln, err = net.Listen("tcp", net.JoinHostPort(w.cfg.ListenHost, strconv.Itoa(w.cfg.Port)))
	if err != nil {
		// The original logs this and its Start returns nil: the process exits 0.
		w.log.Printf("Error ListenAndServe: %v", err)
		w.shutdownNow()
		return fmt.Errorf("%w: listen: %w", errExitZero, err)
	}
	go func() { _ = w.srv.Serve(w.ln) }()
	go w.untilShutdown(ctx)
	go w.watchChild()
	if w.cfg.SuppressLock {
		w.log.Println(`Warning: "suppress_lock" is enabled. No automated health-checks will be in place for your function.`)
		w.accepting.Store(true)
		return nil
	}
	if err := w.createLockFile(); err != nil {
		// The original returns this from listenUntilShutdown, whose result its
		// Start drops: the process exits 0 without a word. Said here.
		w.log.Printf("cannot write %s. To disable lock-file set env suppress_lock=true: %v", w.cfg.LockPath, err)
		w.shutdownNow()
		return fmt.Errorf("%w: lock file: %w", errExitZero, err)
	}
	return nil
}

// Wait blocks until the watchdog has stopped: nil after a drain, an error
// when the function process died with an error (the original's log.Fatalf
// "Forked function has terminated", exit 1, at once, drain or not).
func (w *Watchdog) Wait() error {
	<-w.done
	return w.doneErr
}

// Addr is the HTTP server's address (after Start).
func (w *Watchdog) Addr() net.Addr { return w.ln.Addr() }

// MetricsAddr is the metrics server's address (after Start).
func (w *Watchdog) MetricsAddr() net.Addr { return w.metricLn.Addr() }

// handler builds the mux the original registers on http.DefaultServeMux.
func (w *Watchdog) handler() (http.Handler, error) {
	fn, err := w.httpModeHandler()
	if err != nil {
		return nil, err
	}
	var requests http.Handler = fn
	var lim *limiter
	if w.cfg.MaxInflight > 0 {
		lim = &limiter{next: fn, max: uint64(w.cfg.MaxInflight)}
		requests = lim
	}
	w.registry = prometheus.NewRegistry()
	total := prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: "http", Name: "requests_total",
		Help: "total HTTP requests processed"}, []string{"code", "method"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: "http", Name: "request_duration_seconds",
		Help: "Seconds spent serving HTTP requests.", Buckets: prometheus.DefBuckets}, []string{"code", "method"})
	w.inflight = prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: "http", Name: "requests_in_flight",
		Help: "total HTTP requests in-flight"})
	w.registry.MustRegister(total, duration, w.inflight)
	instrumented := promhttp.InstrumentHandlerCounter(total, promhttp.InstrumentHandlerDuration(duration, requests))

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		w.inflight.Inc()
		defer w.inflight.Dec()
		instrumented.ServeHTTP(rw, r)
	})
	mux.HandleFunc("/_/health", w.health)
	mux.Handle("/_/ready", &readiness{w: w, fn: fn, limiter: lim})
	return mux, nil
}

// health is the original's makeHealthHandler: 200 "OK" while accepting and
// the lock file exists, else 503; GET only. With suppress_lock there is no
// lock file, so it answers 503 (the original warns that there are then no
// automated health checks).
func (w *Watchdog) health(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		rw.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if !w.accepting.Load() || !w.LockFilePresent() {
		rw.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write([]byte("OK"))
}

// LockFilePresent reports whether the lock file exists (also the
// -run-healthcheck check).
func (w *Watchdog) LockFilePresent() bool {
	_, err := os.Stat(w.cfg.LockPath)
	return !errors.Is(err, os.ErrNotExist)
}

func (w *Watchdog) createLockFile() error {
	w.log.Printf("Writing lock-file to: %s\n", w.cfg.LockPath)
	if err := os.MkdirAll(os.TempDir(), os.ModePerm); err != nil {
		return err
	}
	if err := os.WriteFile(w.cfg.LockPath, []byte{}, 0o660); err != nil {
		return err
	}
	w.accepting.Store(true)
	return nil
}

func (w *Watchdog) markUnhealthy() error {
	w.accepting.Store(false)
	w.log.Printf("Removing lock-file : %s\n", w.cfg.LockPath)
	return os.Remove(w.cfg.LockPath)
}

// untilShutdown is the original's listenUntilShutdown goroutine: on SIGTERM
// or ctx, mark unhealthy (remove the lock file), keep serving for
// healthcheck_interval, then Shutdown with write_timeout as the limit for
// requests in flight.
func (w *Watchdog) untilShutdown(ctx context.Context) {
	var reason string
	select {
	case <-w.signals():
		reason = "SIGTERM"
	case <-ctx.Done():
		reason = "Context cancelled"
	case <-w.done:
		return
	}
	w.log.Printf("%s: no new connections in %s\n", reason, w.cfg.HealthcheckInterval)
	if err := w.markUnhealthy(); err != nil {
		w.log.Printf("Unable to mark server as unhealthy: %s\n", err.Error())
	}
	select {
	case <-time.After(w.cfg.HealthcheckInterval):
	case <-w.done:
		return
	}
	w.log.Printf("No new connections allowed, draining: %d requests\n", w.inFlight())
	sctx, cancel := context.WithTimeout(context.Background(), w.cfg.WriteTimeout)
	defer cancel()
	if err := w.srv.Shutdown(sctx); err != nil {
		w.log.Printf("Error in Shutdown: %v", err)
	}
	w.log.Printf("Exiting. Active connections: %d\n", w.inFlight())
	_ = w.metrics.Close()
	w.finish(nil)
}

// signals fans SIGTERM out: the function gets it at once (the HTTP runner's
// own signal.Notify in the original) and the drain starts.
func (w *Watchdog) signals() <-chan struct{} {
	out := make(chan struct{})
	if w.opts.Signals == nil {
		return out
	}
	go func() {
		select {
		case <-w.opts.Signals:
			w.child.terminate()
			close(out)
		case <-w.done:
		}
	}()
	return out
}

// watchChild ends the watchdog when the function exits with an error; a
// function that exits 0 leaves the watchdog serving (every request then
// fails), as in the original.
func (w *Watchdog) watchChild() {
	err := w.child.wait()
	if err == nil {
		return
	}
	w.log.Printf("Forked function has terminated: %s", err.Error())
	w.finish(fmt.Errorf("forked function has terminated: %w", err))
	w.shutdownNow()
}

func (w *Watchdog) finish(err error) {
	w.once.Do(func() {
		w.doneErr = err
		close(w.done)
	})
}

// shutdownNow stops everything at once: what the original's process exit
// does. The function is killed, so that tests leave no process behind (in a
// container the runtime kills it with PID 1).
func (w *Watchdog) shutdownNow() {
	if w.srv != nil {
		_ = w.srv.Close()
	}
	if w.metrics != nil {
		_ = w.metrics.Close()
	}
	w.child.kill()
	w.finish(nil)
}

// Close stops the watchdog at once (tests).
func (w *Watchdog) Close() { w.shutdownNow() }

// inFlight reads the in-flight gauge, as the original does for its drain
// log lines.
func (w *Watchdog) inFlight() int64 {
	return int64(testutil.ToFloat64(w.inflight))
}

// startMetrics serves /metrics on MetricsPort with 500 ms read and write
// timeouts. The original panics when it cannot listen.
func (w *Watchdog) startMetrics() error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(w.registry, promhttp.HandlerOpts{}))
	w.metrics = &http.Server{ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		MaxHeaderBytes: 1 << 20, Handler: mux}
	ln, err := net.Listen("tcp", net.JoinHostPort(w.cfg.ListenHost, strconv.Itoa(w.cfg.MetricsPort)))
	if err != nil {
		return fmt.Errorf("metrics error ListenAndServe: %w", err)
	}
	w.metricLn = ln
	w.log.Printf("Metrics listening on port: %d\n", w.cfg.MetricsPort)
	go func() { _ = w.metrics.Serve(ln) }()
	return nil
}
