#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, isolated in a network
# namespace of its own: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet with containerd and runc, kube-proxy (iptables) and
# CoreDNS, pods on a CNI bridge. Nothing inside can reach an address outside:
# the namespace has loopback, a bridge without ports holding the node IP and
# the default route, and the pod bridge.
#
#   hack/cluster/node.sh up    STATE   start it; STATE/env says how to use it
#   hack/cluster/node.sh exec  STATE -- CMD...   run CMD inside the namespace
#   hack/cluster/node.sh logs  STATE   print every component's log tail
#   hack/cluster/node.sh down  STATE   stop it and prove nothing is left
#
# One holder process owns the network and mount namespaces; every component
# joins it with nsenter -n -m (ip netns exec would remount /sys per process, so
# the cgroup mounts would vanish and containerd would not see the kubelet's
# volume mounts). Mounts made inside (tmpfs over /run, the CNI state, the
# resolv.conf and hosts bind mounts, every container's rootfs) live only in
# that mount namespace and vanish with it. Pods' cgroups live under
# /<CGROUP_ROOT> in each hierarchy, so teardown finds them all.
#
# Binaries: KUBE_BIN (etcd, kube-apiserver: hack/envtest.sh) and CLUSTER_BIN
# (kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl,
# coredns: hack/cluster/build.sh). Debian packages it needs are installed when
# missing. Needs root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KUBE_BIN="${KUBE_BIN:-$root/bin/k8s}"
CLUSTER_BIN="${CLUSTER_BIN:-$root/bin/cluster}"
NODE_NAME="${NODE_NAME:-authgate-e2e}"
NODE_IP=10.77.0.2          # on agnode0, the port-less bridge
NODE_GW=10.77.0.1          # nothing answers there: the route leads nowhere
# More addresses on agnode0 for the tests' clients, so a function's callers
# can be told apart by address (test/cluster binds to them).
CLIENT_IPS=(10.77.0.11 10.77.0.12 10.77.0.13)
POD_CIDR=10.88.0.0/16      # the CNI bridge agcni0
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
CLUSTER_DOMAIN=cluster.local
CGROUP_ROOT=authgate-e2e
# The kubelet's resync period: how late a mounted ConfigMap change reaches a
# running pod (the default 1m makes that 60-80 s; see docs/real-cluster.md).
SYNC_FREQUENCY="${SYNC_FREQUENCY:-1m}"
SOCK=/run/authgate-e2e/containerd.sock   # inside the namespace's own /run
# Directories mounted over inside the namespace; created on the host only when
# missing, and then removed again by down.
MOUNT_POINTS=(/var/lib/cni /var/log/pods /var/log/containers)

log() { printf 'node: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

holder_pid() { cat "$STATE/holder.pid" 2>/dev/null || true; }

# in CMD...: run CMD inside the cluster's network and mount namespaces.
inside() { nsenter -t "$(holder_pid)" -n -m --wd="$PWD" -- "$@"; }

# own_namespaces: true once the holder's network and mount namespaces are
# not this script's.
own_namespaces() {
	local pid ns
	pid="$(holder_pid)"
	for ns in net mnt; do
		[[ "$(readlink "/proc/$pid/ns/$ns" 2>/dev/null)" != "$(readlink "/proc/self/ns/$ns")" ]] || return 1
	done
	[[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == */sleep ]]
}

# wait_for DESCRIPTION SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
	local what="$1" limit="$2" start=$SECONDS
	shift 2
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS - start >= limit)); then
			log "timed out after ${limit}s waiting for $what"
			return 1
		fi
		sleep 0.5
	done
	log "$what after $((SECONDS - start))s"
}

# start NAME BINARY ARGS...: start a component inside the namespaces, its
# output in STATE/logs/NAME.log, its PID in STATE/pids/NAME.
start() {
	local name="$1"
	shift
	# nsenter execs the component (no PID namespace, so no fork): $! is its PID.
	nsenter -t "$(holder_pid)" -n -m -- "$@" >"$STATE/logs/$name.log" 2>&1 &
	echo $! >"$STATE/pids/$name"
	log "started $name (pid $!)"
}

