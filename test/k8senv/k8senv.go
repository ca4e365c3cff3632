// Package k8senv starts a real kube-apiserver and etcd for tests (envtest),
// from the binaries `make envtest` builds into ./bin/k8s (or
// KUBEBUILDER_ASSETS), and says how to get them when they are missing.
package k8senv

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Assets returns the directory holding kube-apiserver and etcd:
// KUBEBUILDER_ASSETS, else <repoRoot>/bin/k8s.
func Assets(repoRoot string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(repoRoot, "bin", "k8s")
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		return "", fmt.Errorf("envtest binaries not found in %s: run `make envtest` (make test does it)", dir)
	}
	return dir, nil
}

// Start points env at the binaries and starts it; the caller stops it.
func Start(env *envtest.Environment, repoRoot string) (*rest.Config, error) {
	dir, err := Assets(repoRoot)
	if err != nil {
		return nil, err
	}
	env.BinaryAssetsDirectory = dir
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	return cfg, nil
}
