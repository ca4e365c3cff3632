package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// --base static reproduces what gcr.io/distroless/static-debian12:nonroot
// gives a static Go binary at run time, as GoogleContainerTools/distroless
// builds it (static/static.bzl, common/BUILD.bazel, common/variables.bzl,
// static/nsswitch.conf; rules_distroless passwd/group/home/cacerts):
//
// Reproduced:
//   - /etc/passwd: root (0, /root), nobody (65534, /nonexistent), nonroot
//     (65532, /home/nonroot), shell /sbin/nologin; /etc/group: root, nobody,
//     tty (5), staff (50), nonroot (65532). Both 0644 root-owned.
//   - /root 0700, /home 0755, /home/nonroot 0700 owned 65532:65532.
//   - /tmp 01777.
//   - /etc/nsswitch.conf: distroless's file, verbatim.
//   - /etc/ssl/certs/ca-certificates.crt: like distroless's cacerts rule,
//     every certificate file of Debian's ca-certificates package
//     (/usr/share/ca-certificates on the host) concatenated in path order.
//     Deliberately not the host's /etc/ssl/certs/ca-certificates.crt: that one
//     also holds CAs added locally (/usr/local/share/ca-certificates), which
//     the real image does not trust.
//   - /etc/os-release, naming this a local reproduction (ID=debian,
//     VERSION_ID=12 as distroless, so tools that read it see the same distro).
//   - Config: ENV PATH and SSL_CERT_FILE, USER 65532, WORKDIR /home/nonroot.
//
// Left out (nothing a static Go binary needs here):
//   - tzdata (/usr/share/zoneinfo): time.LoadLocation would fail for named
//     zones; authgate's shipped binaries use UTC/local offsets only (embed
//     time/tzdata if that ever changes).
//   - netbase (/etc/services, /etc/protocols, /etc/ethertypes, /etc/rpc): Go's
//     net package has built-in tables for the common services and protocols.
//   - media-types (/etc/mime.types), base-files (/etc/debian_version,
//     /usr/share/common-licenses, /var and /usr skeleton directories, the
//     usr-merge symlinks), the copyright files under /usr/share/doc, and the
//     dpkg status files under /var/lib/dpkg/status.d (only scanners read them).
const (
	nonroot        = 65532
	defaultCACerts = "/usr/share/ca-certificates"
	caBundle       = "/etc/ssl/certs/ca-certificates.crt"
)

const passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
`

const group = `root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
`

// nsswitch is distroless's static/nsswitch.conf.
const nsswitch = `# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the ` + "`glibc-doc-reference'" + ` and ` + "`info'" + ` packages installed, try:
# ` + "`info libc \"Name Service Switch\"'" + ` for information about this file.

passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
`

const osRelease = `PRETTY_NAME="Distroless (authgate local reproduction)"
NAME="Debian GNU/Linux"
ID=debian
VERSION_ID="12"
VERSION="Debian GNU/Linux 12 (bookworm)"
HOME_URL="https://github.com/authgate/authgate"
SUPPORT_URL="https://github.com/authgate/authgate/tree/main/hack/cluster/images"
BUG_REPORT_URL="https://github.com/authgate/authgate/issues/new"
`

// staticConfig is the config distroless static:nonroot sets.
func staticConfig() v1.Config {
	return v1.Config{
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=" + caBundle,
		},
		User:       fmt.Sprint(nonroot),
		WorkingDir: "/home/nonroot",
	}
}

// staticBase is the base layer's entries; caCerts is a directory (the
// package's certificates, concatenated) or one PEM bundle.
func staticBase(caCerts string) ([]entry, error) {
	certs, err := caBundleFrom(caCerts)
	if err != nil {
		return nil, err
	}
	dir := func(name string, mode fs.FileMode, owner int) entry {
		return entry{Name: name, Mode: mode, UID: owner, GID: owner, Dir: true}
	}
	reg := func(name, data string) entry {
		return entry{Name: name, Mode: 0o644, Data: []byte(data)}
	}
	return []entry{
		dir("/etc", 0o755, 0),
		dir("/etc/ssl", 0o755, 0),
		dir("/etc/ssl/certs", 0o755, 0),
		dir("/home", 0o755, 0),
		dir("/home/nonroot", 0o700, nonroot),
		dir("/root", 0o700, 0),
		dir("/tmp", 0o777|fs.ModeSticky, 0),
		reg("/etc/group", group),
		reg("/etc/nsswitch.conf", nsswitch),
		reg("/etc/os-release", osRelease),
		reg("/etc/passwd", passwd),
		reg(caBundle, string(certs)),
	}, nil
}

// caBundleFrom concatenates the *.crt files under dir in path order, as
// distroless's cacerts rule does with the package's /usr/share/ca-certificates,
// or returns the file's content if src is a file.
func caBundleFrom(src string) ([]byte, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w (install Debian's ca-certificates package)", err)
	}
	if !st.IsDir() {
		return os.ReadFile(src)
	}
	var out bytes.Buffer
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".crt") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			out.WriteByte('\n')
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("CA certificates: no *.crt files under %s", src)
	}
	return out.Bytes(), nil
}
