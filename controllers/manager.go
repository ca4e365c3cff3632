package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/assertionkeys"
	"github.com/authgate/authgate/controllers/certs"
	"github.com/authgate/authgate/controllers/coverage"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/controllers/issuers"
	"github.com/authgate/authgate/controllers/netpol"
	"github.com/authgate/authgate/controllers/push"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/internal/assertionkey"
	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/proxy/config"
)

// Options configure the controller manager.
type Options struct {
	// MetricsAddr serves /metrics ("0" disables).
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz.
	ProbeAddr string
	// LeaderElection enables leader election (for more than one replica).
	LeaderElection bool
	// LeaderElectionNamespace holds the lease; empty uses the in-cluster namespace.
	LeaderElectionNamespace string
	// ReconcileWorkers is how many namespaces are reconciled at once (one
	// namespace is never reconciled twice at once); 0 means
	// DefaultReconcileWorkers, at most MaxReconcileWorkers.
	ReconcileWorkers int
	// MaxIssuersPerNamespace bounds the distinct issuers the policies of one
	// namespace may trust; a policy that would exceed it is refused
	// (IssuerLimitExceeded). 0 means DefaultMaxIssuersPerNamespace.
	MaxIssuersPerNamespace int
	// MaxConcurrentFetchesPerNamespace bounds the key refreshes charged to
	// one namespace at once (a refresh is charged to the least busy
	// namespace using the issuer). 0 means
	// issuers.DefaultMaxConcurrentFetchesPerNamespace.
	MaxConcurrentFetchesPerNamespace int
	// WatchNamespaces, when not empty, restricts the controller to these
	// namespaces: its caches list and watch only there (Secrets,
	// ConfigMaps, AuthPolicies), so it needs Roles there and no
	// cluster-wide read of them (charts/authgate watchNamespaces). Policies
	// elsewhere are not reconciled: they get no bundle and no status.
	WatchNamespaces []string
	// JWKS refresh bounds and fetch timeout.
	MinRefresh, MaxRefresh, DefaultRefresh, FetchTimeout time.Duration
	// MaxStaleness stops shipping an issuer's keys after this long without a
	// successful refresh (default 24h), so sidecars fail closed.
	MaxStaleness time.Duration
	// FetchPolicy decides which addresses the issuer key fetches (OIDC
	// discovery, JWKS, redirects) may connect to, checked on the resolved
	// address of every connection (internal/netguard); environment proxies
	// are not used for them. The zero Policy refuses loopback, link-local,
	// private and the other default ranges: an AuthPolicy author names the
	// URLs, and must not reach the metadata service or the cluster's
	// internals through the controller. There is no way around it: the
	// controller always fetches through the policy.
	FetchPolicy netguard.Policy
	// AssertionKeyRotation is how long an identity assertion key signs
	// before its successor (published assertionkey.DefaultLead earlier)
	// takes over; 0 means assertionkey.DefaultRotation.
	AssertionKeyRotation time.Duration
	// AssertionJWKSAddr serves GET /namespaces/{namespace}/jwks.json (the
	// public identity assertion keys); "" or "0" disables it.
	AssertionJWKSAddr string
	// Logger for the issuer manager.
	Logger *slog.Logger
	// Registerer for the controller's own metrics; nil uses
	// controller-runtime's registry (served on MetricsAddr).
	Registerer prometheus.Registerer
	// Tracer traces reconciles and issuer key fetches (docs/tracing.md);
	// nil: no spans.
	Tracer trace.Tracer
	// NetworkPolicies keeps a NetworkPolicy per AuthPolicy that admits
	// traffic to its injected pods on the sidecar's and the platform's
	// ports only (controllers/netpol); false removes the ones it wrote.
	NetworkPolicies bool
	// Injector, when set, serves the sidecar injection webhook.
	Injector *injector.Config
	// Push, when set, serves the push channel (needs Injector).
	Push *PushOptions
	// WebhookPort and WebhookCertDir configure the webhook server.
	WebhookPort    int
	WebhookCertDir string
	// WebhookCerts, when set, has the controller issue, rotate and publish
	// the webhook server's certificate through cert-controller (its own CA
	// in a Secret mounted at WebhookCertDir; CertDir and Logger are filled
	// in here), and serve the webhooks only once it is there. nil: tls.crt
	// and tls.key in WebhookCertDir come from elsewhere (cert-manager's
	// Secret mounted there).
	WebhookCerts *certs.Options
}

