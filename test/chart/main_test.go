// Package chart tests the Helm chart (charts/authgate) and the kustomize tree
// (config/) with the real tools: helm and kustomize are built from Go modules
// into ./bin by hack/helm.sh and hack/kustomize.sh (once; about 2 minutes the
// first time, cached afterwards), and the rendered objects are sent to a real
// kube-apiserver (envtest) with server-side dry-run. envtest runs no
// kubelet, so nothing here starts the controller from its image.
package chart

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

const (
	releaseName      = "authgate"
	releaseNamespace = "authgate-system"
)

var (
	repoRoot  = filepath.Join("..", "..")
	chartDir  = filepath.Join(repoRoot, "charts", "authgate")
	helm      string
	kustomize string
)

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	if helm, err = installTool("helm.sh"); err == nil {
		kustomize, err = installTool("kustomize.sh")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// installTool runs an idempotent hack/ install script, which prints the
// path of the binary.
func installTool(script string) (string, error) {
	cmd := exec.Command(filepath.Join("hack", script))
	cmd.Dir = repoRoot
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/%s: %w", script, err)
	}
	path := strings.TrimSpace(stdout.String())
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("hack/%s printed %q: %w", script, path, err)
	}
	return path, nil
}

// run executes a tool and returns its stdout; stderr is part of the error.
func run(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// variant is one set of chart values used by several tests.
type variant struct {
	name string
	set  []string // --set arguments
}

var (
	defaults          = variant{name: "default"}
	certManager       = variant{name: "certmanager", set: []string{"certManager.enabled=true"}}
	monitoring        = variant{name: "monitoring", set: []string{"monitoring.serviceMonitor.enabled=true", "monitoring.podMonitor.enabled=true", "monitoring.prometheusRule.enabled=true"}}
	certManagerAndMon = variant{name: "certmanager-monitoring", set: append(append([]string{}, certManager.set...), monitoring.set...)}
	watchNamespaces   = variant{name: "watch-namespaces", set: []string{"watchNamespaces={team-a,team-b}"}}
	tracingOn         = variant{name: "tracing", set: []string{"tracing.enabled=true", "tracing.endpoint=https://otel-collector.observability.svc:4318/v1/traces",
		"tracing.caSecret.name=otel-ca"}}
)

func (v variant) args() []string {
	var args []string
	for _, s := range v.set {
		args = append(args, "--set", s)
	}
	return args
}

// render runs helm template for the release used everywhere in these tests.
func render(t *testing.T, v variant, extra ...string) []byte {
	t.Helper()
	args := append([]string{"template", releaseName, chartDir, "--namespace", releaseNamespace}, v.args()...)
	out, err := run(helm, append(args, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// parseObjects splits a multi-document YAML stream into objects.
func parseObjects(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("parse rendered YAML: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// objectKey names an object in messages and maps.
func objectKey(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + " " + ns + "/" + u.GetName()
	}
	return u.GetKind() + " " + u.GetName()
}

func byKey(t *testing.T, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		k := objectKey(o)
		if _, dup := m[k]; dup {
			t.Fatalf("%s rendered twice", k)
		}
		m[k] = o
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
