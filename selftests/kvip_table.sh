#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The frontend table grows and shrinks (hash table resizes) and is churned,
# while every frontend keeps leading to its own service.
#
#  ┌─────────────┐     ┌──────────────────────────────┐     ┌──────────────┐
#  │ client      ├veth─┤ node  kvip                   ├br0──┤ backend1..3  │
#  │             │     │ svc-I 10.97.I/250.I%250+1:80 │     │ :8080        │
#  └─────────────┘     └──────────────────────────────┘     └──────────────┘
#
# Service svc-I has one endpoint, backend (I + R) % 3 + 1, R the round in
# which it was last added, so a connection that reaches another service's
# frontend, or a deleted frontend's leftovers, lands on the wrong backend
# two times in three (with 20 to 40 connections per check, a table that
# mixes services up fails).
# 1. 1,000 services in one batch (the table grows through several sizes):
#    a sample of 20 reaches its own backends.
# 2. All but 40 deleted in one batch (the table shrinks):
#    those 40 reach their backends, and 10 of the deleted addresses are
#    not translated.
# 3. For each third of the services, in turn: the deleted ones added with
#    another backend than in step 1, deleted, and added again with it; a
#    sample of 20 reaches each service's latest backend.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly TOTAL=1000 KEEP_EVERY=25

ktap_print_header
kvip_require
ktap_set_plan 8

vip() { echo "10.97.$(($1 / 250)).$(($1 % 250 + 1))"; }

# add_batch FROM TO ROUND: kvipctl -batch lines adding svc-FROM..svc-TO-1.
add_batch() {
	awk -v from="$1" -v to="$2" -v r="$3" 'BEGIN {
		for (i = from; i < to; i++) {
			printf "service add default/svc-%d proto tcp clusterip 10.97.%d.%d:80\n", i, int(i / 250), i % 250 + 1
			printf "endpoints set default/svc-%d 10.0.1.%d:8080\n", i, (i + r) % 3 + 1
		}
	}'
}

# del_batch FROM TO [EVERY]: lines deleting svc-FROM..svc-TO-1, except every
# EVERY-th.
del_batch() {
	awk -v from="$1" -v to="$2" -v every="${3:-0}" 'BEGIN {
		for (i = from; i < to; i++)
			if (!every || i % every)
				printf "service del default/svc-%d\n", i
	}'
}

declare -A ROUND	# service index -> round it was last added in

# One connection to each ADDR of the ADDR NAME pairs: prints how many
# reached kvip_server.py's NAME ("-": were not answered), then the misses.
readonly REACH_PY='
import socket, sys
timeout, good, bad = float(sys.argv[1]), 0, []
for addr, want in zip(sys.argv[2::2], sys.argv[3::2]):
    try:
        with socket.create_connection((addr, 80), timeout=timeout) as s:
            s.sendall(b"kvip_table\n")
            got = (s.makefile().readline().split() or ["nothing"])[0]
    except OSError as e:
        got = "-" if want == "-" else type(e).__name__
    if got == want:
        good += 1
    else:
        bad.append("%s:%s" % (addr, got))
print(good, *bad)
'

# reach I...: connect once to each service I; prints how many reached the
# backend of the service's latest round, then the misses.
reach() {
	local i args=()
	for i in "$@"; do
		args+=("$(vip "$i")" "backend-$(((i + ROUND[$i]) % 3 + 1))")
	done
	py_ns "$client" -c "$REACH_PY" 3 "${args[@]}"
}

# untranslated I...: connect once to each I (deleted); prints how many
# connections got no answer, then the others.
untranslated() {
	local i args=()
	for i in "$@"; do args+=("$(vip "$i")" -); done
	py_ns "$client" -c "$REACH_PY" 1 "${args[@]}"
}

kvip_topology 3 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"
mark=$(log_lines)

# --- 1. growth ---
add_batch 0 $TOTAL 0 >"$KVIP_TMP/add.batch"
for ((i = 0; i < TOTAL; i++)); do ROUND[$i]=0; done
t0=$(now_ms)
"$KVIPCTL" -n "$node" -batch "$KVIP_TMP/add.batch" ||
	ktap_exit_fail_msg "adding $TOTAL services failed"
ktap_print_msg "added $TOTAL services in $(($(now_ms) - t0)) ms"
n=$(kvip_count "$node")
ktap_check "$TOTAL services configured" "dump has $n" [ "$n" = $TOTAL ]
sample=()
for ((i = 0; i < 19; i++)); do sample+=("$((i * 52))"); done
sample+=("$((TOTAL - 1))")
t0=$(now_ms)
got=$(reach "${sample[@]}")
ktap_print_msg "20 connections in $(($(now_ms) - t0)) ms"
ktap_check "after growing, 20 of $TOTAL services reach their own backend" \
	"$got" [ "$got" = 20 ]

# --- 2. shrinking ---
del_batch 0 $TOTAL $KEEP_EVERY >"$KVIP_TMP/del.batch"
t0=$(now_ms)
"$KVIPCTL" -n "$node" -batch "$KVIP_TMP/del.batch" ||
	ktap_exit_fail_msg "deleting services failed"
ktap_print_msg "deleted in $(($(now_ms) - t0)) ms"
n=$(kvip_count "$node")
kept=()
for ((i = 0; i < TOTAL; i += KEEP_EVERY)); do kept+=("$i"); done
ktap_check "all but ${#kept[@]} deleted" "dump has $n" [ "$n" = ${#kept[@]} ]
got=$(reach "${kept[@]}")
ktap_check "after shrinking, the ${#kept[@]} left reach their own backend" \
	"$got" [ "$got" = ${#kept[@]} ]
gone=()
for ((i = 0; i < 10; i++)); do gone+=("$((i * 97 + 1))"); done
t0=$(now_ms)
got=$(untranslated "${gone[@]}")
ktap_print_msg "10 connections to deleted frontends in $(($(now_ms) - t0)) ms"
ktap_check "10 deleted frontends are no longer translated" \
	"$got" [ "$got" = 10 ]

# --- 3. churn ---
# not_kept: drop the lines of the services step 2 kept.
not_kept() { awk -v e=$KEEP_EVERY '{ split($3, a, "-"); if (a[2] % e) print }'; }
for r in 1 2 3; do
	from=$(((r - 1) * TOTAL / 3)) to=$((r * TOTAL / 3))
	((r == 3)) && to=$TOTAL
	{
		# Add the deleted of [from, to), delete them again, then add
		# them for good, with round r's backends.
		add_batch $from $to $r | not_kept
		del_batch $from $to $KEEP_EVERY
		add_batch $from $to $r | not_kept
	} >"$KVIP_TMP/churn.batch"
	t0=$(now_ms)
	"$KVIPCTL" -n "$node" -batch "$KVIP_TMP/churn.batch" ||
		ktap_exit_fail_msg "churn round $r failed"
	ktap_print_msg "churn round $r in $(($(now_ms) - t0)) ms"
	for ((i = from; i < to; i++)); do ((i % KEEP_EVERY)) && ROUND[$i]=$r; done
done
n=$(kvip_count "$node")
ktap_check "after three rounds of churn, $TOTAL services configured" "dump has $n" \
	[ "$n" = $TOTAL ]
sample=()
for ((i = 0; i < 20; i++)); do sample+=("$((i * 49 + 5))"); done
got=$(reach "${sample[@]}")
ktap_check "after churn, 20 services reach their latest backend" \
	"$got" [ "$got" = 20 ]

ktap_check "no kernel warning" "see above" kernel_log_clean "$mark"
ktap_finished
