#!/usr/bin/env bash
# Install helm (pinned; HELM_VERSION overrides) into <repo>/bin; prints its path.
exec "$(dirname "${BASH_SOURCE[0]}")/gotool.sh" helm helm.sh/helm/v3/cmd/helm "${HELM_VERSION:-v3.22.0}"
