#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Source NAT decided in the module (POST_ROUTING NAT hook), no iptables.
#
#  ┌─────────────┐      ┌────────────────────┐    ┌─────────────────────────┐
#  │ client      ├veth──┤ node  kvip         ├br0─┤ backend1..3 (the pods)  │
#  │ 192.168.0.2 │      │ 192.168.0.1        │    │ 10.0.1.1-3  tcp :8080   │
#  │ fd00::2     │      │ br0 10.0.1.254     │    │ fd00:1::1-3             │
#  └─────────────┘      └────────────────────┘    │ 2, 3: 10.0.1.1 via node │
#                                                 └─────────────────────────┘
#   default/web   clusterip 10.96.0.40:80, nodeport 30040,
#                 external 203.0.113.40:80 -> backends 2, 3 (v4 and v6)
#   default/self  clusterip 10.96.0.41:80 -> backend 1 only
#
# Modelled on the e2e tests "should preserve source pod IP for traffic thru
# service cluster IP" and "should allow pods to hairpin back to themselves
# through services", plus the masquerade rules of <linux/kvip.h>: each
# connection carries a payload both ways, and the backend reports the
# client address it saw (the node's bridge address when masqueraded).

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.40 SELF_VIP=10.96.0.41 EXT=203.0.113.40 NP=30040
readonly BR=10.0.1.254 BR6=fd00:1::fe

ktap_print_header
kvip_require
ktap_set_plan 10

kvip_topology 3 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"
pod=${backends[0]}
# Replies of backends 2 and 3 to the pod go through the node, as with a
# routed (point-to-point) CNI; on a plain bridge they would skip the
# node's conntrack (that needs br_netfilter) and never be translated back.
for b in "${backends[@]:1}"; do
	ip -n "$b" route add 10.0.1.1/32 via 10.0.1.254 ||
		ktap_exit_fail_msg "route setup failed"
done

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/web proto tcp clusterip $VIP:80 nodeport $NP external $EXT:80
endpoints set default/web $(endpoints4 8080 2 3) $(endpoints6 8080 2 3)
service add default/self proto tcp clusterip $SELF_VIP:80
endpoints set default/self $(endpoints4 8080 1)
EOF2

out=$KVIP_TMP/client.out

# peers NS ADDR PORT [ARGS...]: 6 connections that may be masqueraded;
# prints "OK/PEERS", the client addresses the backends saw.
peers() {
	local ns=$1 addr=$2 port=$3
	shift 3
	client_run "$out" "$ns" -n 6 -t 2 --snat --tally peer "$@" "$addr" "$port"
	echo "${R[ok]}/$(tally_keys)"
}

# --- no masquerading where the source must be kept ---
client_run "$out" "$pod" -n 6 -t 2 "$VIP" 80
ktap_check "pod to cluster IP: the backend sees the pod's address" \
	"ok=${R[ok]} error=${R[error]}" [ "${R[ok]}" = 6 ]

client_run "$out" "$client" -n 6 -t 2 "$VIP" 80
ktap_check "no cluster CIDR configured: off-cluster client to cluster IP keeps its address" \
	"ok=${R[ok]} error=${R[error]}" [ "${R[ok]}" = 6 ]

# --- hairpin ---
got=$(peers "$pod" "$SELF_VIP" 80)
ktap_check "hairpin: a pod reaches itself through its service, masqueraded to the node" \
	"$got" [ "$got" = "6/$BR" ]

# --- external and node-port traffic, policy Cluster ---
got=$(peers "$client" 192.168.0.1 "$NP")
ktap_check "node port (cluster policy) is masqueraded to the node's address" \
	"$got" [ "$got" = "6/$BR" ]

got=$(peers "$client" fd00::1 "$NP")
ktap_check "node port over IPv6 is masqueraded to the node's address" \
	"$got" [ "$got" = "6/$BR6" ]

got=$(peers "$client" "$EXT" 80)
ktap_check "external IP (cluster policy) is masqueraded to the node's address" \
	"$got" [ "$got" = "6/$BR" ]

# --- cluster CIDRs ---
kvipctl_ns "$node" config set cluster-cidr 10.0.1.0/24 fd00:1::/64 ||
	ktap_exit_fail_msg "config set failed"
got=$(peers "$client" "$VIP" 80)
ktap_check "cluster CIDR set: off-cluster client to cluster IP is masqueraded" \
	"$got" [ "$got" = "6/$BR" ]

client_run "$out" "$pod" -n 6 -t 2 "$VIP" 80
ktap_check "cluster CIDR set: pod to cluster IP still keeps its address" \
	"ok=${R[ok]} error=${R[error]}" [ "${R[ok]}" = 6 ]

# --- masquerade-all ---
kvipctl_ns "$node" config set masquerade-all on ||
	ktap_exit_fail_msg "config set failed"
got=$(peers "$pod" "$VIP" 80)
ktap_check "masquerade-all: pod to cluster IP is masqueraded too" \
	"$got" [ "$got" = "6/$BR" ]

kvipctl_ns "$node" config set masquerade-all off ||
	ktap_exit_fail_msg "config set failed"
client_run "$out" "$pod" -n 6 -t 2 "$VIP" 80
ktap_check "masquerade-all off again: the pod's address is kept" \
	"ok=${R[ok]} error=${R[error]}" [ "${R[ok]}" = 6 ]

ktap_finished
