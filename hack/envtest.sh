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
# only when it is missing or older than its module's go.mod, go.sum, main.go
# or this script; otherwise it is skipped, so warm runs are instant. A cold
# kube-apiserver build takes several minutes; later builds hit the Go caches.
#
# Writes nothing outside <bindir> and the Go module/build caches (go.mod and
# go.sum are used read-only).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 <bindir>" >&2
	exit 2
fi

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script_path="${script_dir}/$(basename "${BASH_SOURCE[0]}")"
mkdir -p "$1"
bindir="$(cd "$1" && pwd)"

# Upstream builds both binaries statically; this also avoids needing a C
# compiler. -mod=readonly: never rewrite the committed go.mod/go.sum.
# -buildvcs=false: no stamping from (or dependency on) the surrounding git repo.
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=readonly -buildvcs=false"

# up_to_date <binary> <module dir>: true if the binary exists and is newer
# than every input that decides what it contains.
up_to_date() {
	local bin="$1" mod="$2" f
	[[ -x "$bin" ]] || return 1
	for f in "$mod/go.mod" "$mod/go.sum" "$mod/main.go" "$script_path"; do
		[[ "$bin" -nt "$f" ]] || return 1
	done
}

# build <name> [extra go build args...]: builds hack/envtest/<name> into
# <bindir>/<name>, via a temporary file so an interrupted build never leaves
# a half-written binary that looks up to date.
build() {
	local name="$1"
	shift
	local mod="${script_dir}/envtest/${name}"
	local out="${bindir}/${name}"
	if up_to_date "$out" "$mod"; then
		echo "envtest: ${out} is up to date, skipping"
		return 0
	fi
	local tmp="${out}.tmp.$$"
	echo "envtest: building ${name} from hack/envtest/${name} -> ${out}"
	local start=$SECONDS
	if ! (cd "$mod" && go build -trimpath "$@" -o "$tmp" .); then
		rm -f "$tmp"
		echo "envtest: building ${name} failed" >&2
		return 1
	fi
	mv -f "$tmp" "$out"
	echo "envtest: built ${out} in $((SECONDS - start))s"
}

# Module version of <path> as required in <go.mod>, e.g. v1.36.3.
required_version() {
	awk -v m="$1" '($1 == m && $2 ~ /^v/) || ($1 == "require" && $2 == m) { print ($1 == "require" ? $3 : $2); exit }' "$2"
}

build etcd

# Stamp the version kube-apiserver reports (--version, /version) the way
# Kubernetes' own build does; without it, it reports v0.0.0-master.
kube_version="$(required_version k8s.io/kubernetes "${script_dir}/envtest/kube-apiserver/go.mod")"
if [[ ! "$kube_version" =~ ^v([0-9]+)\.([0-9]+)\. ]]; then
	echo "envtest: cannot find the k8s.io/kubernetes version in hack/envtest/kube-apiserver/go.mod" >&2
	exit 1
fi
pkg=k8s.io/component-base/version
build kube-apiserver -ldflags "-X ${pkg}.gitVersion=${kube_version} -X ${pkg}.gitMajor=${BASH_REMATCH[1]} -X ${pkg}.gitMinor=${BASH_REMATCH[2]} -X ${pkg}.gitTreeState=clean"

echo "envtest: binaries in ${bindir} (use KUBEBUILDER_ASSETS=${bindir})"
