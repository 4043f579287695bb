#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Weighted endpoints: weights 1:3 split new connections 25/75, and weight 0
# takes no new connections.
#
#  ┌─────────────┐     ┌────────────┐     ┌─────────────────────────┐
#  │ client      ├veth─┤ node  kvip ├br0──┤ backend1  weight 1      │
#  └─────────────┘     └────────────┘     │ backend2  weight 3      │
#   400 x 10.96.0.10:80                   │ backend3  weight 0      │
#                                         └─────────────────────────┘
#
# Selection is random, so the check is 25% +- 10 percentage points of 400
# (60..140 connections for backend1, about 4.6 standard deviations).

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 CONNS=400

ktap_print_header
kvip_require
ktap_set_plan 5

kvip_topology 3 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/web proto tcp clusterip $VIP:80 endpoint-stats
endpoints set default/web 10.0.1.1:8080@1 10.0.1.2:8080@3 10.0.1.3:8080@0
EOF2

w=$(kvip_json "$node" "' '.join('%s=%s' % (e['address'], e['weight']) for e in s[0]['endpoints'])")
ktap_check "weights are 1, 3 and 0 in the table" "got '$w'" \
	[ "$w" = "10.0.1.1=1 10.0.1.2=3 10.0.1.3=0" ]

out=$KVIP_TMP/out
client_run "$out" "$client" -n "$CONNS" "$VIP" 80
ktap_check "all $CONNS connections succeed" "${R[ok]} of $CONNS" \
	[ "${R[ok]}" = "$CONNS" ]

b1=${TALLY[backend-1]:-0} b2=${TALLY[backend-2]:-0} b3=${TALLY[backend-3]:-0}
ktap_print_msg "backend-1 (weight 1): $b1, backend-2 (weight 3): $b2, backend-3 (weight 0): $b3"
ktap_check "weight 1 of 4 gets 25% +- 10 points (60..140 of 400)" \
	"backend-1 got $b1" [ $((b1 >= 60 && b1 <= 140)) = 1 ]
ktap_check "weight 0 gets no new connections" "backend-3 got $b3" [ "$b3" = 0 ]

c=$(kvip_json "$node" "' '.join(str(e['stats']['conns']) for e in s[0]['endpoints'])")
ktap_check "endpoint conns counters match ($b1 $b2 $b3)" "got '$c'" \
	[ "$c" = "$b1 $b2 $b3" ]

ktap_finished
