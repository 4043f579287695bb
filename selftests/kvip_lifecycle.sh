#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Module and namespace lifecycle (run_tests runs this one last: it unloads
# the module).
#
#  ┌─────────────┐     ┌─────────────────────────────┐     ┌──────────────┐
#  │ client      ├veth─┤ node  kvip                  ├br0──┤ backend1..3  │
#  │ connection  │     │ default/web 10.96.0.10:80   │     │ :8080        │
#  │ loop        │     │ + 1,000 services (-batch)   │     └──────────────┘
#  └─────────────┘     └─────────────────────────────┘
#
# 0. 1,001 services (configured with kvipctl -batch) are all dumped, in
#    messages that keep the contract of the uapi header, and listed by
#    kvipctl service show -j.
# 1. With 1,001 services configured and a client opening connections in a
#    loop, `rmmod kvip` succeeds; the loop's connections were served before
#    and are no longer translated after; kvipctl then says the module is
#    missing.
# 2. insmod again: the table starts empty, a service can be added and
#    carries traffic.
# 3. 1,000 services again, one connection held open, then every namespace
#    of the topology is deleted; afterwards the module still unloads and
#    loads, and works in a new namespace.
# No step may make the kernel log a warning (checked here and by run_tests).

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10

ktap_print_header
kvip_require
ktap_set_plan 13


# many_services FILE: kvipctl -batch lines for 1,000 services, 2 endpoints each.
many_services() {
	awk 'BEGIN {
		for (i = 0; i < 1000; i++) {
			printf "service add default/svc-%d proto tcp clusterip 10.97.%d.%d:80\n", i, int(i / 250), i % 250 + 1
			printf "endpoints set default/svc-%d 10.0.1.1:8080 10.0.1.2:8080\n", i
		}
	}' >"$1"
}
batch=$KVIP_TMP/services.batch
many_services "$batch"

kvip_topology 3 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"

setup_web() {
	kvipctl_batch "$node" <<EOF
service add default/web proto tcp clusterip $VIP:80
endpoints set default/web $(endpoints4 8080 1 2 3)
EOF
}
setup_web || ktap_exit_fail_msg "service setup failed"
ktap_print_msg "[${node%-*}] kvipctl -batch services.batch (1,000 services, 2,000 lines)"
t0=$(now_ms)
"$KVIPCTL" -n "$node" -batch "$batch" || ktap_exit_fail_msg "batch failed"
ktap_print_msg "took $(($(now_ms) - t0)) ms"
n=$(kvip_count "$node")
ktap_check "1,001 services configured (netlink dump)" "dump has $n" [ "$n" = 1001 ]
d=$(kvip_dump_check "$node")
ktap_check "the dump of 1,001 services keeps the uapi contract" "$d" \
	[ "$d" = "ok 1001" ]
n=$(kvip_json "$node" "len(s)")
ktap_check "kvipctl service show -j lists all 1,001 services" "it lists '$n'" \
	[ "$n" = 1001 ]

# --- 1. rmmod under traffic ---
mark=$(log_lines)
log=$KVIP_TMP/conns.log
stop=$KVIP_TMP/stop
py_ns "$client" "$KVIP_CLIENT" -n 0 -t 1 --stop-file "$stop" \
	--log "$log" "$VIP" 80 >"$KVIP_TMP/bg.out" 2>&1 &
bg=$!
defer kill_wait "$bg"
lines() {
	local n=0 _
	[[ -f "$log" ]] && while read -r _; do n=$((n + 1)); done <"$log"
	echo "$n"
}
busywait 60000 at_least 20 lines
before=$(lines)
run rmmod kvip
rc=$?
after=$(lines)
loaded=no
kvip_loaded && loaded=yes
ktap_check "rmmod kvip succeeds while connections are being made" \
	"rmmod exit $rc, module still loaded: $loaded" [ "$rc/$loaded" = 0/no ]
