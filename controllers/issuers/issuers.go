// Package issuers keeps, for the controller, each issuer's JSON Web Key Set
// so the proxy configuration it renders can carry the keys inline and a
// cold sidecar needs no network. Fetching, filtering and the last-good-set
// rule are proxy/jwks's (one jwks.KeySet per issuer); this package adds the
// schedule: a refresh interval taken from the JWKS response's cache headers
// and clamped into bounds, a quick retry after a failure, fetches shared
// between concurrent callers, and metrics.
//
// The controller never waits for the network: Current registers an issuer
// and reports what is known now, and the Manager's refresher (Start, a
// controller-runtime Runnable) fetches on the schedule and tells OnChange
// when what Current reports has changed. With Options.Namespaces each
// refresh is charged to one namespace using the issuer and at most
// MaxConcurrentFetchesPerNamespace run per namespace (slots.go), so one
// tenant's slow issuers hold only its own share (docs/tenancy.md).
package issuers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/jwks"
	"github.com/authgate/authgate/proxy/metrics"
)

// Defaults for Options.
const (
	DefaultMinRefresh     = time.Minute
	DefaultMaxRefresh     = time.Hour
	DefaultDefaultRefresh = 10 * time.Minute
	DefaultFetchTimeout   = 10 * time.Second
	DefaultMaxStaleness   = 24 * time.Hour
)

// maxErrorBytes bounds LastError (it lands in a policy's status).
const maxErrorBytes = 512

// Options configure a Manager. Zero values take the defaults.
type Options struct {
	// FetchPolicy is checked on every connection a key fetch opens, on the
	// resolved address, redirects and discovered jwks_uri included
	// (internal/netguard); environment proxies are not used. The zero
	// Policy refuses loopback, link-local, private and the other default
	// ranges: tests with IdPs on loopback must allow them explicitly.
	FetchPolicy netguard.Policy
	// HTTPClient, when set, fetches instead of the guarded clients the key
	// sets build (proxy/jwks), and FetchPolicy is NOT applied: a caller's
	// transport may dial in ways no policy sees. It is for tests whose
	// transport never dials; controllers.NewManager never sets it.
	// http.DefaultClient is never used.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refresh failures; nil discards. Keys are never logged.
	Logger *slog.Logger
	// Tracer traces each discovery + JWKS fetch (jwks.fetch spans: the
	// issuer's name and host, never a body); nil: no spans.
	Tracer trace.Tracer
	// Registerer receives authgate_controller_jwks_refresh_total{issuer,
	// result}, authgate_controller_jwks_keys{issuer} and
	// authgate_controller_jwks_last_success_timestamp_seconds{issuer}; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// MinRefresh and MaxRefresh bound the refresh interval: a JWKS
	// response's max-age (or Expires) is clamped into them. A failed fetch
	// is retried after MinRefresh. Defaults 1m and 1h.
	MinRefresh, MaxRefresh time.Duration
	// DefaultRefresh is the interval when the response declares no
	// lifetime, clamped into the bounds too. Default 10m.
	DefaultRefresh time.Duration
	// FetchTimeout bounds one refresh (discovery and key set together), so
	// how long an issuer stays pending and how long Ensure blocks. Default
	// 10s.
	FetchTimeout time.Duration
	// MaxStaleness is how long the last good keys are kept while refreshes
	// fail, as the proxy does for remote keys (inline keys never go stale
	// in the proxy, so the bound must hold here). Default 24h, at least
	// MaxRefresh.
	MaxStaleness time.Duration
	// OnChange is told, without locks held, after a refresh changed what
	// Current reports for an issuer (keys, last error or last success),
	// including when its first fetch ended. It runs on the refresh's
	// goroutine, so a slow OnChange delays only that issuer; ctx ends when
	// the refresher stops (for a refresh Ensure started, it is the
	// caller's, without its cancellation). nil: no one is told.
	OnChange func(ctx context.Context, s Spec)
	// Namespaces returns the namespaces whose policies use an issuer
	// (sorted or not); it is called without the Manager's locks held, before
	// each refresh, to charge the refresh to one of them. nil: refreshes
	// are not bounded per namespace (controllers.NewManager always sets
	// it). An issuer no namespace uses is charged to an unowned pool of its
	// own, bounded the same.
	Namespaces func(Spec) []string
	// MaxConcurrentFetchesPerNamespace bounds the refreshes charged to one
	// namespace at once (so the goroutines and connections its issuers
	// hold, each for FetchTimeout at most). A refresh is charged to the
	// least busy namespace using the issuer, so an issuer shared with a
	// namespace that has a free slot never waits for a full one. A due
	// refresh with no free slot is queued (State.Queued) until one frees.
	// Default 4.
	MaxConcurrentFetchesPerNamespace int
}

