#!/usr/bin/env bash
# check-debug.sh: `make check-debug`, the reliability run on the debug
# kernel (`make debug-kernel`: KASAN, kmemleak, lockdep, PROVE_RCU,
# DEBUG_ATOMIC_SLEEP, DEBUG_OBJECTS, failslab/fail_page_alloc).
#
#   scripts/check-debug.sh            run it; exits 0 with a note when no
#                                     debug kernel is cached (CI builds none)
#   scripts/check-debug.sh --guest    the part that runs in the guest
#
# In one guest booted with panic_on_warn=1 (a WARN, and with it a KASAN
# report, ends the guest and fails the run):
#   1. kmemleak: scan, then forget what boot left unreferenced;
#   2. every selftest (run_tests, per-test timeout KVIP_DEBUG_TEST_TIMEOUT,
#      default 900 s), the quick fuzzer pass cut to KVIP_DEBUG_SUITE_FUZZ
#      messages (default 2,000) since step 3 does the long one, stress for
#      KVIP_STRESS_SECONDS (default 10), netns cycles KVIP_NETNS_CYCLES,
#      kvip_faults.sh's random phases KVIP_FAULTS_ROUNDS (default 50);
#      kvip_limits.sh is left out when the kernel has no memory cgroup;
#   3. the fuzzer's long mode: 100,000 messages (KVIP_FUZZ_COUNT overrides);
#   4. kmemleak: 6 s after the module is unloaded, two scans; any
#      unreferenced object fails the run.
# vm-run then fails the run on any WARN/BUG/KASAN/lockdep/RCU splat or taint
# in the guest kernel log. Budget: under 30 minutes on 2 cores (TCG).
#
# Environment: KVIP_DEBUG_TIMEOUT (guest timeout, default 3600 s); the
# KVIP_* knobs above and those of the tests are passed into the guest.
set -euo pipefail

top="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd -P)"

now() { date +%s; }

host() {
	local build start rc
	if ! build="$("$top/scripts/debug-kernel.sh" --path)"; then
		echo "check-debug: skipped, no debug kernel cached (make debug-kernel builds it, ~30 min)"
		exit 0
	fi
	[[ -x "$top/tools/kvipctl/kvipctl" ]] || { echo "check-debug: no kvipctl, run make" >&2; exit 1; }
	echo "check-debug: debug kernel $build"
	start=$(now)
	export KVIP_VM_APPEND="${KVIP_VM_APPEND:-} panic_on_warn=1"
	rc=0
	"$top/selftests/vm-run" --kernel debug --timeout "${KVIP_DEBUG_TIMEOUT:-3600}" \
		-- scripts/check-debug.sh --guest || rc=$?
	echo "check-debug: $(( $(now) - start )) s in all (boot included), exit $rc"
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

guest() {
	local t0 t rc=0 fail=0 tmp leaks

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
	t=$(now)
	step "selftests"
	KVIP_FUZZ_COUNT=${KVIP_DEBUG_SUITE_FUZZ:-2000} \
		KVIP_FAULTS_ROUNDS=${KVIP_FAULTS_ROUNDS:-50} "$tmp/run_tests" || rc=$?
	step "selftests: exit $rc, $(( $(now) - t )) s"
	((rc == 0)) || fail=1

	t=$(now)
	step "fuzzer, long mode"
	set +o pipefail
	KVIP_FUZZ_LONG=1 "$top/selftests/kvip_fuzz.sh" 2>&1 | sed -u 's/^/# /'
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

case "${1:-}" in
"") host ;;
--guest) guest ;;
-h | --help) sed -n '2,26s/^# \{0,1\}//p' "$0" ;;
*) sed -n '2,26s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
