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
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
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
	// OnActivate, when set, is called after every activation (from the file
	// or from LoadData), with the loader's lock held: it must not block and
	// must not call back into the Loader (the push client's Notify).
	OnActivate func()
}

// Loader owns the active runtime.
type Loader struct {
	opts Options

	mu         sync.Mutex // serialises loads
	lastHash   string
	lastFailed string
	lastStale  string
	stopActive context.CancelFunc
	// enforced describes the active configuration (zero before the first
	// load).
	enforced Enforced
}

// Enforced describes the configuration a Loader enforces.
type Enforced struct {
	// Revision is the bundle's revision (config.ProxyConfig.Revision).
	Revision int64
	// Hash is config.Hash of the bundle's bytes (labels not included): the
	// hash the controller annotates its bundle Secret with.
	Hash string
	// Policies maps each policy this pod applies to its version.
	Policies map[string]string
	// Source is SourceFile or SourcePush.
	Source string
}

// Sources of a configuration.
const (
	SourceFile = "file"
	SourcePush = "push"
)

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

// ConfigPath is the configuration file the Loader watches.
func (l *Loader) ConfigPath() string { return l.opts.ConfigPath }

// SetOnActivate sets Options.OnActivate; call it before Run.
func (l *Loader) SetOnActivate(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opts.OnActivate = f
}

// ErrUnchanged reports that the files hold the active configuration.
var ErrUnchanged = errors.New("configuration unchanged")

// ErrStale reports a configuration whose revision is below the active
// one: it is older than what the proxy enforces and is not loaded.
var ErrStale = errors.New("configuration older than the active one")

// Load reads the files once; on success the new runtime is active. ctx
// bounds the runtime's background work (JWKS refresh).
func (l *Loader) Load(ctx context.Context) error {
	return l.load(ctx, nil, SourceFile)
}

// LoadData loads data, a configuration received over the push channel,
// exactly as Load loads the file (the same prepare: validated, built,
// swapped in only on success; a bad one never replaces the last good
// configuration). It returns ErrUnchanged when data and the labels are
// what is active and ErrStale when data's revision is below the active
// one. The file keeps being watched: a later file of at least the active
// revision replaces what was pushed.
func (l *Loader) LoadData(ctx context.Context, data []byte) error {
	return l.load(ctx, data, SourcePush)
}

// Enforced describes the active configuration; false before the first
// successful load.
func (l *Loader) Enforced() (Enforced, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.enforced
	e.Policies = maps.Clone(e.Policies)
	return e, e.Hash != ""
}

// load prepares data (nil: read the file) and activates it.
func (l *Loader) load(ctx context.Context, data []byte, source string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	rtCtx, cancel := context.WithCancel(ctx)
	c, err := l.prepare(rtCtx, l.lastHash, data)
	if err != nil {
		cancel()
		switch {
		case errors.Is(err, ErrUnchanged):
			return err
		case errors.Is(err, ErrStale):
			l.stale(c, source)
			return err
		case data == nil && errors.Is(err, fs.ErrNotExist) && l.enforced.Hash != "":
			// No file yet (the optional bundle volume before the kubelet
			// fills it) while a pushed configuration is enforced: nothing
			// failed, and the file is picked up when it appears.
			l.missing(err)
			return err
		}
		return l.fail(c.hash, source, err)
	}
	c.source = source
	l.activate(rtCtx, cancel, c)
	return nil
}

// stale logs, once per content, a configuration older than the active
// one (the kubelet projecting the file after the push channel delivered a
// newer one, or an update overtaken by another).
func (l *Loader) stale(c candidate, source string) {
	if c.hash == l.lastStale {
		return
	}
	l.lastStale = c.hash
	l.opts.Metrics.ConfigReloads.WithLabelValues("stale").Inc()
	l.opts.Logger.Info("configuration older than the enforced one; keeping the enforced one",
		slog.String("source", source), slog.Int64("revision", c.revision), slog.Int64("enforced_revision", l.enforced.Revision))
}

