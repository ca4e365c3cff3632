// Package jwks is a hardened JSON Web Key Set for one issuer, used by
// go-oidc's verifier in place of its RemoteKeySet. Keys come from an inline
// set (never stale, no network), a JWKS URL or OIDC discovery. Remote
// fetches use a dedicated client with a timeout and a body cap, a failed
// fetch never replaces the last good set, and a remote set older than the
// configured staleness is no longer used.
//
// Only a token whose key id is unknown (or a kid-less token no key
// verifies) may trigger a refetch; a bad signature under a known key id
// never does. Token-triggered fetches are shared between concurrent
// callers and limited per issuer: while usable keys are loaded, at most 3
// may start in any RefreshCooldown window (a burst, so a key rotated in
// right after a fetch is picked up at once while a flood of random key ids
// costs at most 3 fetches per cooldown); while none is loaded (cold start,
// or a stale remote set), one may start when no fetch started in the last
// 250 ms. Run also retries with a backoff of at most 1 s while no usable
// key is loaded, so keys return within about a second of the IdP
// answering again, token or not. HasKey answers from the loaded keys only.
package jwks

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/proxy/cabundle"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/metrics"
)

// Errors returned by VerifySignature and Refresh, wrapped.
var (
	// ErrNoKeys means no usable key exists: nothing was loaded yet, every
	// fetch failed, or the remote set is past its maximum staleness.
	ErrNoKeys = errors.New("no usable verification keys")
	// ErrUnknownKey means no key carries the token's key id.
	ErrUnknownKey = errors.New("no key matches the token's key id")
	// ErrSignature means candidate keys exist but none verifies the token.
	ErrSignature = errors.New("token signature does not verify")
	// ErrMalformed means the token is not a compact JWS this key set accepts
	// (syntax, algorithm, header parameters).
	ErrMalformed = errors.New("malformed or unacceptable token")
	// ErrCooldown means a token-triggered refetch was skipped by the
	// issuer's refetch limit (see the package documentation).
	ErrCooldown = errors.New("key refetch suppressed by cooldown")
)

// Options configure a KeySet.
type Options struct {
	// Issuer is the defaulted issuer config; Name is the metrics label.
	Issuer config.Issuer
	// HTTPClient fetches discovery and keys. nil builds a dedicated client
	// from Issuer.Fetch.Timeout; http.DefaultClient is never used. With
	// Issuer.CABundle, a copy whose transport (an *http.Transport) trusts
	// exactly the bundle's CAs is used instead.
	HTTPClient *http.Client
	// FetchPolicy, when set, is checked on every connection the key set
	// opens, on the resolved address (internal/netguard), and environment
	// proxies are not used. It needs the key set's own client: with
	// HTTPClient set too, New fails. nil checks nothing: the proxy sidecar
	// fetches from its own pod's network, which its tenant already controls.
	FetchPolicy *netguard.Policy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics receives fetch counters and key gauges. Required.
	Metrics *metrics.Metrics
	// Logger receives fetch failures. Required.
	Logger *slog.Logger
	// Tracer traces each fetch (a jwks.fetch span, a child of the request
	// that triggered it, if any); nil: no spans.
	Tracer trace.Tracer
}

// Status describes a key set for readiness and admin endpoints.
type Status struct {
	// Keys is the number of keys usable right now.
	Keys int
	// LastSuccess is when the keys in use were loaded (inline: at New).
	LastSuccess time.Time
	// LastError is the last fetch error, "" after a success.
	LastError string
	// Stale is true when the remote set is past its maximum staleness.
	Stale bool
	// Remote is true when keys can be fetched (JWKS URL or discovery).
	Remote bool
	// MaxAge is how long the last successful JWKS response said it may be
	// cached: Cache-Control max-age, else Expires minus Date, less the Age
	// header. Zero when the response declared no lifetime (see HasMaxAge).
	MaxAge time.Duration
	// HasMaxAge is true when the last successful JWKS response declared a
	// lifetime; MaxAge is then meaningful even when zero (no-store,
	// no-cache, max-age=0, or an Expires in the past).
	HasMaxAge bool
}

