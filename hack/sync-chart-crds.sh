#!/usr/bin/env bash
# Copy the generated manifests the Helm chart ships into charts/authgate:
#   config/crd/bases/*.yaml  -> charts/authgate/crds/          (byte for byte)
#   config/rbac/role.yaml    -> charts/authgate/files/controller-role.yaml
# config/ is the single source of truth (controller-gen writes it); run this
# after `make manifests`. With --check it changes nothing and fails when a
# copy is missing, stale or left over (what `make verify` should run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$root/charts/authgate"
check=false
[[ "${1:-}" == "--check" ]] && check=true

pairs=()
for src in "$root"/config/crd/bases/*.yaml; do
  pairs+=("$src" "$chart/crds/$(basename "$src")")
done
pairs+=("$root/config/rbac/role.yaml" "$chart/files/controller-role.yaml")

status=0
for ((i = 0; i < ${#pairs[@]}; i += 2)); do
  src="${pairs[i]}" dst="${pairs[i+1]}"
  if $check; then
    if ! cmp -s "$src" "$dst"; then
      echo "stale: ${dst#"$root"/} differs from ${src#"$root"/}" >&2
      status=1
    fi
  else
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
  fi
done
# A CRD removed from config/ must leave the chart too.
for dst in "$chart"/crds/*.yaml; do
  [[ -e "$dst" ]] || continue
  if [[ ! -e "$root/config/crd/bases/$(basename "$dst")" ]]; then
    if $check; then
      echo "stale: ${dst#"$root"/} has no source in config/crd/bases" >&2
      status=1
    else
      rm "$dst"
    fi
  fi
done
if ((status != 0)); then
  echo "run hack/sync-chart-crds.sh" >&2
fi
exit "$status"
