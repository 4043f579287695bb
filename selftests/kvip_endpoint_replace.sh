#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Replacing the endpoint set of a live service.
#
#  ┌─────────────┐     ┌──────────────────┐    ┌──────────────────────────┐
#  │ client      ├veth─┤ node  kvip       ├br0─┤ backend1..7 10.0.1.i:8080│
#  └─────────────┘     │ 10.1i.0.0/16 via │    │ backend1..4 also own     │
#   10.96.0.10:80      │ 10.0.1.i         │    │ 10.1i.0.0/16 (AnyIP)     │
#                      └──────────────────┘    └──────────────────────────┘
#
# 1. A TCP connection is opened while the set is {backend1..3}; the set is
#    replaced by {backend4..7}: the open connection keeps working with the
#    same backend, and new connections go only to the new set.
# 2. 10,000 endpoints, every one reachable: backend i answers on all of
#    10.(10+i).0.0/16 (a local route), 2,500 of them in each set. Set A
#    (10.1i.0-9.x) is replaced by set B (10.1i.100-109.x) and back to A while
#    a client opens connections back to back: no connection fails,
#    connections that start after a replace returned land in the new set,
#    and every backend's quarter of each list gets traffic (a set cut short
#    somewhere in its several netlink messages would show).

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 SVC=default/web NB=7

ktap_print_header
kvip_require
ktap_set_plan 8

kvip_topology "$NB" || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add $SVC proto tcp clusterip $VIP:80 conn-stats
endpoints set $SVC $(endpoints4 8080 1 2 3)
EOF2

# --- 1. an established connection survives the replace ---
hold_start "$client" -t 5 "$VIP" 80
reply1=$(hold_send before-replace 20)
ktap_print_msg "held connection: $reply1"
b1=${reply1%% *}
ktap_check "held connection answered by an old endpoint" "reply '$reply1'" \
	matches "$reply1" "^backend-[123] .* before-replace$"

# shellcheck disable=SC2046 # an endpoint list
kvipctl_ns "$node" endpoints set "$SVC" $(endpoints4 8080 4 5 6 7) ||
	ktap_exit_fail_msg "endpoints set failed"

reply2=$(hold_send after-replace 20)
ktap_print_msg "held connection: $reply2"
ktap_check "held connection still works, same backend ($b1) answers" \
	"reply '$reply2'" matches "$reply2" "^$b1 .* after-replace$"
hold_stop

out=$KVIP_TMP/new.out
client_run "$out" "$client" -n 40 --spread 4 "$VIP" 80
ktap_check "40 new connections all go to the new set (backend4..7)" \
	"${R[ok]} of ${R[conns]} ok, backends used: $(tally_keys)" \
	[ "${R[ok]}|$(tally_keys)" = "${R[conns]}|backend-4 backend-5 backend-6 backend-7" ]
part1=$((1 + R[conns]))

# --- 2. 10,000 endpoints replaced under traffic ---
cmds="" ncmds=""
for i in 1 2 3 4; do
	ip -n "${backends[i - 1]}" route add local "10.$((10 + i)).0.0/16" dev lo ||
		ktap_exit_fail_msg "AnyIP route"
	ncmds+="route add 10.$((10 + i)).0.0/16 via 10.0.1.$i"$'\n'
done
ip -n "$node" -batch - <<<"$ncmds" || ktap_exit_fail_msg "node routes"

# endpoint_set BASE: 4 x 2,500 endpoints 10.1i.(BASE + k/250).(k%250 + 1):8080
endpoint_set() {
	awk -v base="$1" 'BEGIN {
		for (b = 1; b <= 4; b++)
			for (k = 0; k < 2500; k++)
				printf "10.%d.%d.%d:8080\n", 10 + b, base + int(k / 250), k % 250 + 1
	}'
}
endpoint_set 0 >"$KVIP_TMP/setA"
endpoint_set 100 >"$KVIP_TMP/setB"

