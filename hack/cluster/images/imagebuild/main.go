// Command imagebuild writes one container image as a docker-archive tar
// (what `docker save` writes and `ctr images import` reads), built from local
// files without a Docker engine or a registry:
//
//	imagebuild --ref dev.local/authgate/authgate-proxy:e2e --out proxy.tar \
//	  --base static --add bin/authgate-proxy:/usr/local/bin/app:0755 \
//	  --entrypoint /usr/local/bin/app --user 65532:65532 --label K=V
//
// The image is linux/amd64 and deterministic: the same inputs give the same
// digest (fixed mtimes, ownership as given, sorted entries, no build time).
// On success it prints one line: ref, tar path, image ID (config digest).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	var o options
	var adds, env, labels multi
	fs.StringVar(&o.Ref, "ref", "", "image reference to tag the archive with (required)")
	fs.StringVar(&o.Out, "out", "", "docker-archive tar to write (required)")
	fs.Var(&adds, "add", "SRC:DST[:MODE[:UID:GID]] file to add (repeatable; MODE octal, default SRC's; owner default 0:0)")
	fs.StringVar(&o.Entrypoint, "entrypoint", "", "entrypoint program (the image's ENTRYPOINT is [this])")
	fs.StringVar(&o.User, "user", "", "USER (default: the base's)")
	fs.Var(&env, "env", "K=V environment variable (repeatable; replaces the base's value of K)")
	fs.StringVar(&o.Workdir, "workdir", "", "WORKDIR (default: the base's)")
	fs.Var(&labels, "label", "K=V image label (repeatable)")
	fs.StringVar(&o.Base, "base", baseScratch, "base: static (a reproduction of distroless static-debian12:nonroot) or scratch")
	fs.StringVar(&o.CACerts, "ca-certs", defaultCACerts, "--base static: the Debian ca-certificates files to bundle (a directory, concatenated like distroless does, or one PEM file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.Ref == "" || o.Out == "" {
		return fmt.Errorf("--ref and --out are required")
	}
	for _, a := range adds {
		f, err := parseAdd(a)
		if err != nil {
			return err
		}
		o.Files = append(o.Files, f)
	}
	o.Env = env
	var err error
	if o.Labels, err = parseKV(labels); err != nil {
		return err
	}
	digest, err := writeImage(o)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s %s %s\n", o.Ref, o.Out, digest)
	return err
}
