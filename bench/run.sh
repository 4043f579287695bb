#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh - the benchmark driver, run as root inside the QEMU guest by
# bench/bench.sh (selftests/vm-run). Never run it on a host: it creates
# network namespaces and loads modules.
#
#   bench/run.sh OUT.csv GENDIR REP SIZE...
#
# For each SIZE (GENDIR/SIZE holds bench/gen.py's files) and each
# contender, in one pass: program the table from empty (time, kernel
# memory), new UDP flows/s spread over all services (+ CPU time), TCP
# connects/s with p50/p99 latency, one iperf3 stream, one endpoint change
# (command to the first packet at the new endpoint), delete all. The floor
# (one static DNAT rule) runs at the first size, the ceiling (forwarding
# to the endpoints without conntrack) at every size. Rows: rep,n,contender,metric,value.
#
# Topology (all in namespaces of this guest, which has no NIC):
#
#   client 192.168.0.2 ──veth── node 192.168.0.1 | 172.16.0.1 ──veth── backend 172.16.0.2
#   (kvbench udpgen, raw       (the contender's    (every endpoint address:
#    socket, fresh 5-tuples)     rules, forwarding)  local 10.127/16, 10.128/9 on lo;
#                                                    kvbench sinks, iperf3 -s)
set -u

OUT=$1 GEN=$2 REP=$3
shift 3
SIZES=("$@")
. "$(dirname "$(readlink -f "$0")")/lib.sh"
QUICK=${KVIP_BENCH_QUICK:-0}
CONTENDERS=${KVIP_BENCH_CONTENDERS:-kvip iptables nftables ipvs}
PROFILE=${KVIP_BENCH_PROFILE:-}
if ((QUICK)); then
	UDP_SLICE=0.4 TCP_T=1 IPERF_T=1
else
	UDP_SLICE=${KVIP_BENCH_UDP_SLICE:-2} TCP_T=${KVIP_BENCH_TCP_T:-5} IPERF_T=${KVIP_BENCH_IPERF_T:-4}
fi
TMP=$(mktemp -d)
# FAILED_AT[c]: the smallest N contender c could not load; it is not tried
# at that N or above. FAILED_WHY[c]: what the skipped rows say.
declare -A FAILED_AT=() FAILED_WHY=()

# Rows of the CSV (derived numbers are computed on the host by summarize.py).
row() { echo "$REP,$1,$2,$3,$4" >>"$OUT"; }

start_servers() {
	nsenter --net=/run/netns/$B "$KVBENCH" tcpsink --port 8080 >/dev/null &
	TCPSINK=$!
	nsx $B iperf3 -s -D -p 5201 -I "$TMP/iperf3.pid" >/dev/null 2>&1
	nap 0.3
}

# ---------------------------------------------------- kernel memory ----

