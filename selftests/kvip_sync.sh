#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kvipctl sync end to end: a fake Kubernetes API server
# (tools/sync/tests/fake_apiserver.py) and `kvipctl sync` run on the node;
# Services and EndpointSlices changed in the API reach the kernel, and real
# connections follow.
#
#                          ┌─────────────── node ─────────────┐
#  ┌──────────────┐        │ fake API 127.0.0.1:PORT          │   backend1 10.0.1.1:8080
#  │ client       ├──veth──┤   ▲ list/watch                   ├─┬ backend2 10.0.1.2:8080
#  │ 192.168.0.2  │        │ kvipctl sync ──netlink──► kvip   │ └ backend3 10.0.1.3:8080
#  └──────────────┘        └──────────────────────────────────┘
#   connect 10.96.0.10:80  (default/web, port "http")
#
# Checks: sync programs the service (flagged managed) from the API; traffic
# reaches its endpoints, and --conn-stats/--endpoint-stats count it; when
# the EndpointSlice changes to backend3, new connections go there within a
# second (measured from the API change to the kernel update, and from the
# API request to the first connection that lands on backend3) while an
# established connection to an old endpoint keeps working; SIGTERM leaves
# the table as it is; a restarted sync changes nothing (the dump, counters
# included, is identical and no netlink request is made) and the held
# connection survives; a service made by hand is never touched; a managed
# service changed by hand is repaired.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 SVC=default/web:http/tcp TOKEN=t0k3n-e2e
FAKE_API=$KVIP_ROOT/tools/sync/tests/fake_apiserver.py

ktap_print_header
kvip_require
checktool "curl --version" "talk to the fake API server"
[[ -r "$FAKE_API" ]] || ktap_exit_skip "no $FAKE_API"
ktap_set_plan 11

step() {
	ktap_print_msg "[${SECONDS}s] $*"
}

kvip_topology 3 || ktap_exit_fail_msg "topology setup failed"

# --- the API (started first: python starts slowly under TCG) -------------

ip netns exec "$node" "$PYTHON" -B "$FAKE_API" --token "$TOKEN" --bookmark 5 \
	>"$KVIP_TMP/api.out" 2>"$KVIP_TMP/api.err" &
api_pid=$!
defer kill_wait "$api_pid"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"
busywait 120000 grep -q READY "$KVIP_TMP/api.out"
read -r ready api_port <"$KVIP_TMP/api.out"
[[ "$ready" == READY ]] || ktap_exit_fail_msg "fake API server did not start: $(<"$KVIP_TMP/api.err")"
API_URL=http://127.0.0.1:$api_port
ktap_print_msg "fake API server at $API_URL"

# api OP JSON: a control request; prints the reply.
api() {
	ip netns exec "$node" curl -sS -f -X POST -H 'Content-Type: application/json' \
		--data "$2" "$API_URL/fake/$1"
}

service_json() {
	echo '{"resource":"services","object":{"kind":"Service","apiVersion":"v1",
"metadata":{"name":"web","namespace":"default"},
"spec":{"type":"ClusterIP","clusterIP":"'$VIP'","clusterIPs":["'$VIP'"],
"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","sessionAffinity":"None",
"internalTrafficPolicy":"Cluster","selector":{"app":"web"},
"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":"web"}]},
"status":{"loadBalancer":{}}}}'
}

# slice_json I...: the EndpointSlice of default/web with backends I...
slice_json() {
	local i eps=""
	for i in "$@"; do
		eps+='{"addresses":["10.0.1.'$i'"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-'$i'","targetRef":{"kind":"Pod","namespace":"default","name":"web-'$i'"}},'
	done
	echo '{"resource":"endpointslices","object":{"kind":"EndpointSlice",
"apiVersion":"discovery.k8s.io/v1","metadata":{"name":"web-x7k2p","namespace":"default",
"labels":{"kubernetes.io/service-name":"web","endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},
"addressType":"IPv4","endpoints":['"${eps%,}"'],
"ports":[{"name":"http","protocol":"TCP","port":8080}]}}'
}

