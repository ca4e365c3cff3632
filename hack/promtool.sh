#!/usr/bin/env bash
# Install promtool (pinned; PROMTOOL_VERSION overrides) into <repo>/bin; prints its path.
# Prometheus publishes its Go module as v0.3xx.y for release 3.xx.y.
exec "$(dirname "${BASH_SOURCE[0]}")/gotool.sh" promtool github.com/prometheus/prometheus/cmd/promtool "${PROMTOOL_VERSION:-v0.316.0}"
