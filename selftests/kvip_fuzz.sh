#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz the kvip generic netlink family (kvip_fuzz.py) in one network
# namespace while another carries a known working service; afterwards both
# must still translate traffic and the fuzzed table must keep the contract.
#
#  ┌────────┐     ┌──────────────┐     ┌──────────┐   known service,
#  │ client ├─────┤ node    kvip ├─────┤ backends │   never touched
#  └────────┘     └──────────────┘     └──────────┘
#  ┌────────┐     ┌──────────────┐     ┌──────────┐   kvip_fuzz.py runs
#  │fclient ├─────┤ fnode   kvip ├─────┤fbackends │   here, then a service
#  └────────┘     └──────────────┘     └──────────┘   is re-added
#
# KVIP_FUZZ_COUNT   messages (default 20000: half in the deterministic
#                   model-checked phase, half from KVIP_FUZZ_PROCS=2
#                   concurrent senders)
# KVIP_FUZZ_CONCURRENT  percent of them the concurrent senders send
#                   (default 50)
# KVIP_FUZZ_SEED    seed (default random; printed as "# seed: N")
# KVIP_FUZZ_NETNS   namespaces fuzzed at the same time (default 1, 2 in
#                   long mode), each with COUNT / KVIP_FUZZ_NETNS messages
#                   and seed SEED + i: phase 1 waits for every reply, so a
#                   second one doubles the rate under TCG, and the netns
#                   isolation of the table is fuzzed too
# KVIP_FUZZ_LONG=1  long mode: 1,000,000 messages, 100,000 on a debug
#                   kernel (KASAN/lockdep). Needs a longer per-test timeout
#                   than selftests/settings gives (about 40 min stock), e.g.
#                   selftests/vm-run -- selftests/kvip_fuzz.sh
#
# Replay a failure outside the test: ip netns exec NS selftests/kvip_fuzz.py
# --seed N --count N --procs N with the seed and count printed for the
# namespace that failed (phase 1 replays exactly; phase 2 interleaves
# differently from run to run).

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 CONNS=20

ktap_print_header
kvip_require
ktap_set_plan 7

debug=0
zgrep -Eq '^CONFIG_(KASAN|PROVE_LOCKING)=y' /proc/config.gz 2>/dev/null && debug=1
if [[ "${KVIP_FUZZ_LONG:-0}" == 1 ]]; then
	count=1000000 nfz=2
	((debug)) && count=100000
fi
# A hung request is one unanswered for 10 s; on a debug kernel under TCG
# a busy host made a bigset take longer (a check-debug run), so 60 there.
if ((debug)); then
	export KVIP_FUZZ_REPLY_TIMEOUT=${KVIP_FUZZ_REPLY_TIMEOUT:-60}
fi
count=${KVIP_FUZZ_COUNT:-${count:-20000}}
procs=${KVIP_FUZZ_PROCS:-2}
concurrent=${KVIP_FUZZ_CONCURRENT:-50}
seed=${KVIP_FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
nfz=${KVIP_FUZZ_NETNS:-${nfz:-1}}
[[ "$nfz" =~ ^[1-9][0-9]*$ ]] || ktap_exit_fail_msg "KVIP_FUZZ_NETNS: a positive number"

kvip_topology 2 || ktap_exit_fail_msg "topology setup failed"
kvip_topology 2 f || ktap_exit_fail_msg "fuzz topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"
kvip_servers_tag f fbackend- --port 8080 || ktap_exit_fail_msg "servers did not start"
# The fuzzed namespaces: fnode, which carries traffic afterwards, and more.
fzns=("$fnode")
while ((${#fzns[@]} < nfz)); do
	setup_ns fz || ktap_exit_fail_msg "namespace setup failed"
	fzns+=("$fz")
done

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/web proto tcp clusterip $VIP:80
endpoints set default/web $(endpoints4 8080 1 2)
EOF2

fuzz() {	# fuzz NS ARGS...
	local ns=$1
	shift
	py_ns "$ns" "$KVIP_SELFTESTS/kvip_fuzz.py" "$@"
}

# The oracle must be able to fail: a model corrupted on purpose.
out=$KVIP_TMP/corrupt.out
fuzz "$fnode" --seed "$seed" --count 300 --corrupt-model >"$out" 2>&1
rc=$?
grep -E '^FINDING|^# (corrupted|total)' "$out" | head -n 5 | sed 's/^/# /' >&"$KTAP_OUT"
caught=$(grep -c '^FINDING.*final dump' "$out")
ktap_check "the oracle catches a corrupted model" "exit $rc, $caught findings" \
	[ "$rc" = 1 -a "$caught" -ge 1 ]

per=$((count / nfz))
pids=()
for i in "${!fzns[@]}"; do
	ktap_print_msg "netns $i: kvip_fuzz.py --seed $((seed + i)) --count $per --procs $procs --concurrent $concurrent"
	fuzz "${fzns[i]}" --seed $((seed + i)) --count "$per" --procs "$procs" \
		--concurrent "$concurrent" \
		>"$KVIP_TMP/fuzz.$i.out" 2>&1 &
	pids+=($!)
done
failed="" findings=0
for i in "${!pids[@]}"; do
	wait "${pids[i]}" || failed+=" $i (seed $((seed + i)))"
	out=$KVIP_TMP/fuzz.$i.out
	((nfz == 1)) || ktap_print_msg "netns $i:"
	show_file "$out" 60
	findings=$((findings + $(grep -c '^FINDING' "$out")))
done
ktap_check "fuzzer: $((per * nfz)) messages in $nfz netns, oracle and reply checks pass" \
	"$findings findings, failed:${failed:- none}" [ -z "$failed" ]

bad=""
for ns in "${fzns[@]}"; do
	d=$(kvip_dump_check "$ns")
	[[ "$d" == "ok "* ]] || bad+="$ns: $d; "
done
ktap_check "fuzzed table dumps keep the contract" "${bad:-ok}" [ -z "$bad" ]

d=$(kvip_json "$node" "[(x['name'], len(x['endpoints'])) for x in s]")
ktap_check "known service untouched" "$d" [ "$d" = "[('default/web', 2)]" ]

out=$KVIP_TMP/known.out
client_run "$out" "$client" -n "$CONNS" "$VIP" 80
ktap_check "known service carries traffic" "${R[ok]} of $CONNS" \
	[ "${R[ok]}" = "$CONNS" ]

# flush keeps the settings the fuzzer left: restore the defaults too.
kvipctl_batch "$fnode" <<EOF2
flush
config set nodeport-addresses default cluster-cidr none masquerade-all off drop-invalid off
service add default/again proto tcp clusterip $VIP:80
endpoints set default/again $(endpoints4 8080 1 2)
EOF2
rc=$?
ktap_check "service re-added in the fuzzed netns" "exit $rc" [ "$rc" = 0 ]

out=$KVIP_TMP/again.out
client_run "$out" "$fclient" -n "$CONNS" "$VIP" 80
ktap_check "re-added service carries traffic" "${R[ok]} of $CONNS" \
	[ "${R[ok]}" = "$CONNS" ]

ktap_finished
