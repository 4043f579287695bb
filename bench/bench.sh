#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh - `make bench`: kvip against kube-proxy's iptables and nftables
# rule shapes and IPVS, plus the floor (one static DNAT rule) and the
# ceiling (forwarding without conntrack), all in the same QEMU guest run.
#
#   bench/bench.sh            full: N = 1, 1k, 10k, 100k; 3 repetitions (a
#                             size a contender could not load in time is
#                             not tried again), then the interleaved A/B
#                             below at the largest
#                             N (AB_ROUNDS 9; BENCH_AB=0: none), which gives
#                             the flatness and floor verdicts
#   QUICK=1 bench/bench.sh    smoke (make check): N = 1, 1k; 1 repetition,
#                             short runs; fails if a contender forwarded nothing
#   bench/bench.sh --profile  perf profile of kvip at N = BENCH_PROFILE_N
#                             (100000) into bench/results/profile/
#   bench/bench.sh --ab       interleaved A/B of the first packet (bench/ab.sh):
#                             kvip at N = 1 and AB_N (100000), the floor and
#                             the ceiling, side by side in one guest, AB_ROUNDS
#                             (7) rounds of AB_SLICE (2) s each, in turns of
#                             AB_WINDOW (0.1) s (0: one exec'd slice each;
#                             then AB_TCP=SECONDS adds TCP connects);
#                             AB_TOPOS="kvip-1 nft-1 ipvs-1 ..." picks the
#                             topologies (bench/ab.sh lists them). Writes
#                             ab.csv, ab.md into bench/results/<date>/.
#
# Environment: BENCH_SIZES="1 1000 ...", BENCH_REPS=N, BENCH_OUT=DIR,
# KVIP_BENCH_CONTENDERS="kvip nftables ..." (subset), KVIP_BENCH_PROFILE=
# PATH-PREFIX (perf record of kvip's load and UDP run, in the guest).
# Results: bench/results/<date>/ (quick: bench/results/quick/): raw.csv
# (every repetition), results.csv (medians, ranges), results.md, *.png.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd -P)
cd "$REPO"
QUICK=${QUICK:-0}
[[ "$QUICK" == 0 || -z "$QUICK" ]] && QUICK=0 || QUICK=1
if ((QUICK)); then
	SIZES=${BENCH_SIZES:-"1 1000"}
	REPS=${BENCH_REPS:-1}
	OUT=${BENCH_OUT:-bench/results/quick}
	TIMEOUT=${BENCH_VM_TIMEOUT:-600}
else
	SIZES=${BENCH_SIZES:-"1 1000 10000 100000"}
	REPS=${BENCH_REPS:-3}
	OUT=${BENCH_OUT:-bench/results/$(date +%Y-%m-%d)}
	TIMEOUT=${BENCH_VM_TIMEOUT:-14400}
fi

# Traffic generator (C: python is far too slow under TCG).
mkdir -p bench/.build
if [[ ! bench/.build/kvbench -nt bench/kvbench.c ]]; then
	gcc -O2 -Wall -Wextra -Werror -o bench/.build/kvbench bench/kvbench.c
fi

# Rule sets, generated natively on the host (cached: 100k services make
# ~1 GB of iptables/nft text).
stamp=$(sha256sum bench/gen.py | cut -c1-16)
[[ "${1:-}" == --profile ]] && SIZES=${BENCH_PROFILE_N:-100000}
[[ "${1:-}" == --ab ]] && SIZES="1 ${AB_N:-100000}"
# N = 1 as well: the full run's A/B (below) has one-service topologies.
# shellcheck disable=SC2086 # SIZES is a list
for n in $(printf '%s\n' 1 $SIZES | sort -nu); do
	d=bench/.gen/$n
	if [[ "$(cat "$d/stamp" 2>/dev/null)" != "$stamp" ]]; then
		echo "bench: generating rules for N=$n" >&2
		rm -rf "$d"
		nice python3 bench/gen.py "$n" "$d"
		echo "$stamp" >"$d/stamp"
	fi
done

export KVIP_VM_APPEND="${KVIP_VM_APPEND:-} slub_debug=-"
if [[ "${1:-}" == --profile ]]; then
	OUT=bench/results/profile
	rm -rf "$OUT"
	mkdir -p "$OUT"
	nice selftests/vm-run --timeout "$TIMEOUT" -- \
		bench/profile.sh "$OUT" bench/.gen "${BENCH_PROFILE_N:-100000}"
	exit
fi

