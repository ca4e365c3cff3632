#!/usr/bin/env bash
# Builds the control-plane binaries that controller-runtime's envtest needs
# (kube-apiserver and etcd) from Go modules, so tests can run on machines that
# cannot reach setup-envtest's download bucket -- only the Go module proxy.
#
#   hack/envtest.sh <bindir>      e.g. hack/envtest.sh ./bin/k8s
#
# Then point envtest at <bindir> (KUBEBUILDER_ASSETS=<bindir> or
# envtest.Environment{BinaryAssetsDirectory: <bindir>}).
#
# Each binary is built from its own small Go module under hack/envtest/ (own
# go.mod/go.sum, so the main module's go.mod stays clean). A binary is rebuilt
# only when it is missing or older than its module's go.mod, go.sum, main.go,
# this script or hack/lib/gobuild.sh; otherwise it is skipped, so warm runs
# are instant. A cold kube-apiserver build takes several minutes; later
# builds hit the Go caches.
#
# Writes nothing outside <bindir> and the Go module/build caches (go.mod and
# go.sum are used read-only).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 <bindir>" >&2
	exit 2
fi

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
bindir="$(cd "$1" && pwd)"

# up_to_date, build and the static, read-only build flags: see the library.
# shellcheck source-path=SCRIPTDIR source=lib/gobuild.sh
source "${script_dir}/lib/gobuild.sh"
gobuild_prefix=envtest

build "${bindir}/etcd" "${script_dir}/envtest/etcd" .

# Stamp the version kube-apiserver reports the way Kubernetes' own build does.
ldflags="$(kube_version_ldflags "${script_dir}/envtest/kube-apiserver/go.mod")"
build "${bindir}/kube-apiserver" "${script_dir}/envtest/kube-apiserver" . -ldflags "$ldflags"

echo "envtest: binaries in ${bindir} (use KUBEBUILDER_ASSETS=${bindir})"