// Validate checks options without side effects.
func (o *Options) Validate() error {
	var errs []error
	if o.MinRefresh <= 0 || o.MaxRefresh < o.MinRefresh {
		errs = append(errs, fmt.Errorf("refresh bounds must satisfy 0 < min (%s) <= max (%s)", o.MinRefresh, o.MaxRefresh))
	}
	if o.DefaultRefresh < o.MinRefresh || o.DefaultRefresh > o.MaxRefresh {
		errs = append(errs, fmt.Errorf("default refresh %s must be within [%s, %s]", o.DefaultRefresh, o.MinRefresh, o.MaxRefresh))
	}
	if o.FetchTimeout <= 0 || o.FetchTimeout > time.Minute {
		errs = append(errs, errors.New("fetch timeout must be between 0 and 1m"))
	}
	if o.MaxIssuersPerNamespace < 0 || o.MaxIssuersPerNamespace > MaxMaxIssuersPerNamespace {
		errs = append(errs, fmt.Errorf("max issuers per namespace must be between 1 and %d (0: the default %d), got %d",
			MaxMaxIssuersPerNamespace, DefaultMaxIssuersPerNamespace, o.MaxIssuersPerNamespace))
	}
	if o.MaxConcurrentFetchesPerNamespace < 0 || o.MaxConcurrentFetchesPerNamespace > MaxConcurrentFetchesPerNamespace {
		errs = append(errs, fmt.Errorf("max concurrent fetches per namespace must be between 1 and %d (0: the default %d), got %d",
			MaxConcurrentFetchesPerNamespace, issuers.DefaultMaxConcurrentFetchesPerNamespace, o.MaxConcurrentFetchesPerNamespace))
	}
	for _, ns := range o.WatchNamespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("watch namespace %q: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	if o.AssertionKeyRotation != 0 {
		if err := assertionkey.DefaultPolicy(o.AssertionKeyRotation).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("assertion key rotation: %w", err))
		}
	}
	if o.ReconcileWorkers < 0 || o.ReconcileWorkers > MaxReconcileWorkers {
		errs = append(errs, fmt.Errorf("reconcile workers must be between 1 and %d (0: the default %d), got %d",
			MaxReconcileWorkers, DefaultReconcileWorkers, o.ReconcileWorkers))
	}
	return errors.Join(errs...)
}

// MaxConcurrentFetchesPerNamespace bounds
// --max-concurrent-fetches-per-namespace.
const MaxConcurrentFetchesPerNamespace = 64

// namespaces returns the cache configuration of WatchNamespaces (nil: every
// namespace).
func (o *Options) namespaces() map[string]cache.Config {
	if len(o.WatchNamespaces) == 0 {
		return nil
	}
	out := make(map[string]cache.Config, len(o.WatchNamespaces))
	for _, ns := range o.WatchNamespaces {
		out[ns] = cache.Config{}
	}
	return out
}

// Scheme returns the scheme with core types and AuthPolicy.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add core types: %w", err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add authgate types: %w", err)
	}
	return s, nil
}

