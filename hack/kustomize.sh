#!/usr/bin/env bash
# Install kustomize (pinned) into <repo>/bin from the Go module proxy. Idempotent:
# does nothing when bin/kustomize already has the pinned version.
#   hack/kustomize.sh            -> prints the path of the kustomize binary
#   KUSTOMIZE_VERSION=v5.x.y hack/kustomize.sh
set -euo pipefail
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
kustomize="$bin/kustomize"
stamp="$bin/.kustomize-$KUSTOMIZE_VERSION"
if [[ -x "$kustomize" && -f "$stamp" ]]; then
  echo "$kustomize"
  exit 0
fi
mkdir -p "$bin"
echo "installing kustomize $KUSTOMIZE_VERSION into $bin (about 40 s the first time)" >&2
GOBIN="$bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
rm -f "$bin"/.kustomize-v*
touch "$stamp"
echo "$kustomize"
