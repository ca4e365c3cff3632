package certs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/authgate/authgate/test/k8senv"
)

// k8s is a client of a real kube-apiserver and etcd (envtest), shared by
// the package's tests; every test works in its own namespace and its own
// MutatingWebhookConfiguration.
var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	env := &envtest.Environment{}
	cfg, err := k8senv.Start(env, filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprint(os.Stderr, err.Error()+"\n")
		return 1
	}
	return m.Run()
}
