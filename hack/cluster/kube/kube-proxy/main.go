// Command kube-proxy builds the Kubernetes Service proxy from Go modules for
// the real single-node cluster. Built by hack/cluster/build.sh into
// <bindir>/kube-proxy.
//
// The imports and main are those of upstream k8s.io/kubernetes@v1.36.3 cmd/kube-proxy/proxy.go.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // for client metric registration
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	command := app.NewProxyCommand()
	code := cli.Run(command)
	os.Exit(code)
}
