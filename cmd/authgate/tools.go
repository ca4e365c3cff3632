package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/internal/echo"
	"github.com/authgate/authgate/internal/keygen"
	"github.com/authgate/authgate/internal/serve"
	"github.com/authgate/authgate/proxy/config"
)

// HashKey returns the config form of an API key's hash.
func HashKey(key string) string { return config.HashAPIKey([]byte(key)) }

func runHashKey(args []string, stdin io.Reader, stdout io.Writer) error {
	var key string
	switch len(args) {
	case 0:
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read key: %w", err)
		}
		key = strings.TrimRight(line, "\r\n")
	case 1:
		key = args[0]
	default:
		return errors.New("hash-key takes at most one key")
	}
	if key == "" {
		return errors.New("empty key")
	}
	fmt.Fprintln(stdout, HashKey(key))
	return nil
}

func runGenKey(stdout io.Writer) error {
	key, err := keygen.Generate()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key:  %s\nhash: %s\n", key, HashKey(key))
	return nil
}

func runDevIssuer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev-issuer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "listen address (loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	iss.SetURL("http://" + ln.Addr().String())
	fmt.Fprintf(stdout, "dev issuer %s\n  discovery: %s/.well-known/openid-configuration\n  mint:      curl -s '%s/token?sub=alice&aud=demo&scope=orders:read'\n",
		iss.URL(), iss.URL(), iss.URL())
	return serve.Until(ctx, ln, iss.Handler())
}

func runEcho(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "echo function on http://%s\n", ln.Addr())
	return serve.Until(ctx, ln, echo.New())
}
