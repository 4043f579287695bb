#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# TCP ClusterIP: 140 connections from a client namespace to the VIP
# 10.96.0.10:80 spread over 7 backends listening on :8080.
#
#                                         ┌──────────────┐
#                                       ┌─┤ backend1     │ 10.0.1.1:8080
#  ┌──────────────┐     ┌────────────┐  │ └──────────────┘
#  │ client       │     │ node  kvip │  │        ...
#  │ 192.168.0.2  ├veth─┤ br0        ├──┤ ┌──────────────┐
#  └──────────────┘     │ 10.0.1.254 │  └─┤ backend7     │ 10.0.1.7:8080
#   connect 10.96.0.10:80└───────────┘    └──────────────┘
#
# Checks: every connection succeeds and carries its payload both ways, the
# client's peer is the VIP, the backend sees the real client address (all
# checked per connection by kvip_client.py), all 7 backends are used, none
# gets more than twice its fair share (20), and the service and endpoint
# "conns" counters agree with what the client saw. Then a second cluster
# IP, 10.96.0.11, added by `service replace`, serves at once: a new
# frontend of a service starts with the service's endpoints. That replace
# leaves conn-stats out: its 20 connections are translated and counted per
# endpoint but not by the service, whose counter reappears with its old
# value when conn-stats is turned on again.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 VIP2=10.96.0.11 VPORT=80 BPORT=8080 NB=7 CONNS=140
readonly FAIR=$((CONNS / NB)) SVC=default/web

ktap_print_header
kvip_require
ktap_set_plan 8

kvip_topology "$NB" || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port "$BPORT" || ktap_exit_fail_msg "servers did not start"

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add $SVC proto tcp clusterip $VIP:$VPORT endpoint-stats conn-stats
endpoints set $SVC $(endpoints4 "$BPORT" 1 2 3 4 5 6 7)
EOF2

out=$KVIP_TMP/client.out
client_run "$out" "$client" -n "$CONNS" "$VIP" "$VPORT"

ktap_check "all $CONNS connections to the VIP succeed with payload" \
	"${R[ok]} of $CONNS ok" [ "${R[ok]}" = "$CONNS" ]

check_spread "" "$NB" $((2 * FAIR))

# Counters: the service's, and per endpoint "backend-N COUNT".
{
	read -r svc_conns
	read -r ep_conns
} < <(kvip_json "$node" "s[0]['stats']['conns']" \
	"' '.join('backend-%s=%d' % (e['address'].split('.')[-1], e['stats']['conns']) for e in s[0]['endpoints'])")
ktap_check "service conns counter is $CONNS" "got $svc_conns" \
	[ "$svc_conns" = "$CONNS" ]

seen=""
for k in $(tally_keys); do seen+="$k=${TALLY[$k]} "; done
ktap_check "endpoint conns counters match the replies per backend" \
	"counters '$ep_conns', replies '${seen% }'" [ "$ep_conns" = "${seen% }" ]

kvipctl_ns "$node" service replace $SVC proto tcp clusterip $VIP:$VPORT \
	clusterip $VIP2:$VPORT endpoint-stats || ktap_exit_fail_msg "service replace failed"
client_run "$out" "$client" -n 20 "$VIP2" "$VPORT"
ktap_check "a cluster IP added by service replace serves at once" \
	"${R[ok]} of 20 ok, ${R[refused]} refused" [ "${R[ok]}" = 20 ]

{
	read -r has_conns
	read -r ep_sum
} < <(kvip_json "$node" "'conns' in s[0]['stats']" \
	"sum(e['stats']['conns'] for e in s[0]['endpoints'])")
ktap_check "without conn-stats: no service conns, endpoints count all $((CONNS + 20))" \
	"service conns shown: $has_conns, endpoint sum $ep_sum" \
	[ "$has_conns/$ep_sum" = "False/$((CONNS + 20))" ]

kvipctl_ns "$node" service replace $SVC proto tcp clusterip $VIP:$VPORT \
	clusterip $VIP2:$VPORT endpoint-stats conn-stats ||
	ktap_exit_fail_msg "service replace failed"
svc_conns=$(kvip_json "$node" "s[0]['stats']['conns']")
ktap_check "conn-stats on again: conns is still $CONNS (the 20 went uncounted)" \
	"got $svc_conns" [ "$svc_conns" = "$CONNS" ]

ktap_finished
