#!/usr/bin/env bash
# Builds the Kubernetes node components -- kubelet, kube-controller-manager,
# kube-scheduler, kube-proxy, kubectl -- and CoreDNS from Go modules at pinned
# versions, for the real single-node cluster that `make e2e` starts (its API
# server and etcd come from hack/envtest.sh).
#
#   hack/cluster/build.sh <bindir>      e.g. hack/cluster/build.sh ./bin/cluster
#
# The Kubernetes binaries come from one Go module, hack/cluster/kube (own
# go.mod/go.sum pinning k8s.io/kubernetes, so the main module's go.mod stays
# clean), one small main per binary; CoreDNS from hack/cluster/coredns, with
# only the plugins a cluster DNS needs. A binary is rebuilt only when it is
# missing or older than its module's go.mod or go.sum, its main.go, this
# script or hack/lib/gobuild.sh; otherwise it is skipped, so warm runs are
# instant. Cold, all six take about 6 minutes on 2 cores.
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

# shellcheck source-path=SCRIPTDIR source=../lib/gobuild.sh
source "${script_dir}/../lib/gobuild.sh"
gobuild_prefix=cluster

# Stamp the version the Kubernetes binaries report the way Kubernetes' own
# build does (and as hack/envtest.sh does for kube-apiserver).
kube_mod="${script_dir}/kube"
ldflags="$(kube_version_ldflags "${kube_mod}/go.mod")"
for name in kubelet kube-controller-manager kube-scheduler kube-proxy kubectl; do
	build "${bindir}/${name}" "$kube_mod" "./${name}" -ldflags "$ldflags"
done

build "${bindir}/coredns" "${script_dir}/coredns" .

echo "cluster: binaries in ${bindir}"
