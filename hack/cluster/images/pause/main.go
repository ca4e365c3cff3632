// Command pause is the pod sandbox process of the e2e cluster's containerd
// (its sandbox_image), doing what Kubernetes' build/pause/linux/pause.c does:
// it holds the pod's namespaces open by blocking, reaps every zombie that
// the shared PID namespace re-parents to it (SIGCHLD -> wait4 loop), and
// exits 0 on SIGTERM or SIGINT. Built statically (CGO_ENABLED=0) and run as
// /pause from a scratch image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is what -v prints, like pause.c.
const version = "authgate-e2e"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause.go", version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every exited child without blocking: one SIGCHLD may stand
// for several children.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
