#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Two "nodes" in one kernel: every network namespace has its own table.
#
#   topology a                              topology b
#  ┌──────────┐  ┌──────────┐  ┌────────┐  ┌──────────┐  ┌──────────┐  ┌────────┐
#  │ aclient  ├──┤ anode    ├──┤ a-     │  │ bclient  ├──┤ bnode    ├──┤ b-     │
#  │          │  │ kvip     │  │backend │  │          │  │ kvip     │  │backend │
#  └──────────┘  └──────────┘  │ 1..3   │  └──────────┘  └──────────┘  │ 1..3   │
#                              └────────┘                              └────────┘
#  Both nodes: default/web tcp 10.96.0.10:80 -> 10.0.1.{1,2,3}:8080, the same
#  name, VIP and endpoint addresses, but a's endpoints are a's backends.
#
# Checks: a's client only ever reaches a's backends and b's only b's; each
# node counts only its own connections; the initial namespace has no
# services; after `kvipctl flush` in a, a's table is empty and its VIP is no
# longer translated, while b keeps its service and its traffic.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10
# Set by kvip_topology N a / b.
aclient="" anode="" abackends=() bclient="" bnode="" bbackends=()

ktap_print_header
kvip_require
ktap_set_plan 7

kvip_topology 3 a || ktap_exit_fail_msg "topology a setup failed"
kvip_topology 3 b || ktap_exit_fail_msg "topology b setup failed"

args=()
for i in 1 2 3; do
	args+=(--netns "${abackends[i - 1]}=a-backend-$i" --netns "${bbackends[i - 1]}=b-backend-$i")
done
server_pid=$(py_ns "" "$KVIP_SERVER" --daemon --port 8080 "${args[@]}") ||
	ktap_exit_fail_msg "servers did not start"
defer kill_wait "$server_pid"

for n in "$anode" "$bnode"; do
	kvipctl_batch "$n" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/web proto tcp clusterip $VIP:80 conn-stats
endpoints set default/web $(endpoints4 8080 1 2 3)
EOF2
done

out=$KVIP_TMP/out
client_run "$out" "$aclient" -n 30 "$VIP" 80
ok_a=${R[ok]} used_a=$(tally_keys)
client_run "$out" "$bclient" -n 30 "$VIP" 80
ok_b=${R[ok]} used_b=$(tally_keys)
ktap_check "node a sends its client only to a's backends" \
	"$ok_a of 30 ok, backends used: $used_a" \
	[ "$ok_a|$used_a" = "30|a-backend-1 a-backend-2 a-backend-3" ]
ktap_check "node b sends its client only to b's backends" \
	"$ok_b of 30 ok, backends used: $used_b" \
	[ "$ok_b|$used_b" = "30|b-backend-1 b-backend-2 b-backend-3" ]

ca=$(kvip_json "$anode" "s[0]['stats']['conns']")
cb=$(kvip_json "$bnode" "s[0]['stats']['conns']")
ktap_check "each node counts only its own connections" "a: $ca, b: $cb" \
	[ "$ca/$cb" = 30/30 ]

init=$("$KVIPCTL" service show -j)
ktap_check "the initial namespace has no services" "got '$init'" \
	matches "$init" "^\[[[:space:]]*\]$"

kvipctl_ns "$anode" flush || ktap_exit_fail_msg "flush failed"
sa=$(kvip_json "$anode" "len(s)")
sb=$(kvip_json "$bnode" "'%d %s %d' % (len(s), s[0]['name'], len(s[0]['endpoints']))")
ktap_check "flush in a empties a's table and leaves b's" \
	"a has $sa services; b has (count name endpoints) '$sb'" \
	[ "$sa|$sb" = "0|1 default/web 3" ]

# Every connection ok and only to b's backends, not necessarily all three:
# 10 uniform picks miss one of 3 backends 5 % of the time.
# shellcheck disable=SC2317 # called through ktap_check
b_flows() {
	local k
	[[ "${R[ok]}" == 10 ]] || return 1
	for k in $(tally_keys); do
		[[ "$k" == b-backend-[123] ]] || return 1
	done
}
client_run "$out" "$bclient" -n 10 "$VIP" 80
ktap_check "b's traffic still flows after the flush in a" \
	"${R[ok]} of 10 ok, backends used: $(tally_keys)" b_flows

client_run "$out" "$aclient" -n 2 -t 1 "$VIP" 80
ktap_check "a's VIP is no longer translated" \
	"${R[ok]} ok, ${R[timeout]} timed out of 2" [ "${R[ok]}/${R[timeout]}" = 0/2 ]

ktap_finished