// remoteKeys is one successfully fetched key set; immutable once stored.
type remoteKeys struct {
	keys    []jose.JSONWebKey
	fetched time.Time
	life    lifetime // the JWKS response's freshness lifetime
}

// flight is one fetch shared by every caller that asked while it ran.
type flight struct {
	done    chan struct{}
	err     error        // written before done is closed
	waiters atomic.Int32 // callers waiting, for tests and diagnostics
}

// KeySet verifies JWS signatures with one issuer's keys. It implements
// go-oidc's oidc.KeySet and is safe for concurrent use.
type KeySet struct {
	name      string
	issuerURL string
	jwksURL   string // configured; "" with discovery
	discovery bool
	fetch     config.JWKSFetch
	algs      []jose.SignatureAlgorithm
	client    *http.Client
	now       func() time.Time
	metrics   *metrics.Metrics
	log       *slog.Logger
	tracer    trace.Tracer

	inline   []jose.JSONWebKey // immutable after New
	loadedAt time.Time
	remote   atomic.Pointer[remoteKeys]

	mu         sync.Mutex
	inflight   *flight
	lastStart  time.Time   // when the last fetch of any kind started
	burst      burstWindow // token-triggered fetches started with keys loaded
	lastError  string
	discovered string // jwks_uri from discovery
}

// New builds a key set. Inline keys (Issuer.JWKS) are loaded synchronously;
// New never touches the network.
func New(opts Options) (*KeySet, error) {
	iss := opts.Issuer
	switch {
	case opts.Metrics == nil:
		return nil, errors.New("jwks: metrics are required")
	case opts.Logger == nil:
		return nil, errors.New("jwks: logger is required")
	case len(iss.Algorithms) == 0:
		return nil, fmt.Errorf("jwks: issuer %q allows no algorithms", iss.Name)
	case iss.Fetch.Timeout.Duration <= 0 || iss.Fetch.MaxBytes <= 0:
		return nil, fmt.Errorf("jwks: issuer %q fetch settings are not defaulted", iss.Name)
	}
	k := &KeySet{
		name:      iss.Name,
		issuerURL: iss.IssuerURL,
		jwksURL:   iss.JWKSURL,
		discovery: iss.JWKSURL == "" && iss.Discovery != nil && *iss.Discovery,
		fetch:     iss.Fetch,
		now:       opts.Now,
		metrics:   opts.Metrics,
		log:       opts.Logger,
		tracer:    opts.Tracer,
	}
	if k.now == nil {
		k.now = time.Now
	}
	for _, a := range iss.Algorithms {
		k.algs = append(k.algs, jose.SignatureAlgorithm(a))
	}
	var roots *x509.CertPool
	if iss.CABundle != "" {
		b, err := cabundle.Parse(iss.CABundle)
		if err != nil {
			return nil, fmt.Errorf("jwks: issuer %q: %w", iss.Name, err)
		}
		roots = b.Pool
	}
	client, err := newClient(opts.HTTPClient, iss.Fetch.Timeout.Duration, roots, opts.FetchPolicy)
	if err != nil {
		return nil, fmt.Errorf("jwks: issuer %q: %w", iss.Name, err)
	}
	k.client = client
	if iss.JWKS != nil {
		keys, dropped := k.usableKeys(iss.JWKS.Keys)
		if dropped > 0 {
			k.log.Warn("jwks: dropped unusable inline keys", "issuer", k.name, "dropped", dropped)
		}
		if len(keys) == 0 && !k.hasRemote() {
			return nil, fmt.Errorf("jwks: issuer %q: inline key set: %w", iss.Name, ErrNoKeys)
		}
		k.inline = keys
		if len(keys) > 0 {
			k.loadedAt = k.now()
			k.metrics.JWKSLastSuccess.WithLabelValues(k.name).Set(float64(k.loadedAt.Unix()))
		}
	} else if !k.hasRemote() {
		return nil, fmt.Errorf("jwks: issuer %q has no key source (jwks, jwksURL or discovery)", iss.Name)
	}
	k.metrics.SetKeySource(k.name, k.KeyStats)
	return k, nil
}

