#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh - kvip in one screen (`make demo` runs it in the test VM).
#
# Seven "pods" elastic-0..6 serve HTTP on :9200 and answer with their name.
# We do by hand what `kubectl expose deploy/elastic --port 9200` makes
# kube-proxy do: a ClusterIP service default/elastic on 10.96.0.10:9200
# with the seven pods as endpoints. Then a client curls the VIP 21 times.
#
#  ┌─────────────┐      ┌──────────────────┐       ┌────────────────────────┐
#  │ client      ├─veth─┤ node   kvip      ├─br0───┤ elastic-0  10.0.1.1    │
#  │ 192.168.0.2 │      │ 10.96.0.10:9200  │       │ ...                    │
#  └─────────────┘      │ (no address, no  │       │ elastic-6  10.0.1.7    │
#   curl VIP            │  iptables rule)  │       └────────────────────────┘
#                       └──────────────────┘

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 PORT=9200 PODS=7 REQUESTS=21

say() {
	printf '\n%s\n' "$*"
}

# show_run WHERE CMD...: print the command like a shell prompt, then run it.
show_run() {
	local where=$1
	shift
	printf '%s$ %s\n' "$where" "$*"
	"$@"
}

die() {
	echo "demo: $*" >&2
	exit 1
}

[[ $EUID -eq 0 ]] || die "run as root (make demo runs it in the test VM)"
[[ -x "$KVIPCTL" ]] || die "no $KVIPCTL: build it first (make)"
if ! kvip_loaded; then
	say "Loading the module (conntrack and NAT first):"
	deps=$(modinfo -F depends "$KVIP_KO") || die "no $KVIP_KO: build it first (make)"
	# shellcheck disable=SC2086 # a list of modules
	show_run "" modprobe -a ${deps//,/ }
	show_run "" insmod "$KVIP_KO" || die "insmod failed"
fi

say "Building the network: a client, a node, and $PODS pods behind a bridge on the node."
kvip_topology "$PODS" >/dev/null || die "topology setup failed"
args=()
for ((i = 0; i < PODS; i++)); do
	args+=(--netns "${backends[i]}=elastic-$i")
	echo "  pod elastic-$i  10.0.1.$((i + 1)):$PORT  (netns ${backends[i]})"
done
server_pid=$("$PYTHON" "$KVIP_SERVER" --daemon -p http --port "$PORT" "${args[@]}") ||
	die "the pods' HTTP servers did not start"
defer kill_wait "$server_pid"
echo "  client 192.168.0.2 (netns $client), node (netns $node)"

# kvipctl ARGS...: run kvipctl on the node, shown as the operator types it.
kvipctl() {
	printf 'node$ kvipctl %s\n' "$*"
	ip netns exec "$node" "$KVIPCTL" "$@"
}
endpoints=()
for ((i = 1; i <= PODS; i++)); do
	endpoints+=("10.0.1.$i:$PORT")
done

say "kubectl expose deploy/elastic --port $PORT, by hand: the service and its endpoints."
kvipctl service add default/elastic proto tcp clusterip "$VIP:$PORT" conn-stats endpoint-stats || die "service add failed"
kvipctl endpoints set default/elastic "${endpoints[@]}" || die "endpoints set failed"

say "The table:"
kvipctl service show || die "service show failed"

say "Nothing else was needed: the VIP is on no interface, and there is no iptables or nft rule."
echo 'node$ ip -br addr'
ip -n "$node" -br addr
echo 'node$ nft list ruleset'
rules=$(ip netns exec "$node" nft list ruleset 2>&1)
echo "${rules:-(empty)}"

say "$REQUESTS requests from the client to http://$VIP:$PORT/:"
echo "client$ for i in \$(seq $REQUESTS); do curl -s http://$VIP:$PORT/; done"
declare -A seen=()
failed=0
for ((i = 1; i <= REQUESTS; i++)); do
	name=$(ip netns exec "$client" curl -s --max-time 5 "http://$VIP:$PORT/")
	if [[ -z "$name" ]]; then
		name="(no answer)"
		failed=$((failed + 1))
	else
		seen[$name]=$((${seen[$name]:-0} + 1))
	fi
	printf '  request %2d -> %s\n' "$i" "$name"
done

say "Answers per pod:"
for ((i = 0; i < PODS; i++)); do
	printf '  elastic-%d  %d\n' "$i" "${seen[elastic-$i]:-0}"
done

say "The counters (conns = new connections translated):"
kvipctl service show || die "service show failed"

say "Cleaning up (namespaces and servers go away with the demo)."
((failed == 0)) || die "$failed requests got no answer"
