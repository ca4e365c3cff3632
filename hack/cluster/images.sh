#!/usr/bin/env bash
# Builds the images the single-node e2e cluster runs, as docker-archive tars
# to import into containerd (never pulled; no Docker engine, no registry):
#
#   hack/cluster/images.sh <outdir>
#
# Binaries go to <outdir>/bin, tars to <outdir>/images:
#   dev.local/authgate/authgate-controller:e2e  authgate-controller.tar
#   dev.local/authgate/authgate-proxy:e2e       authgate-proxy.tar
#   dev.local/authgate/authgate:e2e             authgate.tar (the sample function: authgate echo --listen :8080)
#   dev.local/pause:e2e                         pause.tar    (containerd's sandbox_image)
# The authgate images have the Dockerfile's content; see lib/images.sh for the
# functions (image, import_images, ...) other scripts source.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 <outdir>" >&2
	exit 2
fi

# shellcheck source=SCRIPTDIR/lib/images.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/images.sh"
images_init "$1"

for b in authgate-controller authgate-proxy authgate; do
	go_static "$IMAGES_OUT/bin/$b" "./cmd/$b"
	image "dev.local/authgate/$b:e2e" "$b.tar" "$IMAGES_OUT/bin/$b"
done

go_static "$IMAGES_OUT/bin/pause" ./pause "$IMAGES_MODULE"
image_raw dev.local/pause:e2e pause.tar --base scratch \
	--add "$IMAGES_OUT/bin/pause:/pause:0755" --entrypoint /pause