# mem_snapshot VAR: SUnreclaim, Percpu, VmallocUsed (KiB) after dropping
# caches and shrinking slabs.
mem_snapshot() {
	local -n _m=$1
	local k v rest f
	if ((!QUICK)); then
		echo 3 >/proc/sys/vm/drop_caches
		for f in /sys/kernel/slab/*/shrink; do echo 1 >"$f"; done 2>/dev/null
		sleep 1	# RCU-deferred frees
	fi
	while read -r k v rest; do
		case $k in
		SUnreclaim:) _m["sunreclaim"]=$v ;;
		Percpu:) _m["percpu"]=$v ;;
		VmallocUsed:) _m["vmalloc"]=$v ;;
		esac
	done </proc/meminfo
	_m["cg"]=0 _m["cg_slab"]=0 _m["cg_percpu"]=0 _m["cg_sock"]=0
	[[ -f /sys/fs/cgroup/bench-load/memory.stat ]] &&
		while read -r k v; do
			case $k in
			kernel) _m["cg"]=$v ;;
			slab_unreclaimable) _m["cg_slab"]=$v ;;
			percpu) _m["cg_percpu"]=$v ;;
			sock) _m["cg_sock"]=$v ;;
			esac
		done </sys/fs/cgroup/bench-load/memory.stat
}

setup_memcg() {
	echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
	mkdir -p /sys/fs/cgroup/bench-load 2>/dev/null
}

FLOW_OFFSET=0
measure_udp() {
	local n=$1 c=$2 sink out recv sent=0 s0 s1
	: >"$TMP/sink"
	# nsenter, not nsx: $! must be the sink itself, not a subshell.
	nsenter --net=/run/netns/$B "$KVBENCH" udpsink --port 5353 >"$TMP/sink" &
	sink=$!
	wait_file "$TMP/sink" ready
	# Warm-up: the first conntrack and NAT allocations, caches.
	nsx $C "$KVBENCH" udpgen "${UDP_ARGS[@]}" --count 200 --offset $((FLOW_OFFSET += 1000000)) >/dev/null
	nsx $N conntrack -F >/dev/null 2>&1
	# Three slices: the host is shared, so the best slice is the least
	# disturbed one (summarize.py takes it; sent == received in practice,
	# the sender's CPU does the whole forwarding in softirq).
	cpu_times s0
	local i o
	out=""
	for i in 1 2 3; do
		# Advanced here, not inside $(...) (a subshell): every slice
		# needs source addresses and ports of its own, or its datagrams
		# hit the previous slice's conntrack entries (N = 1: all of them).
		((FLOW_OFFSET += 1000000))
		o=$(nsx $C "$KVBENCH" udpgen "${UDP_ARGS[@]}" --duration "$UDP_SLICE" \
			--offset $FLOW_OFFSET --seed "$RANDOM")
		row "$n" "$c" "udp_slice${i}_sent" "$(kv "$o" sent)"
		row "$n" "$c" "udp_slice${i}_elapsed" "$(kv "$o" elapsed)"
		sent=$((${sent:-0} + $(kv "$o" sent)))
		out="$o"
	done
	cpu_times s1
	nap 0.3
	kill -TERM "$sink"
	wait "$sink" 2>/dev/null
	recv=$(kv "$(<"$TMP/sink")" received) || recv=0
	recv=$((recv > 200 ? recv - 200 : 0))	# the warm-up's datagrams
	row "$n" "$c" udp_sent "$sent"
	row "$n" "$c" udp_received "$recv"
	row "$n" "$c" cpu_sys_jiffies $((s1[0] - s0[0]))
	row "$n" "$c" cpu_softirq_jiffies $((s1[1] - s0[1]))
	row "$n" "$c" cpu_total_jiffies $((s1[2] - s0[2]))
	nsx $N conntrack -F >/dev/null 2>&1
	UDP_RECV=$recv
}

measure_tcp() {
	local n=$1 c=$2 out k
	out=$(nsx $C "$KVBENCH" tcpconn --dst "$TCP_DST" --port "$TCP_PORT" --duration "$TCP_T")
	TCP_CONNS=$(kv "$out" conns) || TCP_CONNS=0
	row "$n" "$c" tcp_conns "$TCP_CONNS"
	for k in failed elapsed p50_us p99_us; do
		row "$n" "$c" "tcp_$k" "$(kv "$out" $k)"
	done
	nsx $N conntrack -F >/dev/null 2>&1
}

measure_iperf() {
	local n=$1 c=$2 line mbps=0
	while read -r line; do
		[[ $line == *receiver* ]] || continue
		line=${line% Mbits/sec*}
		mbps=${line##* }
	done < <(nsx $C iperf3 -c "$IPERF_DST" -p 5201 -t "$IPERF_T" -f m 2>/dev/null)
	row "$n" "$c" iperf_mbps "$mbps"
}

# Command to the first datagram at the new endpoint, while a prober sends
# a new flow to svc-0 every ~2 ms.
measure_change() {
	local n=$1 c=$2 d=$3 w p t0 t1 first rc new=10.255.255.254
	[[ $c == iptables-partial ]] && new=10.255.255.253
	: >"$TMP/first"
	nsenter --net=/run/netns/$B "$KVBENCH" udpsink --bind $new --port 5353 --first >"$TMP/first" &
	w=$!
	((FLOW_OFFSET += 1000000))
	nsenter --net=/run/netns/$C "$KVBENCH" udpgen --dst 10.96.0.1 --port 53 --interval-us 2000 \
		--duration 900 --offset $FLOW_OFFSET >/dev/null &
	p=$!
	wait_file "$TMP/first" ready
	nap 0.3
	# What a conntrack walk in the change would visit.
	row "$n" "$c" change_ct_entries \
		"$(nsx $N cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo NA)"
	t0=$(now_us)
	change "$c" "$d" >/dev/null 2>"$TMP/err"
	rc=$?
	t1=$(now_us)
	wait_file "$TMP/first" first 100
	kill "$p" "$w" 2>/dev/null
	wait "$p" "$w" 2>/dev/null
	first=$(kv "$(<"$TMP/first")" first) || first=""
	if ((rc == 0)); then
		row "$n" "$c" change_cmd_s "$(secs $((t1 - t0)))"
	else
		row "$n" "$c" change_cmd_s NA
		log "$c N=$n: endpoint change failed (rc $rc): $(head -c 300 "$TMP/err")"
	fi
	if ((rc == 0)) && [[ -n $first ]]; then
		first=${first/./}
		row "$n" "$c" change_to_packet_s "$(secs $((10#$first - t0)))"
	else
		row "$n" "$c" change_to_packet_s NA
	fi
}

# ------------------------------------------------------------ one run ----

run_one() {
	local c=$1 n=$2 d=$3 t0 t1 rc
	declare -A m0=() m1=()
	scrub
	log "$c N=$n: load"
	mem_snapshot m0
	t0=$(now_us)
	if [[ -n $PROFILE && $c == kvip ]]; then
		perf record -a -g -e cpu-clock -F 499 -o "$PROFILE.load.$n.data" -- \
			bash -c "$(declare -f timed load change unload in_memcg nsx); C=$C B=$B LOAD_TIMEOUT=$LOAD_TIMEOUT TMP=$TMP N=$N KVIPCTL=$KVIPCTL timed in_memcg load $c $d" >/dev/null 2>&1
		rc=$?
	else
		timed in_memcg load "$c" "$d"
		rc=$?
	fi
	t1=$(now_us)
	if ((rc != 0)); then
		local why="failed (exit $rc)"
		((rc == 124)) && why="did not load within ${LOAD_TIMEOUT}s"
		log "$c N=$n: $why: $(head -c 300 "$TMP/err")"
		row "$n" "$c" load_s "NA"
		row "$n" "$c" status "$why"
		FAILED_AT[$c]=$n
		FAILED_WHY[$c]="failed at N=$n"
		scrub
		return
	fi
	row "$n" "$c" load_s "$(secs $((t1 - t0)))"
	row "$n" "$c" status ok
	mem_snapshot m1
	local k
	for k in sunreclaim percpu vmalloc; do
		row "$n" "$c" "mem_${k}_kib" $((m1[$k] - m0[$k]))
	done
	row "$n" "$c" mem_cg_kernel_b $((m1[cg] - m0[cg]))
	# Where the cgroup's kernel memory went (the rest: vmalloc, page tables).
	for k in slab percpu sock; do
		row "$n" "$c" "mem_cg_${k}_b" $((m1[cg_$k] - m0[cg_$k]))
	done
	if [[ $c == kvip-noeps ]]; then
		unload "$c" "$d" >/dev/null 2>&1
		return
	fi

	targets "$c" "$n"
	log "$c N=$n: traffic"
	if [[ -n $PROFILE && $c == kvip ]]; then
		perf record -a -g -e cpu-clock -F 499 -o "$PROFILE.udp.$n.data" -- sleep 3 >/dev/null 2>&1 &
		nap 1
		local pp=$!
		measure_udp "$n" "$c"
		wait "$pp"
	else
		measure_udp "$n" "$c"
	fi
	measure_tcp "$n" "$c"
	# Throughput does not depend on N; the smoke test checks it once.
	((QUICK && n > 1)) || measure_iperf "$n" "$c"
	if ((QUICK)) && ((UDP_RECV == 0 || TCP_CONNS == 0)); then
		log "FAIL: $c N=$n forwarded no traffic (udp $UDP_RECV, tcp $TCP_CONNS)"
		SMOKE_FAIL=1
	fi
	if ((QUICK)) && [[ $c == iptables ]]; then
		# A full iptables-restore takes a minute under TCG already at
		# N=1000: the smoke test does only kube-proxy's partial one.
		((n == 1)) && measure_change "$n" iptables-partial "$d"
	elif [[ $c != floor && $c != ceiling ]] && ((!QUICK || n == 1)); then
		measure_change "$n" "$c" "$d"
		if [[ $c == iptables ]] && ((!QUICK)); then
			# kube-proxy >= 1.27 rewrites only the changed chains: the
			# same service again, .254 -> .253.
			measure_change "$n" iptables-partial "$d"
		fi
	fi
	t0=$(now_us)
	timed unload "$c" "$d"
	rc=$?
	t1=$(now_us)
	row "$n" "$c" delete_s "$( ((rc == 0)) && secs $((t1 - t0)) || echo NA)"
}

# A size an earlier repetition could not load within LOAD_TIMEOUT is not
# tried again: each try costs the whole timeout and says nothing new.
# Failures of another kind are retried.
earlier_timeouts() {
	local r c n why
	while IFS=, read -r r n c why; do
		if [[ -z ${FAILED_AT[$c]:-} ]] || ((n < FAILED_AT[$c])); then
			FAILED_AT[$c]=$n
			FAILED_WHY[$c]="$why at N=$n in repetition $r"
		fi
	done < <(awk -F, -v rep="$REP" '$1 < rep && $4 == "status" &&
		$5 ~ /^did not load within/ { print $1 "," $2 "," $3 "," $5 }' "$OUT")
}

SMOKE_FAIL=0
earlier_timeouts
# The guest's clock, for bench.sh to compare with the host's: TCG guests
# calibrate the TSC at boot, and on a badly overloaded host that can go
# wrong (the guest clock then runs several times too fast, and every rate
# with it).
row 0 guest clock_start "$(secs "$(now_us)")"
setup_guest
setup_memcg
setup_topology || { log "topology failed"; exit 1; }
start_servers
{
	echo "# guest: $(uname -r), $(nproc) CPUs, $(grep MemTotal /proc/meminfo), cmdline: $(cat /proc/cmdline)"
} >>"$OUT.info"
first=1
for n in "${SIZES[@]}"; do
	d=$GEN/$n
	read -r -a order <<<"$CONTENDERS"
	# Rotate the order with the repetition so no contender always goes first.
	rot=$(((REP - 1) % ${#order[@]}))
	order=("${order[@]:rot}" "${order[@]:0:rot}")
	# The floor once; the ceiling at every size: it sends to the N x 10
	# endpoint addresses directly, so it is the reference for whatever in
	# plain forwarding grows with the number of destinations.
	if ((first)); then
		order=(ceiling floor "${order[@]}")
		first=0
	else
		order=(ceiling "${order[@]}")
	fi
	for c in "${order[@]}"; do
		if [[ -n ${FAILED_AT[$c]:-} ]] && ((n >= FAILED_AT[$c])); then
			row "$n" "$c" load_s NA
			row "$n" "$c" status "not tried (${FAILED_WHY[$c]})"
			continue
		fi
		run_one "$c" "$n" "$d"
	done
	# Per-endpoint vs per-service memory: kvip with empty endpoint sets.
	if ((!QUICK)) && [[ " $CONTENDERS " == *" kvip "* ]] && ((n >= 1000)) && [[ $n == "${SIZES[-1]}" || $n == 10000 ]]; then
		run_one kvip-noeps "$n" "$d"
	fi
done
row 0 guest clock_end "$(secs "$(now_us)")"
kill "$TCPSINK" 2>/dev/null
[[ -s $TMP/iperf3.pid ]] && kill "$(<"$TMP/iperf3.pid")" 2>/dev/null
scrub
rm -rf "$TMP"
((SMOKE_FAIL)) && exit 3
exit 0
