#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ctwalk.sh KO... - in the QEMU guest: the cost of UDP endpoint changes with
# 150,000 conntrack entries present (FLOWS), for each kvip.ko given (e.g. an
# old and a new build), one after the other in the same guest:
#   selftests/vm-run -- bench/ctwalk.sh /path/old/kvip.ko "$PWD/kmod/kvip.ko"
# Per module, twice: one change (1 endpoint of 10 gone) and one -batch of
# 50 such changes, timed; conntrack counts right after and once settled.
# Needs bench/.build/kvbench (make bench builds it).
cd "$(dirname "$0")/.."
source bench/lib.sh
TMP=$(mktemp -d)
NS=100 FLOWS=${FLOWS:-150000}
ep() { echo "10.128.$(( $1 / 16 )).$(( ($1 % 16) * 16 + $2 )):5353"; }
for ko in "$@"; do
	KVIP_KO=$ko
	setup_guest
	setup_topology
	{
		for ((i = 0; i < NS; i++)); do
			echo "service add default/s$i proto udp clusterip 10.96.$((i / 250)).$((i % 250 + 1)):53"
			l=""; for ((j = 0; j < 10; j++)); do l+=" $(ep $i $j)"; done
			echo "endpoints set default/s$i$l"
		done
	} >"$TMP/load"
	{
		for ((i = 10; i < 60; i++)); do
			l=""; for ((j = 1; j < 10; j++)); do l+=" $(ep $i $j)"; done
			echo "endpoints set default/s$i$l"
		done
	} >"$TMP/batch"
	nsx $N "$KVIPCTL" -batch "$TMP/load" || exit 1
	for rep in 1 2; do
		nsx $N conntrack -F 2>/dev/null
		nsx $C "$KVBENCH" udpgen --dst 10.96.0.1 --n $NS --port 53 --count $FLOWS --offset $((rep * 1000000)) >/dev/null
		before=$(nsx $N cat /proc/sys/net/netfilter/nf_conntrack_count)
		l=""; for ((j = 1; j < 10; j++)); do l+=" $(ep $rep $j)"; done
		t0=$(now_us); nsx $N "$KVIPCTL" endpoints set default/s$rep $l; t1=$(now_us)
		after1=$(nsx $N cat /proc/sys/net/netfilter/nf_conntrack_count)
		t2=$(now_us); nsx $N "$KVIPCTL" service show default/s0 >/dev/null; t3=$(now_us)
		echo "$(basename $(dirname $(dirname $ko))) rep $rep: conntrack $before; one change (1 endpoint of 10 gone): $(secs $((t1 - t0))) s, then a show: $(secs $((t3 - t2))) s; conntrack right after: $after1"
		sed -i "s/^endpoints set default\/s$rep .*//" "$TMP/batch"
		t0=$(now_us); nsx $N "$KVIPCTL" -batch "$TMP/batch"; t1=$(now_us)
		after2=$(nsx $N cat /proc/sys/net/netfilter/nf_conntrack_count)
		for ((k = 0; k < 60; k++)); do
			c=$(nsx $N cat /proc/sys/net/netfilter/nf_conntrack_count)
			[[ $c == "$last" ]] && break
			last=$c; nap 0.5
		done
		t2=$(now_us)
		echo "   batch of 50 changes: $(secs $((t1 - t0))) s; conntrack right after: $after2, settled at $c after $(secs $((t2 - t0))) s (expected ~ $before - ~$((before * 51 / 1000)))"
		nsx $N "$KVIPCTL" -batch "$TMP/load" >/dev/null 2>&1 || nsx $N "$KVIPCTL" -batch <(sed 's/^service add/service replace/' "$TMP/load") >/dev/null
	done
	nsx $N "$KVIPCTL" flush
	teardown_topology
	sleep 1
	rmmod kvip || exit 1
done
