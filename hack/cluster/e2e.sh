#!/usr/bin/env bash
# make e2e: the product on a real single-node cluster (hack/cluster/node.sh),
# installed with `helm install charts/authgate`, tested by test/cluster from
# inside the cluster's network namespace. Always tears the node down (a trap),
# printing the components' and pods' logs first when something failed; the
# `figure <name> <value> <unit>` lines are repeated at the end.
#
#   hack/cluster/e2e.sh            (make e2e builds the binaries it needs first)
#   KEEP=1 hack/cluster/e2e.sh     leave the cluster running afterwards
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="$root/bin/e2e"
state="$out/node"
node=hack/cluster/node.sh
mkdir -p "$out"

if [[ -e "$root/bin/demo/node/holder.pid" ]]; then
	echo "e2e: the make demo-cluster node is up; one node at a time: make demo-cluster-down" >&2
	exit 1
fi
# A node left by an interrupted run is taken down first.
if [[ -e "$state/holder.pid" ]]; then
	"$node" down "$state" || true
fi
rm -rf "$state"

hack/cluster/images.sh "$out"
go test -c -o "$out/cluster.test" ./test/cluster

finish() {
	local rc=$?
	if ((rc != 0)); then
		echo "e2e: FAILED (exit $rc): component and pod logs follow" >&2
		LOG_LINES=60 "$node" logs "$state" >&2 || true
	fi
	if [[ -z "${KEEP:-}" || $rc -ne 0 ]]; then
		"$node" down "$state" || rc=1
	fi
	if [[ -s "$out/figures.txt" ]]; then
		echo "e2e: figures"
		cat "$out/figures.txt"
	fi
	exit "$rc"
}
trap finish EXIT

start=$SECONDS
"$node" up "$state"
echo "figure node_up_to_ready $((SECONDS - start)) s" >"$out/node-figures.txt"

sock="$(sed -n 's/^CONTAINERD_SOCK=//p' "$state/env")"
"$node" exec "$state" -- bash -c "source hack/cluster/lib/images.sh && import_images $sock $out/images/*.tar"

rm -f "$out/figures.txt"
(cd test/cluster && "$root/$node" exec "$state" -- env \
	AUTHGATE_E2E_KUBECONFIG="$state/admin.kubeconfig" \
	AUTHGATE_E2E_HELM="$root/bin/helm" \
	AUTHGATE_E2E_KNATIVE_DIR="$out/knative" \
	AUTHGATE_E2E_FIGURES="$out/figures.txt" \
	"$out/cluster.test" -test.v -test.timeout 25m ${E2E_RUN:+-test.run "$E2E_RUN"})
cat "$out/node-figures.txt" >>"$out/figures.txt"
