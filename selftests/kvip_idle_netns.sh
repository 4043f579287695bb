#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A netns with no services pays nothing: kvip takes conntrack and its NAT
# hooks in a namespace only while it has services. Observable: without
# services the node tracks no connection at all; with one it does; after
# the last service is deleted it stops again.
#
#  ┌─────────────┐     ┌──────────────────┐     ┌──────────────┐
#  │ client      ├veth─┤ node  kvip       ├br0──┤ backend1     │
#  └─────────────┘     │ conntrack -C ?   │     │ 10.0.1.1:8080│
#                      └──────────────────┘     └──────────────┘
#   plain 10.0.1.1:8080, then the VIP 10.96.0.10:80

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 SVC=default/idle

ktap_print_header
kvip_require
checktool "conntrack --version" "needs conntrack(8)"
ktap_set_plan 6

kvip_topology 1 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"

# direct N: N plain connections client -> backend1, replies checked.
direct() {
	local i ok=0 reply
	for ((i = 0; i < $1; i++)); do
		reply=$(echo "ping-$i" | ip netns exec "$client" \
			socat -t 2 -T 2 - TCP:10.0.1.1:8080,connect-timeout=2 2>/dev/null)
		[[ "$reply" == "backend-1 "*" ping-$i" ]] && ((ok++))
	done
	echo "$ok"
}

tracked() {
	ip netns exec "$node" conntrack -C 2>/dev/null
}

ok=$(direct 5)
n=$(tracked)
ktap_check "no service: 5 forwarded connections work, none is tracked" \
	"ok=$ok tracked=$n" [ "$ok:$n" = 5:0 ]

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add $SVC proto tcp clusterip $VIP:80
endpoints set $SVC 10.0.1.1:8080
EOF2

out=$KVIP_TMP/client.out
client_run "$out" "$client" -n 5 "$VIP" 80
ktap_check "with a service: 5 connections to the VIP succeed" \
	"${R[ok]} of 5" [ "${R[ok]}" = 5 ]
n=$(tracked)
ktap_check "with a service the node tracks connections" "tracked=$n" \
	[ "${n:-0}" -ge 5 ]

kvipctl_ns "$node" service del "$SVC" || ktap_exit_fail_msg "service del failed"
ip netns exec "$node" conntrack -F >/dev/null 2>&1
ok=$(direct 5)
n=$(tracked)
ktap_check "after the last service is deleted nothing is tracked again" \
	"ok=$ok tracked=$n" [ "$ok:$n" = 5:0 ]

client_run "$out" "$client" -n 1 -t 1 "$VIP" 80
ktap_check "and the VIP is not translated any more" \
	"ok=${R[ok]}" [ "${R[ok]}" = 0 ]

# The same in a second service lifetime: the hooks come back.
kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service re-add failed"
service add $SVC proto tcp clusterip $VIP:80
endpoints set $SVC 10.0.1.1:8080
EOF2
client_run "$out" "$client" -n 5 "$VIP" 80
ktap_check "re-added, the VIP works again" "${R[ok]} of 5" [ "${R[ok]}" = 5 ]

ktap_finished