// withDefaults fills unset options and makes the bounds consistent.
func (o Options) withDefaults() Options {
	setDur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	setDur(&o.MinRefresh, DefaultMinRefresh)
	setDur(&o.MaxRefresh, DefaultMaxRefresh)
	setDur(&o.DefaultRefresh, DefaultDefaultRefresh)
	setDur(&o.FetchTimeout, DefaultFetchTimeout)
	setDur(&o.MaxStaleness, DefaultMaxStaleness)
	o.MaxRefresh = max(o.MaxRefresh, o.MinRefresh)
	o.DefaultRefresh = min(max(o.DefaultRefresh, o.MinRefresh), o.MaxRefresh)
	o.MaxStaleness = max(o.MaxStaleness, o.MaxRefresh)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxConcurrentFetchesPerNamespace <= 0 {
		o.MaxConcurrentFetchesPerNamespace = DefaultMaxConcurrentFetchesPerNamespace
	}
	return o
}

// State is what the Manager knows about one issuer's keys.
type State struct {
	// Keys are the usable public keys, sorted by key id; empty when none.
	Keys config.JSONWebKeySet
	// KeyCount is len(Keys.Keys).
	KeyCount int
	// LastSuccess is when the keys were fetched; zero if never.
	LastSuccess time.Time
	// LastError is the last refresh's error, "" after a success.
	LastError string
	// AddressNotAllowed: LastError is FetchPolicy refusing an address the
	// issuer's URLs resolved or redirected to.
	AddressNotAllowed bool
	// Pending: the first fetch has not ended yet (no keys, no error). It
	// ends within FetchTimeout of its start.
	Pending bool
	// Queued: a refresh is due but waits for a free slot of the namespaces
	// using the issuer (Options.MaxConcurrentFetchesPerNamespace).
	Queued bool
	// NextRefresh is when the keys are fetched again; while pending, when
	// the first fetch will have ended at the latest.
	NextRefresh time.Time
}

// Manager fetches and caches key sets per Spec. It is safe for concurrent
// use.
type Manager struct {
	opts    Options
	metrics *managerMetrics
	slots   *slots // nil: not bounded per namespace (no Options.Namespaces)

	mu      sync.Mutex
	entries map[string]*entry // by Spec.Key
	seq     uint64            // registrations so far, the order of first fetches

	// wake tells the refresher to look at the schedule again: an issuer
	// was registered or a refresh ended.
	wake chan struct{}
}

// entry is one issuer's fetcher and refresh schedule.
type entry struct {
	spec Spec // normalized
	ks   *jwks.KeySet
	seq  uint64 // registration order

	mu         sync.Mutex
	attempted  bool      // a refresh has finished
	lastError  string    // of the last refresh
	notAllowed bool      // the last refresh's error is the fetch policy's
	next       time.Time // when the next refresh is due
	flight     *flight   // the running refresh, nil if none
	forgotten  bool      // dropped by Forget: record no more metrics, tell no one
	reported   string    // fingerprint of the state last given to OnChange
	queued     bool      // due, waiting for a free namespace slot
}

// flight is one refresh shared by every Ensure that asked while it ran.
type flight struct {
	done    chan struct{} // closed after the entry was updated
	waiters atomic.Int32  // callers waiting, for tests
	charged string        // the namespace whose slot it holds
	slot    bool          // it holds a slot (the Manager bounds per namespace)
}