func (k *KeySet) hasRemote() bool { return k.jwksURL != "" || k.discovery }

// current returns the remote keys if they are fresh enough to use.
func (k *KeySet) current(now time.Time) (remote []jose.JSONWebKey, stale bool) {
	r := k.remote.Load()
	if r == nil {
		return nil, false
	}
	if now.Sub(r.fetched) > k.fetch.MaxStaleness.Duration {
		return nil, true
	}
	return r.keys, false
}

// usable reports whether any key can verify a token at now.
func (k *KeySet) usable(now time.Time) bool {
	if len(k.inline) > 0 {
		return true
	}
	remote, _ := k.current(now)
	return len(remote) > 0
}

// HasKey reports whether a usable key (inline, or remote and not stale)
// with key id kid is loaded right now; for kid "" whether any usable key
// is. It does no I/O, never starts a fetch and does not allocate. A known
// kid says nothing about the token's algorithm or signature.
func (k *KeySet) HasKey(kid string) bool {
	remote, _ := k.current(k.now())
	if kid == "" {
		return len(k.inline)+len(remote) > 0
	}
	for _, set := range [2][]jose.JSONWebKey{k.inline, remote} {
		for i := range set {
			if set[i].KeyID == kid {
				return true
			}
		}
	}
	return false
}

// KeyStats reports the key set for the metrics read at scrape time
// (metrics.SetKeySource): usable keys now, how many of them are inline,
// and the age of the keys in use.
func (k *KeySet) KeyStats() metrics.KeyStats {
	remote, _ := k.current(k.now())
	st := metrics.KeyStats{Usable: len(k.inline) + len(remote), Inline: len(k.inline)}
	st.Age, st.HasAge = k.keyAge()
	return st
}

// keyAge reports the age of the keys in use for the key-age metric.
func (k *KeySet) keyAge() (float64, bool) {
	if r := k.remote.Load(); r != nil {
		return k.now().Sub(r.fetched).Seconds(), true
	}
	if len(k.inline) > 0 {
		return 0, true // inline keys never age
	}
	return 0, false
}

// Status reports the key set's state.
func (k *KeySet) Status() Status {
	now := k.now()
	remote, stale := k.current(now)
	st := Status{Keys: len(k.inline) + len(remote), Stale: stale, Remote: k.hasRemote(), LastSuccess: k.loadedAt}
	if r := k.remote.Load(); r != nil {
		st.LastSuccess = r.fetched
		st.MaxAge, st.HasMaxAge = r.life.maxAge, r.life.known
	}
	k.mu.Lock()
	st.LastError = k.lastError
	k.mu.Unlock()
	return st
}

// Refresh fetches the remote key set now, ignoring the cooldown, or joins a
// fetch already running. It waits at most until ctx is done. Without a
// remote source it does nothing.
func (k *KeySet) Refresh(ctx context.Context) error {
	if !k.hasRemote() {
		return nil
	}
	k.mu.Lock()
	f := k.inflight
	if f == nil {
		f = k.startLocked(ctx)
	}
	k.mu.Unlock()
	return f.wait(ctx)
}

// refetch is Refresh for token-triggered fetches: it joins a running fetch
// or starts one if the refetch limit admits it, else returns ErrCooldown.
func (k *KeySet) refetch(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("refetch keys: %w", err)
	}
	k.mu.Lock()
	f := k.inflight
	if f == nil {
		if !k.admitLocked(k.now()) {
			k.mu.Unlock()
			k.metrics.JWKSRefetchSuppressed.WithLabelValues(k.name).Inc()
			return ErrCooldown
		}
		f = k.startLocked(ctx)
	}
	k.mu.Unlock()
	return f.wait(ctx)
}

