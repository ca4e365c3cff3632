#!/usr/bin/env bash
# Builds the images the single-node e2e cluster runs, as docker-archive tars
# to import into containerd (never pulled; no Docker engine, no registry):
#
#   hack/cluster/images.sh <outdir>
#
# Binaries go to <outdir>/bin, tars to <outdir>/images:
#   dev.local/authgate/authgate-controller:e2e  authgate-controller.tar
#   dev.local/authgate/authgate-proxy:e2e       authgate-proxy.tar
#   dev.local/authgate/authgate-proxy:e2e-next  authgate-proxy-next.tar (the same binary, for the upgrade test)
#   dev.local/authgate/authgate:e2e             authgate.tar (the sample function: authgate echo --listen :8080)
#   dev.local/pause:e2e                         pause.tar    (containerd's sandbox_image)
#   dev.local/knative/<cmd>:e2e                 knative-<cmd>.tar (Knative Serving's controller,
#                                               webhook, autoscaler, activator, queue)
#   dev.local/openfaas-repro/{gateway,echo-fn}:e2e
#   dev.local/authgate-e2e/caller:e2e           e2e-caller.tar (test/cluster/caller)
#   dev.local/authgate-e2e/assertion-verifier:e2e assertion-verifier.tar (examples/assertion-verifier)
#   dev.local/authgate-e2e/redis:e2e           redis.tar (Debian's redis-server and its libraries)
# and Knative Serving's manifests, with these images, to <outdir>/knative
# ({crds,core}.yaml).
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
# The same proxy under a second tag: the e2e's sidecar upgrade (a helm
# upgrade to a new proxy image, then a rolling restart under load).
image dev.local/authgate/authgate-proxy:e2e-next authgate-proxy-next.tar "$IMAGES_OUT/bin/authgate-proxy"

go_static "$IMAGES_OUT/bin/pause" ./pause "$IMAGES_MODULE"
image_raw dev.local/pause:e2e pause.tar --base scratch \
	--add "$IMAGES_OUT/bin/pause:/pause:0755" --entrypoint /pause

# The OpenFaaS contract, reproduced (test/cluster/openfaas: no OpenFaaS module
# can be downloaded here): the gateway + faas-netes provider, and a function
# image the way OpenFaaS templates build one, the watchdog as entrypoint and
# the sample function as its fprocess.
go_static "$IMAGES_OUT/bin/openfaas-repro-gateway" ./test/cluster/openfaas/cmd/gateway
image dev.local/openfaas-repro/gateway:e2e openfaas-repro-gateway.tar "$IMAGES_OUT/bin/openfaas-repro-gateway" \
	--add "$IMAGES_OUT/bin/openfaas-repro-gateway:/usr/local/bin/openfaas-repro-gateway:0755" \
	--entrypoint /usr/local/bin/openfaas-repro-gateway
go_static "$IMAGES_OUT/bin/of-watchdog-repro" ./test/cluster/openfaas/cmd/watchdog
image dev.local/openfaas-repro/echo-fn:e2e openfaas-repro-echo-fn.tar "$IMAGES_OUT/bin/authgate" \
	--add "$IMAGES_OUT/bin/of-watchdog-repro:/usr/local/bin/of-watchdog-repro:0755" \
	--add "$IMAGES_OUT/bin/authgate:/usr/local/bin/authgate:0755" \
	--entrypoint /usr/local/bin/of-watchdog-repro \
	--env mode=http --env "fprocess=/usr/local/bin/authgate echo --listen 127.0.0.1:5000" \
	--env upstream_url=http://127.0.0.1:5000

# The e2e caller (test/cluster/caller): a pod that calls functions with its
# projected ServiceAccount tokens.
go_static "$IMAGES_OUT/bin/e2e-caller" ./test/cluster/caller
image dev.local/authgate-e2e/caller:e2e e2e-caller.tar "$IMAGES_OUT/bin/e2e-caller"

# The identity assertion example (examples/assertion-verifier.yaml): a
# function that verifies the sidecar's signed assertion with go-oidc.
go_static "$IMAGES_OUT/bin/assertion-verifier" ./examples/assertion-verifier
image dev.local/authgate-e2e/assertion-verifier:e2e assertion-verifier.tar "$IMAGES_OUT/bin/assertion-verifier"

# Redis for the shared-limit test (test/cluster/sharedlimits_test.go):
# Debian's redis-server (make redis-server) with the shared libraries and
# loader it links, each at its path, on an empty base; it runs as root in
# its own pod, with no persistence.
redis_bin="$(command -v redis-server)" || {
	echo "images.sh: redis-server not found (make redis-server)" >&2
	exit 1
}
redis_args=(--base scratch --add "$redis_bin:/usr/bin/redis-server:0755" --entrypoint /usr/bin/redis-server)
while read -r lib; do
	redis_args+=(--add "$(readlink -f "$lib"):$lib:0755")
done < <(ldd "$redis_bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
image_raw dev.local/authgate-e2e/redis:e2e redis.tar "${redis_args[@]}"

# Knative Serving from its module (hack/cluster/knative pins the release):
# each command in an image laid out as ko, Knative's own image builder, lays
# it out (/ko-app/<cmd>, KO_DATA_PATH, distroless static nonroot), and its
# own manifests pointing at these images. config-autoscaler gets a short
# stable window and scale-to-zero grace period, so the test sees an idle
# revision go to zero in well under a minute (defaults 60s and 30s).
knative_mod="$IMAGES_ROOT/hack/cluster/knative"
for cmd in controller webhook autoscaler activator queue; do
	go_static "$IMAGES_OUT/bin/knative-$cmd" "knative.dev/serving/cmd/$cmd" "$knative_mod"
	image_raw "dev.local/knative/$cmd:e2e" "knative-$cmd.tar" --base static \
		--add "$IMAGES_OUT/bin/knative-$cmd:/ko-app/$cmd:0755" \
		--entrypoint "/ko-app/$cmd" --user 65532:65532 --env KO_DATA_PATH=/var/run/ko
done
(cd "$knative_mod" && go run -mod=readonly ./manifests -out "$IMAGES_OUT/knative" \
	-set config-autoscaler:stable-window=20s -set config-autoscaler:scale-to-zero-grace-period=10s)
