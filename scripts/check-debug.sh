#!/usr/bin/env bash
# check-debug.sh: `make check-debug`, the reliability run on the debug
# kernel (`make debug-kernel`: KASAN, kmemleak, lockdep, PROVE_RCU,
# DEBUG_ATOMIC_SLEEP, DEBUG_OBJECTS, failslab/fail_page_alloc).
#
#   scripts/check-debug.sh            run it; exits 0 with a note when no
#                                     debug kernel is cached (CI builds none)
#   scripts/check-debug.sh --guest K/N  the part that runs in guest K of N
#
# In KVIP_DEBUG_SHARDS guests at once (default 2: a TCG guest's tests are
# mostly serial, so two guests use both host cores), each booted with
# panic_on_warn=1 (a WARN, and with it a KASAN report, ends the guest and
# fails the run), each guest:
#   1. kmemleak: scan, then forget what boot left unreferenced;
#   2. its share of the selftests (run_tests, per-test timeout
#      KVIP_DEBUG_TEST_TIMEOUT, default 900 s), shared out by their
#      measured cost on this kernel: stress for KVIP_STRESS_SECONDS
#      (default 10), KVIP_NETNS_CYCLES netns cycles (default 10 here),
#      kvip_faults.sh's random phases KVIP_FAULTS_ROUNDS (default 50)
#      and no kmemleak scans of its own (step 4 scans after everything);
#      kvip_limits.sh is left out when the kernel has no memory cgroup and
#      kvip_fuzz.sh's quick pass because step 3 runs it in long mode;
#   3. kvip_fuzz.sh in long mode: its share of 100,000 messages
#      (KVIP_FUZZ_COUNT overrides the total), in two namespaces at once,
#      with a seed of its own, a quarter of them from concurrent senders
#      (KVIP_FUZZ_CONCURRENT=25: theirs cost up to 1.6 times the others);
#   4. kmemleak: 6 s after the module is unloaded, two scans; any
#      unreferenced object fails the run.
# vm-run then fails the run on any WARN/BUG/KASAN/lockdep/RCU splat or taint
# in the guest kernel log. Budget: under 30 minutes on 2 cores (TCG).
#
# Environment: KVIP_DEBUG_TIMEOUT (guest timeout, default 3600 s),
# KVIP_DEBUG_SHARDS; the KVIP_* knobs above and those of the tests are
# passed into the guests.
set -euo pipefail

top="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd -P)"

now() { date +%s; }

host() {
	local build start rc=0 i n pids=() logs=()
	if ! build="$("$top/scripts/debug-kernel.sh" --path)"; then
		echo "check-debug: skipped, no debug kernel cached (make debug-kernel builds it, ~30 min)"
		exit 0
	fi
	[[ -x "$top/tools/kvipctl/kvipctl" ]] || { echo "check-debug: no kvipctl, run make" >&2; exit 1; }
	n=${KVIP_DEBUG_SHARDS:-2}
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "check-debug: KVIP_DEBUG_SHARDS must be a positive number" >&2; exit 2; }
	echo "check-debug: debug kernel $build, $n guests"
	start=$(now)
	export KVIP_VM_APPEND="${KVIP_VM_APPEND:-} panic_on_warn=1"
	export KVIP_DEBUG_SEED=${KVIP_DEBUG_SEED:-$((RANDOM * 32768 + RANDOM))}
	for ((i = 0; i < n; i++)); do
		logs+=("$(mktemp -t kvip-check-debug.XXXXXX)")
		"$top/selftests/vm-run" --kernel debug \
			--timeout "${KVIP_DEBUG_TIMEOUT:-3600}" \
			-- scripts/check-debug.sh --guest "$i/$n" \
			>"${logs[i]}" 2>&1 &
		pids+=($!)
	done
	local status=() failed="" pass
	for ((i = 0; i < n; i++)); do
		wait "${pids[i]}" && status[i]=0 || status[i]=$?
	done
	# Failed guests last, where a log's tail shows them.
	for pass in 0 1; do
		for ((i = 0; i < n; i++)); do
			(((status[i] != 0) == pass)) || continue
			echo "check-debug: guest $i/$n (vm-run exit ${status[i]}):"
			sed 's/^/  /' "${logs[i]}"
			rm -f "${logs[i]}"
			((pass)) || continue
			rc=1
			failed+=" guest $i/$n (exit ${status[i]})"
		done
	done
	echo "check-debug: $(( $(now) - start )) s in all (boot included), $( ((rc)) && echo "FAILED:$failed" || echo passed)"
	exit "$rc"
}

# Guest side.
KMEMLEAK=/sys/kernel/debug/kmemleak

step() {
	echo "# check-debug: $*"
}

kmemleak_scan() {
	echo scan >"$KMEMLEAK"
}

# Seconds each test took on the debug kernel (two guests on an idle host,
# session 6's run at df18695; only the proportions matter). A test not
# listed counts as 120.
declare -A COST=(
	[kvip_affinity.sh]=92 [kvip_bad_input.sh]=70 [kvip_clusterip_tcp.sh]=44
	[kvip_config.sh]=41 [kvip_conntrack.sh]=63 [kvip_delete_empty.sh]=47
	[kvip_endpoint_replace.sh]=81 [kvip_faults.sh]=184
	[kvip_idle_netns.sh]=64 [kvip_ipv6.sh]=49 [kvip_lifecycle.sh]=105
	[kvip_limits.sh]=93 [kvip_local_out.sh]=44 [kvip_masquerade.sh]=52
	[kvip_monitor.sh]=63 [kvip_netns_cycle.sh]=128
	[kvip_netns_isolation.sh]=53 [kvip_nodeport.sh]=57
	[kvip_source_ranges.sh]=52 [kvip_stress.sh]=217 [kvip_sync.sh]=118
	[kvip_table.sh]=90
	[kvip_traffic_policy.sh]=80 [kvip_udp_sctp.sh]=54 [kvip_weights.sh]=49
)