# set_endpoints FILE: replace the set, say how long it took.
set_endpoints() {
	local t0 rc eps first
	eps=$(<"$1")
	read -r first <"$1"
	ktap_print_msg "[${node%-*}] kvipctl endpoints set $SVC $first ... (10,000 endpoints, ${1##*/})"
	t0=$(now_ms)
	# shellcheck disable=SC2086 # the endpoint list
	"$KVIPCTL" -n "$node" endpoints set "$SVC" $eps
	rc=$?
	ktap_print_msg "took $(($(now_ms) - t0)) ms"
	return $rc
}

set_endpoints "$KVIP_TMP/setA" || ktap_exit_fail_msg "10,000 endpoints set failed"
n=$(kvip_json "$node" "len(s[0]['endpoints'])")
ktap_check "the service has 10,000 endpoints" "show lists $n" [ "$n" = 10000 ]

log=$KVIP_TMP/conns.log
stop=$KVIP_TMP/stop
out=$KVIP_TMP/bg.out
py_ns "$client" "$KVIP_CLIENT" -n 0 -t 3 --stop-file "$stop" \
	--log "$log" --tally endpoint "$VIP" 80 >"$out" 2>&1 &
bg=$!
defer kill_wait "$bg"

lines() {
	local n=0 _
	[[ -f "$log" ]] && while read -r _; do n=$((n + 1)); done <"$log"
	echo "$n"
}
# wait_lines N: until the client has logged N connections.
wait_lines() { busywait 60000 at_least "$1" lines; }

# Connections logged before a replace started must be in the old set,
# those that started after it returned (SEQ > after + 1: one may have been
# in flight) in the new one.
wait_lines 40 || ktap_print_msg "client slow to start"
before1=$(lines)
set_endpoints "$KVIP_TMP/setB" || ktap_exit_fail_msg "replace A->B failed"
after1=$(lines)
wait_lines $((after1 + 40))
before2=$(lines)
set_endpoints "$KVIP_TMP/setA" || ktap_exit_fail_msg "replace B->A failed"
after2=$(lines)
wait_lines $((after2 + 40))
: >"$stop"
wait "$bg"
show_file "$out" 8
client_parse "$out"
ktap_print_msg "replace A->B ran during connections $before1..$after1, B->A during $before2..$after2"

ktap_check "no connection fails while 10,000 endpoints are replaced twice" \
	"${R[ok]} of ${R[conns]} ok" [ "${R[ok]}" = "${R[conns]}" ]

# The log has "SEQ STATUS ENDPOINT MS"; set B has third octet >= 100.
read -r wrong ranges < <(awk -v b1="$before1" -v a1="$after1" \
	-v b2="$before2" -v a2="$after2" '
	$2 != "ok" { next }
	{ split($3, a, "."); inB = (a[3] + 0 >= 100); hit[(inB ? "B" : "A") a[2]] = 1 }
	($1 <= b1 && inB) || ($1 > a1 + 1 && $1 <= b2 && !inB) || ($1 > a2 + 1 && inB) {
		w++
		if (w <= 3) print "# wrong set: conn " $0 > "/dev/stderr"
	}
	END {
		r = ""
		split("A11 A12 A13 A14 B11 B12 B13 B14", k, " ")
		for (i = 1; i <= 8; i++) if (k[i] in hit) r = r k[i] ","
		print w + 0, r
	}' "$log")
ktap_check "connections land in the set current when they start" \
	"$wrong connections went to the other set" [ "$wrong" = 0 ]
ktap_check "both sets are used over their whole list (all 4 backends each)" \
	"ranges hit: $ranges" [ "$ranges" = "A11,A12,A13,A14,B11,B12,B13,B14," ]

# 1 held connection + the 40 (or more) + every connection of part 2.
n=$(kvip_json "$node" "s[0]['stats']['conns']")
ktap_check "service conns counter counts every connection ($((part1 + R[ok])))" \
	"got $n" [ "$n" = $((part1 + R[ok])) ]

ktap_finished