# run_ab: the interleaved A/B (bench/ab.sh) at AB_N into $OUT: ab.csv,
# ab.info, ab.hostload, ab.md (printed).
run_ab() {
	local rc=0 loadmon gend
	{
		echo "# date: $(date -Is)"
		echo "# host: $(uname -r), $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
		echo "# kvip: $(git describe --always --dirty 2>/dev/null || echo unknown)"
		echo "# N: $AB_N; rounds: $AB_ROUNDS; slice: ${AB_SLICE:-2} s; tcp: ${AB_TCP:-0} s; window: ${AB_WINDOW:-0.1} s; topologies: ${AB_TOPOS:-default}"
		echo "# host load (1-min average) at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	} >"$OUT/ab.info"
	# The host's load every 10 s (the ratios are meant to survive it).
	(while sleep 10; do echo "$(date +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; done) >"$OUT/ab.hostload" &
	loadmon=$!
	# shellcheck disable=SC2086 # AB_TOPOS is a list
	nice selftests/vm-run --timeout "${BENCH_VM_TIMEOUT:-3600}" -- bench/ab.sh "$OUT" bench/.gen \
		"$AB_N" "$AB_ROUNDS" "${AB_SLICE:-2}" "${AB_TCP:-0}" "${AB_WINDOW:-0.1}" \
		${AB_TOPOS:-} || rc=$?
	kill "$loadmon"
	echo "# host load at end: $(cut -d' ' -f1-3 /proc/loadavg); during the run (1-min): $(awk '{ print $2 }' "$OUT/ab.hostload" | sort -n | sed -n '1p;$p' | paste -sd- )" >>"$OUT/ab.info"
	((rc == 0)) || { echo "bench: the A/B run failed (exit $rc)" >&2; return 1; }
	gend=$(sed -n 's/^# guest clock at end: //p' "$OUT/ab.info")
	if [[ -n "$gend" ]] && awk -v g="$gend" -v h="$(date +%s.%N)" 'BEGIN { d = g - h; exit !(d > 60 || d < -120) }'; then
		echo "bench: WARNING: the guest clock ran off the host's (TSC mis-calibrated at boot): rates are wrong, ratios may hold" | tee -a "$OUT/ab.info" >&2
	fi
	python3 bench/ab.py "$OUT"
}

if [[ "${1:-}" == --ab ]]; then
	# Into the day's directory next to `make bench`'s files (not emptied).
	mkdir -p "$OUT"
	AB_N=${AB_N:-100000} AB_ROUNDS=${AB_ROUNDS:-7}
	run_ab
	exit
fi

# Only what a previous `make bench` of the day wrote: the A/B files and
# committed subdirectories (peers, upper-bound runs) share the directory.
mkdir -p "$OUT"
rm -f "$OUT"/raw.csv "$OUT"/raw.csv.info "$OUT"/results.csv "$OUT"/results.md \
	"$OUT"/*.png "$OUT"/.*.dat
{
	echo "# date: $(date -Is)"
	echo "# host: $(uname -r), $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# kvip: $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "# sizes: $SIZES; repetitions: $REPS; quick: $QUICK"
} >"$OUT/raw.csv.info"
echo "rep,n,contender,metric,value" >"$OUT/raw.csv"

# The guest runs without slub_debug (set above: it is for the selftests;
# it would inflate every allocation and its cost).
export KVIP_BENCH_QUICK=$QUICK
rc=0
for ((rep = 1; rep <= REPS; rep++)); do
	echo "bench: repetition $rep/$REPS, N = $SIZES" >&2
	# shellcheck disable=SC2086 # SIZES is a list
	nice selftests/vm-run --timeout "$TIMEOUT" -- \
		bench/run.sh "$OUT/raw.csv" bench/.gen "$rep" $SIZES || rc=$?
	# The guest's wall clock must agree with the host's (see run.sh).
	gend=$(awk -F, -v r="$rep" '$1 == r && $4 == "clock_end" { print $5 }' "$OUT/raw.csv")
	if [[ -n "$gend" ]] && awk -v g="$gend" -v h="$(date +%s.%N)" 'BEGIN { d = g - h; exit !(d > 60 || d < -120) }'; then
		echo "bench: WARNING: repetition $rep: the guest clock ran off the host's (TSC mis-calibrated at boot on an overloaded host): its rates are wrong" >&2
		echo "# repetition $rep: guest clock off by $(awk -v g="$gend" -v h="$(date +%s.%N)" 'BEGIN { printf "%.0f", g - h }') s: discard it" >>"$OUT/raw.csv.info"
	fi
	if ((rc != 0)); then
		echo "bench: repetition $rep failed (exit $rc)" >&2
		break
	fi
done
# The full run ends with the interleaved A/B at its largest N: flatness
# and the floor are ratios of about 10 %, which sequential slices minutes
# apart cannot resolve; summarize.py takes those two verdicts from it.
ab=""
# shellcheck disable=SC2086 # SIZES is a list
AB_N=$(printf '%s\n' $SIZES | sort -n | tail -n 1)
if ((!QUICK && rc == 0 && AB_N > 1)) && [[ "${BENCH_AB:-1}" != 0 ]]; then
	echo "bench: interleaved A/B at N = $AB_N" >&2
	AB_ROUNDS=${AB_ROUNDS:-9}
	AB_TOPOS="" AB_TCP=0 AB_WINDOW=0.1 run_ab >/dev/null && ab=--ab || rc=1
fi
python3 bench/summarize.py "$OUT" $ab
if ((rc != 0)); then
	((rc == 3)) && echo "bench: FAIL: a contender forwarded no traffic (see above)" >&2
	exit 1
fi
