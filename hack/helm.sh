#!/usr/bin/env bash
# Install helm (pinned) into <repo>/bin from the Go module proxy. Idempotent:
# does nothing when bin/helm already reports the pinned version.
#   hack/helm.sh            -> prints the path of the helm binary
#   HELM_VERSION=v3.x.y hack/helm.sh
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
helm="$bin/helm"
stamp="$bin/.helm-$HELM_VERSION"
if [[ -x "$helm" && -f "$stamp" ]]; then
  echo "$helm"
  exit 0
fi
mkdir -p "$bin"
echo "installing helm $HELM_VERSION into $bin (first build takes 1-2 minutes)" >&2
GOBIN="$bin" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
rm -f "$bin"/.helm-v*
touch "$stamp"
echo "$helm"
