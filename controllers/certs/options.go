package certs

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Defaults for Options.
const (
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultCertValidity  = 365 * 24 * time.Hour
	DefaultCheckInterval = time.Hour
)

// Options configure a Manager. Zero durations take the defaults.
type Options struct {
	// Namespace is the controller's namespace; it holds the Secret.
	Namespace string
	// SecretName names the Secret (type kubernetes.io/tls) holding tls.crt,
	// tls.key, ca.crt (every CA still trusted, newest first: the caBundle)
	// and ca.key (the newest CA's key).
	SecretName string
	// ServiceName is the webhook Service. The serving certificate carries
	// the DNS names <svc>, <svc>.<ns>, <svc>.<ns>.svc and
	// <svc>.<ns>.svc.cluster.local.
	ServiceName string
	// WebhookConfigName is the MutatingWebhookConfiguration whose every
	// webhook's clientConfig.caBundle receives ca.crt. It must exist.
	WebhookConfigName string
	// CertDir receives tls.crt, tls.key and ca.crt (written atomically,
	// and only when they changed).
	CertDir string

	// CAValidity and CertValidity are the lifetimes of a new CA (default
	// 10y) and a new serving certificate (default 1y; never past its CA).
	CAValidity, CertValidity time.Duration
	// RenewBefore: the serving certificate is re-issued when less than
	// this remains. Default CertValidity/3.
	RenewBefore time.Duration
	// CARenewBefore: a new CA is created when less than this remains of
	// the newest one. Default CAValidity/3. Must exceed RenewBefore +
	// CAOverlap, so the serving certificate moves to the new CA before
	// the old one's end forces a renewal.
	CARenewBefore time.Duration
	// CAOverlap is how long a new CA is trusted (published in the
	// caBundle next to the old one) before the serving certificate is
	// signed by it. Default CheckInterval.
	CAOverlap time.Duration
	// CheckInterval is the period of Start's Ensure. Default 1h.
	CheckInterval time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Client writes the Secret and the webhook configuration, and reads
	// them when APIReader is nil.
	Client client.Client
	// APIReader reads the Secret and the webhook configuration; nil uses
	// Client. With the manager's cached client as Client, pass
	// mgr.GetAPIReader(): that cache holds only labelled Secrets.
	APIReader client.Reader
	// Logger receives issuance and errors (never key material); nil uses
	// slog.Default().
	Logger *slog.Logger
}

// withDefaults returns a copy with zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = o.CertValidity / 3
	}
	if o.CARenewBefore == 0 {
		o.CARenewBefore = o.CAValidity / 3
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.CAOverlap == 0 {
		o.CAOverlap = o.CheckInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.APIReader == nil && o.Client != nil {
		o.APIReader = o.Client
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate checks the options as New would use them (defaults applied),
// without side effects. Client is not checked: flags cannot set it; New
// requires it.
func (o Options) Validate() error {
	d := o.withDefaults()
	return d.validate()
}

// validate checks defaulted options.
func (o *Options) validate() error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"namespace", o.Namespace}, {"secret name", o.SecretName}, {"service name", o.ServiceName},
		{"webhook configuration name", o.WebhookConfigName}, {"cert dir", o.CertDir},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		}
	}
	if o.CAValidity < 0 || o.CertValidity < 0 || o.RenewBefore < 0 || o.CARenewBefore < 0 || o.CAOverlap < 0 || o.CheckInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if o.RenewBefore >= o.CertValidity {
		errs = append(errs, fmt.Errorf("renew before (%s) must be less than the certificate validity (%s)", o.RenewBefore, o.CertValidity))
	}
	if o.CARenewBefore >= o.CAValidity {
		errs = append(errs, fmt.Errorf("CA renew before (%s) must be less than the CA validity (%s)", o.CARenewBefore, o.CAValidity))
	}
	if o.CARenewBefore <= o.RenewBefore+o.CAOverlap {
		errs = append(errs, fmt.Errorf("CA renew before (%s) must exceed renew before (%s) plus CA overlap (%s)", o.CARenewBefore, o.RenewBefore, o.CAOverlap))
	}
	return errors.Join(errs...)
}

// dnsNames are the serving certificate's subject alternative names.
func (o *Options) dnsNames() []string {
	s, ns := o.ServiceName, o.Namespace
	return []string{s, s + "." + ns, s + "." + ns + ".svc", s + "." + ns + ".svc.cluster.local"}
}
