#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Client-IP session affinity.
#
#  ┌─────────────┐      ┌────────────────────┐    ┌──────────────────────┐
#  │ client      ├veth──┤ node  kvip         ├br0─┤ backend1..3 tcp :8080│
#  │ 192.168.0.2 │      │ 192.168.0.1        │    │                      │
#  └─────────────┘      └────────────────────┘    └──────────────────────┘
#   default/sticky  clusterip 10.96.0.60:80, nodeport 30060
#
# Modelled on the e2e tests "should have session affinity work for service
# with type clusterIP / for NodePort service", "should have session
# affinity timeout work ..." and "should be able to switch session
# affinity ...":
#
#  - with affinity, every connection of the client reaches one backend, by
#    the cluster IP and by the node port alike;
#  - the entry beats the weights: after the set grows with a much heavier
#    endpoint the client stays; new connections refresh the timeout; after
#    the timeout (6 s) without connections the choice is made afresh;
#  - an endpoint leaving the set, or becoming unready, releases its client;
#  - switching affinity off spreads the client again and forgets the
#    entries; switching it on makes it sticky again.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.60 NP=30060 SVC=default/sticky
readonly B1=10.0.1.1:8080 B2=10.0.1.2:8080 B3=10.0.1.3:8080

ktap_print_header
kvip_require
ktap_set_plan 11

kvip_topology 3 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"

out=$KVIP_TMP/client.out

svc() {
	kvipctl_ns "$node" service replace "$SVC" proto tcp \
		clusterip "$VIP:80" nodeport "$NP" "$@"
}

# conns N [ARGS...]: N connections to the cluster IP; prints "OK/BACKENDS".
conns() {
	local n=$1
	shift
	client_run "$out" "$client" -n "$n" -t 2 "$@" "$VIP" 80
	echo "${R[ok]}/$(tally_keys)"
}

# A long timeout first: between two client processes there may be
# seconds on a loaded machine.
kvipctl_batch "$node" <<EOF || ktap_exit_fail_msg "service setup failed"
service replace $SVC proto tcp clusterip $VIP:80 nodeport $NP affinity clientip timeout 60
endpoints set $SVC $B1 $B2 $B3
EOF

got=$(conns 15)
ktap_check "affinity: 15 connections to the cluster IP reach one backend" \
	"$got" matches "$got" '^15/backend-[123]$'
first=${got#*/}

client_run "$out" "$client" -n 15 -t 2 --snat 192.168.0.1 "$NP"
got="${R[ok]}/$(tally_keys)"
ktap_check "affinity: the node port reaches the same backend" \
	"$got (cluster IP: $first)" [ "$got" = "15/$first" ]

read -r n eps < <(kvip_affinity "$node" "$SVC")
ktap_check "one affinity entry, for that backend" "$n $eps" \
	[ "$n $eps" = "1 10.0.1.${first#backend-}" ]

# The client sticks to backend 1 against a 65535:1 weight, with a 6 s
# timeout, for longer than the timeout: one client process connects every
# 0.5 s while the set changes under it (no gap longer than a connection).
kvipctl_batch "$node" <<EOF
service replace $SVC proto tcp clusterip $VIP:80 nodeport $NP affinity clientip timeout 6
endpoints set $SVC $B1
EOF
log=$KVIP_TMP/conns.log stop=$KVIP_TMP/stop
py_ns "$client" "$KVIP_CLIENT" -n 0 -i 0.5 -t 2 \
	--stop-file "$stop" --log "$log" "$VIP" 80 >"$out" 2>&1 &
bg=$!
defer kill_wait "$bg"
# logged N: the client has logged at least N connections (no exec).
# shellcheck disable=SC2317 # called by slowwait
logged() {
	local lines=()
	[[ -f "$log" ]] && mapfile -t lines <"$log"
	n=${#lines[@]}
	((n >= $1))
}
slowwait 60 logged 1
kvipctl_ns "$node" endpoints set "$SVC" "$B1" "$B2@65535"
logged 0
n0=$n
slowwait 120 logged $((n0 + 14))
touch "$stop"
wait "$bg"
show_file "$out"
client_parse "$out"
after=$((${R[conns]:-0} - n0))
got="${R[ok]:-0}/${R[conns]:-0} ok, $(tally_keys), $after after the change"
ktap_check "the entry beats the weights; connections every 0.5 s for 7 s keep it" \
	"$got" [ "$got" = "${R[conns]}/${R[conns]} ok, backend-1, $after after the change" -a "$after" -ge 14 ]

nap 7
got=$(conns 5)
ktap_check "after the 6 s timeout without connections, a fresh choice" \
	"$got" [ "$got" = "5/backend-2" ]

# Leaving the set or the pool releases the client.
kvipctl_ns "$node" endpoints set "$SVC" "$B1" "$B3"
got=$(conns 10)
ktap_check "the endpoint left the set: its client moves and sticks again" \
	"$got" matches "$got" '^10/backend-[13]$'
now=${got#*/}
n=${now#backend-}
other=$((n == 1 ? 3 : 1))
kvipctl_ns "$node" endpoints set "$SVC" "10.0.1.$n:8080,notready,notserving" "10.0.1.$other:8080"
got=$(conns 10)
ktap_check "the endpoint became unready: its client moves" \
	"$got" [ "$got" = "10/backend-$other" ]

# Switching affinity off and on at run time.
kvipctl_batch "$node" <<EOF
endpoints set $SVC $B1 $B2 $B3
service replace $SVC proto tcp clusterip $VIP:80 nodeport $NP
EOF
got=$(conns 15)
ktap_check "affinity off: the client is spread again" \
	"$got" matches "$got" '^15/backend-[123] backend-[123]'

read -r n eps < <(kvip_affinity "$node" "$SVC")
ktap_check "affinity off: the entries are forgotten" "$n $eps" [ "$n" = 0 ]

svc affinity clientip timeout 6
got=$(conns 15)
ktap_check "affinity on again: sticky again" \
	"$got" matches "$got" '^15/backend-[123]$'

# Reclaim: after the timeout, the periodic work frees the entry.
# shellcheck disable=SC2317 # called by slowwait
aff_none() {
	local n
	read -r n _ < <(kvip_affinity "$node" "$SVC")
	[ "$n" = 0 ]
}
nap 6
slowwait 30 aff_none
read -r n eps < <(kvip_affinity "$node" "$SVC")
ktap_check "expired entries are reclaimed" "$n left" [ "$n" = 0 ]

ktap_finished
