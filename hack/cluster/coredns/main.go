// Command coredns builds CoreDNS from Go modules for Service DNS in the real
// single-node cluster, with only the plugins a cluster DNS needs. Built by
// hack/cluster/build.sh into <bindir>/coredns.
//
// Upstream's main (github.com/coredns/coredns coredns.go) blank-imports
// core/plugin, which links every plugin (cloud DNS providers, etcd, ...).
// This one imports the plugins it uses and restricts dnsserver.Directives to
// them, the way core/dnsserver documents for embedding. There is no forward:
// the cluster has no upstream resolver, and the kubernetes plugin does not
// need one (with fallthrough and nothing after it, a miss is SERVFAIL).
package main

import (
	"log"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// directives are the imported plugins in execution order: the order they
// have in upstream's generated core/dnsserver/zdirectives.go (v1.15.0).
var directives = []string{
	"reload",
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"kubernetes",
	"loop",
}

func main() {
	if err := dnsserver.SetDirectives(directives); err != nil {
		log.Fatalf("coredns: %v", err)
	}
	coremain.Run()
}