// New returns a Manager. It never touches the network.
func New(opts Options) *Manager {
	o := opts.withDefaults()
	m := &Manager{opts: o, metrics: newMetrics(o.Registerer, o.Logger), entries: map[string]*entry{}, wake: make(chan struct{}, 1)}
	if o.Namespaces != nil {
		m.slots = newSlots(o.MaxConcurrentFetchesPerNamespace)
	}
	return m
}

// Current returns what is known now about the issuer's keys, without any
// network call: on first use the issuer is registered, reported Pending,
// and the refresher (Start) fetches it at once. An invalid spec is reported
// in LastError and never fetched.
func (m *Manager) Current(s Spec) State {
	e, err := m.entry(s)
	if err != nil {
		return m.invalid(err)
	}
	st := m.state(e)
	if st.Queued {
		// A namespace may have started using the issuer: it may have a
		// free slot.
		m.poke()
	}
	return st
}

// Ensure is Current for callers that may wait: it first refreshes the keys
// when they were never fetched or NextRefresh has passed. A refresh is
// shared by concurrent callers (and the refresher) and bounded by
// FetchTimeout; Ensure stops waiting when ctx is done (the refresh goes
// on). When the namespaces using the issuer have no free fetch slot,
// Ensure does not wait: it reports the state (Queued) and the refresher
// fetches once a slot frees. A failed refresh keeps the last good keys, up
// to MaxStaleness, records LastError and is retried after MinRefresh.
func (m *Manager) Ensure(ctx context.Context, s Spec) State {
	e, err := m.entry(s)
	if err != nil {
		return m.invalid(err)
	}
	if f, _ := m.startIfDue(context.WithoutCancel(ctx), e, nil); f != nil {
		f.wait(ctx)
	}
	return m.state(e)
}

func (m *Manager) invalid(err error) State {
	return State{Keys: emptySet(), LastError: truncate(err.Error(), maxErrorBytes), NextRefresh: m.opts.Now().Add(m.opts.MaxRefresh)}
}

// startIfDue returns the entry's running refresh, starting one (on wg when
// given) if its keys were never fetched or are due and a namespace using
// the issuer has a free slot; nil when not due, and then queued reports
// whether it is due but waits for a slot.
func (m *Manager) startIfDue(ctx context.Context, e *entry, wg *sync.WaitGroup) (f *flight, queued bool) {
	if !m.due(e) {
		return m.running(e), false
	}
	var users []string
	if m.slots != nil {
		users = sortedUnique(m.opts.Namespaces(e.spec.clone())) // no locks held: it takes the caller's
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.flight != nil {
		return e.flight, false
	}
	if e.attempted && m.opts.Now().Before(e.next) {
		return nil, false
	}
	f = &flight{done: make(chan struct{})}
	if m.slots != nil {
		ns, ok := m.slots.acquire(users)
		if !ok {
			if !e.queued && !e.forgotten {
				m.metrics.throttle(users)
			}
			e.queued = true
			return nil, true
		}
		f.charged, f.slot = ns, true
		m.metrics.inFlight(ns, m.slots.inFlight(ns))
	}
	e.queued = false
	e.flight = f
	if wg != nil {
		wg.Go(func() { m.refresh(ctx, e, f) })
	} else {
		go m.refresh(ctx, e, f)
	}
	return f, false
}

// due reports whether the entry's keys were never fetched or are due and
// no refresh runs.
func (m *Manager) due(e *entry) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.flight == nil && (!e.attempted || !m.opts.Now().Before(e.next))
}

func (m *Manager) running(e *entry) *flight {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.flight
}

// Lookup returns the cached usable keys of an issuer Ensure has seen,
// without any network call; false when there are none.
func (m *Manager) Lookup(s Spec) (config.JSONWebKeySet, bool) {
	m.mu.Lock()
	e := m.entries[s.Key()]
	m.mu.Unlock()
	if e == nil {
		return emptySet(), false
	}
	keys := e.ks.Export()
	return keys, len(keys.Keys) > 0
}