// admitLocked applies the refetch limit to a token-triggered fetch at now:
// with usable keys, at most refetchBurst per RefreshCooldown window;
// without, one when no fetch started in the last coldRefetchGap. k.mu must
// be held.
func (k *KeySet) admitLocked(now time.Time) bool {
	if !k.usable(now) {
		return k.lastStart.IsZero() || now.Sub(k.lastStart) >= coldRefetchGap
	}
	return k.burst.admit(now, k.fetch.RefreshCooldown.Duration)
}

// startLocked starts a fetch detached from ctx's cancellation, so one
// caller giving up does not fail the others; the fetch is bounded by the
// fetch timeout. k.mu must be held.
func (k *KeySet) startLocked(ctx context.Context) *flight {
	f := &flight{done: make(chan struct{})}
	k.inflight = f
	k.lastStart = k.now()
	fctx := context.WithoutCancel(ctx)
	go func() {
		err := k.fetchAndStore(fctx)
		k.mu.Lock()
		k.inflight = nil
		k.mu.Unlock()
		f.err = err
		close(f.done)
	}()
	return f
}

func (f *flight) wait(ctx context.Context) error {
	f.waiters.Add(1)
	defer f.waiters.Add(-1)
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("wait for key fetch: %w", ctx.Err())
	}
}

// fetchAndStore fetches and, on success, replaces the remote set.
func (k *KeySet) fetchAndStore(ctx context.Context) error {
	ctx, span := k.startFetch(ctx)
	keys, life, err := k.fetchKeys(ctx)
	endFetch(span, len(keys), err)
	if err != nil {
		k.metrics.JWKSFetches.WithLabelValues(k.name, "error").Inc()
		k.mu.Lock()
		k.lastError = err.Error()
		k.mu.Unlock()
		k.log.Warn("jwks: key fetch failed, keeping the last good keys", "issuer", k.name, "error", err)
		return err
	}
	now := k.now()
	k.remote.Store(&remoteKeys{keys: keys, fetched: now, life: life})
	k.mu.Lock()
	k.lastError = ""
	k.mu.Unlock()
	k.metrics.JWKSFetches.WithLabelValues(k.name, "success").Inc()
	k.metrics.JWKSLastSuccess.WithLabelValues(k.name).Set(float64(now.Unix()))
	k.log.Debug("jwks: keys refreshed", "issuer", k.name, "keys", len(keys))
	return nil
}

// Run refreshes the remote set every Fetch.RefreshInterval until ctx is
// done. Without inline keys it fetches at once. After a failure it retries
// after the cooldown while usable keys remain, and with a backoff from
// 100-200 ms up to 1 s (jittered) while none does. Without a remote source
// it only waits for ctx.
func (k *KeySet) Run(ctx context.Context) {
	if !k.hasRemote() {
		<-ctx.Done()
		return
	}
	wait := k.fetch.RefreshInterval.Duration
	if len(k.inline) == 0 {
		wait = 0
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	cold := 0 // consecutive refreshes that left no usable key
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		wait, cold = k.nextRefresh(k.Refresh(ctx), cold)
		timer.Reset(wait)
	}
}

// nextRefresh returns the wait before Run's next refresh given the last
// one's error and how many refreshes in a row left no usable key, and the
// new count.
func (k *KeySet) nextRefresh(err error, cold int) (time.Duration, int) {
	interval := k.fetch.RefreshInterval.Duration
	switch {
	case !k.usable(k.now()):
		return coldBackoff(cold, rand.Int64N), cold + 1
	case err != nil:
		return min(k.fetch.RefreshCooldown.Duration, interval), 0
	default:
		return interval, 0
	}
}
