// Command etcd builds the etcd server from Go modules so that
// controller-runtime's envtest can run without downloading binaries.
// Built by hack/envtest.sh into bin/k8s/etcd.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
