// Package sharedlimit keeps rate-limit buckets in Redis, so that a limit
// holds across every replica of a function: the sidecars of all replicas
// charge the same bucket. The algorithm is go-redis/redis_rate's GCRA (one
// Lua script per decision, evaluated atomically by Redis on Redis's own
// clock), which gives the same answers as a token bucket of the same rate
// and burst.
//
// Redis is never allowed to hang a request: every call waits at most the
// backend's timeout (a few milliseconds), makes no retries, and a circuit
// breaker (sony/gobreaker) stops calling Redis for a while after repeated
// failures. When Redis cannot answer, a Rule does what its limit chose:
// fall back to this replica's own buckets, or refuse (the gateway answers
// 503).
package sharedlimit

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/authgate/authgate/proxy/metrics"
	"github.com/authgate/authgate/proxy/ratelimit"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one Redis call, connection wait included.
	DefaultTimeout = 5 * time.Millisecond
	// DefaultBreakerFailures consecutive failures open the breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerOpen is how long an open breaker makes no call before
	// it lets one probe through.
	DefaultBreakerOpen = 2 * time.Second
	// DefaultKeyPrefix starts every key the proxy writes.
	DefaultKeyPrefix = "authgate:"
	// maxPasswordBytes bounds a password file.
	maxPasswordBytes = 4096
	// maxInterval is the slowest refill: one token a year.
	maxInterval = 365 * 24 * time.Hour
)

// Options configure the connection to Redis.
type Options struct {
	// Address is host:port, or a unix socket path when Network is "unix".
	Address string
	// Network is "tcp" (default) or "unix".
	Network string
	// Username for Redis ACL AUTH (Redis 6+); empty uses the default user.
	Username string
	// PasswordFile holds the AUTH password; re-read at every new
	// connection, so a rotated Secret takes effect without a restart.
	PasswordFile string
	// DB is the database number.
	DB int
	// TLS, when set, connects with TLS.
	TLS *tls.Config
	// Timeout bounds each call (DefaultTimeout when 0).
	Timeout time.Duration
	// KeyPrefix starts every key (DefaultKeyPrefix when empty); the
	// injector sets one per namespace.
	KeyPrefix string
	// BreakerFailures consecutive failures open the breaker
	// (DefaultBreakerFailures when 0).
	BreakerFailures int
	// BreakerOpen is how long the breaker stays open (DefaultBreakerOpen
	// when 0).
	BreakerOpen time.Duration
	// PoolSize bounds the connections; 0 is go-redis's default (10 per CPU).
	PoolSize int
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
}

// Backend is a Redis connection pool shared by every Rule of a proxy. A nil
// *Backend is a proxy with no Redis configured: every shared limit is
// unavailable and falls back as it chose.
type Backend struct {
	client  *redis.Client
	limiter *redis_rate.Limiter
	breaker *gobreaker.CircuitBreaker[*redis_rate.Result]
	timeout time.Duration
	prefix  string
	metrics *metrics.Metrics
	logger  *slog.Logger
}

// redisLog sends go-redis's own log lines (a failed dial, a pool error) to
// slog at debug level: failures are counted and the breaker's changes
// logged at warn, so a down Redis does not write a line per request.
type redisLog struct{ logger *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
}

var setLogger sync.Once

// errUnconfigured is the answer of a nil Backend.
var errUnconfigured = errors.New("no Redis configured (--redis-address)")

