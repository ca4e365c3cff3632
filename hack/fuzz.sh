#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME each.
set -euo pipefail
FUZZTIME="${FUZZTIME:-3s}"
cd "$(dirname "$0")/.."
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	compgen -G "$dir/*_test.go" >/dev/null || continue
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
		echo "fuzz $pkg $target ($FUZZTIME)"
		for attempt in 1 2; do
			if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=5s "$pkg" >"$log" 2>&1; then
				break
			fi
			# The fuzzing engine reports "context deadline exceeded" when a
			# worker is still busy with one input as -fuzztime ends (a loaded
			# machine); that is no finding, so it is run once more. Anything
			# else, and every crash (a failing input is written), fails.
			if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "  (fuzzing engine deadline, no failing input: running once more)"
				continue
			fi
			cat "$log"
			status=1
			break
		done
	done
done
exit $status
