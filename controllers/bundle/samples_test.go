package bundle

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

const samplesDir = "../../config/samples"

// sample is the objects of one config/samples file, as the API server would
// store them in namespace "samples".
type sample struct {
	policies   []*v1alpha1.AuthPolicy
	secrets    []corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func loadSample(t *testing.T, path string) *sample {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &sample{configMaps: map[string]*corev1.ConfigMap{}}
	for _, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch tm.Kind {
		case "AuthPolicy":
			var p v1alpha1.AuthPolicy
			if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
				t.Fatalf("%s: AuthPolicy: %v", path, err)
			}
			if tm.APIVersion != v1alpha1.GroupVersion.String() {
				t.Fatalf("%s: got apiVersion %q, want %q", path, tm.APIVersion, v1alpha1.GroupVersion)
			}
			p.Namespace, p.Generation = "samples", 1
			s.policies = append(s.policies, &p)
		case "Secret":
			var sec corev1.Secret
			if err := yaml.UnmarshalStrict([]byte(doc), &sec); err != nil {
				t.Fatalf("%s: Secret: %v", path, err)
			}
			// The API server folds stringData into data.
			if sec.Data == nil {
				sec.Data = map[string][]byte{}
			}
			for k, v := range sec.StringData {
				sec.Data[k] = []byte(v)
			}
			sec.StringData, sec.Namespace = nil, "samples"
			s.secrets = append(s.secrets, sec)
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := yaml.UnmarshalStrict([]byte(doc), &cm); err != nil {
				t.Fatalf("%s: ConfigMap: %v", path, err)
			}
			cm.Namespace = "samples"
			s.configMaps[cm.Name] = &cm
		default:
			t.Fatalf("%s: unexpected kind %q", path, tm.Kind)
		}
	}
	if len(s.policies) == 0 {
		t.Fatalf("%s: no AuthPolicy", path)
	}
	return s
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// testKeys is a committed public key set (one RSA, one EC key) standing in
// for every issuer's fetched keys.
func testKeys(t *testing.T) func(string) (config.JSONWebKeySet, bool) {
	t.Helper()
	data, err := os.ReadFile("testdata/issuer-jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set config.JSONWebKeySet
	if err := yaml.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	return func(string) (config.JSONWebKeySet, bool) { return set, true }
}

func (s *sample) fragments(t *testing.T, keys func(string) (config.JSONWebKeySet, bool)) []*translate.Fragment {
	t.Helper()
	var out []*translate.Fragment
	for _, p := range s.policies {
		f, prob := translate.Translate(context.Background(), translate.Input{
			Policy: p, Secrets: s.secrets, ConfigMaps: s.configMaps, Keys: keys,
		})
		if prob != nil {
			t.Fatalf("policy %s: %v", p.Name, prob)
		}
		out = append(out, f)
	}
	return out
}

func samplePaths(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 6 {
		t.Fatalf("got %d samples in %s, want at least 6", len(paths), samplesDir)
	}
	return paths
}

// TestSamplesGolden renders each sample's policies alone into a bundle and
// compares it with testdata/<sample>.golden.yaml.
func TestSamplesGolden(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	for _, path := range samplePaths(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := loadSample(t, path)
			got, err := Render(s.fragments(t, keys))
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			for _, sec := range s.secrets {
				if k := sec.Data[translate.SecretKeyKey]; len(k) > 0 && bytes.Contains(got, k) {
					t.Fatalf("the plaintext key of Secret %s appears in the bundle", sec.Name)
				}
			}
			golden := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test ./controllers/bundle -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("rendered bundle differs from %s (run go test ./controllers/bundle -update to accept):\ngot:\n%s", golden, got)
			}
			assertRoundTrip(t, got)
		})
	}
}

// TestSamplesTogether renders every sample into one namespace's bundle, as
// if they were all applied to the same namespace.
func TestSamplesTogether(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	var all []*translate.Fragment
	for _, path := range samplePaths(t) {
		all = append(all, loadSample(t, path).fragments(t, keys)...)
	}
	data, err := Render(all)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Policies) != len(all) {
		t.Fatalf("got %d policies, want %d", len(cfg.Policies), len(all))
	}
	assertRoundTrip(t, data)
}
