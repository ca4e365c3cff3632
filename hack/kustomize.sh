#!/usr/bin/env bash
# Install kustomize (pinned; KUSTOMIZE_VERSION overrides) into <repo>/bin; prints its path.
exec "$(dirname "${BASH_SOURCE[0]}")/gotool.sh" kustomize sigs.k8s.io/kustomize/kustomize/v5 "${KUSTOMIZE_VERSION:-v5.8.2}"
