package tracing

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Protocols an exporter speaks (OTEL_EXPORTER_OTLP_PROTOCOL's spelling).
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// DefaultSamplingRatio is the share of root traces sampled: requests that
// arrive with a trace context follow its sampled flag instead.
const DefaultSamplingRatio = 0.01

// defaultShutdownTimeout bounds the final flush.
const defaultShutdownTimeout = 5 * time.Second

// Options configure tracing. The zero value is tracing off.
type Options struct {
	// Endpoint is the OTLP receiver: host:port, or a URL
	// (http://host:4318/v1/traces; http:// means no TLS). Empty: tracing
	// is off and the process pays for nothing but a nil check.
	Endpoint string
	// Protocol is ProtocolHTTP (default) or ProtocolGRPC (authgate-controller
	// only: the proxy does not link gRPC, see otlphttp.go).
	Protocol string
	// Insecure sends spans without TLS (a host:port endpoint; a URL's
	// scheme decides by itself).
	Insecure bool
	// CAFile is a PEM file of the CAs the receiver's certificate is
	// verified with; empty: the system roots.
	CAFile string
	// CAPEM is the same as PEM text (the injector passes it in the
	// sidecar's environment); CAFile and CAPEM are exclusive.
	CAPEM string
	// SamplingRatio is the parent-based TraceIDRatio sampler's ratio for
	// requests without a trace context, in [0, 1].
	SamplingRatio float64
	// ServiceName is the resource's service.name.
	ServiceName string
	// BatchTimeout is how long spans wait before export; 0: the SDK's
	// default (5 s). Tests shorten it.
	BatchTimeout time.Duration
	// ShutdownTimeout bounds the flush at Shutdown; 0: 5 s.
	ShutdownTimeout time.Duration
}

// Enabled reports whether spans are exported.
func (o *Options) Enabled() bool { return o.Endpoint != "" }

// BindFlags registers the --tracing-* flags, the same in both binaries.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	if o.SamplingRatio == 0 {
		o.SamplingRatio = DefaultSamplingRatio
	}
	fs.StringVar(&o.Endpoint, "tracing-endpoint", o.Endpoint,
		"OTLP receiver of OpenTelemetry spans: host:port or a URL (http://collector:4318/v1/traces); empty: tracing off (the default)")
	fs.StringVar(&o.Protocol, "tracing-protocol", ProtocolHTTP, "OTLP protocol: http/protobuf, or grpc (authgate-controller only)")
	fs.BoolVar(&o.Insecure, "tracing-insecure", false, "send spans to a host:port endpoint without TLS")
	fs.StringVar(&o.CAFile, "tracing-ca-file", "", "PEM CA bundle the receiver's certificate is verified with (default: the system roots)")
	fs.StringVar(&o.CAPEM, "tracing-ca", "", "the same CA bundle as PEM text (the injector passes it from the environment)")
	fs.Float64Var(&o.SamplingRatio, "tracing-sampling-ratio", o.SamplingRatio,
		"share of requests without an incoming trace context that are traced (0-1); requests with one follow its sampled flag")
}

// Validate checks the options without side effects. Disabled options are
// always valid apart from the ratio.
func (o *Options) Validate() error {
	var errs []error
	if o.SamplingRatio < 0 || o.SamplingRatio > 1 {
		errs = append(errs, fmt.Errorf("--tracing-sampling-ratio %s: must be between 0 and 1", strconv.FormatFloat(o.SamplingRatio, 'g', -1, 64)))
	}
	if !o.Enabled() {
		return errors.Join(errs...)
	}
	switch o.Protocol {
	case "", ProtocolGRPC, ProtocolHTTP:
	default:
		errs = append(errs, fmt.Errorf("--tracing-protocol %q: want %s or %s", o.Protocol, ProtocolGRPC, ProtocolHTTP))
	}
	if _, _, err := o.endpoint(); err != nil {
		errs = append(errs, err)
	}
	if o.CAFile != "" && o.CAPEM != "" {
		errs = append(errs, errors.New("--tracing-ca-file and --tracing-ca are exclusive"))
	}
	if o.Insecure && (o.CAFile != "" || o.CAPEM != "") {
		errs = append(errs, errors.New("--tracing-insecure and a tracing CA are exclusive"))
	}
	return errors.Join(errs...)
}

// protocol is Protocol defaulted.
func (o *Options) protocol() string {
	if o.Protocol == "" {
		return ProtocolHTTP
	}
	return o.Protocol
}

// endpoint splits Endpoint into a URL (nil for host:port) or host:port.
func (o *Options) endpoint() (*url.URL, string, error) {
	e := strings.TrimSpace(o.Endpoint)
	if strings.Contains(e, "://") {
		u, err := url.Parse(e)
		if err != nil {
			return nil, "", errors.New("--tracing-endpoint: not a valid URL")
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return nil, "", errors.New("--tracing-endpoint: want http(s)://host:port[/path] with no user or query")
		}
		return u, "", nil
	}
	if _, port, err := net.SplitHostPort(e); err != nil || port == "" {
		return nil, "", fmt.Errorf("--tracing-endpoint %q: want host:port or a URL", e)
	}
	return nil, e, nil
}

// Args are the flags that give a sidecar these options (the injector);
// none when tracing is off. The CA travels as PEM in the environment
// variable caEnv, referenced as $(caEnv), when CAPEM is set.
func (o *Options) Args(caEnv string) []string {
	if !o.Enabled() {
		return nil
	}
	args := []string{
		"--tracing-endpoint", o.Endpoint,
		"--tracing-protocol", o.protocol(),
		"--tracing-sampling-ratio", strconv.FormatFloat(o.SamplingRatio, 'g', -1, 64),
	}
	if o.Insecure {
		args = append(args, "--tracing-insecure")
	}
	if o.CAPEM != "" {
		args = append(args, "--tracing-ca", "$("+caEnv+")")
	}
	return args
}