// NewManager builds the manager and registers the AuthPolicy controller.
// Secrets and ConfigMaps are cached only when they opt in by label, so the
// controller never holds unrelated secrets; the exceptions, each cached by
// name in a cache of its own, are each namespace's kube-root-ca.crt (the
// cluster's CA, public) and bundle Secret (its metadata only). ConfigMaps
// labelled RoleBundle are cached so that a legacy bundle ConfigMap is seen
// and deleted. With WatchNamespaces every cache lists and watches only
// those namespaces (cluster-scoped objects, the injector's Namespaces, are
// unaffected).
func NewManager(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	roles, err := labels.NewRequirement(translate.LabelRole, selection.In, []string{translate.RoleRego, translate.RoleCA, RoleBundle, assertionkeys.RoleJWKS})
	if err != nil {
		return nil, fmt.Errorf("label requirement: %w", err)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	webhookServer := webhook.NewServer(webhook.Options{Port: o.WebhookPort, CertDir: o.WebhookCertDir})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "authgate-controller.authgate.dev",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		WebhookServer:           webhookServer,
		Cache:                   cache.Options{DefaultNamespaces: o.namespaces(), ByObject: cachedByLabel(roles)},
	})
	if err != nil {
		return nil, fmt.Errorf("new manager: %w", err)
	}
	reg := o.Registerer
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	// kube-root-ca.crt holds the cluster's CA in every namespace and
	// carries no label: a cache of its own holds ConfigMaps of that name
	// and no other.
	clusterCA, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient: mgr.GetHTTPClient(), Scheme: scheme, Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces: o.namespaces(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Field: fields.OneTermEqualSelector("metadata.name", translate.ClusterCAConfigMap)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster CA cache: %w", err)
	}
	bundles, err := newBundleCache(mgr, scheme, o)
	if err != nil {
		return nil, err
	}
	r := newReconciler(mgr, o, clusterCA, reg, logger)
	r.Bundles = bundles
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setup controller: %w", err)
	}
	if err := (&netpol.Reconciler{Client: mgr.GetClient(), Scheme: scheme, Enabled: o.NetworkPolicies}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setup networkpolicy controller: %w", err)
	}
	if err := addAssertionKeys(mgr, o, reg); err != nil {
		return nil, err
	}
	acks, err := addPush(mgr, &o, r, reg, logger)
	if err != nil {
		return nil, err
	}
	if err := addCoverage(mgr, o, reg, acks); err != nil {
		return nil, err
	}
	if err := addWebhooks(mgr, webhookServer, o, reg, logger); err != nil {
		return nil, err
	}
	if err := addChecks(mgr); err != nil {
		return nil, err
	}
	return mgr, nil
}

// addChecks adds /healthz and /readyz: ready only once the caches hold
// every existing object (fail closed at start).
func addChecks(mgr ctrl.Manager) error {
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("caches not synced")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("readyz: %w", err)
	}
	return nil
}

// addAssertionKeys registers the identity assertion key reconciler and,
// with AssertionJWKSAddr, the server of the public keys.
func addAssertionKeys(mgr ctrl.Manager, o Options, reg prometheus.Registerer) error {
	rotation := o.AssertionKeyRotation
	if rotation == 0 {
		rotation = assertionkey.DefaultRotation
	}
	ar := &assertionkeys.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Policy: assertionkey.DefaultPolicy(rotation),
		Now: time.Now, Metrics: assertionkeys.NewMetrics(reg, time.Now),
	}
	if err := ar.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setup assertion keys: %w", err)
	}
	if o.AssertionJWKSAddr != "" && o.AssertionJWKSAddr != "0" {
		if err := mgr.Add(&assertionkeys.Server{Addr: o.AssertionJWKSAddr, Reader: mgr.GetClient()}); err != nil {
			return fmt.Errorf("assertion JWKS server: %w", err)
		}
	}
	return nil
}

// addCoverage registers the coverage reconciler (controllers/coverage): it
// watches pod metadata only, and reads Namespaces' opt-in labels when the
// injector runs (its RBAC then grants reading them).
func addCoverage(mgr ctrl.Manager, o Options, reg prometheus.Registerer, acks *push.Acks) error {
	cr := &coverage.Reconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("authgate-controller"), Metrics: coverage.NewMetrics(reg),
		ReadNamespaces: o.Injector != nil, Workers: o.ReconcileWorkers,
	}
	if acks != nil {
		cr.Acks = acks
	}
	if cr.Workers == 0 {
		cr.Workers = DefaultReconcileWorkers
	}
	if err := cr.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setup coverage controller: %w", err)
	}
	return nil
}