need_packages() {
	local missing=()
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v conntrack >/dev/null || missing+=(conntrack)
	command -v openssl >/dev/null || missing+=(openssl)
	if ((${#missing[@]})); then
		log "installing ${missing[*]} (Debian packages)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
			{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; }
	fi
	for b in "$KUBE_BIN/etcd" "$KUBE_BIN/kube-apiserver" "$CLUSTER_BIN"/{kubelet,kube-controller-manager,kube-scheduler,kube-proxy,kubectl,coredns}; do
		[[ -x "$b" ]] || die "missing $b: run make envtest cluster-components"
	done
}

# pki: a cluster CA, the API server's serving cert, its client cert for the
# kubelet, the service-account signing key, and bearer tokens per component.
pki() {
	local d="$STATE/pki"
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=authgate-e2e-ca" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	cert() { # cert NAME SUBJECT [SANS]
		openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
		openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
			${3:+-extfile <(printf 'subjectAltName=%s\n' "$3")} -out "$d/$1.crt" 2>/dev/null
	}
	cert apiserver "/CN=kube-apiserver" \
		"IP:$API_SERVICE_IP,IP:$NODE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost"
	cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
	openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
	openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
	: >"$d/tokens.csv"
	local who
	for who in admin:system:masters kubelet:system:nodes kube-controller-manager: kube-scheduler: kube-proxy:; do
		local name="${who%%:*}" group="${who#*:}" user token
		case "$name" in
		admin) user="admin" ;;
		kubelet) user="system:node:$NODE_NAME" ;;
		*) user="system:$name" ;;
		esac
		token="$(openssl rand -hex 24)"
		echo "$token,$user,$user${group:+,\"$group\"}" >>"$d/tokens.csv"
		kubeconfig "$STATE/$name.kubeconfig" "$token"
	done
	chmod 600 "$d"/*.key "$d/tokens.csv"
}

kubeconfig() { # kubeconfig FILE TOKEN
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$STATE/pki/ca.crt"}
users:
- name: e2e
  user: {token: "$2"}
contexts:
- name: e2e
  context: {cluster: e2e, user: e2e}
current-context: e2e
EOF
	chmod 600 "$1"
}

network() {
	inside ip link set lo up
	inside ip link add agnode0 type bridge
	inside ip addr add "$NODE_IP/24" dev agnode0
	local a
	for a in "${CLIENT_IPS[@]}"; do
		inside ip addr add "$a/24" dev agnode0
	done
	inside ip link set agnode0 up
	inside ip route add default via "$NODE_GW" dev agnode0 onlink
	inside sysctl -q -w net.ipv4.ip_forward=1
	inside sysctl -q -w net.bridge.bridge-nf-call-iptables=1 || log "bridge-nf-call-iptables not settable here"
	inside sysctl -q -w net.ipv4.conf.all.route_localnet=1
}

mounts() {
	mkdir -p "$STATE/etc"
	echo "nameserver $NODE_IP" >"$STATE/etc/resolv.conf"
	printf '127.0.0.1 localhost\n%s %s\n' "$NODE_IP" "$NODE_NAME" >"$STATE/etc/hosts"
	: >"$STATE/created-dirs"
	local p
	for p in "${MOUNT_POINTS[@]}"; do
		[[ -d "$p" ]] || { mkdir -p "$p" && echo "$p" >>"$STATE/created-dirs"; }
		inside mount -t tmpfs tmpfs "$p"
	done
	inside mount -t tmpfs tmpfs /run
	inside mkdir -p /run/authgate-e2e /run/netns
	inside mount --bind "$STATE/etc/resolv.conf" /etc/resolv.conf
	inside mount --bind "$STATE/etc/hosts" /etc/hosts
}

containerd_config() {
	mkdir -p "$STATE/cni/net.d" "$STATE/containerd"
	cat >"$STATE/cni/net.d/10-authgate-e2e.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "authgate-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "agcni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$STATE/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
	cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "/run/authgate-e2e/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "dev.local/pause:e2e"
  # This VM lacks CAP_SYS_RESOURCE: without this runc fails every sandbox
  # ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
EOF
}

kubelet_config() {
	cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false        # 1.36 refuses cgroup v1 otherwise; this VM has only v1
cgroupDriver: cgroupfs     # containerd 1.6 cannot report its driver
cgroupRoot: /$CGROUP_ROOT
failSwapOn: false
containerRuntimeEndpoint: unix://$SOCK
address: $NODE_IP
syncFrequency: $SYNC_FREQUENCY
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $STATE/etc/resolv.conf
podLogsDir: /var/log/pods
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
EOF
	cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
	cat >"$STATE/Corefile" <<EOF
.:53 {
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $STATE/admin.kubeconfig e2e
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
    loadbalance
}
EOF
}

kubectl() { inside "$CLUSTER_BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

up() {
	[[ ! -e "$STATE/holder.pid" ]] || die "$STATE holds a cluster already: run down first"
	need_packages
	mkdir -p "$STATE/logs" "$STATE/pids"
	unshare --net --mount --propagation private -- sleep infinity &
	echo $! >"$STATE/holder.pid"
	# /proc/PID/ns/* exist from the fork on, still the parent's until
	# unshare has run: wait until both namespaces are new, or the network
	# set-up below would land on the host.
	wait_for "namespaces" 10 own_namespaces
	network
	mounts
	pki
	containerd_config
	kubelet_config

	# The kubelet puts every pod under /$CGROUP_ROOT and wants it to exist in
	# every hierarchy; down removes it again.
	local h
	for h in /sys/fs/cgroup/*/; do
		[[ -L "${h%/}" ]] || mkdir -p "$h$CGROUP_ROOT"
	done
	start containerd containerd --config "$STATE/containerd/config.toml"
	start etcd "$KUBE_BIN/etcd" --data-dir "$STATE/etcd" --name e2e \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster e2e=http://127.0.0.1:2380 --unsafe-no-fsync
	local p="$STATE/pki"
	start kube-apiserver "$KUBE_BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
		--advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port 6443 \
		--tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
		--client-ca-file "$p/ca.crt" --token-auth-file "$p/tokens.csv" \
		--kubelet-client-certificate "$p/apiserver-kubelet-client.crt" --kubelet-client-key "$p/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types InternalIP \
		--service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
		--service-account-jwks-uri "https://kubernetes.default.svc.$CLUSTER_DOMAIN/openid/v1/jwks" \
		--service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
		--service-cluster-ip-range "$SERVICE_CIDR" --authorization-mode Node,RBAC \
		--enable-admission-plugins NodeRestriction --allow-privileged=true \
		--enable-aggregator-routing=true --profiling=false
	wait_for "API server ready" 120 kubectl get --raw /readyz
	start kube-controller-manager "$CLUSTER_BIN/kube-controller-manager" \
		--kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
		--authentication-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
		--authorization-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
		--service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
		--cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
		--use-service-account-credentials=true --leader-elect=false --bind-address 127.0.0.1 \
		--service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
	start kube-scheduler "$CLUSTER_BIN/kube-scheduler" --kubeconfig "$STATE/kube-scheduler.kubeconfig" \
		--authentication-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
		--authorization-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
		--leader-elect=false --bind-address 127.0.0.1 --profiling=false
	wait_for "containerd" 60 inside ctr --address "$SOCK" version
	start kubelet "$CLUSTER_BIN/kubelet" --config "$STATE/kubelet.yaml" \
		--kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
		--hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
	start kube-proxy "$CLUSTER_BIN/kube-proxy" --config "$STATE/kube-proxy.yaml"
	start coredns "$CLUSTER_BIN/coredns" -conf "$STATE/Corefile"
	wait_for "node Ready" 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
	wait_for "default ServiceAccount" 60 kubectl -n default get serviceaccount default
	cat >"$STATE/env" <<EOF
