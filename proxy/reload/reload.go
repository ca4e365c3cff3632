// Package reload loads the proxy's configuration file, watches it (including
// the kubelet's ..data symlink swap for mounted ConfigMaps) and swaps in a
// new runtime only after it was loaded, validated and fully built. A bad file
// never replaces the last good configuration.
//
// "Fully built" is whatever the BuildFunc builds; for authgate-proxy that is
// gateway.Build for the policies this pod's labels select (Rego compiled,
// verifiers and routes built), taking long-lived state (buckets, throttle,
// token cache, key sets) from the app's gateway.State. Loader.Check runs the
// same preparation without activating anything; authgate-proxy --check is
// built on it, so it fails on what a reload rejects with the message a
// reload logs (and then checks the other policies of the file as well).
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/gateway"
	"github.com/authgate/authgate/proxy/labels"
	"github.com/authgate/authgate/proxy/metrics"
)

// BuildFunc builds a runtime from a validated config.
type BuildFunc func(ctx context.Context, cfg *config.ProxyConfig, hash string, labels map[string]string) (*gateway.Runtime, error)

// Options configure a Loader.
type Options struct {
	// ConfigPath is the ProxyConfig file.
	ConfigPath string
	// LabelsPath is an optional downward API labels file, re-read on reload.
	LabelsPath string
	// Labels are fixed labels, merged under those of LabelsPath.
	Labels map[string]string
	// PollInterval re-reads the files as a fallback to file events. Default 5s.
	PollInterval time.Duration
	// Debounce coalesces bursts of file events. Default 100ms.
	Debounce time.Duration
	Build    BuildFunc
	Switch   *gateway.Switch
	Logger   *slog.Logger
	Metrics  *metrics.Metrics
	Now      func() time.Time
}

// Loader owns the active runtime.
type Loader struct {
	opts Options

	mu         sync.Mutex // serialises loads
	lastHash   string
	lastFailed string
	stopActive context.CancelFunc
}

// New returns a Loader; nothing is loaded until Load or Run.
func New(opts Options) *Loader {
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.Debounce == 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Loader{opts: opts}
}

// ErrUnchanged reports that the files hold the active configuration.
var ErrUnchanged = errors.New("configuration unchanged")

// Load reads the files once; on success the new runtime is active. ctx
// bounds the runtime's background work (JWKS refresh).
func (l *Loader) Load(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	rtCtx, cancel := context.WithCancel(ctx)
	c, err := l.prepare(rtCtx, l.lastHash)
	if err != nil {
		cancel()
		if errors.Is(err, ErrUnchanged) {
			return err
		}
		return l.fail(c.hash, err)
	}
	l.activate(rtCtx, cancel, c)
	return nil
}

// Check runs exactly what Load runs before the swap (the same prepare:
// read and validate the config, read the labels, build the runtime for the
// selected policies with their Rego compiled) and returns the error Load would log. It
// does no network I/O, activates nothing and records nothing; the returned
// runtime is never run.
func (l *Loader) Check(ctx context.Context) (*gateway.Runtime, error) {
	c, err := l.prepare(ctx, "")
	return c.rt, err
}

// candidate is a configuration that went through prepare.
type candidate struct {
	// hash covers the content and the labels; "" when the file could not
	// be read.
	hash string
	rt   *gateway.Runtime
}

// prepare is the single path from files to a built runtime, shared by Load
// and Check. It returns ErrUnchanged, with nothing built, when the content
// and labels hash to active (never when active is "").
func (l *Loader) prepare(ctx context.Context, active string) (candidate, error) {
	cfg, data, err := config.Load(l.opts.ConfigPath)
	if err != nil && data == nil {
		return candidate{}, err
	}
	lbls, lerr := l.labels()
	c := candidate{hash: config.Hash(append(data, []byte(labelsKey(lbls))...))}
	switch {
	case active != "" && c.hash == active:
		return c, ErrUnchanged
	case err != nil:
		return c, err
	case lerr != nil:
		return c, lerr
	}
	if c.rt, err = l.opts.Build(ctx, cfg, config.Hash(data), lbls); err != nil {
		return c, err
	}
	return c, nil
}

// activate swaps in a prepared runtime and starts its background work.
func (l *Loader) activate(rtCtx context.Context, cancel context.CancelFunc, c candidate) {
	rt := c.rt
	go rt.Run(rtCtx)
	old := l.opts.Switch.Store(rt)
	if l.stopActive != nil {
		l.stopActive()
	}
	l.stopActive = cancel
	l.lastHash, l.lastFailed = c.hash, ""
	m := l.opts.Metrics
	m.ConfigReloads.WithLabelValues("success").Inc()
	m.ConfigLastSuccess.Set(float64(l.opts.Now().Unix()))
	m.ConfigInfo.Reset()
	m.ConfigInfo.WithLabelValues(rt.Hash()).Set(1)
	l.opts.Logger.Info("configuration loaded", slog.String("config_hash", rt.Hash()),
		slog.Any("policies", rt.Policies()), slog.Bool("replaced", old != nil))
}

// fail records a failed load once per distinct bad content.
func (l *Loader) fail(hash string, err error) error {
	if hash != "" && hash == l.lastFailed {
		return err
	}
	l.lastFailed = hash
	l.opts.Metrics.ConfigReloads.WithLabelValues("failure").Inc()
	l.opts.Logger.Error("configuration rejected; keeping the last good configuration",
		slog.String("path", l.opts.ConfigPath), slog.String("error", err.Error()),
		slog.Bool("have_good_config", l.opts.Switch.Load() != nil))
	return err
}

func (l *Loader) labels() (map[string]string, error) {
	out := map[string]string{}
	for k, v := range l.opts.Labels {
		out[k] = v
	}
	if l.opts.LabelsPath == "" {
		return out, nil
	}
	fromFile, err := labels.ReadFile(l.opts.LabelsPath)
	if err != nil {
		return nil, err
	}
	for k, v := range fromFile {
		out[k] = v
	}
	return out, nil
}

func labelsKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\x00labels")
	for _, k := range keys {
		fmt.Fprintf(&b, "\x00%s=%s", k, m[k])
	}
	return b.String()
}

// Run watches the files until ctx is done, reloading on change. File events
// on the containing directories catch the kubelet's symlink swap; polling
// catches everything else.
func (l *Loader) Run(ctx context.Context) {
	defer func() {
		l.mu.Lock()
		if l.stopActive != nil {
			l.stopActive()
		}
		l.mu.Unlock()
	}()
	events := make(chan struct{}, 1)
	if w, err := fsnotify.NewWatcher(); err != nil {
		l.opts.Logger.Warn("file events unavailable; polling only", slog.String("error", err.Error()))
	} else {
		defer w.Close()
		for _, dir := range l.dirs() {
			if err := w.Add(dir); err != nil {
				l.opts.Logger.Warn("cannot watch directory; polling only", slog.String("dir", dir), slog.String("error", err.Error()))
			}
		}
		go forward(ctx, w, events)
	}
	poll := time.NewTicker(l.opts.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			timer := time.NewTimer(l.opts.Debounce)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		case <-poll.C:
		}
		_ = l.Load(ctx)
	}
}

func (l *Loader) dirs() []string {
	dirs := []string{filepath.Dir(l.opts.ConfigPath)}
	if l.opts.LabelsPath != "" {
		if d := filepath.Dir(l.opts.LabelsPath); d != dirs[0] {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func forward(ctx context.Context, w *fsnotify.Watcher, out chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			select {
			case out <- struct{}{}:
			default:
			}
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
		}
	}
}
