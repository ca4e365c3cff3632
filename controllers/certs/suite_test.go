package certs_test

import (
	"os"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/test/k8senv"
)

// A real kube-apiserver and etcd (envtest) shared by the package's tests,
// with RBAC enforced. k8s is an administrator's client; the rotator under
// test runs as a user of its own holding only the rotator's rules (see
// fixtures_test.go). Every test works in its own namespaces and its own
// MutatingWebhookConfiguration.
var (
	testEnv *k8senv.Env
	k8s     client.Client
)

func TestMain(m *testing.M) {
	os.Exit(k8senv.Main(k8senv.Options{}, func(env *k8senv.Env) int {
		testEnv, k8s = env, env.Client
		return m.Run()
	}))
}
