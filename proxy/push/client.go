package push

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/internal/pushapi"
)

// healthyStream is how long a stream must stay up for the reconnect
// backoff to start again from MinBackoff.
const healthyStream = 30 * time.Second

// errorBodyTimeout bounds reading the body of a refused watch.
const errorBodyTimeout = 2 * time.Second

// errToken marks a token file that cannot be used.
var errToken = errors.New("bearer token")

// Client holds the sidecar's watch stream to the controller's push server,
// applies what it delivers and acknowledges what the proxy enforces.
type Client struct {
	opts Options
	base *url.URL
	log  *slog.Logger
	m    *Metrics

	// acks holds a pending acknowledgement request (capacity 1: requests
	// coalesce; the ack sent reports what is enforced when it is sent).
	acks      chan struct{}
	connected atomic.Bool
	running   atomic.Bool

	mu       sync.Mutex // held across Apply
	pushHash string     // Hash of the last Update this client applied
}

// New returns a client; nothing connects until Run. It validates the
// options and reads no file: a missing CA or token file is a failed
// connect, retried, never a failed start.
func New(o Options) (*Client, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	base, err := o.baseURL()
	if err != nil {
		return nil, err
	}
	return &Client{
		opts: o,
		base: base,
		log:  o.Logger,
		m:    o.Metrics,
		acks: make(chan struct{}, 1),
	}, nil
}

// Connected reports whether the watch stream is up.
func (c *Client) Connected() bool { return c.connected.Load() }

// Notify tells the client that what the proxy enforces changed by other
// means (the file loader activated a bundle), so it acknowledges the new
// state while the stream is up. It never blocks; calls coalesce.
func (c *Client) Notify() { c.requestAck() }

func (c *Client) requestAck() {
	select {
	case c.acks <- struct{}{}:
	default:
	}
}

// Run connects, applies and acknowledges until ctx is done, reconnecting
// with backoff; it returns when ctx is done and its goroutines ended. Run
// is called once; a concurrent second call returns at once.
func (c *Client) Run(ctx context.Context) {
	if !c.running.CompareAndSwap(false, true) {
		c.log.Error("push client already running")
		return
	}
	defer c.running.Store(false)
	bo := c.newBackoff()
	for ctx.Err() == nil {
		s := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if s.healthy {
			bo.reset()
		}
		wait := bo.next()
		if unauthorized(s.err) {
			wait = bo.slow()
		}
		wait = bo.atLeast(wait, retryAfterOf(s.err))
		c.logEnd(ctx, s, wait)
		sleep(ctx, wait)
	}
}

func (c *Client) newBackoff() *backoff {
	return &backoff{min: c.opts.MinBackoff, max: c.opts.MaxBackoff, int63n: rand.Int64N}
}

// sessionEnd is how one connection ended.
type sessionEnd struct {
	err       error
	level     slog.Level
	connected bool // the watch was answered 200 over HTTP/2
	updates   int  // intact updates received
	healthy   bool // resets the backoff
}

// session runs one connection: transport, watch, stream, acks.
func (c *Client) session(ctx context.Context) sessionEnd {
	rt, done, err := c.transport()
	if err != nil {
		c.m.connects.WithLabelValues(resultError).Inc()
		return sessionEnd{err: err, level: slog.LevelError}
	}
	defer done()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.watch(sctx, rt)
	if err != nil {
		return c.connectFailed(err)
	}
	defer resp.Body.Close()
	start := c.opts.Now()
	c.m.connects.WithLabelValues(resultOK).Inc()
	c.setConnected(true)
	defer c.setConnected(false)
	c.log.Info("push stream connected", slog.String("url", c.base.String()))

	var acks sync.WaitGroup
	acks.Go(func() { c.ackLoop(sctx, rt) })
	c.requestAck()
	updates, err := c.read(ctx, resp.Body)
	cancel()
	acks.Wait()
	level := slog.LevelWarn
	if errors.Is(err, errStreamClosed) {
		level = slog.LevelInfo
	}
	return sessionEnd{
		err: err, level: level, connected: true, updates: updates,
		healthy: updates > 0 || c.opts.Now().Sub(start) >= healthyStream,
	}
}

