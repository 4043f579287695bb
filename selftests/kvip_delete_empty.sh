#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Deleting a service, and services without endpoints.
#
#  ┌─────────────┐     ┌────────────┐     ┌────────────────────────┐
#  │ client      ├veth─┤ node  kvip ├br0──┤ backend1, backend2     │
#  │ 192.168.0.2 │     │            │     │ tcp :8080  udp :5353   │
#  └─────────────┘     └────────────┘     └────────────────────────┘
#   tcp 10.96.0.10:80 (default/web)   udp 10.96.0.10:53 (default/dns)
#
# Delete: once default/web is deleted, connections to its VIP are no longer
# translated (they time out: the node routes the VIP back towards the
# client, and the backends see nothing) while default/dns on the same
# address keeps working; adding the service again restores traffic.
# Empty endpoint set: TCP connections are refused at once (RST, well under
# a second), UDP gets ICMP port unreachable (ECONNREFUSED on a connected
# socket); both count as rejects.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10

ktap_print_header
kvip_require
ktap_set_plan 8

kvip_topology 2 || ktap_exit_fail_msg "topology setup failed"
srvlog=$KVIP_TMP/server.log
# The node answers every rejected UDP request with an ICMP error; the
# kernel's per-destination ICMP rate limit (burst of 6, then 1/s) would
# otherwise swallow some and turn "refused" into a timeout.
ip netns exec "$node" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 ||
	ktap_exit_fail_msg "cannot lift the ICMP rate limit"
kvip_servers backend- -p tcp --port 8080 -p udp --port 5353 --log "$srvlog" ||
	ktap_exit_fail_msg "servers did not start"

web_cmds="service add default/web proto tcp clusterip $VIP:80
endpoints set default/web $(endpoints4 8080 1 2)"
kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
$web_cmds
service add default/dns proto udp clusterip $VIP:53
endpoints set default/dns $(endpoints4 5353 1 2)
EOF2

# count_lines FILE: number of lines (builtins only).
count_lines() {
	local n=0 _
	while read -r _; do n=$((n + 1)); done <"$1"
	echo "$n"
}

out=$KVIP_TMP/out
client_run "$out" "$client" -n 10 "$VIP" 80
ktap_check "tcp: 10 connections before the delete succeed" "${R[ok]} of 10" \
	[ "${R[ok]}" = 10 ]

# --- delete ---
kvipctl_ns "$node" service del default/web || ktap_exit_fail_msg "service del failed"
names=$(kvip_json "$node" "' '.join(x['name'] for x in s)")
ktap_check "deleted service is gone from the table" "table has '$names'" \
	[ "$names" = default/dns ]

seen=$(count_lines "$srvlog")
client_run "$out" "$client" -n 2 -t 1 "$VIP" 80
lost=$((R[timeout] + R[unreachable]))
new=$(($(count_lines "$srvlog") - seen))
ktap_check "tcp: after delete the VIP is not translated (no backend reached)" \
	"${R[ok]} ok, $lost of 2 timed out/unreachable; backends saw $new connections" \
	[ "${R[ok]}/$lost/$new" = 0/2/0 ]

client_run "$out" "$client" -p udp -n 5 -t 2 "$VIP" 53
ktap_check "udp service on the same VIP is untouched" "${R[ok]} of 5" \
	[ "${R[ok]}" = 5 ]

kvipctl_batch "$node" <<<"$web_cmds" || ktap_exit_fail_msg "service re-add failed"
client_run "$out" "$client" -n 10 "$VIP" 80
ktap_check "tcp: re-added service works again" "${R[ok]} of 10" [ "${R[ok]}" = 10 ]

# --- empty endpoint sets ---
kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "endpoints set failed"
endpoints set default/web
endpoints set default/dns
EOF2

client_run "$out" "$client" -n 5 -t 3 "$VIP" 80
ktap_check "tcp, no endpoints: 5 connections refused, each in < 1 s" \
	"${R[refused]} of 5 refused, slowest ${R[max_ms]} ms" \
	[ "${R[refused]}/$((R[max_ms] < 1000))" = 5/1 ]

client_run "$out" "$client" -p udp -n 5 -t 2 "$VIP" 53
ktap_check "udp, no endpoints: 5 requests get port unreachable (refused), < 1 s" \
	"${R[refused]} of 5 refused, slowest ${R[max_ms]} ms" \
	[ "${R[refused]}/$((R[max_ms] < 1000))" = 5/1 ]

rej=$(kvip_json "$node" "' '.join('%s=%s/%s' % (x['name'], x['stats']['rejects'], len(x['endpoints'])) for x in sorted(s, key=lambda x: x['name']))")
ktap_check "rejects counters count the refused flows (name=rejects/endpoints)" \
	"got '$rej'" [ "$rej" = "default/dns=5/0 default/web=5/0" ]

ktap_finished
