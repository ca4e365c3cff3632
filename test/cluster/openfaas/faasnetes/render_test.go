package faasnetes_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/test/cluster/openfaas/faasnetes"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

// sample is a FunctionDeployment as faas-cli deploy sends it for a
// stack.yaml function with every field CE reads.
func sample() faasnetes.FunctionDeployment {
	labels := map[string]string{"com.openfaas.scale.min": "2", "team": "payments"}
	annotations := map[string]string{"com.example/owner": "payments"}
	return faasnetes.FunctionDeployment{
		Service:                "echo",
		Image:                  "dev.local/openfaas-repro/echo-fn:e2e",
		Namespace:              "openfaas-fn",
		EnvProcess:             "/usr/local/bin/authgate echo --listen 127.0.0.1:5000",
		EnvVars:                map[string]string{"write_timeout": "10s", "exec_timeout": "10s", "mode": "http"},
		Labels:                 &labels,
		Annotations:            &annotations,
		Limits:                 &faasnetes.FunctionResources{Memory: "128Mi", CPU: "500m"},
		Requests:               &faasnetes.FunctionResources{Memory: "64Mi", CPU: "100m"},
		ReadOnlyRootFilesystem: true,
	}
}

// chartConfig is faas-netes as its chart deploys it (http_probe true), with
// the pull policy the test cluster needs.
func chartConfig() faasnetes.DeployConfig {
	c := faasnetes.DefaultDeployConfig()
	c.HTTPProbe = true
	c.ImagePullPolicy = "IfNotPresent"
	return c
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		golden string
		req    faasnetes.FunctionDeployment
		cfg    faasnetes.DeployConfig
	}{
		// Every field, faas-netes configured as by its chart.
		{"deploy-sample.golden.yaml", sample(), chartConfig()},
		// faas-cli deploy --image ... --name minimal: faas-netes' own
		// defaults (exec probe, Always).
		{"deploy-minimal.golden.yaml", faasnetes.FunctionDeployment{Service: "minimal", Image: "ghcr.io/example/minimal:1"},
			faasnetes.DefaultDeployConfig()},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			got := render(t, tt.req, tt.cfg)
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendered objects differ from %s (run with -update after checking):\n%s", path, got)
			}
		})
	}
}

// render is the Deployment and the Service as YAML, as the reproduction
// renders them (the Deployment has no kind: faas-netes sets none).
func render(t *testing.T, req faasnetes.FunctionDeployment, cfg faasnetes.DeployConfig) []byte {
	t.Helper()
	d, err := faasnetes.MakeDeployment(req, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := faasnetes.MakeService(req, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.WriteString("# Rendered by the reproduction of " + faasnetes.Commits + "\n# for the FunctionDeployment in render_test.go. Regenerate: go test -run TestRenderGolden -update\n")
	for i, obj := range []any{d, s} {
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	return out.Bytes()
}

func TestRenderRefusals(t *testing.T) {
	t.Parallel()
	bad := sample()
	*bad.Annotations = map[string]string{"eks.amazonaws.com/role-arn": "x"}
	if _, err := faasnetes.MakeDeployment(bad, chartConfig()); err == nil {
		t.Error("an amazonaws.com annotation: got no error, want CE's refusal")
	}
	bad = sample()
	bad.Limits.Memory = "lots"
	if _, err := faasnetes.MakeDeployment(bad, chartConfig()); err == nil {
		t.Error("memory limit \"lots\": got no error")
	}
}
