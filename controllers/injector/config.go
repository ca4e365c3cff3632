package injector

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/authgate/authgate/internal/tracing"
	"github.com/authgate/authgate/proxy/config"
)

// Defaults of Config.
const (
	DefaultProxyPort    int32 = 8090
	DefaultAdminPort    int32 = 8093
	DefaultWatchdogPort int32 = 8082
	// DefaultDrainDelay is --injector-drain-delay's default.
	DefaultDrainDelay = 5 * time.Second
	// FunctionDrainMargin is how much longer than the proxy's drain delay
	// a function container sleeps before its SIGTERM, so requests the
	// proxy accepted at the end of the delay still reach it.
	FunctionDrainMargin = 5 * time.Second
	// maxDrainDelay bounds DrainDelay (a pod's default grace period is 30s).
	maxDrainDelay   = time.Minute
	DefaultLogLevel = "info"
)

// knativeReserved are the ports Knative's queue-proxy and activator use
// inside a revision pod.
var knativeReserved = []int32{8008, 8012, 8013, 8022, 8112, 9090, 9091}

// Config is what the injector adds to a pod. Call Default, then Validate.
type Config struct {
	// Image of authgate-proxy (required).
	Image string
	// ImagePullPolicy of the sidecar; empty leaves it to the API server's
	// default (Always for :latest, IfNotPresent otherwise).
	ImagePullPolicy corev1.PullPolicy
	// Resources of the sidecar. Default: requests cpu 50m, memory 32Mi;
	// limits memory 128Mi. Default fills only missing entries; an explicit
	// zero quantity removes an entry (e.g. no memory limit).
	Resources corev1.ResourceRequirements
	// ProxyPort is where the proxy listens in Knative and plain pods (OpenFaaS
	// pods always use 8080). Default 8090.
	ProxyPort int32
	// AdminPort serves the proxy's /healthz, /readyz and /metrics. Default
	// 8093. It must avoid Knative's reserved ports (8008, 8012, 8013, 8022,
	// 8112, 9090, 9091) and OpenFaaS's 8080 and 8081.
	AdminPort int32
	// WatchdogPort is where the OpenFaaS watchdog moves. Default 8082.
	WatchdogPort int32
	// DrainDelay, in OpenFaaS and plain pods, is how long the proxy keeps
	// serving after SIGTERM (not ready) before it drains (--drain-delay):
	// endpoints are removed asynchronously, so traffic keeps arriving. The
	// function containers get a preStop sleep of DrainDelay plus
	// FunctionDrainMargin unless they have a preStop hook of their own, so
	// the function outlives the proxy's serving. Knative pods drain with
	// queue-proxy's own hook instead. 0 disables both; at most 60s. The
	// flag defaults to DefaultDrainDelay.
	DrainDelay time.Duration
	// ExcludeNamespaces are never injected; kube-system always is. Put the
	// gateway's own namespace here.
	ExcludeNamespaces []string
	// WatchedNamespaces, when not empty, are the only namespaces whose
	// policies the controller renders (its --watch-namespaces): a pod that
	// opts in anywhere else is denied, because no bundle would ever reach
	// its sidecar and the webhooks' namespace selectors still send it here
	// (a pod that asked for protection must not start without it). Set by
	// the controller from --watch-namespaces, not a flag of its own.
	WatchedNamespaces []string
	// LogLevel of the proxy: debug, info, warn or error. Default info.
	LogLevel string
	// TrustedProxies are the platform's hops the proxy trusts to report
	// the client, per kind of pod (the proxy's --trusted-proxies).
	TrustedProxies TrustedProxies
	// InboundCapture adds the init container that redirects inbound
	// traffic for the function's port to the proxy (the pod annotation
	// authgate.dev/inbound-capture overrides it). The flag defaults to on.
	InboundCapture bool
	// RequirePolicy refuses an opted-in pod that no AuthPolicy of its
	// namespace selects, instead of injecting a sidecar that would deny
	// every request (the bundle's default action). The handler reads the
	// AuthPolicies from the manager's cache, so a pod created together with
	// its policy may be refused once and retried by its workload
	// controller. Off by default (--injector-require-policy).
	RequirePolicy bool
	// Push wires the push channel into the sidecar (URL empty: off). The
	// controller sets it from --push-listen and the push Service, not a
	// flag of the injector's own.
	Push Push
	// Redis is the Redis of shared limits every sidecar gets (Address
	// empty: none).
	Redis Redis
	// Tracing is passed to every sidecar as its --tracing-* flags (off
	// when Endpoint is empty). The controller sets it from its own
	// --tracing-* flags, the CA as PEM (CAPEM), not flags of the
	// injector's own.
	Tracing tracing.Options
}