// New returns a Backend for o. It does not connect: connections are made
// when needed (and kept), so a Redis that is down at start is only
// unavailable, never a reason not to start.
func New(o Options) (*Backend, error) {
	if o.Address == "" {
		return nil, errors.New("sharedlimit: an address is required")
	}
	switch o.Network {
	case "":
		o.Network = "tcp"
	case "tcp", "unix":
	default:
		return nil, fmt.Errorf("sharedlimit: network must be tcp or unix, got %q", o.Network)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("sharedlimit: timeout must be positive, got %s", o.Timeout)
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerOpen <= 0 {
		o.BreakerOpen = DefaultBreakerOpen
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PasswordFile != "" {
		if _, err := readPassword(o.PasswordFile); err != nil {
			// Not fatal: the Secret may be projected late. Every connection
			// tries again; until then Redis refuses and limits fall back.
			o.Logger.Warn("redis password file unreadable; shared limits fall back until it is", "file", o.PasswordFile, "error", err)
		}
	}
	setLogger.Do(func() { redis.SetLogger(redisLog{o.Logger}) })
	ro := &redis.Options{
		Network: o.Network, Addr: o.Address, DB: o.DB, TLSConfig: o.TLS,
		// The request's context bounds every call; no retries, and one dial
		// attempt, so an unreachable Redis costs one timeout, not five.
		ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		PoolTimeout: o.Timeout, PoolSize: o.PoolSize,
		// One connection is kept open in the background (dialled with
		// DialTimeout, outside any request), so a request rarely pays for
		// a dial, DNS and AUTH within its few milliseconds.
		MinIdleConns: 1,
		// CLIENT SETINFO costs a round trip per connection for nothing here.
		DisableIdentity: true,
		Protocol:        2,
	}
	if o.PasswordFile != "" || o.Username != "" {
		user, file, logger := o.Username, o.PasswordFile, o.Logger
		ro.CredentialsProvider = func() (string, string) {
			if file == "" {
				return user, ""
			}
			pw, err := readPassword(file)
			if err != nil {
				logger.Warn("redis password file unreadable", "file", file, "error", err)
			}
			return user, pw
		}
	}
	b := &Backend{
		client: redis.NewClient(ro), timeout: o.Timeout, prefix: o.KeyPrefix,
		metrics: o.Metrics, logger: o.Logger,
	}
	b.limiter = redis_rate.NewLimiter(b.client)
	failures := uint32(o.BreakerFailures)
	b.breaker = gobreaker.NewCircuitBreaker[*redis_rate.Result](gobreaker.Settings{
		Name:        "redis",
		Timeout:     o.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A request its client gave up on says nothing about Redis.
		IsExcluded:    func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: b.stateChanged,
	})
	return b, nil
}

// Close closes the connections.
func (b *Backend) Close() error {
	if b == nil {
		return nil
	}
	return b.client.Close()
}

// Ping checks that Redis answers (for startup logs and tests).
func (b *Backend) Ping(ctx context.Context) error {
	if b == nil {
		return errUnconfigured
	}
	return b.client.Ping(ctx).Err()
}

func (b *Backend) stateChanged(_ string, from, to gobreaker.State) {
	v := 0.0
	switch to {
	case gobreaker.StateOpen:
		v = 1
	case gobreaker.StateHalfOpen:
		v = 0.5
	case gobreaker.StateClosed:
	}
	if b.metrics != nil {
		b.metrics.LimitBackendBreakerState.Set(v)
	}
	b.logger.Warn("redis circuit breaker changed state", "from", from.String(), "to", to.String())
}

// call runs one GCRA decision for n tokens (0 reads the bucket) within the
// timeout and through the breaker.
func (b *Backend) call(ctx context.Context, key string, lim redis_rate.Limit, n int) (*redis_rate.Result, error) {
	res, err := b.breaker.Execute(func() (*redis_rate.Result, error) {
		ctx, cancel := context.WithTimeout(ctx, b.timeout)
		defer cancel()
		start := time.Now()
		res, err := b.limiter.AllowN(ctx, key, lim, n)
		if b.metrics != nil {
			b.metrics.LimitBackendDuration.Observe(time.Since(start).Seconds())
		}
		return res, err
	})
	if b.metrics != nil {
		b.metrics.LimitBackendCalls.WithLabelValues(callResult(err)).Inc()
	}
	return res, err
}

func callResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return "breaker_open"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timeout"
	default:
		return "error"
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Rule is one shared limit: a rate and burst under a name, with the local
// limiter it falls back to. It is safe for concurrent use.
type Rule struct {
	backend  *Backend
	name     string // the key space: limit identity, rate and burst
	limit    redis_rate.Limit
	burst    int
	local    *ratelimit.Limiter
	deny     bool
	interval time.Duration // GCRA emission interval: one token's refill
	metrics  *metrics.Metrics
}

// RuleOptions describe one shared limit.
type RuleOptions struct {
	// Name identifies the limit (where it is configured, its key kind);
	// the rate and burst are added, so a changed limit starts fresh
	// buckets, as local limits do.
	Name string
	// RequestsPerSecond and Burst size the bucket.
	RequestsPerSecond float64
	Burst             int
	// Local is this replica's limiter of the same rule, used while Redis
	// cannot answer unless Deny.
	Local *ratelimit.Limiter
	// Deny refuses while Redis cannot answer instead of using Local.
	Deny bool
	// Metrics counts fallbacks; the Backend's when nil.
	Metrics *metrics.Metrics
}

// NewRule returns a limit kept in b (b may be nil: no Redis configured).
func NewRule(b *Backend, o RuleOptions) *Rule {
	burst := max(o.Burst, 1)
	// Validation keeps rates positive and finite; a rate too small to
	// refill within a year is held at one token a year.
	interval := maxInterval
	if secs := 1 / o.RequestsPerSecond; o.RequestsPerSecond > 0 && secs < maxInterval.Seconds() {
		interval = max(time.Duration(secs*float64(time.Second)), time.Nanosecond)
	}
	m := o.Metrics
	if m == nil && b != nil {
		m = b.metrics
	}
	prefix := DefaultKeyPrefix
	if b != nil {
		prefix = b.prefix
	}
	name := prefix + o.Name + ":" + strconv.FormatFloat(o.RequestsPerSecond, 'g', -1, 64) + ":" + strconv.Itoa(burst) + ":"
	return &Rule{
		backend: b, name: name, burst: burst, local: o.Local, deny: o.Deny, interval: interval, metrics: m,
		// One token per emission interval: redis_rate computes the interval
		// as Period/Rate, so a fractional rate needs no rounding.
		limit: redis_rate.Limit{Rate: 1, Period: interval, Burst: burst},
	}
}

// Decision is a Rule's answer.
type Decision struct {
	// Allowed is true when the request may proceed.
	Allowed bool
	// RetryAfter is how long until a token is available, when not Allowed.
	RetryAfter time.Duration
	// Unavailable is true when Redis could not answer and the limit denies
	// then: the request is refused with 503, not 429.
	Unavailable bool
}

// Allow takes one token from key's bucket.
func (r *Rule) Allow(ctx context.Context, key string) Decision {
	res, err := r.call(ctx, key, 1)
	if err != nil {
		return r.fallback(func() Decision {
			ok, retry := r.local.Allow(key)
			return Decision{Allowed: ok, RetryAfter: retry}
		})
	}
	if res.Allowed > 0 {
		return Decision{Allowed: true}
	}
	return Decision{RetryAfter: max(res.RetryAfter, time.Millisecond)}
}

// Blocked reports, without taking a token, whether Allow would refuse key
// now (the auth-failure throttle: Blocked before authenticating, Allow on
// a failure).
func (r *Rule) Blocked(ctx context.Context, key string) Decision {
	res, err := r.call(ctx, key, 0)
	if err != nil {
		return r.fallback(func() Decision {
			blocked, retry := r.local.Blocked(key)
			return Decision{Allowed: !blocked, RetryAfter: retry}
		})
	}
	// With no token taken, ResetAfter is how far the bucket is from full:
	// fewer than one token is left once that exceeds burst-1 intervals.
	short := res.ResetAfter - time.Duration(r.burst-1)*r.interval
	if short > 0 {
		return Decision{RetryAfter: short}
	}
	return Decision{Allowed: true}
}

func (r *Rule) call(ctx context.Context, key string, n int) (*redis_rate.Result, error) {
	if r.backend == nil {
		if r.metrics != nil {
			r.metrics.LimitBackendCalls.WithLabelValues("unconfigured").Inc()
		}
		return nil, errUnconfigured
	}
	return r.backend.call(ctx, r.key(key), r.limit, n)
}

func (r *Rule) fallback(local func() Decision) Decision {
	action := "local"
	if r.deny || r.local == nil {
		action = "deny"
	}
	if r.metrics != nil {
		r.metrics.LimitBackendFallbacks.WithLabelValues(action).Inc()
	}
	if action == "deny" {
		return Decision{Unavailable: true, RetryAfter: time.Second}
	}
	return local()
}

// key is the Redis key of one client's bucket: the rule's key space and the
// SHA-256 of the client key, so no address, subject or key name is stored
// in Redis as it is, and every key has the same bounded length.
func (r *Rule) key(k string) string {
	sum := sha256.Sum256([]byte(k))
	var sb strings.Builder
	sb.Grow(len(r.name) + base64.RawURLEncoding.EncodedLen(len(sum)))
	sb.WriteString(r.name)
	sb.WriteString(base64.RawURLEncoding.EncodeToString(sum[:]))
	return sb.String()
}

func readPassword(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open redis password file: %w", err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxPasswordBytes+1))
	if err != nil {
		return "", fmt.Errorf("read redis password file: %w", err)
	}
	if len(buf) > maxPasswordBytes {
		return "", fmt.Errorf("redis password file is longer than %d bytes", maxPasswordBytes)
	}
	return strings.TrimRight(string(buf), "\r\n"), nil
}
