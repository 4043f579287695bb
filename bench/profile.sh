#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# profile.sh - where kvip's time goes, with perf (cpu-clock sampling: TCG
# has no PMU) in the QEMU guest. Run by `make bench-profile`:
#
#   selftests/vm-run -- bench/profile.sh OUTDIR GENDIR N
#
# 1. control plane: `kvipctl -batch` of N services x 10 endpoints, then the
#    same services without endpoints, then `kvipctl flush`, each timed and
#    sampled; 2. first packet: new UDP flows spread over the N services.
# Writes OUTDIR/*.txt (perf report --stdio summaries).
set -u
OUT=$1 GEN=$2 N=$3
REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd -P)
KVIPCTL=$REPO/tools/kvipctl/kvipctl
KVBENCH=$REPO/bench/.build/kvbench
D=$GEN/$N
mkdir -p "$OUT"
exec {NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$NAP_FD"; return 0; }
nsx() { local ns=$1; shift; nsenter --net=/run/netns/"$ns" "$@"; }
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
secs() { printf '%d.%03d' $(($1 / 1000000)) $((($1 % 1000000) / 1000)); }

deps=$(modinfo -F depends "$REPO/kmod/kvip.ko")
modprobe -a ${deps//,/ } nf_conntrack nf_nat veth
insmod "$REPO/kmod/kvip.ko" || exit 1
sysctl -qw net.netfilter.nf_conntrack_max=2000000
ip -batch - <<EOF
netns add pc
netns add pn
netns add pb
EOF
ip -n pn -batch - <<EOF
link set lo up
link add veth-c type veth peer name eth0 netns pc
link add veth-b type veth peer name eth0 netns pb
addr add 192.168.0.1/16 dev veth-c
addr add 172.16.0.1/30 dev veth-b
link set veth-c up
link set veth-b up
route add 10.128.0.0/9 via 172.16.0.2
EOF
ip -n pc -batch - <<EOF
link set lo up
addr add 192.168.0.2/16 dev eth0
link set eth0 up
route add default via 192.168.0.1
EOF
ip -n pb -batch - <<EOF
link set lo up
addr add 172.16.0.2/30 dev eth0
link set eth0 up
route add default via 172.16.0.1
route add local 10.128.0.0/9 dev lo
EOF
nsx pn sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.veth-c.rp_filter=0

report() {	# report NAME COMM: who ran, flat profile (self), inclusive (children)
	local name=$1 comm=$2 d=/tmp/$1.data
	perf report -i "$d" --no-children --stdio --sort comm,dso -g none \
		--percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' >"$OUT/$name.txt"
	echo "--- self, $comm" >>"$OUT/$name.txt"
	perf report -i "$d" --comm "$comm" --no-children --stdio --sort dso,sym -g none \
		--percent-limit 0.4 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 60 >>"$OUT/$name.txt"
	echo "--- children, $comm" >>"$OUT/$name.txt"
	perf report -i "$d" --comm "$comm" --children --stdio --sort sym -g none \
		--percent-limit 1.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 80 >>"$OUT/$name.txt"
	rm -f "$d"
}

step() {	# step NAME CMD...: time and sample CMD
	local name=$1 t0 t1
	shift
	t0=$(now_us)
	perf record -a -g -F 499 -e cpu-clock -o "/tmp/$name.data" -- "$@" >/dev/null 2>"$OUT/$name.err"
	t1=$(now_us)
	echo "$name (sampled, perf start-up included): $(secs $((t1 - t0))) s" | tee -a "$OUT/times.txt"
	report "$name" "$COMM"
}

: >"$OUT/times.txt"
for _ in 1 2; do
	t0=$(now_us); nsx pn "$KVIPCTL" -batch "$D/kvip.batch"; t1=$(now_us)
	echo "load $N x 10 (unsampled): $(secs $((t1 - t0))) s" | tee -a "$OUT/times.txt"
	t0=$(now_us); nsx pn "$KVIPCTL" flush; t1=$(now_us)
	echo "flush (unsampled): $(secs $((t1 - t0))) s" | tee -a "$OUT/times.txt"
done
t0=$(now_us); nsx pn "$KVIPCTL" -batch "$D/kvip-noeps.batch"; t1=$(now_us)
echo "load $N, no endpoints (unsampled): $(secs $((t1 - t0))) s" | tee -a "$OUT/times.txt"
nsx pn "$KVIPCTL" flush
COMM=kvipctl
step load nsenter --net=/run/netns/pn "$KVIPCTL" -batch "$D/kvip.batch"
grep -E 'Percpu|SUnreclaim|VmallocUsed' /proc/meminfo >>"$OUT/times.txt"

nsx pb "$KVBENCH" udpsink --port 5353 >/dev/null &
sink=$!
nap 0.5
nsx pc "$KVBENCH" udpgen --dst 10.96.0.1 --n "$N" --port 53 --count 200 >/dev/null
COMM=kvbench,ksoftirqd/0,ksoftirqd/1
step udp nsenter --net=/run/netns/pc "$KVBENCH" udpgen --dst 10.96.0.1 --n "$N" --port 53 --duration 8 --offset 1000000
kill "$sink"
COMM=kvipctl
step flush nsenter --net=/run/netns/pn "$KVIPCTL" flush
exit 0