// TrustedProxies are, per kind of pod, the addresses (IPs or CIDRs) of the
// hops in front of the proxy that append the client to X-Forwarded-For. The
// proxy walks X-Forwarded-For from the right, skipping these, and takes the
// first other address as the client, so a client that writes its own
// X-Forwarded-For gains nothing; but anything sending from a trusted
// address can name any client, so list only the platform's own components,
// never a range clients or other tenants' pods send from. All empty by
// default: a Knative pod then trusts only its queue-proxy (its client is
// the hop in front of queue-proxy: the activator or the ingress), and
// OpenFaaS and plain pods trust nobody (the client is the peer). An
// AuthPolicy's spec.clientIdentity.trustedProxies replaces what a pod gets
// here, for the pods it selects.
type TrustedProxies struct {
	// Knative is trusted in revision pods besides queue-proxy on loopback
	// (127.0.0.1/32 and ::1/128, always trusted there): the ranges where
	// the activator and the ingress run, which append to X-Forwarded-For
	// (Kourier only with its use-remote-address setting).
	Knative []string
	// OpenFaaS is where the OpenFaaS gateway runs. The gateway passes
	// X-Forwarded-For on as it receives it (it sets it only when absent),
	// so trust it only when every request reaches it through an ingress
	// that appends to X-Forwarded-For.
	OpenFaaS []string
	// Plain is the default for other pods; a pod's annotation
	// authgate.dev/trusted-proxies replaces it for that pod.
	Plain []string
}

// Default fills unset fields. It copies Resources first, so the caller's
// maps are never modified.
func (c *Config) Default() {
	if c.ProxyPort == 0 {
		c.ProxyPort = DefaultProxyPort
	}
	if c.AdminPort == 0 {
		c.AdminPort = DefaultAdminPort
	}
	if c.WatchdogPort == 0 {
		c.WatchdogPort = DefaultWatchdogPort
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	c.Resources = *c.Resources.DeepCopy()
	c.Resources.Requests = withDefaults(c.Resources.Requests, corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("50m"),
		corev1.ResourceMemory: resource.MustParse("32Mi"),
	})
	c.Resources.Limits = withDefaults(c.Resources.Limits, corev1.ResourceList{
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	})
}

func withDefaults(l, defaults corev1.ResourceList) corev1.ResourceList {
	if l == nil {
		l = corev1.ResourceList{}
	}
	for k, v := range defaults {
		if _, ok := l[k]; !ok {
			l[k] = v
		}
	}
	for k, v := range l {
		if v.IsZero() {
			delete(l, k)
		}
	}
	if len(l) == 0 {
		return nil
	}
	return l
}