// newBundleCache returns the cache through which the controller watches
// its bundle Secrets: Secrets named config.BundleSecret and no other (the
// manager's cache holds API-key Secrets only, and a label selector cannot
// say "or"). Selected by name, not label, a bundle whose labels were
// stripped by hand is still seen and repaired. The cache keeps no data:
// the reconciler reads the bundle through the APIReader, and the watch
// only needs to know it changed, so the controller holds no copy of the
// namespaces' API-key hashes beyond a reconcile.
func newBundleCache(mgr ctrl.Manager, scheme *runtime.Scheme, o Options) (cache.Cache, error) {
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient: mgr.GetHTTPClient(), Scheme: scheme, Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces: o.namespaces(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Field:     fields.OneTermEqualSelector("metadata.name", config.BundleSecret),
				Transform: dropSecretData,
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("bundle secret cache: %w", err)
	}
	return c, nil
}

// dropSecretData strips a cached Secret to its metadata.
func dropSecretData(obj any) (any, error) {
	if s, ok := obj.(*corev1.Secret); ok {
		s.Data, s.StringData, s.ManagedFields = nil, nil, nil
	}
	return obj, nil
}

// cachedByLabel limits the cache to the Secrets, ConfigMaps and
// NetworkPolicies that opt in or that the controller wrote.
func cachedByLabel(roles *labels.Requirement) map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Secret{}:    {Label: labels.SelectorFromSet(labels.Set{translate.LabelAPIKey: "true"})},
		&corev1.ConfigMap{}: {Label: labels.NewSelector().Add(*roles)},
		// Only the NetworkPolicies this controller writes.
		&networkingv1.NetworkPolicy{}: {Label: labels.SelectorFromSet(labels.Set{netpol.LabelManagedBy: netpol.ManagedBy})},
	}
}

// newReconciler builds the AuthPolicy reconciler and its issuer manager,
// which charges each refresh to a namespace using the issuer.
func newReconciler(mgr ctrl.Manager, o Options, clusterCA cache.Cache, reg prometheus.Registerer, logger *slog.Logger) *Reconciler {
	r := &Reconciler{
		Client:     mgr.GetClient(),
		ClusterCA:  clusterCA,
		APIReader:  mgr.GetAPIReader(),
		Recorder:   mgr.GetEventRecorder("authgate-controller"),
		Metrics:    NewMetrics(reg),
		Now:        time.Now,
		MaxRequeue: o.MaxRefresh,
		Workers:    o.ReconcileWorkers,

		MaxIssuersPerNamespace: o.MaxIssuersPerNamespace,
		Tracer:                 o.Tracer,
	}
	r.Issuers = issuers.New(issuers.Options{
		FetchPolicy: o.FetchPolicy, Logger: logger, Registerer: reg, Tracer: o.Tracer,
		MinRefresh: o.MinRefresh, MaxRefresh: o.MaxRefresh, DefaultRefresh: o.DefaultRefresh, FetchTimeout: o.FetchTimeout,
		MaxStaleness: o.MaxStaleness, OnChange: r.IssuerChanged,
		Namespaces: r.namespacesUsing, MaxConcurrentFetchesPerNamespace: o.MaxConcurrentFetchesPerNamespace,
	})
	return r
}

// addWebhooks registers the injector, and with WebhookCerts the rotator of
// its certificate. The webhook server starts with its first handler and
// needs tls.crt then, so with WebhookCerts the injector is registered once
// the certificate is in the cert dir. srv is the manager's webhook server:
// its readyz check must not go through mgr.GetWebhookServer(), which would
// start it at once. The injector's metrics are registered on reg at once,
// so they are exported (at 0) while the certificate is still awaited.
func addWebhooks(mgr ctrl.Manager, srv webhook.Server, o Options, reg prometheus.Registerer, logger *slog.Logger) error {
	register := func() error { return nil }
	if o.Injector != nil {
		m := injector.NewMetrics(reg)
		register = func() error {
			if err := injector.Register(mgr, *o.Injector, m); err != nil {
				return fmt.Errorf("injector: %w", err)
			}
			return nil
		}
	}
	if o.WebhookCerts != nil {
		co := *o.WebhookCerts
		co.CertDir, co.Logger = o.WebhookCertDir, logger
		if err := certs.Add(mgr, co, register); err != nil {
			return err
		}
	} else if err := register(); err != nil {
		return err
	}
	if o.Injector != nil {
		if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
			return fmt.Errorf("readyz: %w", err)
		}
	}
	return nil
}
