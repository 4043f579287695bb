#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lib.sh - what bench/run.sh and bench/ab.sh share, sourced by both inside
# the QEMU guest: helpers, the guest's modules and conntrack sizing, the
# client -> node -> backend topology, the contenders' load/change/unload
# and where their traffic goes. Callers set TMP (scratch directory) and
# may change C, N, B (the topology's namespaces) before each call.

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)
KVIPCTL=$REPO/tools/kvipctl/kvipctl
KVIP_KO=$REPO/kmod/kvip.ko
KVBENCH=${KVBENCH:-$REPO/bench/.build/kvbench}
LOAD_TIMEOUT=${KVIP_BENCH_LOAD_TIMEOUT:-600}
C=bench-client N=bench-node B=bench-backend

# Every exec costs a lot under TCG (and more on a loaded host): the
# measuring code sticks to bash builtins; derived numbers are computed on
# the host (summarize.py, ab.py).
log() { printf '# [%(%T)T] %s\n' -1 "$*" >&2; }
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
# secs US: microseconds as seconds
secs() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
exec {NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$NAP_FD"; return 0; }
# nsx NETNS CMD...: nsenter is much cheaper than `ip netns exec` (no
# sysfs remount), and nothing here needs a netns-specific /sys.
nsx() { local ns=$1; shift; nsenter --net=/run/netns/"$ns" "$@"; }

# -------------------------------------------------------------- set-up --

setup_guest() {
	local deps
	deps=$(modinfo -F depends "$KVIP_KO")
	modprobe -a ${deps//,/ } nf_conntrack nf_nat veth dummy ip_tables iptable_nat \
		nf_tables nft_chain_nat nft_numgen nft_fib_ipv4 xt_statistic xt_comment \
		xt_mark xt_addrtype xt_MASQUERADE nf_nat_ftp 2>/dev/null
	modprobe ip_vs conn_tab_bits=18 && modprobe -a ip_vs_rr
	insmod "$KVIP_KO" || { log "insmod kvip failed"; exit 1; }
	modprobe nf_conntrack hashsize=262144 2>/dev/null
	sysctl -qw net.netfilter.nf_conntrack_max=2000000 net.netfilter.nf_conntrack_buckets=262144 \
		net.core.rmem_max=16777216 net.core.netdev_max_backlog=10000 2>/dev/null
	sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

# teardown_topology: delete the namespaces $C, $N and $B, if they exist.
teardown_topology() {
	ip netns del $C 2>/dev/null; ip netns del $N 2>/dev/null; ip netns del $B 2>/dev/null
}

# setup_topology: client $C -> node $N -> backend $B (see run.sh). The
# addresses are the same in every copy: each copy has its own namespaces.
setup_topology() {
	teardown_topology
	ip -batch - <<-EOF || return 1
	netns add $C
	netns add $N
	netns add $B
	EOF
	ip -n $N -batch - <<-EOF || return 1
	link set lo up
	link add veth-c type veth peer name eth0 netns $C
	link add veth-b type veth peer name eth0 netns $B
	addr add 192.168.0.1/16 dev veth-c
	addr add 172.16.0.1/30 dev veth-b
	link set veth-c up
	link set veth-b up
	route add 10.128.0.0/9 via 172.16.0.2
	route add 10.127.0.0/16 via 172.16.0.2
	EOF
	ip -n $C -batch - <<-EOF || return 1
	link set lo up
	addr add 192.168.0.2/16 dev eth0
	link set eth0 up
	route add default via 192.168.0.1
	EOF
	ip -n $B -batch - <<-EOF || return 1
	link set lo up
	addr add 172.16.0.2/30 dev eth0
	link set eth0 up
	route add default via 172.16.0.1
	route add local 10.128.0.0/9 dev lo
	route add local 10.127.0.0/16 dev lo
	EOF
	nsx $N sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.veth-c.rp_filter=0 net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.vs.conntrack=1 2>/dev/null
	nsx $C sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
	nsx $B sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
}

# in_memcg CMD...: run CMD in the bench-load cgroup (its kernel memory,
# charged with __GFP_ACCOUNT, is then visible there).
in_memcg() {
	echo "$BASHPID" >/sys/fs/cgroup/bench-load/cgroup.procs 2>/dev/null
	"$@"
}

# timed FUNC ARGS...: FUNC (load, change, unload) in a shell killed after
# LOAD_TIMEOUT seconds; errors in $TMP/err.
timed() {
	timeout "$LOAD_TIMEOUT" bash -c "$(declare -f load change unload in_memcg nsx)
N=$N C=$C B=$B KVIPCTL=$KVIPCTL; \"\$@\"" timed "$@" >/dev/null 2>"$TMP/err"
}

# ----------------------------------------------------- the contenders ----

# load CONTENDER DIR: program everything from empty (in node netns).
load() {
	local c=$1 d=$2
	case $c in
	kvip) nsx $N "$KVIPCTL" -batch "$d/kvip.batch" ;;
	kvip-noeps) nsx $N "$KVIPCTL" -batch "$d/kvip-noeps.batch" ;;
	iptables) nsx $N iptables-nft-restore "$d/iptables.rules" ;;
	nftables) nsx $N nft -f "$d/nft.rules" ;;
	ipvs)
		ip -n $N link add kube-ipvs0 type dummy &&
		ip -n $N -batch "$d/ipvs-addr.batch" &&
		nsx $N ipvsadm -R <"$d/ipvs.rules" &&
		# kube-proxy's IPVS mode keeps iptables (masquerade marks): conntrack is on.
		nsx $N iptables-nft-restore "$d/iptables-flush.rules" &&
		nsx $N iptables-nft -t nat -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
		;;
	floor) nsx $N iptables-nft-restore "$d/floor.rules" ;;
	ceiling) true ;;
	esac
}

