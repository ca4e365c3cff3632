package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/k8senv"
)

// TestDemoCluster runs `make demo-apiserver` in-process against a real
// kube-apiserver and etcd (envtest binaries from make envtest; it skips
// without them).
func TestDemoCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	args := []string{"--assets", k8senv.Assets(t), "--crds", "../../config/crd/bases"}
	if err := runDemoCluster(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("demo-cluster failed: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"RegoCompileError", "enforced by the running proxy", "last good generation is still enforced"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo-cluster output lacks %q:\n%s", want, out.String())
		}
	}
}