// connectFailed counts a watch that did not start and says how loudly to
// log it: an error when an operator must act (token, 401/403, HTTP/1, a
// certificate the CA file does not verify), a warning when the controller
// is down or failing (that recovers by itself).
func (c *Client) connectFailed(err error) sessionEnd {
	var (
		re *responseError
		cv *tls.CertificateVerificationError
	)
	switch {
	case unauthorized(err):
		c.m.connects.WithLabelValues(resultUnauthorized).Inc()
		return sessionEnd{err: err, level: slog.LevelError}
	case errors.Is(err, errToken), errors.As(err, &cv), errors.As(err, &re) && re.status == http.StatusOK:
		c.m.connects.WithLabelValues(resultError).Inc()
		return sessionEnd{err: err, level: slog.LevelError}
	default:
		c.m.connects.WithLabelValues(resultError).Inc()
		return sessionEnd{err: err, level: slog.LevelWarn}
	}
}

// logEnd logs why there is no stream now and when the next attempt is.
func (c *Client) logEnd(ctx context.Context, s sessionEnd, wait time.Duration) {
	attrs := []slog.Attr{
		slog.String("url", c.base.String()), slog.String("error", s.err.Error()),
		slog.Bool("was_connected", s.connected), slog.Int("updates", s.updates),
		slog.Duration("retry_in", wait),
	}
	var re *responseError
	if errors.As(s.err, &re) {
		attrs = append(attrs, slog.Int("status", re.status), slog.String("proto", re.proto), slog.String("body", re.body))
	}
	msg := "push stream unavailable; the proxy keeps enforcing its configuration and the mounted file still applies"
	if s.connected {
		msg = "push stream ended; the proxy keeps enforcing its configuration and the mounted file still applies"
	}
	c.log.LogAttrs(ctx, s.level, msg, attrs...)
}

func (c *Client) setConnected(up bool) {
	c.connected.Store(up)
	if up {
		c.m.connected.Set(1)
	} else {
		c.m.connected.Set(0)
	}
}

// transport returns the round tripper of one connection and what to call
// when the connection is done with.
func (c *Client) transport() (http.RoundTripper, func(), error) {
	if c.opts.Transport != nil {
		return c.opts.Transport, func() {}, nil
	}
	serverName := c.opts.ServerName
	if serverName == "" {
		serverName = c.base.Hostname()
	}
	t, err := newTransport(c.opts.CAFile, c.opts.CA, serverName, c.opts.PingTimeout)
	if err != nil {
		return nil, nil, err
	}
	return t, t.CloseIdleConnections, nil
}

// watch sends the watch request and returns its response when it is a 200
// over HTTP/2.
func (c *Client) watch(ctx context.Context, rt http.RoundTripper) (*http.Response, error) {
	u := c.base.JoinPath(pushapi.WatchPath)
	if ack, ok := c.opts.Applier.Enforced(); ok {
		u.RawQuery = url.Values{
			pushapi.QueryRevision: {strconv.FormatInt(ack.Revision, 10)},
			pushapi.QueryHash:     {ack.Hash},
		}.Encode()
	}
	rctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch request: %w", err)
	}
	token, err := c.authorize(req)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	// RoundTrip, not a Client: a redirect is a failure, never followed.
	resp, err := rt.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch: %w", err)
	}
	if resp.StatusCode == http.StatusOK && resp.ProtoMajor == 2 {
		resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	}
	defer cancel()
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		// A stream over HTTP/1: its body never ends; not read.
		return nil, &responseError{status: resp.StatusCode, proto: resp.Proto}
	}
	// The body of a refusal is read for the log, for a bounded time.
	timer := time.AfterFunc(errorBodyTimeout, cancel)
	defer timer.Stop()
	return nil, newResponseError(resp, token)
}

// cancelOnClose ends its request's context when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// authorize sets the bearer token, read from the file now, and returns it.
func (c *Client) authorize(req *http.Request) (string, error) {
	token, err := readToken(c.opts.TokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errToken, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return token, nil
}

// enforced is what to acknowledge: Applier.Enforced() with its Source. It
// waits for an Apply in progress (c.mu is held across it), so a bundle the
// push activated is never reported before it is known to be the push's.
func (c *Client) enforced() (pushapi.Ack, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ack, ok := c.opts.Applier.Enforced()
	ack.Source = pushapi.SourceFile
	if ack.Hash != "" && ack.Hash == c.pushHash {
		ack.Source = pushapi.SourcePush
	}
	return ack, ok
}

// applyUpdate runs Apply and records the hash of what it activated.
func (c *Client) applyUpdate(ctx context.Context, u pushapi.Update) (Outcome, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	outcome, err := c.opts.Applier.Apply(ctx, u.Data)
	if outcome == Applied {
		c.pushHash = u.Hash
	}
	return outcome, err
}