// Forget drops every issuer for which keep returns false, with its metric
// series. keep receives the normalized spec (algorithms defaulted and
// sorted; compare with Spec.Key) and is called without locks held.
func (m *Manager) Forget(keep func(Spec) bool) {
	m.mu.Lock()
	all := make(map[string]*entry, len(m.entries))
	for k, e := range m.entries {
		all[k] = e
	}
	m.mu.Unlock()
	drop := map[string]*entry{}
	for k, e := range all {
		if !keep(e.spec.clone()) {
			drop[k] = e
		}
	}
	if len(drop) == 0 {
		return
	}
	m.mu.Lock()
	for k, e := range drop {
		if m.entries[k] == e {
			delete(m.entries, k)
		} else {
			delete(drop, k) // replaced meanwhile
		}
	}
	inUse := map[string]bool{}
	for _, e := range m.entries {
		inUse[e.spec.IssuerURL] = true
	}
	m.mu.Unlock()
	for _, e := range drop {
		e.mu.Lock()
		e.forgotten = true
		e.mu.Unlock()
		if !inUse[e.spec.IssuerURL] {
			m.metrics.forget(e.spec.IssuerURL)
		}
		m.opts.Logger.Info("issuers: forgot issuer", "issuer", e.spec.IssuerURL)
	}
}

// ForgetNamespace drops the per-namespace metric series of a namespace
// whose policies no longer trust any issuer.
func (m *Manager) ForgetNamespace(ns string) {
	m.metrics.forgetNamespace(ns)
}

// entry returns the spec's entry, creating it (without network) on first use.
func (m *Manager) entry(s Spec) (*entry, error) {
	n := s.normalized()
	key := n.Key()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok {
		return e, nil
	}
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("invalid issuer: %w", err)
	}
	ks, err := m.newKeySet(n)
	if err != nil {
		return nil, err
	}
	m.seq++
	e := &entry{spec: n, ks: ks, seq: m.seq}
	m.entries[key] = e
	m.poke()
	return e, nil
}

// newKeySet builds the proxy's key set for a normalized spec. Its metrics
// go to a private registry of its own, collected with the entry; the
// controller's metrics are the Manager's.
func (m *Manager) newKeySet(s Spec) (*jwks.KeySet, error) {
	discovery := s.JWKSURL == ""
	iss := config.Issuer{
		Name:       s.name(),
		IssuerURL:  s.IssuerURL,
		JWKSURL:    s.JWKSURL,
		Discovery:  &discovery,
		Algorithms: slices.Clone(s.Algorithms),
		Audiences:  []string{"controller"}, // required by the config type; no token is verified here
		CABundle:   s.CABundle,
		Fetch: config.JWKSFetch{
			Timeout:         config.D(m.opts.FetchTimeout),
			RefreshCooldown: config.D(m.opts.MinRefresh),
			RefreshInterval: config.D(m.opts.DefaultRefresh),
			MaxStaleness:    config.D(m.opts.MaxStaleness),
		},
	}
	iss.Default()
	var policy *netguard.Policy
	if m.opts.HTTPClient == nil {
		policy = &m.opts.FetchPolicy
	}
	ks, err := jwks.New(jwks.Options{
		Issuer:      iss,
		HTTPClient:  m.opts.HTTPClient,
		FetchPolicy: policy,
		Now:         m.opts.Now,
		Metrics:     metrics.New(prometheus.NewRegistry()),
		Logger:      m.opts.Logger,
		Tracer:      m.opts.Tracer,
	})
	if err != nil {
		return nil, fmt.Errorf("issuer key set: %w", err)
	}
	return ks, nil
}