# change CONTENDER DIR: one endpoint change of svc-0, as a single command
# (no shell around it: its exec is part of what is measured).
change() {
	local c=$1 d=$2 ns=--net=/run/netns/$N
	case $c in
	kvip)
		# shellcheck disable=SC2046 # the file holds kvipctl's arguments
		timeout "$LOAD_TIMEOUT" nsenter $ns "$KVIPCTL" $(<"$d/kvip-change") ;;
	iptables) timeout "$LOAD_TIMEOUT" nsenter $ns iptables-nft-restore "$d/iptables-change.rules" ;;
	iptables-partial) timeout "$LOAD_TIMEOUT" nsenter $ns iptables-nft-restore --noflush "$d/iptables-change-partial.rules" ;;
	nftables) timeout "$LOAD_TIMEOUT" nsenter $ns nft -f "$d/nft-change.rules" ;;
	ipvs) timeout "$LOAD_TIMEOUT" nsenter $ns ipvsadm -R <"$d/ipvs-change.rules" ;;
	esac
}

unload() {
	local c=$1 d=$2
	case $c in
	kvip | kvip-noeps) nsx $N "$KVIPCTL" flush ;;
	iptables | floor) nsx $N iptables-nft-restore "$d/iptables-flush.rules" ;;
	nftables) nsx $N nft delete table ip kube-proxy ;;
	ipvs)
		nsx $N ipvsadm -C &&
		ip -n $N link del kube-ipvs0 &&
		nsx $N iptables-nft -t nat -F POSTROUTING
		;;
	ceiling) true ;;
	esac
}

# Leave the node netns clean whatever happened (a load may have been
# killed half-way).
scrub() {
	nsx $N "$KVIPCTL" flush >/dev/null 2>&1
	nsx $N nft flush ruleset >/dev/null 2>&1
	nsx $N iptables-legacy -t nat -F >/dev/null 2>&1
	nsx $N ipvsadm -C >/dev/null 2>&1
	ip -n $N link del kube-ipvs0 >/dev/null 2>&1
	nsx $N conntrack -F >/dev/null 2>&1
}

# Where the probes go: VIPs, or the endpoints themselves for the ceiling.
# shellcheck disable=SC2034 # UDP_ARGS, TCP_*, IPERF_DST: for the caller
targets() {
	local c=$1 n=$2
	if [[ $c == ceiling ]]; then
		UDP_ARGS=(--dst 10.128.0.0 --n "$n" --stride 16 --width 10 --port 5353)
		TCP_DST=10.127.0.1 TCP_PORT=8080 IPERF_DST=10.127.1.1
	elif [[ $c == floor ]]; then
		UDP_ARGS=(--dst 10.96.0.1 --n 1 --port 53)
		TCP_DST=10.95.0.1 TCP_PORT=80 IPERF_DST=10.95.0.2
	else
		UDP_ARGS=(--dst 10.96.0.1 --n "$n" --port 53)
		TCP_DST=10.95.0.1 TCP_PORT=80 IPERF_DST=10.95.0.2
	fi
}

# cpu_times ARRAY: system, softirq and total jiffies of all CPUs.
cpu_times() {
	local -n _t=$1
	local u ni sy id io irq si st rest
	read -r _ u ni sy id io irq si st rest </proc/stat
	_t=("$sy" "$si" $((u + ni + sy + id + io + irq + si + st)))
}

# wait_file FILE WORD [TRIES]: until FILE contains WORD (0.1 s polls).
wait_file() {
	local i c
	for ((i = 0; i < ${3:-50}; i++)); do
		[[ -s $1 ]] && c=$(<"$1") && [[ $c == *"$2"* ]] && return 0
		nap 0.1
	done
	return 1
}

# kv LINE KEY: the value of KEY=VALUE in LINE.
kv() {
	local v=${1#*"$2"=}
	[[ $v == "$1" ]] && return 1
	echo "${v%% *}"
}
