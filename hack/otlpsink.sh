#!/usr/bin/env bash
# Builds bin/otlpsink: the OpenTelemetry Collector's real OTLP receiver
# (otlpreceiver + consumertest.TracesSink) as a small loopback process for
# the tracing tests (test/otlpsink), from its own module hack/otlpsink/ (the
# collector's dependencies conflict with OPA's, so it cannot live in the
# main module). Rebuilt only when missing or older than its inputs.
#
#   hack/otlpsink.sh <bindir>      e.g. hack/otlpsink.sh ./bin
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 <bindir>" >&2
	exit 2
fi

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
bindir="$(cd "$1" && pwd)"

# shellcheck source-path=SCRIPTDIR source=lib/gobuild.sh
source "${script_dir}/lib/gobuild.sh"
gobuild_prefix=otlpsink

build "${bindir}/otlpsink" "${script_dir}/otlpsink" .