// refresh runs one shared refresh, schedules the next and tells OnChange
// when what Current reports changed. When ctx ends first (the refresher
// stops) the entry is left as it was.
func (m *Manager) refresh(ctx context.Context, e *entry, f *flight) {
	state, wait, err := m.fetch(ctx, e)
	if ctx.Err() != nil {
		m.settle(e, f, nil, nil)
		return
	}
	changed := m.settle(e, f, &state, err)
	if changed && m.opts.OnChange != nil {
		m.opts.OnChange(ctx, e.spec.clone())
	}
	if err != nil {
		m.opts.Logger.Warn("issuers: key refresh failed, keeping the last good keys",
			"issuer", e.spec.IssuerURL, "keys", state.KeyCount, "retryIn", wait, "error", state.LastError)
		return
	}
	m.opts.Logger.Debug("issuers: keys refreshed", "issuer", e.spec.IssuerURL, "keys", state.KeyCount, "nextIn", wait)
}

// fetch refreshes the key set within FetchTimeout and returns the state it
// leaves and the wait until the next refresh.
func (m *Manager) fetch(ctx context.Context, e *entry) (State, time.Duration, error) {
	fctx, cancel := context.WithTimeout(ctx, m.opts.FetchTimeout)
	err := e.ks.Refresh(fctx)
	if err != nil && fctx.Err() != nil {
		err = fmt.Errorf("key fetch did not finish within %s: %w", m.opts.FetchTimeout, err)
	}
	cancel()
	now := m.opts.Now()
	st := e.ks.Status()
	keys := e.ks.Export()
	wait := m.opts.MinRefresh
	if err == nil {
		wait = m.interval(st)
	}
	state := State{Keys: keys, KeyCount: len(keys.Keys), LastSuccess: st.LastSuccess, NextRefresh: now.Add(wait)}
	if err != nil {
		state.LastError = truncate(err.Error(), maxErrorBytes)
		var denied *netguard.DeniedError
		state.AddressNotAllowed = errors.As(err, &denied)
	}
	return state, wait, err
}

// settle ends the flight, recording state (nil: none, the entry stays as it
// was) with its metrics. It reports whether the state differs from the one
// OnChange was last told about.
func (m *Manager) settle(e *entry, f *flight, state *State, err error) bool {
	e.mu.Lock()
	e.flight = nil
	changed := false
	if state != nil {
		e.attempted = true
		e.lastError, e.notAllowed = state.LastError, state.AddressNotAllowed
		e.next = state.NextRefresh
		if !e.forgotten {
			m.metrics.observe(e.spec.IssuerURL, *state, err)
			sig := fingerprint(*state)
			changed, e.reported = sig != e.reported, sig
		}
	}
	e.mu.Unlock()
	if f.slot {
		m.metrics.inFlight(f.charged, m.slots.release(f.charged))
	}
	close(f.done)
	m.poke()
	return changed
}

// interval is the refresh interval after a success: the response's
// lifetime clamped into [MinRefresh, MaxRefresh], else DefaultRefresh.
func (m *Manager) interval(st jwks.Status) time.Duration {
	if !st.HasMaxAge {
		return m.opts.DefaultRefresh
	}
	return min(max(st.MaxAge, m.opts.MinRefresh), m.opts.MaxRefresh)
}

// state reports an entry now: keys past MaxStaleness are no longer
// included. Before the first refresh finished it is Pending, and
// NextRefresh is when the running one will have ended.
func (m *Manager) state(e *entry) State {
	keys := e.ks.Export()
	st := e.ks.Status()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := State{Keys: keys, KeyCount: len(keys.Keys), LastSuccess: st.LastSuccess, LastError: e.lastError, AddressNotAllowed: e.notAllowed, NextRefresh: e.next, Queued: e.queued}
	if !e.attempted {
		s.Pending = true
		s.NextRefresh = m.opts.Now().Add(m.opts.FetchTimeout)
	}
	return s
}

func (f *flight) wait(ctx context.Context) {
	f.waiters.Add(1)
	defer f.waiters.Add(-1)
	select {
	case <-f.done:
	case <-ctx.Done():
	}
}

func (s Spec) clone() Spec {
	s.Algorithms = slices.Clone(s.Algorithms)
	return s
}

func emptySet() config.JSONWebKeySet { return config.JSONWebKeySet{Keys: []config.RawJSON{}} }
