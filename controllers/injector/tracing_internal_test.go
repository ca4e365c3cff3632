package injector

import (
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/tracing"
)

func TestSidecarTracing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		tracing  tracing.Options
		wantArgs string // "" means no tracing flag at all
		wantEnv  []string
	}{
		{"off", tracing.Options{}, "", nil},
		{"insecure", tracing.Options{Endpoint: "otel.obs:4318", Insecure: true, SamplingRatio: 0.01},
			"--tracing-endpoint otel.obs:4318 --tracing-protocol http/protobuf --tracing-sampling-ratio 0.01 --tracing-insecure",
			[]string{tracing.EnvPodNamespace, tracing.EnvPodName}},
		{"ca", tracing.Options{Endpoint: "https://otel.obs:4318", CAPEM: "-----BEGIN CERTIFICATE-----", SamplingRatio: 1},
			"--tracing-endpoint https://otel.obs:4318 --tracing-protocol http/protobuf --tracing-sampling-ratio 1 --tracing-ca $(" + EnvTracingCA + ")",
			[]string{tracing.EnvPodNamespace, tracing.EnvPodName, EnvTracingCA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Image: "proxy:test", Tracing: tc.tracing}
			cfg.Default()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			c := sidecar(cfg, wiring{listen: 8090, upstream: 8080})
			args := strings.Join(c.Args, " ")
			if tc.wantArgs == "" && strings.Contains(args, "--tracing") {
				t.Fatalf("got args %q, want no tracing flag", args)
			}
			if !strings.Contains(args, tc.wantArgs) {
				t.Fatalf("got args %q, want %q", args, tc.wantArgs)
			}
			var env []string
			for _, e := range c.Env {
				env = append(env, e.Name)
			}
			if !slices.Equal(env, tc.wantEnv) {
				t.Fatalf("got env %v, want %v", env, tc.wantEnv)
			}
		})
	}
}