HOLDER_PID=$(holder_pid)
KUBECONFIG=$STATE/admin.kubeconfig
CONTAINERD_SOCK=$SOCK
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
CA_FILE=$STATE/pki/ca.crt
EOF
	log "cluster up: hack/cluster/node.sh exec $STATE -- kubectl get pods -A (KUBECONFIG=$STATE/admin.kubeconfig)"
}

logs() {
	local f
	for f in "$STATE"/logs/*.log; do
		[[ -e "$f" ]] || continue
		echo "===== $(basename "$f" .log) (last ${LOG_LINES:-80} lines) ====="
		tail -n "${LOG_LINES:-80}" "$f"
	done
	if [[ -n "$(holder_pid)" && -e "/proc/$(holder_pid)" && -e "$STATE/admin.kubeconfig" ]]; then
		echo "===== pods ====="
		kubectl get pods -A -o wide 2>&1 || true
		echo "===== events ====="
		kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 60 || true
		echo "===== pod logs ====="
		local ns pod
		kubectl get pods -A --no-headers -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name 2>/dev/null |
			while read -r ns pod; do
				echo "--- $ns/$pod"
				kubectl -n "$ns" logs "$pod" --all-containers --prefix --tail=40 2>&1 || true
			done
	fi
}

# pids_in_netns: every process whose network namespace is the holder's.
pids_in_netns() {
	local want p
	want="$(readlink "/proc/$(holder_pid)/ns/net" 2>/dev/null)" || return 0
	for p in /proc/[0-9]*; do
		[[ "$(readlink "$p/ns/net" 2>/dev/null)" == "$want" ]] && echo "${p#/proc/}"
	done
	return 0
}

# pod_pids: every process in the pods' cgroups.
pod_pids() {
	cat /sys/fs/cgroup/pids/"$CGROUP_ROOT"/cgroup.procs /sys/fs/cgroup/pids/"$CGROUP_ROOT"/**/cgroup.procs 2>/dev/null || true
}

