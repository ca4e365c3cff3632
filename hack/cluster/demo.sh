#!/usr/bin/env bash
# make demo-cluster: the real thing on this machine. Starts the single-node
# cluster of `make e2e` (hack/cluster/node.sh: kubelet, containerd, runc,
# kube-proxy, CoreDNS in a network namespace of their own), installs authgate
# with `helm install charts/authgate`, runs real Knative Serving, applies
# examples/plain-deployment.yaml and examples/knative-service.yaml, and shows
# what callers and functions see. Reuses what `make e2e` built (./bin/e2e).
#
#   make demo-cluster           the tour, then the node is taken down
#   KEEP=1 make demo-cluster    leave it running to explore; stop it with
#                               make demo-cluster-down
# Needs root (network namespaces, mounts, cgroups).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="$root/bin/e2e"
state="$root/bin/demo/node"
node=hack/cluster/node.sh

if [[ "${1:-}" == down ]]; then
	[[ -e "$state/holder.pid" ]] || { echo "demo-cluster: not running"; exit 0; }
	exec "$node" down "$state"
fi
if [[ -e "$out/node/holder.pid" ]]; then
	echo "demo-cluster: the make e2e node is up ($out/node); one node at a time: hack/cluster/node.sh down $out/node" >&2
	exit 1
fi
[[ -e "$state/holder.pid" ]] && "$node" down "$state"
rm -rf "$state" "$state.up.log" "$state.import.log"
mkdir -p "$(dirname "$state")"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_node() { "$node" exec "$state" -- "$@"; }
# retry SECONDS CMD...: run CMD until it succeeds (the webhooks fail closed
# until their certificates exist).
retry() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || { "$@"; return 1; }
		sleep 2
	done
}

finish() {
	local rc=$?
	if ((rc != 0)); then
		echo "demo-cluster: FAILED (exit $rc): component and pod logs follow" >&2
		LOG_LINES=40 "$node" logs "$state" >&2 || true
	fi
	if [[ -z "${KEEP:-}" || $rc -ne 0 ]]; then
		"$node" down "$state" >/dev/null || rc=1
	fi
	exit "$rc"
}
trap finish EXIT

step "Building images (cached in ./bin/e2e) and starting the node"
hack/cluster/images.sh "$out" >/dev/null
# (into a file: the components it starts in the background keep its output
# open, so a pipe would never end)
if ! "$node" up "$state" >"$state.up.log" 2>&1; then
	cat "$state.up.log" >&2
	exit 1
fi
tail -1 "$state.up.log"
sock="$(sed -n 's/^CONTAINERD_SOCK=//p' "$state/env")"
if ! in_node bash -c "source hack/cluster/lib/images.sh && import_images $sock $out/images/*.tar" >"$state.import.log" 2>&1; then
	cat "$state.import.log" >&2
	exit 1
fi

step "helm install authgate charts/authgate (values: image names only)"
in_node bin/helm install authgate charts/authgate --namespace authgate-system --create-namespace \
	--set image.repository=dev.local/authgate/authgate-controller --set image.tag=e2e \
	--set proxy.image.repository=dev.local/authgate/authgate-proxy --set proxy.image.tag=e2e \
	--wait --timeout 5m >/dev/null
in_node kubectl -n authgate-system get pods

step "kubectl apply -f examples/plain-deployment.yaml"
retry 180 in_node kubectl apply -f examples/plain-deployment.yaml
in_node kubectl -n plain-demo rollout status deploy/hello --timeout 4m >/dev/null
in_node kubectl -n plain-demo get pods -o custom-columns='POD:.metadata.name,CONTAINERS:.spec.containers[*].name'

step "Knative Serving ($(awk '$1 == "knative.dev/serving" { print $2 }' hack/cluster/knative/go.mod), built from its module) and examples/knative-service.yaml"
in_node kubectl apply --server-side -f "$out/knative/crds.yaml" >/dev/null
retry 120 in_node kubectl apply --server-side -f "$out/knative/core.yaml"
for d in controller webhook autoscaler activator; do
	in_node kubectl -n knative-serving rollout status "deploy/$d" --timeout 4m >/dev/null
