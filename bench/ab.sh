#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ab.sh - interleaved A/B first-packet measurement, run as root inside the
# QEMU guest by `bench/bench.sh --ab` (make bench-ab). Never on a host.
#
#   bench/ab.sh OUTDIR GENDIR N ROUNDS SLICE TCP_T [WINDOW [TOPOLOGY...]]
#
# Copies of run.sh's client -> node -> backend topology, each in its own
# three namespaces, all built first and kept for the whole run; by
# default the first five:
#
#   kvip-1     kvip, 1 service x 10 endpoints     (GENDIR/1/kvip.batch)
#   kvip-N     kvip, N services x 10 endpoints    (GENDIR/N/kvip.batch)
#   floor      one static iptables DNAT rule      (GENDIR/1/floor.rules)
#   ceiling-1  forwarding, no conntrack, to the 1 x 10 endpoint addresses
#   ceiling-N  the same to the N x 10 endpoint addresses
#   nft-1      kube-proxy's nftables shape, 1 service (GENDIR/1/nft.rules)
#   nft-N      the same, N services: minutes to load at N = 10,000
#   ipvs-1     IPVS as kube-proxy programs it, 1 service (GENDIR/1/ipvs.*)
#   ipvs-N     the same, N services: minutes to load at N = 10,000
#
# A peer (nft-*, ipvs-*) that cannot load within KVIP_BENCH_LOAD_TIMEOUT
# (600 s) is named in OUTDIR/ab.info and left out of the rounds.
# IPVS keeps its own connection entries besides conntrack's; its UDP
# timeout is set to 1 s so that they do not pile up over the rounds (the
# node's conntrack is flushed after every slice, below).
#
# Then ROUNDS rounds over the topologies, in an order that is rotated and,
# every other round, reversed (ABCDE EDCBA BCDEA AEDCB ...: no topology
# always goes first or always follows another); ratios taken within a
# round (bench/ab.py) are what to read. WINDOW > 0 (bench.sh's default):
# one `kvbench udpab` process per round sends run.sh's new UDP flows to
# all five in turns of WINDOW seconds until each had SLICE seconds (no
# exec between turns: the host's load, which changes within seconds, hits
# all alike). WINDOW = 0: one exec'd SLICE-second `kvbench udpgen` per
# topology (run.sh's measure_udp), which also gives CPU per flow and, if
# TCP_T > 0, TCP connects for TCP_T seconds.
#
# Rows of OUTDIR/ab.csv: one per round and topology, raw counts (the
# guest only counts; ab.py derives). The node's conntrack entries are
# flushed after every slice: all namespaces share one conntrack hash.
set -u

OUT=$1 GEN=$2 BIG=$3 ROUNDS=$4 SLICE=$5 TCP_T=${6:-0} WINDOW=${7:-0}
shift $(($# < 7 ? $# : 7))
. "$(dirname "$(readlink -f "$0")")/lib.sh"
TMP=$(mktemp -d)
TOPOS=("$@")
((${#TOPOS[@]})) || TOPOS=(kvip-1 kvip-N floor ceiling-1 ceiling-N)
CSV=$OUT/ab.csv

# topo T: make T's namespaces current (C, N, B) and set its traffic
# (UDP_ARGS, TCP_DST, TCP_PORT), contender (CT) and table (DIR).
topo() {
	C=ab-$1-c N=ab-$1-n B=ab-$1-b
	case $1 in
	kvip-1) CT=kvip DIR=$GEN/1 && targets kvip 1 ;;
	kvip-N) CT=kvip DIR=$GEN/$BIG && targets kvip "$BIG" ;;
	floor) CT=floor DIR=$GEN/1 && targets floor 1 ;;
	ceiling-1) CT=ceiling DIR=$GEN/1 && targets ceiling 1 ;;
	ceiling-N) CT=ceiling DIR=$GEN/$BIG && targets ceiling "$BIG" ;;
	nft-1) CT=nftables DIR=$GEN/1 && targets nftables 1 ;;
	nft-N) CT=nftables DIR=$GEN/$BIG && targets nftables "$BIG" ;;
	ipvs-1) CT=ipvs DIR=$GEN/1 && targets ipvs 1 ;;
	ipvs-N) CT=ipvs DIR=$GEN/$BIG && targets ipvs "$BIG" ;;
	*) log "unknown topology '$1'" && exit 1 ;;
	esac
}

