// Command authgate-controller reconciles AuthPolicy resources into the
// per-namespace configuration bundles the authgate-proxy sidecars read.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/authgate/authgate/controllers"
	"github.com/authgate/authgate/controllers/certs"
	"github.com/authgate/authgate/controllers/injector"
	"github.com/authgate/authgate/controllers/issuers"
	"github.com/authgate/authgate/internal/assertionkey"
	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/internal/tracing/otlpgrpc"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authgate-controller:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("authgate-controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o controllers.Options
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "address of /metrics (0 disables)")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&o.LeaderElection, "leader-elect", false, "enable leader election (required with more than one replica)")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader lease (default: the pod's)")
	fs.IntVar(&o.ReconcileWorkers, "reconcile-workers", controllers.DefaultReconcileWorkers,
		fmt.Sprintf("namespaces reconciled at once, at most %d, 0 for the default (one namespace is never reconciled twice at once)", controllers.MaxReconcileWorkers))
	bindJWKSFlags(fs, &o)
	bindTenancyFlags(fs, &o)
	bindAssertionFlags(fs, &o)
	fetch := bindFetchFlags(fs)
	var (
		ic             injector.Config
		enableInjector bool
	)
	fs.BoolVar(&o.NetworkPolicies, "network-policies", true, "keep a NetworkPolicy per AuthPolicy that admits traffic to its injected pods only on the sidecar's and the platform's ports (false removes them)")
	fs.BoolVar(&enableInjector, "enable-injector", false, "serve the sidecar injection webhook")
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "port of the webhook server")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding tls.crt and tls.key for the webhook server")
	ic.BindFlags(fs)
	var (
		manageCerts bool
		wc          certs.Options
	)
	fs.BoolVar(&manageCerts, "manage-webhook-certs", true, "issue and rotate the webhook certificate with cert-controller (own CA in --webhook-secret-name, mounted at --webhook-cert-dir; caBundle patched); false when cert-manager provides it")
	fs.StringVar(&wc.WebhookConfigName, "webhook-config-name", "authgate-injector", "MutatingWebhookConfiguration whose caBundles get the CA")
	fs.StringVar(&wc.ServiceName, "webhook-service-name", "authgate-webhook", "webhook Service (the certificate's DNS names)")
	fs.StringVar(&wc.SecretName, "webhook-secret-name", "authgate-webhook-tls", "Secret holding the webhook CA and certificate, in the pod's namespace; it must exist (the chart ships it)")
	fs.DurationVar(&wc.CAValidity, "webhook-ca-validity", certs.DefaultCAValidity, "lifetime of a new webhook CA")
	fs.DurationVar(&wc.CertValidity, "webhook-cert-validity", certs.DefaultCertValidity, "lifetime of a new webhook serving certificate")
	fs.DurationVar(&wc.CheckInterval, "webhook-cert-check-interval", certs.DefaultCheckInterval, "how often the webhook certificates are checked")
	var push controllers.PushOptions
	bindPushFlags(fs, &push)
	var tracingOpts tracing.Options
	tracingOpts.BindFlags(fs)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if err := tracingOpts.Validate(); err != nil {
		return err
	}
	apiServer, err := fetch.apply(&o, os.Getenv)
	if err != nil {
		return err
	}
	if enableInjector {
		if ic.Tracing, err = sidecarTracing(tracingOpts); err != nil {
			return err
		}
		if err := withInjector(&o, ic, push, wc, manageCerts); err != nil {
			return err
		}
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	tracingOpts.ServiceName = "authgate-controller"
	tp, err := tracing.NewWith(context.Background(), tracingOpts, o.Logger, os.Getenv, otlpgrpc.Exporter)
	if err != nil {
		return err
	}
	defer func() { _ = tp.Shutdown(context.Background()) }() // flushes, at most 5 s
	o.Tracer = tp.Tracer(controllers.TracerName)
	fetch.log(o.Logger, o.FetchPolicy, apiServer)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	mgr, err := controllers.NewManager(cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

// bindJWKSFlags binds the issuer key refresh bounds.
func bindJWKSFlags(fs *flag.FlagSet, o *controllers.Options) {
	fs.DurationVar(&o.MinRefresh, "jwks-min-refresh", time.Minute, "lower bound of an issuer's key refresh interval (also the retry after a failure)")
	fs.DurationVar(&o.MaxRefresh, "jwks-max-refresh", time.Hour, "upper bound of an issuer's key refresh interval")
	fs.DurationVar(&o.DefaultRefresh, "jwks-default-refresh", 10*time.Minute, "refresh interval when the JWKS response has no max-age")
	fs.DurationVar(&o.FetchTimeout, "jwks-fetch-timeout", 10*time.Second, "timeout of one discovery + JWKS fetch")
	fs.DurationVar(&o.MaxStaleness, "jwks-max-staleness", 24*time.Hour, "stop shipping an issuer's keys after this long without a successful refresh")
}

// bindTenancyFlags binds the per-namespace bounds and --watch-namespaces
// (docs/tenancy.md).
func bindTenancyFlags(fs *flag.FlagSet, o *controllers.Options) {
	fs.IntVar(&o.MaxIssuersPerNamespace, "max-issuers-per-namespace", controllers.DefaultMaxIssuersPerNamespace,
		fmt.Sprintf("distinct issuers the AuthPolicies of one namespace may trust, at most %d; a policy that would exceed it is refused (IssuerLimitExceeded), older policies keep theirs", controllers.MaxMaxIssuersPerNamespace))
	fs.IntVar(&o.MaxConcurrentFetchesPerNamespace, "max-concurrent-fetches-per-namespace", issuers.DefaultMaxConcurrentFetchesPerNamespace,
		fmt.Sprintf("issuer key fetches charged to one namespace at once, at most %d (a fetch is charged to the least busy namespace using the issuer)", controllers.MaxConcurrentFetchesPerNamespace))
	fs.Func("watch-namespaces", "comma-separated namespaces the controller reconciles and caches (may be given more than once); empty: every namespace. With it the controller needs Roles in these namespaces only (chart value watchNamespaces)",
		namespaceList(&o.WatchNamespaces))
}

// bindAssertionFlags binds the identity assertion key flags.
func bindAssertionFlags(fs *flag.FlagSet, o *controllers.Options) {
	fs.DurationVar(&o.AssertionKeyRotation, "assertion-key-rotation", assertionkey.DefaultRotation,
		fmt.Sprintf("how long an identity assertion key signs before its successor takes over (at least %s; the successor is published %s earlier, the old key kept %s after)",
			assertionkey.MinRotation, assertionkey.DefaultLead, assertionkey.DefaultRetain))
	fs.StringVar(&o.AssertionJWKSAddr, "assertion-jwks-bind-address", ":8082", "address serving GET /namespaces/{namespace}/jwks.json, the public identity assertion keys (0 disables)")
}

// fetchFlags are the flags of the issuer fetch policy.
type fetchFlags struct {
	allow, deny    []netip.Prefix
	allowAPIServer bool
}

func bindFetchFlags(fs *flag.FlagSet) *fetchFlags {
	f := &fetchFlags{}
	fs.Func("fetch-allow-cidrs", "comma-separated IPs/CIDRs issuer key fetches may connect to although the default fetch policy refuses them (loopback, link-local, private, ...); see docs/fetch-policy.md",
		prefixList(&f.allow))
	fs.Func("fetch-deny-cidrs", "comma-separated IPs/CIDRs issuer key fetches never connect to, whatever --fetch-allow-cidrs and --fetch-allow-apiserver allow",
		prefixList(&f.deny))
	fs.BoolVar(&f.allowAPIServer, "fetch-allow-apiserver", true,
		"allow issuer key fetches to the in-cluster API server's own address (the IP in KUBERNETES_SERVICE_HOST, exactly), for ServiceAccount token issuers")
	return f
}

// apply sets o.FetchPolicy and returns the API server address it allows
// (invalid when none).
func (f *fetchFlags) apply(o *controllers.Options, getenv func(string) string) (netip.Addr, error) {
	p, apiServer, err := fetchPolicy(f.allow, f.deny, f.allowAPIServer, getenv)
	if err != nil {
		return netip.Addr{}, err
	}
	o.FetchPolicy = p
	return apiServer, nil
}

// log records the policy at start, so an operator sees what is allowed.
func (f *fetchFlags) log(l *slog.Logger, p netguard.Policy, apiServer netip.Addr) {
	l.Info("issuer key fetches follow the fetch policy", "policy", p.String())
	switch {
	case apiServer.IsValid():
		l.Info("the fetch policy allows the API server's address (--fetch-allow-apiserver)", "address", apiServer.String())
	case f.allowAPIServer:
		l.Info("no API server address to allow: KUBERNETES_SERVICE_HOST is unset or not an IP address (never resolved)")
	}
}

// namespaceList parses a comma-separated flag value of namespace names into
// l (checked by controllers.Options.Validate); the flag may be given more
// than once.
func namespaceList(l *[]string) func(string) error {
	return func(s string) error {
		for ns := range strings.SplitSeq(s, ",") {
			if ns = strings.TrimSpace(ns); ns != "" && !slices.Contains(*l, ns) {
				*l = append(*l, ns)
			}
		}
		return nil
	}
}

// prefixList parses a comma-separated flag value of IPs and CIDRs into l;
// the flag may be given more than once.
func prefixList(l *[]netip.Prefix) func(string) error {
	return func(s string) error {
		p, err := netguard.ParseList(s)
		if err != nil {
			return err
		}
		*l = append(*l, p...)
		return nil
	}
}

// fetchPolicy builds the controller's fetch policy from its flags. With
// allowAPIServer, the API server's own address is allowed: the IP literal
// in KUBERNETES_SERVICE_HOST (the kubernetes Service's ClusterIP, set in
// every pod), exactly that one address, so ServiceAccount token issuers
// (https://kubernetes.default.svc.cluster.local) work by default while the
// rest of the service range stays refused. A name there is not resolved:
// it could point anywhere. The address is returned for the log (invalid
// when none was allowed). Deny entries still win over it.
func fetchPolicy(allow, deny []netip.Prefix, allowAPIServer bool, getenv func(string) string) (netguard.Policy, netip.Addr, error) {
	var apiServer netip.Addr
	if allowAPIServer {
		if a, err := netip.ParseAddr(getenv("KUBERNETES_SERVICE_HOST")); err == nil && a.Zone() == "" {
			apiServer = a.Unmap()
			allow = append(slices.Clip(allow), netip.PrefixFrom(apiServer, apiServer.BitLen()))
		}
	}
	p, err := netguard.New(allow, deny)
	if err != nil {
		return netguard.Policy{}, netip.Addr{}, fmt.Errorf("fetch policy: %w", err)
	}
	return p, apiServer, nil
}

// bindPushFlags binds the push channel's flags (docs/push-channel.md).
func bindPushFlags(fs *flag.FlagSet, p *controllers.PushOptions) {
	fs.StringVar(&p.Addr, "push-listen", "", "serve the push channel on this address (e.g. :8443) while leading, and wire injected sidecars to it: "+
		"policy changes streamed to them and their acknowledgements in the AuthPolicy status (needs --enable-injector; empty: off)")
	fs.StringVar(&p.ServiceName, "push-service-name", "authgate-push", "the push Service in the pod's namespace, selecting the pod labelled "+controllers.LabelPushLeader)
}

// sidecarTracing is what injected sidecars get of the controller's
// tracing flags: the same receiver and sampling, the CA as PEM (read once,
// now: it travels in the pod's environment).
func sidecarTracing(o tracing.Options) (tracing.Options, error) {
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return o, fmt.Errorf("--tracing-ca-file: %w", err)
		}
		o.CAFile, o.CAPEM = "", string(b)
	}
	return o, nil
}

// withInjector sets o's injector (ic), push channel and webhook
// certificate options from the flags and the pod's environment.
func withInjector(o *controllers.Options, ic injector.Config, push controllers.PushOptions, wc certs.Options, manageCerts bool) error {
	// Never inject into the gateway's own namespace.
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		ic.ExcludeNamespaces = append(ic.ExcludeNamespaces, ns)
	}
	ic.WatchedNamespaces = o.WatchNamespaces
	ic.Default()
	if err := ic.Validate(); err != nil {
		return fmt.Errorf("injector: %w", err)
	}
	o.Injector = &ic
	if push.Addr != "" {
		push.Namespace, push.PodName = os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME")
		push.ServerName = wc.ServiceName + "." + push.Namespace + ".svc"
		o.Push = &push
	}
	if manageCerts {
		wc.Namespace = os.Getenv("POD_NAMESPACE")
		if wc.Namespace == "" {
			return errors.New("--manage-webhook-certs needs POD_NAMESPACE")
		}
		wc.CertDir = o.WebhookCertDir
		if err := wc.Validate(); err != nil {
			return fmt.Errorf("webhook certificates: %w", err)
		}
		o.WebhookCerts = &wc
	}
	return nil
}
