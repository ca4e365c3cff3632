// Command watchdog is a reproduction of of-watchdog's http mode at
// openfaas/of-watchdog@9bdadb1e8c68ae1016ac1a35906cd2acaa53169a (see package
// test/cluster/openfaas/watchdog); it is not of-watchdog. It is the
// entrypoint of the test function image: configure it with the same
// environment (mode=http, fprocess, upstream_url, port, ...).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/authgate/authgate/test/cluster/openfaas/watchdog"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	os.Exit(watchdog.Main(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr, sig))
}