// Check runs exactly what Load runs before the swap (the same prepare:
// read and validate the config, read the labels, build the runtime for the
// selected policies with their Rego compiled) and returns the error Load would log. It
// does no network I/O, activates nothing and records nothing; the returned
// runtime is never run.
func (l *Loader) Check(ctx context.Context) (*gateway.Runtime, error) {
	c, err := l.prepare(ctx, "", nil)
	return c.rt, err
}

// candidate is a configuration that went through prepare.
type candidate struct {
	// hash covers the content and the labels; "" when the file could not
	// be read.
	hash string
	rt   *gateway.Runtime
	// dataHash is config.Hash of the configuration's bytes alone and
	// revision its revision.
	dataHash string
	revision int64
	source   string
}

// prepare is the single path from a configuration (the file, or pushed
// bytes when pushed is not nil) to a built runtime, shared by Load,
// LoadData and Check. It returns ErrUnchanged, with nothing built, when the
// content and labels hash to active (never when active is ""), and
// ErrStale, with nothing built, when the configuration's revision is below
// the active one.
func (l *Loader) prepare(ctx context.Context, active string, pushed []byte) (candidate, error) {
	var (
		cfg  *config.ProxyConfig
		data []byte
		err  error
	)
	if pushed != nil {
		data = pushed
		cfg, err = config.Parse(data)
		if err != nil {
			err = fmt.Errorf("pushed config: %w", err)
		}
	} else if cfg, data, err = config.Load(l.opts.ConfigPath); err != nil && data == nil {
		return candidate{}, err
	}
	lbls, lerr := l.labels()
	c := candidate{hash: config.Hash(append(slices.Clip(data), []byte(labelsKey(lbls))...)), dataHash: config.Hash(data)}
	if cfg != nil {
		c.revision = cfg.Revision
	}
	switch {
	case active != "" && c.hash == active:
		return c, ErrUnchanged
	case err != nil:
		return c, err
	case active != "" && cfg.Revision < l.enforced.Revision:
		return c, ErrStale
	case lerr != nil:
		return c, lerr
	}
	if c.rt, err = l.opts.Build(ctx, cfg, c.dataHash, lbls); err != nil {
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
	l.lastHash, l.lastFailed, l.lastStale = c.hash, "", ""
	l.enforced = Enforced{Revision: c.revision, Hash: c.dataHash, Policies: policyVersions(rt), Source: c.source}
	m := l.opts.Metrics
	m.ConfigReloads.WithLabelValues("success").Inc()
	m.ConfigLastSuccess.Set(float64(l.opts.Now().Unix()))
	m.ConfigInfo.Reset()
	m.ConfigInfo.WithLabelValues(rt.Hash()).Set(1)
	l.opts.Logger.Info("configuration loaded", slog.String("config_hash", rt.Hash()), slog.Int64("revision", c.revision),
		slog.String("source", c.source), slog.Any("policies", rt.Policies()), slog.Bool("replaced", old != nil))
	if l.opts.OnActivate != nil {
		l.opts.OnActivate()
	}
}

// policyVersions maps the policies rt applies to their versions.
func policyVersions(rt *gateway.Runtime) map[string]string {
	applied := rt.Policies()
	out := make(map[string]string, len(applied))
	for _, p := range rt.Config().Policies {
		if slices.Contains(applied, p.Name) {
			out[p.Name] = p.Version
		}
	}
	return out
}

// missing logs, once until a file is loaded, that there is no file while
// a pushed configuration is enforced.
func (l *Loader) missing(err error) {
	if l.lastFailed == "missing" {
		return
	}
	l.lastFailed = "missing"
	l.opts.Logger.Info("no configuration file yet; enforcing the configuration from the push channel",
		slog.String("path", l.opts.ConfigPath), slog.String("error", err.Error()))
}

// fail records a failed load once per distinct bad content.
func (l *Loader) fail(hash, source string, err error) error {
	if hash != "" && hash == l.lastFailed {
		return err
	}
	l.lastFailed = hash
	l.opts.Metrics.ConfigReloads.WithLabelValues("failure").Inc()
	l.opts.Logger.Error("configuration rejected; keeping the last good configuration",
		slog.String("source", source), slog.String("path", l.opts.ConfigPath), slog.String("error", err.Error()),
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
