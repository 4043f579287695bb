#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# LOCAL_OUT: the node's own processes reach a TCP ClusterIP. 140
# connections from a process in the node namespace to 10.96.0.10:80 over 7
# backends. The node's only route covering the VIP is its default route
# (via the client veth); kvip translates before that route is ever used.
#
#  ┌──────────────┐     ┌───────────────────────┐    ┌──────────────┐
#  │ client       ├veth─┤ node           kvip   │  ┌─┤ backend1     │
#  │ 192.168.0.2  │     │ 192.168.0.1  br0 ─────┼──┤ └──────────────┘
#  └──────────────┘     │ default via client    │  │       ...
#                       │ connect 10.96.0.10:80 │  │ ┌──────────────┐
#                       │ connect [fd96::10]:80 │  └─┤ backend7     │
#                       └───────────────────────┘    └──────────────┘
#
# Checks: every connection succeeds with its payload, its peer is the VIP,
# the backend sees the node's own address (kvip_client.py checks these per
# connection), every backend is used, none gets more than twice its fair
# share, the service counter says 140. The IPv6 VIP of the same service
# works from the node too.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 VIP6=fd96::10 VPORT=80 BPORT=8080 NB=7 CONNS=140
readonly FAIR=$((CONNS / NB)) SVC=default/web

ktap_print_header
kvip_require
ktap_set_plan 5

kvip_topology "$NB" || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port "$BPORT" || ktap_exit_fail_msg "servers did not start"

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add $SVC proto tcp clusterip $VIP:$VPORT clusterip [$VIP6]:$VPORT conn-stats
endpoints set $SVC $(endpoints4 "$BPORT" 1 2 3 4 5 6 7) $(endpoints6 "$BPORT" 1 2 3 4 5 6 7)
EOF2

out=$KVIP_TMP/client.out
client_run "$out" "$node" -n "$CONNS" "$VIP" "$VPORT"

ktap_check "all $CONNS connections from the node to the VIP succeed" \
	"${R[ok]} of $CONNS ok" [ "${R[ok]}" = "$CONNS" ]

check_spread "" "$NB" $((2 * FAIR))

out6=$KVIP_TMP/client6.out
client_run "$out6" "$node" -n 20 "$VIP6" "$VPORT"
ktap_check "20 connections from the node to [$VIP6]:$VPORT succeed" \
	"${R[ok]} of 20 ok" [ "${R[ok]}" = 20 ]

svc_conns=$(kvip_json "$node" "s[0]['stats']['conns']")
ktap_check "service conns counter is $((CONNS + 20))" "got $svc_conns" \
	[ "$svc_conns" = $((CONNS + 20)) ]

ktap_finished