// Validate checks a defaulted Config without side effects.
func (c *Config) Validate() error {
	var errs field.ErrorList
	if err := c.Push.validate(); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("push"), c.Push.URL, err.Error()))
	}
	if err := c.Redis.validate(); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("redis"), c.Redis.Address, err.Error()))
	}
	if c.Image == "" {
		errs = append(errs, field.Required(field.NewPath("image"), "the authgate-proxy image"))
	}
	switch c.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("imagePullPolicy"), c.ImagePullPolicy,
			[]corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}))
	}
	ports := []struct {
		name string
		v    int32
	}{{"proxyPort", c.ProxyPort}, {"adminPort", c.AdminPort}, {"watchdogPort", c.WatchdogPort}}
	seen := map[int32]string{}
	for _, p := range ports {
		fp := field.NewPath(p.name)
		switch {
		case p.v < 1 || p.v > 65535:
			errs = append(errs, field.Invalid(fp, p.v, "must be a port number (1-65535)"))
		case slices.Contains(knativeReserved, p.v):
			errs = append(errs, field.Invalid(fp, p.v, fmt.Sprintf("is reserved by Knative (%v)", knativeReserved)))
		case p.v == openFaaSPort || p.v == openFaaSMetricsPort:
			errs = append(errs, field.Invalid(fp, p.v, "8080 is the Knative default application port and the proxy's port in OpenFaaS pods; 8081 is the OpenFaaS watchdog's metrics port"))
		case seen[p.v] != "":
			errs = append(errs, field.Duplicate(fp, fmt.Sprintf("%d (also %s)", p.v, seen[p.v])))
		default:
			seen[p.v] = p.name
		}
	}
	for i, ns := range c.ExcludeNamespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(field.NewPath("excludeNamespaces").Index(i), ns, msg))
		}
	}
	errs = append(errs, c.TrustedProxies.validate(field.NewPath("trustedProxies"))...)
	if c.DrainDelay < 0 || c.DrainDelay > maxDrainDelay {
		errs = append(errs, field.Invalid(field.NewPath("drainDelay"), c.DrainDelay.String(), fmt.Sprintf("must be between 0s and %s", maxDrainDelay)))
	}
	if !slices.Contains(logLevels, c.LogLevel) {
		errs = append(errs, field.NotSupported(field.NewPath("logLevel"), c.LogLevel, logLevels))
	}
	if err := c.Tracing.Validate(); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("tracing"), c.Tracing.Endpoint, err.Error()))
	}
	if c.Tracing.Enabled() && c.Tracing.Protocol == tracing.ProtocolGRPC {
		errs = append(errs, field.NotSupported(field.NewPath("tracing", "protocol"), c.Tracing.Protocol, []string{tracing.ProtocolHTTP}))
	}
	if c.Tracing.CAFile != "" {
		errs = append(errs, field.Invalid(field.NewPath("tracing", "caFile"), c.Tracing.CAFile, "sidecars get the CA as PEM (CAPEM), not a file"))
	}
	for name, req := range c.Resources.Requests {
		if lim, ok := c.Resources.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("resources", "requests").Key(string(name)), req.String(),
				fmt.Sprintf("must not exceed the limit %s", lim.String())))
		}
	}
	return errs.ToAggregate()
}

var logLevels = []string{"debug", "info", "warn", "error"}

