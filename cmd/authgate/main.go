// Command authgate is the developer CLI: a local demo of the whole request
// path, a development OIDC issuer, the sample echo function, and API-key
// hashing for configs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `authgate — developer tools for the authgate auth gateway

Usage:
  authgate demo [--keep]              run issuer + function + proxy locally and walk through real requests
  authgate dev-issuer [--listen ADDR] a development OIDC issuer (discovery, JWKS, /token minting)
  authgate echo [--listen ADDR]       the sample function: echoes what it receives as JSON
  authgate hash-key [KEY]             print the sha256 hash of an API key (reads stdin without KEY)
  authgate gen-key                    generate a random API key and its hash
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authgate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "demo-cluster":
		return errors.New("the cluster demo is its own command: make demo-cluster (go run ./cmd/authgate-demo-cluster)")
	case "dev-issuer":
		return runDevIssuer(ctx, args[1:], stdout, stderr)
	case "echo":
		return runEcho(ctx, args[1:], stdout, stderr)
	case "hash-key":
		return runHashKey(args[1:], stdin, stdout)
	case "gen-key":
		return runGenKey(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
