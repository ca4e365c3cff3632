# shellcheck shell=bash
# Builds the main package of a small builder Go module (its own go.mod/go.sum,
# as under hack/envtest/ and hack/cluster/) into a bin directory, only when
# the binary is missing or older than its inputs. Sourced, not run:
#
#   source "${script_dir}/lib/gobuild.sh"
#   gobuild_prefix=envtest
#   build "${bindir}/etcd" "${script_dir}/envtest/etcd" .
#
# A binary's inputs are its module's go.mod and go.sum, the .go files of its
# package, this file and the script that sourced it; anything else it
# contains is pinned by go.sum. Builds are static (CGO_ENABLED=0, which also
# needs no C compiler), -trimpath, -mod=readonly (the committed go.mod/go.sum
# are never rewritten) and -buildvcs=false (no stamping from, or dependency
# on, the surrounding git repo).

# gobuild_prefix: the word each message starts with (set by the caller).
gobuild_prefix="${gobuild_prefix:-gobuild}"

if [[ -z "${BASH_SOURCE[1]:-}" ]]; then
	echo "gobuild.sh: source it from a script" >&2
	return 1
fi
_gobuild_lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
_gobuild_caller="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)/$(basename "${BASH_SOURCE[1]}")"
# Messages name sources relative to the repository root (this is hack/lib/).
_gobuild_root="$(cd "$(dirname "${_gobuild_lib}")/../.." && pwd)"

# up_to_date <binary> <input>...: true if the binary exists and is newer than
# every input given and than this library and the script that sourced it.
up_to_date() {
	local bin="$1" f
	shift
	[[ -x "$bin" ]] || return 1
	for f in "$@" "$_gobuild_lib" "$_gobuild_caller"; do
		[[ "$bin" -nt "$f" ]] || return 1
	done
}

# build <out> <module dir> <package dir> [extra go build args...]: builds the
# main package <package dir> (relative to <module dir>, e.g. . or ./kubelet)
# into <out>, via a temporary file so an interrupted build never leaves a
# half-written binary that looks up to date.
build() {
	local out="$1" mod="$2" pkg="$3"
	shift 3
	local name src
	name="$(basename "$out")"
	src="$(cd "${mod}/${pkg}" && pwd)"
	local inputs=("${mod}/go.mod" "${mod}/go.sum" "${src}"/*.go)
	if up_to_date "$out" "${inputs[@]}"; then
		echo "${gobuild_prefix}: ${out} is up to date, skipping"
		return 0
	fi
	local tmp="${out}.tmp.$$"
	echo "${gobuild_prefix}: building ${name} from ${src#"${_gobuild_root}/"} -> ${out}"
	local start=$SECONDS
	if ! (cd "$mod" && CGO_ENABLED=0 go build -trimpath -mod=readonly -buildvcs=false "$@" -o "$tmp" "$pkg"); then
		rm -f "$tmp"
		echo "${gobuild_prefix}: building ${name} failed" >&2
		return 1
	fi
	mv -f "$tmp" "$out"
	echo "${gobuild_prefix}: built ${out} in $((SECONDS - start))s"
}

# required_version <module path> <go.mod>: the version of <module path> as
# required in <go.mod>, e.g. v1.36.3.
required_version() {
	awk -v m="$1" '($1 == m && $2 ~ /^v/) || ($1 == "require" && $2 == m) { print ($1 == "require" ? $3 : $2); exit }' "$2"
}

# kube_version_ldflags <go.mod>: the -ldflags value that stamps the version a
# Kubernetes binary reports (--version, /version) the way Kubernetes' own
# build does, from the k8s.io/kubernetes version <go.mod> requires; without
# it, they report v0.0.0-master.
kube_version_ldflags() {
	local gomod="$1" version pkg=k8s.io/component-base/version
	version="$(required_version k8s.io/kubernetes "$gomod")"
	if [[ ! "$version" =~ ^v([0-9]+)\.([0-9]+)\. ]]; then
		echo "${gobuild_prefix}: cannot find the k8s.io/kubernetes version in ${gomod#"${_gobuild_root}/"}" >&2
		return 1
	fi
	echo "-X ${pkg}.gitVersion=${version} -X ${pkg}.gitMajor=${BASH_REMATCH[1]} -X ${pkg}.gitMinor=${BASH_REMATCH[2]} -X ${pkg}.gitTreeState=clean"
}
