#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# IPv6 ClusterIPs, and dual-stack services (a flow only ever goes to an
# endpoint of its own family).
#
#  ┌──────────────┐      ┌──────────────┐     ┌────────────────────────┐
#  │ client       ├veth──┤ node   kvip  ├br0──┤ backend1..4            │
#  │ fd00::2      │      │ fd00::1      │     │ fd00:1::i  10.0.1.i    │
#  │ 192.168.0.2  │      │ fd00:1::fe   │     │ tcp :8080  udp :5353   │
#  └──────────────┘      └──────────────┘     └────────────────────────┘
#   tcp [fd96::10]:80 (default/web)   udp [fd96::53]:53 (default/dns)
#
# Checks: 80 TCP connections to [fd96::10]:80 succeed with payload, from the
# VIP, with the client's own address seen by the backend, over all 4
# backends; 20 UDP exchanges with [fd96::53]:53; after `service replace`
# adds the IPv4 frontend 10.96.0.10:80 while the service has only IPv6
# endpoints, IPv4 connections are refused (never translated to an IPv6
# endpoint) and IPv6 keeps working (replace kept the endpoints); with
# endpoints of both families each family's connections go only to that
# family's endpoints, and both endpoints of each family are used.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP6=fd96::10 DNS6=fd96::53 VIP4=10.96.0.10 NB=4

ktap_print_header
kvip_require
ktap_set_plan 6

kvip_topology "$NB" || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- -p tcp --port 8080 -p udp --port 5353 ||
	ktap_exit_fail_msg "servers did not start"

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/web proto tcp clusterip [$VIP6]:80 conn-stats
endpoints set default/web $(endpoints6 8080 1 2 3 4)
service add default/dns proto udp clusterip [$DNS6]:53
endpoints set default/dns $(endpoints6 5353 1 2 3 4)
EOF2

out=$KVIP_TMP/out
client_run "$out" "$client" -n 80 "$VIP6" 80
ktap_check "tcp6: 80 connections to [$VIP6]:80 succeed, client address preserved" \
	"${R[ok]} of 80 ok" [ "${R[ok]}" = 80 ]
check_spread tcp6 "$NB"

client_run "$out" "$client" -p udp -n 20 -t 2 "$DNS6" 53
ktap_check "udp6: 20 requests to [$DNS6]:53 answered" "${R[ok]} of 20 ok" \
	[ "${R[ok]}" = 20 ]

# Dual stack, IPv6 endpoints only: IPv4 has nowhere to go.
kvipctl_ns "$node" service replace default/web proto tcp clusterip "[$VIP6]:80" \
	clusterip "$VIP4:80" conn-stats || ktap_exit_fail_msg "service replace failed"
client_run "$out" "$client" -n 5 -t 2 "$VIP4" 80
refused4=${R[refused]}
client_run "$out" "$client" -n 20 "$VIP6" 80
ktap_check "dual stack, IPv6 endpoints only: IPv4 refused, IPv6 still served" \
	"IPv4: $refused4 of 5 refused; IPv6: ${R[ok]} of 20 ok" \
	[ "$refused4/${R[ok]}" = 5/20 ]

# Endpoints of both families: each family stays within its own.
# shellcheck disable=SC2046 # endpoint lists
kvipctl_ns "$node" endpoints set default/web $(endpoints6 8080 1 2) \
	$(endpoints4 8080 3 4) || ktap_exit_fail_msg "endpoints set failed"
client_run "$out" "$client" -n 30 --tally endpoint "$VIP4" 80
ok4=${R[ok]} used4=$(tally_keys)
client_run "$out" "$client" -n 30 --tally endpoint "$VIP6" 80
ok6=${R[ok]} used6=$(tally_keys)
ktap_check "dual stack: IPv4 flows go to IPv4 endpoints, IPv6 to IPv6" \
	"ok $ok4 + $ok6 of 60; IPv4 went to '$used4', IPv6 to '$used6'" \
	[ "$ok4 $ok6|$used4|$used6" = "30 30|10.0.1.3:8080 10.0.1.4:8080|[fd00:1::1]:8080 [fd00:1::2]:8080" ]

conns=$(kvip_json "$node" "svc('default/web')['stats']['conns']")
ktap_check "default/web counts 160 connections translated (refused ones excluded)" \
	"got $conns" [ "$conns" = 160 ]

ktap_finished
