package certs

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults for Options.
const (
	DefaultCAValidity     = 10 * 365 * 24 * time.Hour
	DefaultCertValidity   = 365 * 24 * time.Hour
	DefaultCheckInterval  = time.Hour
	DefaultControllerName = "webhook-cert-rotator"
)

// Options configure the rotator. Zero values take the defaults.
type Options struct {
	// Namespace is the controller's namespace; it holds the Secret.
	Namespace string
	// SecretName names the Secret holding ca.crt, ca.key, tls.crt and
	// tls.key. It must exist (the chart and config/ ship it empty): the
	// rotator only updates it.
	SecretName string
	// ServiceName is the webhook Service. The serving certificate carries
	// the DNS names <svc>.<ns>.svc (the one the API server checks), <svc>,
	// <svc>.<ns> and <svc>.<ns>.svc.cluster.local.
	ServiceName string
	// WebhookConfigName is the MutatingWebhookConfiguration whose every
	// webhook's clientConfig.caBundle receives ca.crt.
	WebhookConfigName string
	// CertDir is the webhook server's certificate directory, where the
	// pod's Secret volume puts tls.crt and tls.key.
	CertDir string

	// CAValidity and CertValidity are the lifetimes of a new CA (default
	// 10y) and of a new serving certificate (default 1y).
	CAValidity, CertValidity time.Duration
	// RenewBefore: the serving certificate, and the CA, are issued anew
	// when less than this remains of them. Default CertValidity/3.
	RenewBefore time.Duration
	// CheckInterval is how often the Secret is checked besides its watch
	// events. Default 1h.
	CheckInterval time.Duration
	// ControllerName names the rotator's controller; controller-runtime
	// wants it unique in the process. Default "webhook-cert-rotator".
	ControllerName string
	// Logger receives what this package logs (the rotator logs through
	// controller-runtime's logger); nil uses slog.Default().
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
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.ControllerName == "" {
		o.ControllerName = DefaultControllerName
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate checks the options as Add would use them (defaults applied),
// without side effects.
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
	if o.CAValidity < 0 || o.CertValidity < 0 || o.RenewBefore < 0 || o.CheckInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	// A lifetime not above RenewBefore would be renewed at every check.
	if o.RenewBefore >= o.CertValidity {
		errs = append(errs, fmt.Errorf("renew before (%s) must be less than the certificate validity (%s)", o.RenewBefore, o.CertValidity))
	}
	if o.CertValidity > o.CAValidity {
		errs = append(errs, fmt.Errorf("certificate validity (%s) must not exceed the CA validity (%s)", o.CertValidity, o.CAValidity))
	}
	return errors.Join(errs...)
}

// dnsNames are the serving certificate's names, the one the API server
// checks first.
func (o *Options) dnsNames() []string {
	s, ns := o.ServiceName, o.Namespace
	return []string{s + "." + ns + ".svc", s, s + "." + ns, s + "." + ns + ".svc.cluster.local"}
}
