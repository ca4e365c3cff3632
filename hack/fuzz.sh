#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME each.
set -euo pipefail
FUZZTIME="${FUZZTIME:-3s}"
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	compgen -G "$dir/*_test.go" >/dev/null || continue
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
		echo "fuzz $pkg $target ($FUZZTIME)"
		if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=5s "$pkg" >/tmp/authgate-fuzz.log 2>&1; then
			cat /tmp/authgate-fuzz.log
			status=1
		fi
	done
done
exit $status