busywait 30000 at_least $((after + 3)) lines
: >"$stop"
wait "$bg"
show_file "$KVIP_TMP/bg.out" 8
ktap_print_msg "rmmod ran during connections $before..$after"
# Log lines: "SEQ STATUS KEY MS". Before the unload all were ok; after it
# (SEQ > after + 1: one may have been in flight) none.
read -r ok_before bad_before ok_after n_after < <(awk -v b="$before" -v a="$after" '
	$1 <= b && $2 == "ok" { ob++ } $1 <= b && $2 != "ok" { bb++ }
	$1 > a + 1 { na++; if ($2 == "ok") oa++ }
	END { print ob + 0, bb + 0, oa + 0, na + 0 }' "$log")
ktap_check "connections were served before the unload, not translated after" \
	"before: $ok_before ok, $bad_before failed; after: $ok_after of $n_after ok" \
	[ "$bad_before/$ok_after/$((ok_before >= 20 && n_after >= 2))" = 0/0/1 ]
ktap_check "no kernel warning from the unload" "see above" kernel_log_clean "$mark"

msg=$("$KVIPCTL" -n "$node" service show 2>&1)
rc=$?
ktap_print_msg "kvipctl without the module -> exit $rc: $msg"
ktap_check "kvipctl without the module fails saying so" "exit $rc: $msg" \
	matches "$rc $msg" "^1 .*kvip"

# --- 2. reload ---
mark=$(log_lines)
kvip_load
n=$(kvip_count "$node")
ktap_check "after insmod the table is empty" "dump has $n services" [ "$n" = 0 ]
setup_web || ktap_exit_fail_msg "service setup after reload failed"
out=$KVIP_TMP/out
client_run "$out" "$client" -n 20 --spread 3 "$VIP" 80
ktap_check "after reload a new service carries traffic" \
	"${R[ok]} of ${R[conns]} ok, backends used: $(tally_keys)" \
	[ "${R[ok]}|$(tally_keys)" = "${R[conns]}|backend-1 backend-2 backend-3" ]

# --- 3. namespace deletion with 1,001 services and a live connection ---
"$KVIPCTL" -n "$node" -batch "$batch" || ktap_exit_fail_msg "batch failed"
coproc HOLD { ip netns exec "$client" "$PYTHON" "$KVIP_CLIENT" --hold -t 5 "$VIP" 80 2>&1; }
defer kill_wait "$HOLD_PID"
echo held >&"${HOLD[1]}"
reply=""
read -r -t 30 reply <&"${HOLD[0]}"
ktap_print_msg "held connection: $reply"
n=$(kvip_count "$node")
ktap_check "1,001 services and a live connection before the namespaces go" \
	"$n services, held connection reply '$reply'" \
	matches "$n $reply" "^1001 backend-.* held$"

ktap_print_msg "deleting the namespaces: ${NS_LIST[*]}"
cleanup_ns "${NS_LIST[@]}"
kill_wait "$HOLD_PID" "$server_pid"
nap 2	# namespaces are dismantled asynchronously, by a workqueue
ktap_check "no kernel warning from the namespace deletions" "see above" \
	kernel_log_clean "$mark"

# --- the module still unloads and loads, and works ---
mark=$(log_lines)
run rmmod kvip
rc=$?
kvip_load
fresh=""
setup_ns fresh || ktap_exit_fail_msg "netns setup failed"
out=$("$KVIPCTL" -n "$fresh" service add default/x proto tcp clusterip 10.96.0.1:80 2>&1 &&
	"$KVIPCTL" -n "$fresh" service show 2>&1)
ktap_print_msg "$out"
ktap_check "afterwards the module unloads, loads and takes a service" \
	"rmmod exit $rc, kvipctl said: $out" \
	matches "$rc $out" "^0 .*default/x"
ktap_check "no kernel warning from the last unload and load" "see above" \
	kernel_log_clean "$mark"

ktap_finished
