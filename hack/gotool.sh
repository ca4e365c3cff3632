#!/usr/bin/env bash
# Install a pinned Go tool into <repo>/bin from the Go module proxy and print
# its path. Idempotent: a stamp file records the installed version.
#   hack/gotool.sh NAME MODULE VERSION
set -euo pipefail
name="$1" module="$2" version="$3"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
tool="$bin/$name"
stamp="$bin/.$name-$version"
if [[ -x "$tool" && -f "$stamp" ]]; then
  echo "$tool"
  exit 0
fi
mkdir -p "$bin"
echo "installing $name $version into $bin (a Go build: up to a few minutes the first time)" >&2
GOBIN="$bin" go install "$module@$version" >&2
rm -f "$bin/.$name-"v*
touch "$stamp"
echo "$tool"
