package push_test

import (
	"os"
	"testing"

	"github.com/authgate/authgate/test/k8senv"
)

// testEnv is a real kube-apiserver and etcd (envtest) for the tests of
// TokenReviewer against the API server; nil when the binaries are missing
// (those tests skip; the others need no API server).
var testEnv *k8senv.Env

func TestMain(m *testing.M) {
	os.Exit(k8senv.Main(k8senv.Options{Optional: true}, func(env *k8senv.Env) int {
		testEnv = env
		return m.Run()
	}))
}