stop_pid() { # stop_pid NAME SECONDS: SIGTERM, then SIGKILL after SECONDS
	local pid
	pid="$(cat "$STATE/pids/$1" 2>/dev/null)" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	local start=$SECONDS
	while kill -0 "$pid" 2>/dev/null && ((SECONDS - start < $2)); do sleep 0.2; done
	kill -KILL "$pid" 2>/dev/null || true
}

down() {
	shopt -s globstar nullglob
	if [[ -n "$(holder_pid)" ]]; then
		# The API server hangs on shutdown once etcd is gone: stop it first.
		local c
		for c in kube-proxy kubelet kube-scheduler kube-controller-manager coredns kube-apiserver etcd containerd; do
			stop_pid "$c" 10
		done
		for _ in 1 2 3; do
			# shellcheck disable=SC2046
			kill -KILL $(pod_pids) $(pids_in_netns | grep -vx "$(holder_pid)") 2>/dev/null || true
			sleep 0.3
		done
		kill -KILL "$(holder_pid)" 2>/dev/null || true
		local start=$SECONDS
		while [[ -e "/proc/$(holder_pid)" ]] && ((SECONDS - start < 10)); do sleep 0.2; done
	fi
	local d
	for d in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
		# Deepest first: a cgroup can only be removed once it has no children.
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	if [[ -e "$STATE/created-dirs" ]]; then
		while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$STATE/created-dirs"
	fi
	rm -rf "${STATE:?}/containerd/root" 2>/dev/null || true
	local left=0
	[[ -z "$(holder_pid)" || ! -e "/proc/$(holder_pid)" ]] || { log "holder still running"; left=1; }
	local cgroups=(/sys/fs/cgroup/*/"$CGROUP_ROOT")
	if ((${#cgroups[@]})); then log "cgroups left: ${cgroups[*]}"; left=1; fi
	if grep -q "$STATE" /proc/mounts; then log "mounts left: $(grep "$STATE" /proc/mounts)"; left=1; fi
	rm -f "$STATE/holder.pid" "$STATE/env"
	((left == 0)) || die "teardown incomplete"
	log "down: no process, mount, namespace or cgroup left"
}

[[ $# -ge 2 ]] || usage
cmd="$1"
mkdir -p "$2"
STATE="$(cd "$2" && pwd)"
shift 2
case "$cmd" in
up) up ;;
down) down ;;
logs) logs ;;
exec)
	[[ "${1:-}" == "--" ]] && shift
	[[ $# -gt 0 ]] || usage
	export KUBECONFIG="$STATE/admin.kubeconfig" PATH="$CLUSTER_BIN:$PATH"
	inside "$@"
	;;
*) usage ;;
esac