done
retry 180 in_node kubectl apply -f examples/knative-service.yaml
in_node kubectl -n knative-demo wait --for=condition=Ready revision/hello-00001 --timeout 4m >/dev/null
in_node kubectl -n knative-demo get pods -o custom-columns='POD:.metadata.name,CONTAINERS:.spec.containers[*].name'

plain="http://$(in_node kubectl -n plain-demo get svc hello -o jsonpath='{.spec.clusterIP}')"
activator="http://$(in_node kubectl -n knative-serving get svc activator-service -o jsonpath='{.spec.clusterIP}')"
knative=(-H "Knative-Serving-Namespace: knative-demo" -H "Knative-Serving-Revision: hello-00001")

# show WHAT CURL-ARGS...: one request from inside the node, its status, and
# the identity headers the function received (the sample function echoes
# what it got; the sidecar's refusals are JSON problems).
show() {
	local what="$1" body status
	shift
	body="$(in_node curl -sS --max-time 30 -w '\n%{http_code}' "$@")"
	status="${body##*$'\n'}"
	body="${body%$'\n'*}"
	printf '  %-58s -> %s' "$what" "$status"
	if [[ "$status" == 200 ]]; then
		printf '   function saw: %s\n' "$(grep -o '"X-Authgate-[A-Za-z-]*":\["[^"]*"\]' <<<"$body" | tr '\n' ' ')"
	else
		printf '   %s\n' "$(grep -o '"reason":"[^"]*"' <<<"$body" || true)"
	fi
}

# Ready pods can run before the kubelet has projected the rendered policy
# (the sidecar answers 503 until then): wait for the key to be accepted.
enforced() {
	[[ "$(in_node curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@")" == 200 ]]
}
retry 180 enforced -H "X-API-Key: example-plain-key-change-me-0001" "$plain/hello/x"
retry 180 enforced "${knative[@]}" -H "X-API-Key: example-knative-key-change-me-01" "$activator/hello/x"

for target in plain knative; do
	if [[ $target == plain ]]; then
		step "Requests to the plain Deployment's Service (kube-proxy -> sidecar -> function)"
		base="$plain" extra=() key=example-plain-key-change-me-0001
	else
		step "Requests to the Knative revision through the activator (as the ingress sends them)"
		base="$activator" extra=("${knative[@]}") key=example-knative-key-change-me-01
	fi
	show "GET /hello/x, no credential" "${extra[@]}" "$base/hello/x"
	show "GET /hello/x, a wrong key" "${extra[@]}" -H "X-API-Key: not-a-key-of-this-function-00" "$base/hello/x"
	show "POST /hello/x, the key lacks hello:write" "${extra[@]}" -X POST -H "X-API-Key: $key" "$base/hello/x"
	show "GET /hello/x, the key" "${extra[@]}" -H "X-API-Key: $key" "$base/hello/x"
	show "GET /hello/x, the key and a spoofed X-Authgate-Subject" "${extra[@]}" -H "X-API-Key: $key" -H "X-Authgate-Subject: admin" "$base/hello/x"
done

step "AuthPolicy status (kubectl get authpolicies -A)"
in_node kubectl get authpolicies -A

if [[ -n "${KEEP:-}" ]]; then
	step "The node keeps running"
	cat <<EOF
  kubectl:  hack/cluster/node.sh exec $state -- kubectl get pods -A
  curl:     hack/cluster/node.sh exec $state -- curl -H 'X-API-Key: example-plain-key-change-me-0001' $plain/hello/x
  a shell:  hack/cluster/node.sh exec $state -- bash   (KUBECONFIG and PATH are set)
  stop:     make demo-cluster-down
EOF
fi
