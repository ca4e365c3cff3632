#!/usr/bin/env bash
# Makes sure redis-server (Debian's package) is on PATH for the shared-limit
# tests: installs it with apt-get when missing and running as root. No
# daemon is started: each test runs its own server.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "redis-server is missing: install Debian's redis-server package (apt-get install -y redis-server)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends redis-server >/dev/null || {
  apt-get update >/dev/null && apt-get install -y --no-install-recommends redis-server >/dev/null
}
# The package's post-install may start a system instance where an init
# system runs; the tests never use it.
command -v redis-server >/dev/null
