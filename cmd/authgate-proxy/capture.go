package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/google/nftables"

	"github.com/authgate/authgate/proxy/capture"
)

// runCapture is `authgate-proxy capture --redirect <port>=<proxy port>...`:
// the injected init container that sends inbound traffic for the
// function's ports to the proxy (package capture). It exits non-zero, so
// the pod does not start, when the rules cannot be written or do not read
// back as written.
func runCapture(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("authgate-proxy capture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rs []capture.Redirect
	fs.Func("redirect", "<function port>=<proxy port>: inbound TCP for the function port goes to the proxy (repeatable)", func(s string) error {
		r, err := capture.ParseRedirect(s)
		if err != nil {
			return err
		}
		rs = append(rs, r)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("capture: unexpected arguments %q", fs.Args())
	}
	if len(rs) == 0 {
		return errors.New("capture: give at least one --redirect <function port>=<proxy port>")
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if err := capture.Apply(conn, rs); err != nil {
		return fmt.Errorf("capture: %w (the init container needs CAP_NET_ADMIN and a kernel with nf_tables NAT)", err)
	}
	got, err := capture.Installed(conn)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	want := slices.Clone(rs)
	slices.SortFunc(want, func(a, b capture.Redirect) int { return int(a.Port) - int(b.Port) })
	if !slices.Equal(got, want) {
		return fmt.Errorf("capture: the kernel holds redirects %v, want %v", got, want)
	}
	redirects := make([]string, len(got))
	for i, r := range got {
		redirects[i] = r.String()
	}
	log.Info("inbound capture in place", "table", "inet "+capture.TableName, "redirects", redirects)
	return nil
}