api apply "$(service_json)" >/dev/null && api apply "$(slice_json 1 2)" >/dev/null ||
	ktap_exit_fail_msg "cannot configure the fake API server"

# --- sync --------------------------------------------------------------

echo "$TOKEN" >"$KVIP_TMP/token"
sync_pid=""
SYNC_LOG=$KVIP_TMP/sync.log
start_sync() {
	((KVIP_VERBOSE)) && ktap_print_msg "[node] kvipctl sync --server $API_URL --token-file ... --node-name node-1 --conn-stats --endpoint-stats $*"
	"$KVIPCTL" -n "$node" sync --server "$API_URL" \
		--token-file "$KVIP_TMP/token" --node-name node-1 \
		--conn-stats --endpoint-stats \
		--healthz-bind-address 127.0.0.1:10256 -v "$@" >>"$SYNC_LOG" 2>&1 &
	sync_pid=$!
	defer kill_wait "$sync_pid"
}

# has_endpoints "A B": the kernel's endpoint addresses of $SVC, sorted, are
# A B (kvipctl's table, parsed in bash: every exec is slow under TCG). The
# table is left in $SHOW.
SHOW=""
has_endpoints() {
	local line out=() re='^-> ([0-9.]+):'
	SHOW=$("$KVIPCTL" -n "$node" service show "$SVC" 2>&1)
	while read -r line; do
		[[ "$line" =~ $re ]] && out+=("${BASH_REMATCH[1]}")
	done <<<"$SHOW"
	[[ "$(sort_words "${out[@]}")" == "$1" ]]
}

step "sync"
start_sync
busywait 60000 has_endpoints "10.0.1.1 10.0.1.2"
ktap_check "sync programs $SVC from the API (endpoints 10.0.1.1, 10.0.1.2)" \
	"kernel: $SHOW" has_endpoints "10.0.1.1 10.0.1.2"
ktap_print_msg "$SHOW"
if ! has_endpoints "10.0.1.1 10.0.1.2"; then
	show_file "$SYNC_LOG" 60
	ktap_exit_fail_msg "sync did not program the service"
fi

# Start the long-lived clients now, so that they start while the rest runs:
# a held connection, and a client connecting every 20 ms.
step "clients"
hold_start "$client" -t 5 "$VIP" 80
# The looping client is bash in the client namespace, connecting with
# /dev/tcp (no exec per connection) and logging "START-TIME BACKEND".
stop=$KVIP_TMP/stop clog=$KVIP_TMP/conns.log
conn_loop() {
	local stop=$1 log=$2 vip=$3 t s reply nap
	exec {nap}<> <(:)
	while [[ ! -e "$stop" ]]; do
		t=$EPOCHREALTIME reply=""
		if exec {s}<>"/dev/tcp/$vip/80"; then
			echo probe >&"$s"
			read -r -t 2 reply <&"$s"
			exec {s}>&-
		fi 2>/dev/null
		echo "$t ${reply%% *}" >>"$log"
		read -r -t 0.02 -u "$nap"
	done
}
ip netns exec "$client" bash -c "$(declare -f conn_loop); conn_loop $stop $clog $VIP" \
	>"$KVIP_TMP/loop.out" 2>&1 &
loop_pid=$!
defer kill_wait "$loop_pid"

out=$KVIP_TMP/first.out
client_run "$out" "$client" -n 12 --spread 2 "$VIP" 80
ktap_check "12 connections reach backend1 and backend2" \
	"${R[ok]} of ${R[conns]} ok, backends used: $(tally_keys)" \
	[ "${R[ok]}|$(tally_keys)" = "${R[conns]}|backend-1 backend-2" ]

