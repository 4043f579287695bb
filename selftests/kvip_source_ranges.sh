#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Source ranges (loadBalancerSourceRanges) on external and node-port
# frontends.
#
#  ┌─────────────┐      ┌────────────────────┐    ┌──────────────────────┐
#  │ client      ├veth──┤ node  kvip         ├br0─┤ backend1..2 tcp :8080│
#  │ 192.168.0.2 │      │ 192.168.0.1        │    │                      │
#  └─────────────┘      └────────────────────┘    └──────────────────────┘
#   default/lb  clusterip 10.96.0.70:80, nodeport 30070,
#               external 203.0.113.70:80
#
#  - source-ranges without the client: its connections to the external IP
#    and the node port are dropped (a timeout, counted in drops); the
#    cluster IP and the node itself are not restricted;
#  - source-ranges with the client's prefix: it gets through;
#  - source-ranges removed (service replaced without them): open again.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.70 EXT=203.0.113.70 NP=30070 SVC=default/lb

ktap_print_header
kvip_require
ktap_set_plan 9

kvip_topology 2 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"

out=$KVIP_TMP/client.out

svc() {
	kvipctl_ns "$node" service replace "$SVC" proto tcp clusterip "$VIP:80" \
		nodeport "$NP" external "$EXT:80" "$@"
}

# ok NS ADDR PORT [ARGS...]: how many of 3 connections got through; a
# generous timeout unless drops are expected (-t 1).
ok() {
	client_run "$out" "$1" -n 3 -t 3 --max-errors 1 --snat "${@:4}" "$2" "$3"
	echo "${R[ok]}"
}

svc source-ranges 10.99.0.0/16,172.16.0.0/12 || ktap_exit_fail_msg "service setup failed"
# shellcheck disable=SC2046 # a list of endpoints
kvipctl_ns "$node" endpoints set "$SVC" $(endpoints4 8080 1 2)

drops0=$(kvip_json "$node" "svc('$SVC')['stats']['drops']")
got=$(ok "$client" "$EXT" 80 -t 1)
ktap_check "client outside the ranges: external IP dropped" "$got of 3 ok" [ "$got" = 0 ]
got=$(ok "$client" 192.168.0.1 "$NP" -t 1)
ktap_check "client outside the ranges: node port dropped" "$got of 3 ok" [ "$got" = 0 ]
drops1=$(kvip_json "$node" "svc('$SVC')['stats']['drops']")
ktap_check "the refused connections count as drops" "drops $drops0 -> $drops1" \
	[ "$((drops1 - drops0))" -ge 6 ]
got=$(ok "$client" "$VIP" 80)
ktap_check "client outside the ranges: cluster IP unaffected" "$got of 3 ok" [ "$got" = 3 ]
got=$(ok "$node" 192.168.0.1 "$NP")
ktap_check "the node itself reaches the node port" "$got of 3 ok" [ "$got" = 3 ]
got=$(ok "$node" "$EXT" 80)
ktap_check "the node itself reaches the external IP" "$got of 3 ok" [ "$got" = 3 ]

svc source-ranges 10.99.0.0/16,192.168.0.0/24
got=$(ok "$client" "$EXT" 80)
ktap_check "client inside the ranges: external IP works" "$got of 3 ok" [ "$got" = 3 ]
got=$(ok "$client" 192.168.0.1 "$NP")
ktap_check "client inside the ranges: node port works" "$got of 3 ok" [ "$got" = 3 ]

svc source-ranges 10.99.0.0/16
svc
got=$(ok "$client" "$EXT" 80)
ktap_check "ranges removed: open to everyone again" "$got of 3 ok" [ "$got" = 3 ]

ktap_finished
