#!/usr/bin/env bash
# Load benchmark of authgate-proxy on loopback (see docs/performance.md).
#
#   hack/bench.sh [--peers] [loadbench flags...]
#
# --peers first installs the peers into ./bin, best effort: wrk (apt-get, when
# root), OPA and oauth2-proxy (built from Go modules, each bounded by
# PEER_BUILD_TIMEOUT). A peer that fails to build is reported and skipped; the
# core harness runs regardless. Other arguments go to `go run ./hack/loadbench`
# (e.g. -duration 5s, -only jwt-rego, -profile always, -strict).
set -euo pipefail
cd "$(dirname "$0")/.."

OPA_VERSION=${OPA_VERSION:-v1.22.2}
# Newer oauth2-proxy versions are refused (403) by the module proxy here.
OAUTH2_PROXY_VERSION=${OAUTH2_PROXY_VERSION:-v7.8.1}
PEER_BUILD_TIMEOUT=${PEER_BUILD_TIMEOUT:-600}
BIN=$PWD/bin

install_wrk() {
  command -v wrk >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing wrk (apt-get)"
    apt-get install -y wrk >/dev/null 2>&1 || echo "wrk: apt-get failed; saturation uses the Go generator"
  else
    echo "wrk not installed; saturation uses the Go generator"
  fi
}

install_opa() {
  [[ -x $BIN/opa ]] && return
  echo "building opa $OPA_VERSION into ./bin (about 30 s cold on 2 cores)"
  GOBIN=$BIN timeout "$PEER_BUILD_TIMEOUT" go install "github.com/open-policy-agent/opa@$OPA_VERSION" ||
    echo "opa: build failed or timed out; the proxy+OPA peer is skipped"
}

# `go install oauth2-proxy@version` fails here: it also reads the module's
# version list, which the proxy refuses. A throwaway module that requires the
# exact version builds the same binary.
install_oauth2_proxy() {
  [[ -x $BIN/oauth2-proxy ]] && return
  echo "building oauth2-proxy $OAUTH2_PROXY_VERSION into ./bin (about 45 s cold on 2 cores)"
  local tmp
  tmp=$(mktemp -d)
  (
    cd "$tmp" &&
      go mod init loadbench-peer >/dev/null 2>&1 &&
      timeout "$PEER_BUILD_TIMEOUT" go get "github.com/oauth2-proxy/oauth2-proxy/v7@$OAUTH2_PROXY_VERSION" >/dev/null 2>&1 &&
      timeout "$PEER_BUILD_TIMEOUT" go build -trimpath -o "$BIN/oauth2-proxy" github.com/oauth2-proxy/oauth2-proxy/v7
  ) || echo "oauth2-proxy: build failed or timed out; the oauth2-proxy peer is skipped"
  rm -rf "$tmp"
}

args=()
peers=0
for a in "$@"; do
  case $a in
    --peers) peers=1 ;;
    *) args+=("$a") ;;
  esac
done

if ((peers)); then
  mkdir -p "$BIN"
  install_wrk
  install_opa
  install_oauth2_proxy
fi
exec go run ./hack/loadbench "${args[@]}"