// BindFlags registers the injector's flags (all prefixed "injector-") on fs,
// writing into c. Call Default after parsing.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Image, "injector-image", c.Image, "authgate-proxy image injected into function pods (required with the injector enabled)")
	fs.Func("injector-image-pull-policy", "pull policy of the injected sidecar (Always, IfNotPresent, Never; default: the API server's)", func(s string) error {
		c.ImagePullPolicy = corev1.PullPolicy(s)
		return nil
	})
	fs.Var(portValue{&c.ProxyPort}, "injector-proxy-port", "proxy port in Knative and plain pods (default 8090)")
	fs.Var(portValue{&c.AdminPort}, "injector-admin-port", "proxy admin port: /healthz, /readyz, /metrics (default 8093)")
	fs.Var(portValue{&c.WatchdogPort}, "injector-watchdog-port", "port the OpenFaaS watchdog moves to (default 8082)")
	fs.DurationVar(&c.DrainDelay, "injector-drain-delay", DefaultDrainDelay,
		"in OpenFaaS and plain pods, how long the proxy keeps serving after SIGTERM before draining; function containers without a preStop hook sleep this plus 5s before theirs (0 disables)")
	fs.Func("injector-exclude-namespaces", "comma-separated namespaces never injected (kube-system always is; add the gateway's own)",
		listFlag(&c.ExcludeNamespaces))
	fs.BoolVar(&c.InboundCapture, "injector-inbound-capture", true,
		"redirect inbound traffic for the function's port to the proxy (an init container with CAP_NET_ADMIN); the pod annotation "+AnnotationInboundCapture+" overrides it")
	fs.BoolVar(&c.RequirePolicy, "injector-require-policy", false,
		"refuse an opted-in pod that no AuthPolicy of its namespace selects (its sidecar would deny every request)")
	fs.StringVar(&c.LogLevel, "injector-log-level", c.LogLevel, "log level of the injected proxy (debug, info, warn, error; default info)")
	fs.Func("injector-knative-trusted-proxies", "comma-separated IPs/CIDRs of the activator and the ingress, trusted in Knative pods besides queue-proxy on loopback",
		listFlag(&c.TrustedProxies.Knative))
	fs.Func("injector-openfaas-trusted-proxies", "comma-separated IPs/CIDRs of the OpenFaaS gateway, trusted in OpenFaaS pods",
		listFlag(&c.TrustedProxies.OpenFaaS))
	fs.Func("injector-plain-trusted-proxies", "comma-separated IPs/CIDRs trusted in other pods (the annotation "+AnnotationTrustedProxies+" replaces it per pod)",
		listFlag(&c.TrustedProxies.Plain))
	fs.Var(quantityValue{&c.Resources.Requests, corev1.ResourceCPU}, "injector-cpu-request", "sidecar CPU request (default 50m; 0 removes it)")
	fs.Var(quantityValue{&c.Resources.Requests, corev1.ResourceMemory}, "injector-memory-request", "sidecar memory request (default 32Mi; 0 removes it)")
	fs.Var(quantityValue{&c.Resources.Limits, corev1.ResourceCPU}, "injector-cpu-limit", "sidecar CPU limit (default none)")
	fs.Var(quantityValue{&c.Resources.Limits, corev1.ResourceMemory}, "injector-memory-limit", "sidecar memory limit (default 128Mi; 0 removes it)")
	c.Redis.bindFlags(fs)
}

// listFlag appends the comma-separated, non-empty entries of a flag to l.
func listFlag(l *[]string) func(string) error {
	return func(s string) error {
		*l = append(*l, splitList(s)...)
		return nil
	}
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// validate checks every entry with the proxy's own parser.
func (t TrustedProxies) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, l := range []struct {
		name    string
		entries []string
	}{{"knative", t.Knative}, {"openfaas", t.OpenFaaS}, {"plain", t.Plain}} {
		for i, e := range l.entries {
			if _, err := config.ParseTrustedProxy(e); err != nil {
				errs = append(errs, field.Invalid(p.Child(l.name).Index(i), e, "must be an IP address or CIDR: "+err.Error()))
			}
		}
	}
	return errs
}

type portValue struct{ p *int32 }

func (v portValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return strconv.Itoa(int(*v.p))
}

func (v portValue) Set(s string) error {
	n, err := parsePort(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

type quantityValue struct {
	l    *corev1.ResourceList
	name corev1.ResourceName
}

func (v quantityValue) String() string {
	if v.l == nil || *v.l == nil {
		return ""
	}
	q, ok := (*v.l)[v.name]
	if !ok {
		return ""
	}
	return q.String()
}

func (v quantityValue) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return err
	}
	if *v.l == nil {
		*v.l = corev1.ResourceList{}
	}
	(*v.l)[v.name] = q
	return nil
}

// parsePort parses a decimal port number in 1-65535.
func parsePort(s string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return int32(n), nil
}