# shard_tests DIR K N: the tests of guest K of N, longest first into the
# least loaded guest; kvip_lifecycle.sh (it unloads the module) last.
shard_tests() {
	local dir=$1 k=$2 n=$3 f t c i best load=() last=""
	for ((i = 0; i < n; i++)); do load[i]=0; done
	while read -r c t; do
		best=0
		for ((i = 1; i < n; i++)); do
			((load[i] < load[best])) && best=$i
		done
		load[best]=$((load[best] + c))
		((best == k)) || continue
		if [[ "$t" == kvip_lifecycle.sh ]]; then last=$t; else echo "$t"; fi
	done < <(for f in "$dir"/kvip_*.sh; do
			t=${f##*/}
			echo "${COST[$t]:-120} $t"
		done | sort -k1,1nr -k2)
	[[ -z "$last" ]] || echo "$last"
}

guest() {
	local t0 t rc=0 fail=0 tmp leaks count mine
	local shard=${1%/*} nshards=${1#*/}

	if ! [[ "$1" =~ ^[0-9]+/[1-9][0-9]*$ ]] || ((shard >= nshards)); then
		echo "check-debug: --guest K/N" >&2
		exit 2
	fi

	[[ "${KVIP_IN_VM:-}" == 1 ]] || { echo "check-debug: --guest runs in vm-run" >&2; exit 2; }
	[[ "$(cat /proc/sys/kernel/panic_on_warn)" == 1 ]] || sysctl -qw kernel.panic_on_warn=1
	t0=$(now)
	step "kernel $(uname -r), panic_on_warn=$(cat /proc/sys/kernel/panic_on_warn), KVIP_KO=${KVIP_KO:-}"
	if [[ ! -w $KMEMLEAK ]]; then
		step "FAIL: no $KMEMLEAK"
		exit 1
	fi
	# What boot left unreferenced is not ours: reported objects are
	# marked and never reported again.
	kmemleak_scan
	echo clear >"$KMEMLEAK"
	# The periodic scan (every 10 min) walks all memory on every vCPU
	# the tests need; the explicit scans below are the ones that count.
	echo scan=off >"$KMEMLEAK"
	step "kmemleak cleared after boot ($(( $(now) - t0 )) s)"

	# run_tests with a longer per-test timeout: a copy beside links to
	# the tests, with its own settings (the tests find lib.sh through
	# their real path).
	tmp=$(mktemp -d)
	ln -s "$top"/selftests/* "$tmp/"
	rm "$tmp/settings" "$tmp/run_tests"
	cp "$top/selftests/run_tests" "$tmp/"
	echo "timeout=${KVIP_DEBUG_TEST_TIMEOUT:-900}" >"$tmp/settings"
	if ! grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
		rm "$tmp/kvip_limits.sh"
		step "kvip_limits.sh left out: this kernel has no memory cgroup (CONFIG_MEMCG)"
	fi
	rm "$tmp/kvip_fuzz.sh"
	mapfile -t mine < <(shard_tests "$tmp" "$shard" "$nshards")
	t=$(now)
	step "selftests ($shard/$nshards): ${mine[*]:-none}"
	if ((${#mine[@]})); then
		KVIP_NETNS_CYCLES=${KVIP_NETNS_CYCLES:-10} \
			KVIP_FAULTS_ROUNDS=${KVIP_FAULTS_ROUNDS:-50} \
			KVIP_FAULTS_KMEMLEAK=${KVIP_FAULTS_KMEMLEAK:-0} \
			"$tmp/run_tests" "${mine[@]}" || rc=$?
	fi
	step "selftests: exit $rc, $(( $(now) - t )) s"
	((rc == 0)) || fail=1

	t=$(now)
	count=$(( ${KVIP_FUZZ_COUNT:-100000} / nshards ))
	step "fuzzer, long mode: $count messages"
	set +o pipefail
	KVIP_FUZZ_LONG=1 KVIP_FUZZ_COUNT=$count \
		KVIP_FUZZ_CONCURRENT=${KVIP_FUZZ_CONCURRENT:-25} \
		KVIP_FUZZ_SEED=$(( (${KVIP_DEBUG_SEED:-1} + shard) % 1073741824 )) \
		"$top/selftests/kvip_fuzz.sh" 2>&1 | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	set -o pipefail
	step "fuzzer: exit $rc, $(( $(now) - t )) s"
	((rc == 0)) || fail=1

	# Every kvip object must be gone once the module is.
	[[ ! -d /sys/module/kvip ]] || rmmod kvip || { step "FAIL: rmmod kvip"; fail=1; }
	t=$(now)
	sleep 6
	kmemleak_scan
	sleep 1
	kmemleak_scan
	leaks=$(grep -c '^unreferenced object' "$KMEMLEAK" || true)
	step "kmemleak: $leaks unreferenced objects ($(( $(now) - t )) s to scan)"
	if ((leaks)); then
		sed 's/^/# /' "$KMEMLEAK" | head -n 200
		fail=1
	fi
	step "total in guest: $(( $(now) - t0 )) s; $( ((fail)) && echo FAILED || echo passed)"
	return "$fail"
}

# usage: the comment at the top, up to the first line of code.
usage() {
	sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}

case "${1:-}" in
"") host ;;
--guest) guest "${2:-0/1}" ;;
-h | --help) usage ;;
*) usage >&2; exit 2 ;;
esac