# The looping client adds its own connections: at least these 12 counted.
{
	read -r svc_conns
	read -r ep_sum
	read -r ep_min
} < <(kvip_json "$node" "svc('$SVC')['stats'].get('conns', -1)" \
	"sum(e.get('stats', {}).get('conns', 0) for e in svc('$SVC')['endpoints'])" \
	"min(e.get('stats', {}).get('conns', 0) for e in svc('$SVC')['endpoints'])")
ok=0
((${svc_conns:--1} >= 12 && ${ep_sum:-0} >= 12 && ${ep_min:-0} >= 1)) && ok=1
ktap_check "--conn-stats and --endpoint-stats: the service and each endpoint count connections" \
	"service conns ${svc_conns:-?}, endpoints' sum ${ep_sum:-?}, least ${ep_min:-?}" [ "$ok" = 1 ]

# --- an established connection, then the endpoints change ---------------

reply1=$(hold_send before 60)
b1=${reply1%% *}
ktap_check "a held connection is answered by backend1 or backend2" "reply '$reply1'" \
	matches "$reply1" "^backend-[12] .* before$"

# The looping client is running (a few connections logged).
loop_lines() {
	local n=0 l
	[[ -r "$clog" ]] || return 1
	while IFS= read -r l; do n=$((n + 1)); done <"$clog"
	((n >= $1))
}
busywait 60000 loop_lines 3 || ktap_print_msg "the looping client logged nothing: $(<"$KVIP_TMP/loop.out")"

step "endpoints change"
# Skip what the looping client logged so far (reading it later would
# delay noticing the first connection to backend3).
exec {cfd}<"$clog"
chunk=""
while IFS= read -r chunk <&"$cfd"; do :; done
first3="" buf=$chunk
t0=$EPOCHREALTIME
reply=$(api apply "$(slice_json 3)")
t_apply=$(sed -n 's/.*"time": \([0-9.]*\).*/\1/p' <<<"$reply")
# First connection that lands on backend3 (bash only: no exec per poll).
while (( ${EPOCHREALTIME%.*} - ${t0%.*} < 20 )); do
	while IFS= read -r chunk <&"$cfd"; do
		line=$buf$chunk buf=""
		[[ "$line" == *" backend-3" ]] && { first3=${line%% *}; break; }
	done
	[[ -n "$first3" ]] && break
	buf+=$chunk
	nap 0.02
done
exec {cfd}<&-
: >"$stop"
wait "$loop_pid" 2>/dev/null
# Kernel update time: the pass that applied it, in sync's log (UTC).
pass_line=$(grep 'msg="sync" ' "$SYNC_LOG" | grep 'endpoints=1' | tail -n 1)
pass_ts=$(sed -n 's/^ts=\([^ ]*\)Z .*/\1/p' <<<"$pass_line")
t_apply=${t_apply:0:14}
kernel_ms=""
if [[ -n "$pass_ts" && "$t_apply" == *.??? ]]; then
	t_pass=$(date -u -d "$pass_ts" +%s.%N 2>/dev/null)
	t_pass=${t_pass:0:14}
	[[ "$t_pass" == *.??? ]] && kernel_ms=$(( ${t_pass/./} - ${t_apply/./} ))
fi
# From the moment the API applied the change (the fake server runs on the
# guest's clock) to the start of the first connection that reached backend3;
# and the latest start of a connection that still reached an old endpoint.
conn_ms=-1 last_old_ms=-1
if [[ -n "$first3" && "$t_apply" == *.??? ]]; then
	f=${first3:0:14}
	conn_ms=$(( ${f/./} - ${t_apply/./} ))
fi
while read -r t b; do
	[[ "$b" == backend-[12] && "$t_apply" == *.??? ]] || continue
	t=${t:0:14}
	last_old_ms=$(( ${t/./} - ${t_apply/./} ))
