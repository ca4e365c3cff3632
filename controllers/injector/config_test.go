package injector_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/authgate/authgate/controllers/injector"
)

func TestConfigDefault(t *testing.T) {
	t.Parallel()
	c := injector.Config{Image: "img"}
	c.Default()
	if c.ProxyPort != 8090 || c.AdminPort != 8093 || c.WatchdogPort != 8082 || c.LogLevel != "info" {
		t.Errorf("got ports %d/%d/%d level %q, want 8090/8093/8082 info", c.ProxyPort, c.AdminPort, c.WatchdogPort, c.LogLevel)
	}
	want := map[string]string{"requests.cpu": "50m", "requests.memory": "32Mi", "limits.memory": "128Mi", "limits.cpu": ""}
	got := map[string]string{}
	for k, v := range c.Resources.Requests {
		got["requests."+string(k)] = v.String()
	}
	for k, v := range c.Resources.Limits {
		got["limits."+string(k)] = v.String()
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("got %s=%q, want %q", k, got[k], w)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaulted config: %v", err)
	}
}

func TestConfigDefaultKeepsAndRemoves(t *testing.T) {
	t.Parallel()
	limits := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("0"), corev1.ResourceCPU: resource.MustParse("1")}
	c := injector.Config{Image: "img", Resources: corev1.ResourceRequirements{Limits: limits}}
	c.Default()
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		t.Error("got a memory limit, want an explicit 0 to remove it")
	}
	if got := c.Resources.Limits[corev1.ResourceCPU]; got.String() != "1" {
		t.Errorf("got cpu limit %s, want the given 1", got.String())
	}
	if _, ok := limits[corev1.ResourceMemory]; !ok {
		t.Error("Default modified the caller's map")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*injector.Config)
		want string // "" means valid
	}{
		{"defaults", func(*injector.Config) {}, ""},
		{"no image", func(c *injector.Config) { c.Image = "" }, "image: Required"},
		{"bad pull policy", func(c *injector.Config) { c.ImagePullPolicy = "Sometimes" }, "imagePullPolicy"},
		{"knative reserved admin port", func(c *injector.Config) { c.AdminPort = 9091 }, "adminPort: Invalid value: 9091"},
		{"knative reserved proxy port", func(c *injector.Config) { c.ProxyPort = 8012 }, "proxyPort"},
		{"openfaas metrics port", func(c *injector.Config) { c.AdminPort = 8081 }, "adminPort"},
		{"openfaas proxy port", func(c *injector.Config) { c.WatchdogPort = 8080 }, "watchdogPort"},
		{"duplicate ports", func(c *injector.Config) { c.WatchdogPort = c.AdminPort }, "watchdogPort: Duplicate"},
		{"port out of range", func(c *injector.Config) { c.ProxyPort = 70000 }, "proxyPort"},
		{"bad namespace", func(c *injector.Config) { c.ExcludeNamespaces = []string{"Not_A_Name"} }, "excludeNamespaces[0]"},
		{"bad log level", func(c *injector.Config) { c.LogLevel = "loud" }, "logLevel"},
		{"drain delay over a minute", func(c *injector.Config) { c.DrainDelay = 2 * time.Minute }, "drainDelay"},
		{"negative drain delay", func(c *injector.Config) { c.DrainDelay = -time.Second }, "drainDelay"},
		{"trusted proxies", func(c *injector.Config) {
			c.TrustedProxies.Knative = []string{"10.42.0.0/16"}
			c.TrustedProxies.OpenFaaS = []string{"10.42.3.17", "fd00::/8"}
			c.TrustedProxies.Plain = []string{"192.0.2.7/32"}
		}, ""},
		{"knative hop not an address", func(c *injector.Config) { c.TrustedProxies.Knative = []string{"10.42.0.0/16", "activator"} }, "trustedProxies.knative[1]"},
		{"openfaas gateway trusts everyone", func(c *injector.Config) { c.TrustedProxies.OpenFaaS = []string{"0.0.0.0/0"} }, "trusts every address"},
		{"plain default with a port", func(c *injector.Config) { c.TrustedProxies.Plain = []string{"10.0.0.1:80"} }, "trustedProxies.plain[0]"},
		{"request over limit", func(c *injector.Config) {
			c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
		}, "resources.requests[memory]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigBindFlags(t *testing.T) {
	t.Parallel()
	var c injector.Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.BindFlags(fs)
	err := fs.Parse([]string{"--injector-image", "img:1", "--injector-image-pull-policy", "IfNotPresent",
		"--injector-proxy-port", "7000", "--injector-admin-port", "7001", "--injector-watchdog-port", "7002",
		"--injector-exclude-namespaces", "authgate-system, monitoring", "--injector-log-level", "debug",
		"--injector-cpu-limit", "500m", "--injector-memory-limit", "0",
		"--injector-knative-trusted-proxies", "10.42.7.0/24, 10.42.9.0/24", "--injector-openfaas-trusted-proxies", "10.42.3.17",
		"--injector-plain-trusted-proxies", ""})
	if err != nil {
		t.Fatal(err)
	}
	c.Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Image != "img:1" || c.ImagePullPolicy != corev1.PullIfNotPresent || c.ProxyPort != 7000 || c.AdminPort != 7001 ||
		c.WatchdogPort != 7002 || c.LogLevel != "debug" || strings.Join(c.ExcludeNamespaces, ",") != "authgate-system,monitoring" {
		t.Errorf("got %+v", c)
	}
	if tp := c.TrustedProxies; strings.Join(tp.Knative, ",") != "10.42.7.0/24,10.42.9.0/24" || strings.Join(tp.OpenFaaS, ",") != "10.42.3.17" || tp.Plain != nil {
		t.Errorf("got trusted proxies %+v", tp)
	}
	if got := c.Resources.Limits[corev1.ResourceCPU]; got.String() != "500m" {
		t.Errorf("got cpu limit %s, want 500m", got.String())
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		t.Error("got a memory limit after --injector-memory-limit=0")
	}
	if err := fs.Parse([]string{"--injector-proxy-port", "http"}); err == nil {
		t.Error("got no error for a non-numeric port")
	}
}