FLOW_OFFSET=0
# slice ROUND POS T: one burst of new UDP flows (and TCP connects) on T.
slice() {
	local r=$1 pos=$2 t=$3 sink o sent recv el us rate s0 s1 conns=0 tel=0 t0
	topo "$t"
	: >"$TMP/sink"
	# nsenter, not nsx: $! must be the sink itself, not a subshell.
	nsenter --net=/run/netns/$B "$KVBENCH" udpsink --port 5353 >"$TMP/sink" &
	sink=$!
	wait_file "$TMP/sink" ready
	t0=$(now_us)
	cpu_times s0
	((FLOW_OFFSET += 1000000))	# not inside $(...): a subshell
	o=$(nsx $C "$KVBENCH" udpgen "${UDP_ARGS[@]}" --duration "$SLICE" \
		--offset $FLOW_OFFSET --seed "$RANDOM")
	cpu_times s1
	nap 0.3
	kill -TERM "$sink"
	wait "$sink" 2>/dev/null
	recv=$(kv "$(<"$TMP/sink")" received) || recv=0
	sent=$(kv "$o" sent) || sent=0
	el=$(kv "$o" elapsed) || el=0
	us=${el/./}
	us=$((10#$us))
	rate=$((us ? recv * 1000000 / us : 0))
	nsx $N conntrack -F >/dev/null 2>&1
	if ((TCP_T > 0)); then
		o=$(nsx $C "$KVBENCH" tcpconn --dst "$TCP_DST" --port "$TCP_PORT" --duration "$TCP_T")
		conns=$(kv "$o" conns) || conns=0
		tel=$(kv "$o" elapsed) || tel=0
		nsx $N conntrack -F >/dev/null 2>&1
	fi
	echo "$r,$pos,$t,$(secs "$t0"),$el,$sent,$recv,$rate,$((s1[0] - s0[0])),$((s1[1] - s0[1])),$((s1[2] - s0[2])),$conns,$tel" >>"$CSV"
	log "round $r: $t $rate flows/s"
}

SINKS=()
# mixed ROUND T...: one round as udpab turns over the topologies T...
mixed() {
	local r=$1 t i o line recv sent el us
	local -a spec=() sinks=()
	local -A a
	shift
	for t in "$@"; do
		topo "$t"
		nsenter --net=/run/netns/$B "$KVBENCH" udpsink --port 5353 >"$TMP/sink.$t" &
		sinks+=($!)
		a=([--n]=1 [--stride]=1 [--width]=1)
		for ((i = 0; i < ${#UDP_ARGS[@]}; i += 2)); do a[${UDP_ARGS[i]}]=${UDP_ARGS[i + 1]}; done
		spec+=("$C,${a[--dst]},${a[--n]},${a[--stride]},${a[--width]},${a[--port]}")
	done
	for t in "$@"; do wait_file "$TMP/sink.$t" ready; done
	((FLOW_OFFSET += 1000000))
	o=$("$KVBENCH" udpab "$SLICE" "$WINDOW" "$FLOW_OFFSET" "${spec[@]}")
	nap 0.3
	kill -TERM "${sinks[@]}"
	wait "${sinks[@]}" 2>/dev/null
	i=0
	while read -r line; do
		t=${*:i + 1:1}
		topo "$t"
		recv=$(kv "$(<"$TMP/sink.$t")" received) || recv=0
		sent=$(kv "$line" sent) el=$(kv "$line" elapsed)
		us=${el/./} && us=$((10#$us))
		echo "$r,$((i + 1)),$t,,$el,$sent,$recv,$((us ? recv * 1000000 / us : 0)),,,,0,0" >>"$CSV"
		log "round $r: $t $((us ? recv * 1000000 / us : 0)) flows/s"
		nsx $N conntrack -F >/dev/null 2>&1
		((i++))
	done <<<"$o"
}

setup_guest
{
	echo "# guest: $(uname -r), $(nproc) CPUs, $(grep MemTotal /proc/meminfo), cmdline: $(cat /proc/cmdline)"
	echo "# conntrack: buckets $(</proc/sys/net/netfilter/nf_conntrack_buckets), max $(</proc/sys/net/netfilter/nf_conntrack_max)"
} >>"$OUT/ab.info"
LOADED=()
for t in "${TOPOS[@]}"; do
	topo "$t"
	setup_topology || { log "$t: topology failed"; exit 1; }
	t0=$(now_us)
	if ! timed load "$CT" "$DIR"; then
		log "$t: load failed after $(secs $(($(now_us) - t0))) s: $(head -c 300 "$TMP/err")"
		# A peer that cannot load N services in LOAD_TIMEOUT is a
		# result (reported, then left out); kvip or a reference is not.
		[[ $CT == nftables || $CT == ipvs ]] || exit 1
		echo "# load $t: not loaded after $(secs $(($(now_us) - t0))) s (limit $LOAD_TIMEOUT s); left out" >>"$OUT/ab.info"
		teardown_topology
		continue
	fi
	LOADED+=("$t")
	log "$t: loaded in $(secs $(($(now_us) - t0))) s"
	[[ $CT == ipvs ]] && nsx $N ipvsadm --set 0 0 1
	echo "# load $t: $(secs $(($(now_us) - t0))) s" >>"$OUT/ab.info"
	if ((TCP_T > 0)); then
		nsenter --net=/run/netns/$B "$KVBENCH" tcpsink --port 8080 >/dev/null &
		SINKS+=($!)
	fi
	# Warm-up: the first conntrack and NAT allocations, caches.
	nsx $C "$KVBENCH" udpgen "${UDP_ARGS[@]}" --count 200 --offset $((FLOW_OFFSET += 1000000)) >/dev/null
	nsx $N conntrack -F >/dev/null 2>&1
done

TOPOS=("${LOADED[@]}")
echo "round,pos,topology,start_s,elapsed_s,sent,received,udp_flows_per_s,cpu_sys_jiffies,cpu_softirq_jiffies,cpu_total_jiffies,tcp_conns,tcp_elapsed_s" >"$CSV"
k=${#TOPOS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	rot=$((((r - 1) / 2) % k))
	order=("${TOPOS[@]:rot}" "${TOPOS[@]:0:rot}")
	if ((r % 2 == 0)); then
		for ((i = 0; i < k / 2; i++)); do
			t=${order[i]} order[i]=${order[k - 1 - i]} order[k - 1 - i]=$t
		done
	fi
	if [[ $WINDOW != 0 ]]; then
		mixed "$r" "${order[@]}"
	else
		for ((i = 0; i < k; i++)); do
			slice "$r" $((i + 1)) "${order[i]}"
		done
	fi
done
# The guest's clock, for bench.sh to compare with the host's (see run.sh).
echo "# guest clock at end: $(secs "$(now_us)")" >>"$OUT/ab.info"
((${#SINKS[@]})) && kill "${SINKS[@]}" 2>/dev/null
rm -rf "$TMP"
exit 0
