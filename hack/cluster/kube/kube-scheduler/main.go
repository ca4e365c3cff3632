// Command kube-scheduler builds the Kubernetes scheduler from Go modules for
// the real single-node cluster. Built by hack/cluster/build.sh into
// <bindir>/kube-scheduler.
//
// The imports and main are those of upstream k8s.io/kubernetes@v1.36.3 cmd/kube-scheduler/scheduler.go.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version" // for version metric registration
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	command := app.NewSchedulerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
