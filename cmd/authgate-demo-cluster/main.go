// Command authgate-demo-cluster runs the whole system on one machine: a real
// kube-apiserver and etcd (the envtest binaries `make envtest` builds), the
// controller, AuthPolicies applied through the API, and a proxy reading the
// bundle the controller renders. It is a development command, never
// shipped in an image: it links envtest, which no product binary may.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runDemoCluster(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authgate-demo-cluster:", err)
		os.Exit(1)
	}
}