done <"$clog"
ktap_print_msg "API change -> kernel updated: ${kernel_ms:-?} ms; -> first connection to backend3 started after $conn_ms ms; last connection to an old endpoint started at $last_old_ms ms"
# Within a second the kernel has the new set and no connection opened later
# reaches an old endpoint. (How soon the first backend3 connection comes is
# up to the looping client, slow under TCG: reported only.)
ok=0
[[ -n "$first3" ]] && ((${kernel_ms:-9999} < 1000 && last_old_ms < 1000)) && ok=1
ktap_check "new connections follow the API within a second" \
	"kernel ${kernel_ms:-?} ms, last connection to an old endpoint $last_old_ms ms, first backend3 connection $conn_ms ms" \
	[ "$ok" = 1 ]

# Once on backend3, no new connection goes anywhere else.
after=$(awk '/ backend-3$/{on=1} on && !/ backend-3$/{n++} END{print n+0}' "$clog")
n3=$(grep -c ' backend-3$' "$clog")
total=$(wc -l <"$clog")
ok=0
[[ "$after" = 0 && "$n3" -gt 0 ]] && ok=1
ktap_check "after the switch every new connection goes to backend3" \
	"$n3 to backend3, $after later ones elsewhere ($total in all)" [ "$ok" = 1 ]

reply2=$(hold_send after-change 60)
ktap_check "the held connection to $b1 survives the change" "reply '$reply2'" \
	matches "$reply2" "^$b1 .* after-change$"

# --- restart ---------------------------------------------------------------
step "restart"

kvipctl_ns "$node" service add manual proto tcp clusterip 10.96.0.99:80 ||
	ktap_exit_fail_msg "cannot add a service by hand"
nap 0.5
before=$("$KVIPCTL" -n "$node" service show -j)
kill_wait "$sync_pid"
after_stop=$("$KVIPCTL" -n "$node" service show -j)
ktap_check "SIGTERM leaves the kernel's table as it is" "before: $before, after: $after_stop" \
	[ "$before" = "$after_stop" ]

: >"$SYNC_LOG.1"
SYNC_LOG=$SYNC_LOG.1
start_sync --resync-period 1
busywait 30000 grep -q 'msg="initial lists complete"' "$SYNC_LOG"
busywait 10000 ip netns exec "$node" curl -sf http://127.0.0.1:10256/healthz -o /dev/null
ops=$(ip netns exec "$node" curl -s http://127.0.0.1:10256/metrics |
	sed -n 's/^kvip_sync_kernel_operations_total //p')
after_restart=$("$KVIPCTL" -n "$node" service show -j)
ok=0
[[ "$before" = "$after_restart" && "$ops" = 0 ]] && ok=1
ktap_check "a restarted sync changes nothing (same dump with counters, 0 netlink requests)" \
	"ops '$ops'; before: $before; after: $after_restart; log: $(grep -E 'msg="(read|sync)' "$SYNC_LOG")" \
	[ "$ok" = 1 ]

reply3=$(hold_send after-restart 60)
manual=$("$KVIPCTL" -n "$node" service show manual 2>&1)
[[ "$manual" == *"clusterip 10.96.0.99:80"* && "$manual" != *flags* ]] && manual=10.96.0.99
ok=0
[[ "$reply3" =~ ^$b1\ .*\ after-restart$ && "$manual" = 10.96.0.99 ]] && ok=1
ktap_check "the held connection survives the restart; the hand-made service is untouched" \
	"reply '$reply3'; manual: $manual" [ "$ok" = 1 ]
hold_stop

# A managed service changed by hand is repaired (--resync-period 1).
step "repair"
kvipctl_ns "$node" endpoints set "$SVC" 10.0.1.1:8080 >/dev/null
busywait 30000 has_endpoints "10.0.1.3"
ktap_check "sync repairs its service after a change by hand" "kernel: $SHOW" \
	has_endpoints "10.0.1.3"

show_file "$KVIP_TMP/sync.log" 40
ktap_finished
