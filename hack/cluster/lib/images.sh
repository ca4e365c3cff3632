# shellcheck shell=bash
# Sourced library: builds container images as docker-archive tars from local
# binaries (hack/cluster/images/imagebuild, no Docker engine, no registry) and
# imports them into containerd. Caller: hack/cluster/images.sh.
#
#   source hack/cluster/lib/images.sh
#   images_init <outdir>                  build <outdir>/bin/imagebuild; tars go to <outdir>/images
#   go_static <out> <package> [<moddir>]  static linux/amd64 build, the Dockerfile's flags
#   image <ref> <tarname> <binary> [imagebuild flags...]
#                                         an image as the Dockerfile builds it
#   image_raw <ref> <tarname> [imagebuild flags...]
#                                         any image (see imagebuild -h)
#   import_images <containerd socket> <tar>...
#
# image and image_raw print one line: ref, tar path, image ID (the config
# digest: what containerd and the kubelet report after the import).
# A <tarname> is relative to <outdir>/images unless absolute.

IMAGES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)" # the repository
IMAGES_MODULE="${IMAGES_ROOT}/hack/cluster/images"                   # the imagebuild/pause module
IMAGES_OUT="${IMAGES_OUT:-}"                                           # set by images_init

# images_init <outdir>: creates <outdir>/bin and <outdir>/images and builds
# the imagebuild tool into <outdir>/bin (module files read-only).
images_init() {
	mkdir -p "$1/bin" "$1/images"
	IMAGES_OUT="$(cd "$1" && pwd)"
	(cd "$IMAGES_MODULE" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$IMAGES_OUT/bin/imagebuild" ./imagebuild)
}

# go_static <out> <package> [<moddir>]: builds <package> (relative to
# <moddir>, default the repository) as the Dockerfile does: CGO_ENABLED=0,
# -trimpath -ldflags "-s -w", for linux/amd64. -buildvcs=false because the
# Docker build context has no .git, so the image's binary carries no VCS stamp.
go_static() {
	local out="$1" pkg="$2" dir="${3:-$IMAGES_ROOT}"
	(cd "$dir" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly -buildvcs=false" \
		go build -trimpath -ldflags "-s -w" -o "$out" "$pkg")
}

# image_raw <ref> <tarname> [imagebuild flags...]: runs imagebuild.
image_raw() {
	local ref="$1" tar="$2"
	shift 2
	[[ -n "$IMAGES_OUT" ]] || {
		echo "images.sh: call images_init <outdir> first" >&2
		return 1
	}
	[[ "$tar" == /* ]] || tar="$IMAGES_OUT/images/$tar"
	"$IMAGES_OUT/bin/imagebuild" --ref "$ref" --out "$tar" "$@"
}

# image <ref> <tarname> <binary> [imagebuild flags...]: the Dockerfile's
# image of <binary>: distroless static nonroot base (reproduced), the binary
# at /usr/local/bin/app, USER 65532:65532, ENTRYPOINT ["/usr/local/bin/app"],
# the Dockerfile's labels (title: the binary's file name). Extra flags come
# last: --label, --user, --env, --workdir, --entrypoint override; --add adds.
image() {
	local ref="$1" tar="$2" binary="$3"
	shift 3
	image_raw "$ref" "$tar" --base static \
		--add "$binary:/usr/local/bin/app:0755" \
		--entrypoint /usr/local/bin/app --user 65532:65532 \
		--label org.opencontainers.image.source=https://github.com/authgate/authgate \
		--label org.opencontainers.image.licenses=Apache-2.0 \
		--label "org.opencontainers.image.title=$(basename "$binary")" \
		"$@"
}

# import_images <containerd socket> <tar>...: imports each docker-archive tar
# into containerd's k8s.io namespace (where the kubelet's CRI looks), unpacked
# into the default snapshotter, and checks that the tar's tag is listed.
import_images() {
	local sock="$1" tar ref
	shift
	for tar in "$@"; do
		ref="$(tar -xOf "$tar" manifest.json | sed -n 's/.*"RepoTags":\["\([^"]*\)".*/\1/p')"
		[[ -n "$ref" ]] || {
			echo "import_images: $tar has no RepoTags in manifest.json" >&2
			return 1
		}
		ctr --address "$sock" -n k8s.io images import --platform linux/amd64 "$tar" >&2
		if ! ctr --address "$sock" -n k8s.io images ls -q | grep -Fxq "$ref"; then
			echo "import_images: $ref (from $tar) is not listed after the import" >&2
			return 1
		fi
		echo "imported $ref"
	done
}
