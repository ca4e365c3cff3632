package push

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Defaults of Options.
const (
	DefaultMinBackoff = 200 * time.Millisecond
	// DefaultMaxBackoff bounds the reconnect delay: a leader change (the
	// old leader's pod gone, the new one labelled) must not leave sidecars
	// asleep for long; measured on the real node, a 30s cap made an update
	// wait for reconnects after a leader change. Jittered, 1000 sidecars
	// retrying every 5s at worst are 200 connections a second, which the
	// server's review cache and in-flight bound absorb.
	DefaultMaxBackoff  = 5 * time.Second
	DefaultPingTimeout = 15 * time.Second
)

// Options configure a Client.
type Options struct {
	// URL is the controller's push server, e.g.
	// https://authgate-push.authgate-system.svc:8443 (no query, no
	// fragment, no user info). It must be https unless Transport is set.
	URL string
	// CAFile is the PEM bundle of the CA that signed the controller's
	// serving certificate. It is read at every connect, so a rotated file
	// is picked up; it is not read by New (see the package doc).
	// One of CAFile and CA is required unless Transport is set.
	CAFile string
	// CA is the PEM CA bundle itself, instead of CAFile (the injector
	// passes it in the environment: the proxy's root filesystem is
	// read-only and no volume carries it).
	CA []byte
	// ServerName is the name the server's certificate is verified for;
	// empty: URL's host. The injector sets the webhook Service's name,
	// which the controller's serving certificate (shared with the
	// webhook) carries, while URL names the push Service.
	ServerName string
	// TokenFile is the projected ServiceAccount token for pushapi.Audience.
	// It is read at every connect and every ack (the kubelet rotates it).
	TokenFile string
	// Applier applies pushed bundles and says what is enforced. Required.
	Applier Applier
	// Metrics; nil: unregistered metrics of the client's own.
	Metrics *Metrics
	// Logger; nil: discard.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the reconnect delay (exponential,
	// with full jitter). Defaults DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// PingTimeout is the HTTP/2 liveness: a PING goes out after this long
	// without a frame from the server, and the connection is closed when
	// its answer does not come within it. Default DefaultPingTimeout.
	PingTimeout time.Duration
	// Transport replaces the transport built from CAFile at every connect;
	// for tests. The client never closes it.
	Transport http.RoundTripper
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// withDefaults returns o with its zero fields defaulted.
func (o Options) withDefaults() Options {
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate checks the options, zero fields taken as their defaults,
// without touching the files or the network.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if _, err := o.baseURL(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case o.CAFile == "" && len(o.CA) == 0 && o.Transport == nil:
		errs = append(errs, errors.New("push: CAFile or CA is required"))
	case o.CAFile != "" && len(o.CA) > 0:
		errs = append(errs, errors.New("push: set CAFile or CA, not both"))
	}
	if o.TokenFile == "" {
		errs = append(errs, errors.New("push: TokenFile is required"))
	}
	if o.Applier == nil {
		errs = append(errs, errors.New("push: Applier is required"))
	}
	if o.MinBackoff < 0 || o.MaxBackoff < o.MinBackoff {
		errs = append(errs, fmt.Errorf("push: backoff must satisfy 0 <= MinBackoff (%s) <= MaxBackoff (%s)", o.MinBackoff, o.MaxBackoff))
	}
	if o.PingTimeout < 0 {
		errs = append(errs, fmt.Errorf("push: PingTimeout %s is negative", o.PingTimeout))
	}
	return errors.Join(errs...)
}

// baseURL parses and checks URL.
func (o Options) baseURL() (*url.URL, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("push: URL: %w", err)
	}
	switch {
	case u.Scheme != "https" && (o.Transport == nil || u.Scheme != "http"):
		return nil, fmt.Errorf("push: URL %q: scheme must be https", o.URL)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("push: URL %q has no host", o.URL)
	case u.User != nil:
		return nil, fmt.Errorf("push: URL %q must not hold user info", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("push: URL %q must have no query or fragment", o.URL)
	}
	return u, nil
}
