#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lib.sh - sourced by every kvip selftest.
#
#   KTAP output    ktap_print_header, ktap_set_plan, ktap_test_pass/fail/skip,
#                  ktap_test_result, ktap_check, ktap_print_msg,
#                  ktap_exit_fail_msg, ktap_exit_skip, ktap_finished
#                  (exit 0 pass, 1 fail, 4 skip)
#   cleanup        defer CMD...: run at exit, last deferred first
#   namespaces     setup_ns VAR...: fresh uniquely named netns, lo up
#   waiting        busywait MS CMD..., slowwait S CMD..., nap SECONDS
#   prerequisites  checktool "CMD" "why", kvip_load, kvip_require
#   topology       kvip_topology N [TAG], kvip_servers PREFIX ARGS...,
#                  endpoints4/endpoints6 PORT I...
#   kvipctl        kvipctl_ns NS ARGS..., kvipctl_batch NS <<EOF
#   traffic        client_run OUT NS ARGS... (kvip_client.py) -> R[], TALLY[]
#                  hold_start NS ARGS..., hold_send LINE [S], hold_stop
#   the table      kvip_json NS PY-EXPR..., kvip_count NS, kvip_dump_check NS
#   checks         ktap_check DESC GOT CMD..., matches STR RE, at_least N CMD
#
# The tests run under TCG emulation where every exec costs ~0.2 s, so this
# library sticks to bash builtins and batches ip(8) commands.
#
# Address plan of kvip_topology (backend i = 1..N):
#
#   client     192.168.0.2/24  fd00::2/64     default via the node
#   node       192.168.0.1/24  fd00::1/64     default via the client (LOCAL_OUT
#              br0: 10.0.1.254/24 fd00:1::fe/64   needs a route covering the VIP)
#   backend i  10.0.1.i/24     fd00:1::i/64   default via br0
#
# Traffic never leaves the namespaces the test created.

# shellcheck disable=SC2034 # variables are for the sourcing tests

KSFT_PASS=0
KSFT_FAIL=1
KSFT_XFAIL=2
KSFT_XPASS=3
KSFT_SKIP=4
ksft_skip=$KSFT_SKIP

KVIP_SELFTESTS=${BASH_SOURCE[0]}
[[ "$KVIP_SELFTESTS" == */* ]] && KVIP_SELFTESTS=${KVIP_SELFTESTS%/*} || KVIP_SELFTESTS=.
KVIP_SELFTESTS=$(cd "$KVIP_SELFTESTS" && pwd -P)
KVIP_ROOT=${KVIP_SELFTESTS%/*}
KVIPCTL=${KVIPCTL:-$KVIP_ROOT/tools/kvipctl/kvipctl}
KVIP_KO=${KVIP_KO:-$KVIP_ROOT/kmod/kvip.ko}	# KVIP_KO_PARAMS: insmod parameters
# The distribution interpreter starts faster than a pyenv shim.
if [[ -z "${PYTHON:-}" ]]; then
	if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
KVIP_SERVER=$KVIP_SELFTESTS/kvip_server.py
KVIP_CLIENT=$KVIP_SELFTESTS/kvip_client.py
KVIP_NL=$KVIP_SELFTESTS/kvip_nl.py
KVIP_VERBOSE=${KVIP_VERBOSE:-1}

# ---------------------------------------------------------------- KTAP ----

KTAP_TESTNO=1
KTAP_CNT_PASS=0
KTAP_CNT_FAIL=0
KTAP_CNT_SKIP=0
# KTAP lines go to the test's stdout even from inside $(...) or a redirect.
exec {KTAP_OUT}>&1

ktap_print_header() {
	echo "TAP version 13" >&"$KTAP_OUT"
}

ktap_set_plan() {
	echo "1..$1" >&"$KTAP_OUT"
}

# ktap_print_msg TEXT...: diagnostics, "# " before every line.
ktap_print_msg() {
	local line
	while IFS= read -r line; do
		echo "# $line"
	done <<<"$*" >&"$KTAP_OUT"
}

ktap_test_pass() {
	echo "ok $KTAP_TESTNO $*" >&"$KTAP_OUT"
	KTAP_TESTNO=$((KTAP_TESTNO + 1))
	KTAP_CNT_PASS=$((KTAP_CNT_PASS + 1))
}

ktap_test_fail() {
	echo "not ok $KTAP_TESTNO $*" >&"$KTAP_OUT"
	KTAP_TESTNO=$((KTAP_TESTNO + 1))
	KTAP_CNT_FAIL=$((KTAP_CNT_FAIL + 1))
}

# ktap_test_skip DESC [REASON]
ktap_test_skip() {
	echo "ok $KTAP_TESTNO $1 # SKIP${2:+ $2}" >&"$KTAP_OUT"
	KTAP_TESTNO=$((KTAP_TESTNO + 1))
	KTAP_CNT_SKIP=$((KTAP_CNT_SKIP + 1))
}

# ktap_test_result DESC CMD...: pass if CMD succeeds.
ktap_test_result() {
	local desc=$1
	shift
	if "$@"; then
		ktap_test_pass "$desc"
	else
		ktap_test_fail "$desc"
	fi
}

# ktap_check DESC WHAT-WE-GOT CMD...: like ktap_test_result; on failure
# also prints WHAT-WE-GOT, to compare with the expectation in DESC.
ktap_check() {
	local desc=$1 got=$2
	shift 2
	if "$@"; then
		ktap_test_pass "$desc"
	else
		ktap_print_msg "FAIL: $desc: $got"
		ktap_test_fail "$desc"
	fi
}

ktap_exit_fail_msg() {
	echo "Bail out! $*" >&"$KTAP_OUT"
	exit "$KSFT_FAIL"
}

# ktap_exit_skip REASON: skip the rest of the test.
ktap_exit_skip() {
	if ((KTAP_TESTNO == 1)); then
		echo "1..0 # SKIP $*" >&"$KTAP_OUT"
	else
		ktap_print_msg "SKIP: $*"
	fi
	exit "$KSFT_SKIP"
}

ktap_finished() {
	echo "# Totals: pass:$KTAP_CNT_PASS fail:$KTAP_CNT_FAIL xfail:0 xpass:0 skip:$KTAP_CNT_SKIP error:0" >&"$KTAP_OUT"
	if ((KTAP_CNT_FAIL > 0)); then
		exit "$KSFT_FAIL"
	elif ((KTAP_CNT_PASS == 0 && KTAP_CNT_SKIP > 0)); then
		exit "$KSFT_SKIP"
	fi
	exit "$KSFT_PASS"
}

# ------------------------------------------------------------- cleanup ----

# defer CMD [ARGS...]: run CMD at exit, in reverse order of deferral.
KVIP_DEFER=()

defer() {
	local cmd
	printf -v cmd '%q ' "$@"
	KVIP_DEFER+=("$cmd")
}

defer_run_all() {
	local i
	for ((i = ${#KVIP_DEFER[@]} - 1; i >= 0; i--)); do
		eval "${KVIP_DEFER[i]}" >/dev/null 2>&1
	done
	KVIP_DEFER=()
}

kvip_exit_trap() {
	local rc=$?
	trap - EXIT
	defer_run_all
	exit "$rc"
}
trap kvip_exit_trap EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# kill_wait PID...: stop processes this test started.
kill_wait() {
	local pid
	for pid in "$@"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	return 0
}

# Scratch directory of this test.
KVIP_TMP=${TMPDIR:-/tmp}/kvip-selftest.$$.$RANDOM
mkdir -m 700 "$KVIP_TMP" || exit "$KSFT_FAIL"
defer rm -rf "$KVIP_TMP"

# ------------------------------------------------------------- waiting ----

# A pipe nobody writes to: `read -t` on it is a sleep without an exec.
exec {KVIP_NAP_FD}<> <(:)

# nap SECONDS (fractions allowed)
nap() {
	read -r -t "$1" -u "$KVIP_NAP_FD"
	return 0
}

now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# busywait TIMEOUT_MS CMD...: retry CMD until it succeeds or time runs out.
busywait() {
	local timeout_ms=$1 start
	shift
	start=$(now_ms)
	while (($(now_ms) - start < timeout_ms)); do
		"$@" && return 0
		nap 0.05
	done
	"$@"
}

# slowwait TIMEOUT_S CMD...: the same, polling every 0.25 s.
slowwait() {
	local timeout_s=$1 start=$SECONDS
	shift
	while ((SECONDS - start < timeout_s)); do
		"$@" && return 0
		nap 0.25
	done
	"$@"
}

# ---------------------------------------------------------- namespaces ----

NS_LIST=()
# Set by kvip_topology (without a tag).
client="" node="" backends=() server_pid=""

# cleanup_ns NS...: delete namespaces (one ip(8) run).
cleanup_ns() {
	local ns cmds=""
	for ns in "$@"; do
		cmds+="netns del $ns"$'\n'
	done
	ip -force -batch - <<<"$cmds" >/dev/null 2>&1
	return 0
}

# setup_ns VAR...: create one namespace per VAR, named kvip-VAR-XXXXXX, with
# lo up; store its name in VAR. Deleted at exit.
setup_ns() {
	local var ns cmds="" created=()
	for var in "$@"; do
		printf -v ns 'kvip-%s-%04x%04x' "${var,,}" "$RANDOM" "$RANDOM"
		created+=("$ns")
		cmds+="netns add $ns"$'\n'
	done
	if ! ip -batch - <<<"$cmds"; then
		cleanup_ns "${created[@]}"
		ktap_print_msg "cannot create network namespaces"
		return 1
	fi
	defer cleanup_ns "${created[@]}"
	NS_LIST+=("${created[@]}")
	for ns in "${created[@]}"; do
		printf -v "$1" '%s' "$ns"
		shift
	done
}

# in_ns NS CMD...: run CMD in NS. nsenter, not `ip netns exec`: that one
# also unshares the mount namespace and remounts /sys, which costs ~0.8 s
# a command on the debug kernel, and nothing here reads /sys/class/net.
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# ------------------------------------------------------ python, forked ----

# py_ns NS PROG ARGS...: run the python program PROG (a file, or -c CODE)
# with ARGS in network namespace NS ("" for the test's own). It is forked
# from one python that kvip_require starts (kvip_zygote.py): a python
# start costs 1-3 s on the debug kernel, a fork ~0.05 s, and a request
# reaches it through bash's /dev/tcp, without an exec. Its stdin is this
# shell's (through /proc: a file, a pipe or a here-document; /dev/null for
# what cannot be reopened, a socket), and so are its environment (the
# exported variables) and cgroup; it dies with the test. Its output goes to this shell's
# stdout and stderr once it has ended: into one file when those are the
# same (`>file 2>&1`), interleaved as written. Returns PROG's exit status,
# 125 when the zygote cannot be reached.
KVIP_PY_PORT="" KVIP_PY_PID="" KVIP_PY_SEQ=0

# py_zygote_start: start kvip_zygote.py in the background (kvip_require
# does); py_ns waits for it.
py_zygote_start() {
	[[ -n "$KVIP_PY_PID" ]] && return 0
	"$PYTHON" -S "$KVIP_SELFTESTS/kvip_zygote.py" --port-file "$KVIP_TMP/zygote.port" \
		</dev/null >/dev/null 2>>"$KVIP_TMP/zygote.err" &
	KVIP_PY_PID=$!
	defer kill_wait "$KVIP_PY_PID"
}

py_zygote() {
	local i
	[[ -n "$KVIP_PY_PORT" ]] && return 0
	py_zygote_start
	for ((i = 0; i < 1200; i++)); do
		if [[ -f "$KVIP_TMP/zygote.port" ]]; then
			read -r KVIP_PY_PORT <"$KVIP_TMP/zygote.port"
			return 0
		fi
		kill -0 "$KVIP_PY_PID" 2>/dev/null || break
		nap 0.1
	done
	ktap_print_msg "kvip_zygote.py did not start: $(<"$KVIP_TMP/zygote.err")"
	return 1
}

py_ns() {
	local ns=$1 out err fd rc names name env=()
	shift
	# Files of their own: a daemon it forks may write on.
	out=$KVIP_TMP/py.$BASHPID.$((++KVIP_PY_SEQ)).out
	err=${out%.out}.err
	py_zygote || return 125
	exec {fd}<>"/dev/tcp/127.0.0.1/$KVIP_PY_PORT" || return 125
	[[ /proc/self/fd/1 -ef /proc/self/fd/2 ]] && err="="
	mapfile -t names < <(compgen -e)
	for name in "${names[@]}"; do env+=("$name=${!name}"); done
	printf '%s\0' $((${#env[@]} + $# + 5)) "$BASHPID" "$ns" "$out" "$err" \
		"${#env[@]}" "${env[@]}" "$@" >&"$fd"
	if ! read -r -u "$fd" rc || [[ ! "$rc" =~ ^[0-9]+$ ]]; then
		rc=125
	fi
	exec {fd}>&-
	py_replay "$out"
	[[ "$err" == "=" ]] || py_replay "$err" >&2
	return "$rc"
}

# py_replay FILE: FILE's lines on stdout, if it exists (cat, without an exec).
py_replay() {
	local line
	[[ -f "$1" ]] || return 0
	while IFS= read -r line || [[ -n "$line" ]]; do
		printf '%s\n' "$line"
	done <"$1"
}

# ------------------------------------------------------- prerequisites ----

# checktool "CMD" "WHY": skip the test if CMD fails.
checktool() {
	if ! eval "$1" >/dev/null 2>&1; then
		ktap_exit_skip "could not $2: '$1' failed"
	fi
}

kvip_loaded() {
	[[ -d /sys/module/kvip ]]
}

# Load conntrack, NAT and the module unless already loaded. Outside the
# test VM (KVIP_IN_VM unset) an unloadable module means skip; inside, it
# is a failure.
kvip_load() {
	local deps
	kvip_loaded && return 0
	# Testing the tests against another datapath: trust it is there.
	[[ "${KVIP_NO_LOAD:-}" == 1 ]] && return 0
	if [[ ! -f "$KVIP_KO" ]]; then
		[[ "${KVIP_IN_VM:-}" == 1 ]] && ktap_exit_fail_msg "no $KVIP_KO (build it first)"
		ktap_exit_skip "no $KVIP_KO"
	fi
	deps=$(modinfo -F depends "$KVIP_KO" 2>/dev/null)
	# shellcheck disable=SC2086 # a list of modules
	modprobe -a ${deps//,/ } nf_conntrack nf_nat 2>/dev/null
	# shellcheck disable=SC2086 # KVIP_KO_PARAMS: module parameters, a list
	if ! insmod "$KVIP_KO" ${KVIP_KO_PARAMS:-}; then
		[[ "${KVIP_IN_VM:-}" == 1 ]] && ktap_exit_fail_msg "insmod $KVIP_KO failed"
		ktap_exit_skip "cannot load $KVIP_KO here (run in the VM: selftests/check)"
	fi
}

# Standard preamble: root, kvipctl, module; py_ns's python starts meanwhile.
kvip_require() {
	[[ $EUID -eq 0 ]] || ktap_exit_skip "needs root"
	[[ -x "$KVIPCTL" ]] || ktap_exit_fail_msg "no $KVIPCTL (build it first)"
	py_zygote_start
	kvip_load
}

# ----------------------------------------------------------- commands ----

# Log a command (like a screencast) and run it.
run() {
	((KVIP_VERBOSE)) && ktap_print_msg "\$ $*"
	"$@"
}

# kvipctl_ns NS ARGS...: run kvipctl in NS (logged).
kvipctl_ns() {
	local ns=$1
	shift
	((KVIP_VERBOSE)) && ktap_print_msg "[${ns%-*}] kvipctl $*"
	"$KVIPCTL" -n "$ns" "$@"
}

# kvipctl_batch NS: run the kvipctl commands on stdin in NS (logged), in
# one kvipctl run.
kvipctl_batch() {
	local ns=$1 cmds
	cmds=$(</dev/stdin)
	((KVIP_VERBOSE)) && ktap_print_msg "[${ns%-*}] kvipctl -batch - <<EOF
$cmds
EOF"
	"$KVIPCTL" -n "$ns" -batch - <<<"$cmds"
}

# ----------------------------------------------------------- topology ----

# kvip_topology N [TAG]
#
#   client ──veth── node ──br0──┬──veth── backend1
#                               ├──veth── backend2
#                               └── ...   backendN
#
# Sets $client, $node and backends=(ns...); with TAG, the variables are
# ${TAG}client, ${TAG}node and ${TAG}backends, and TAG is part of the
# namespace names, so that several topologies can coexist.
kvip_topology() {
	local n=$1 tag=${2:-} i cmds="" vars=() ns
	local -n _client=${tag}client _node=${tag}node _backends=${tag}backends

	for ((i = 1; i <= n; i++)); do
		vars+=("${tag}backend$i")
	done
	setup_ns "${tag}client" "${tag}node" "${vars[@]}" || return 1
	_backends=()
	for ((i = 1; i <= n; i++)); do
		ns=${tag}backend$i
		_backends+=("${!ns}")
	done

	# The node: client-facing veth, bridge for the backends. IPv6: no
	# automatic link-local addresses (they would need DAD, and until DAD
	# is done forwarded packets cannot trigger neighbour solicitations and
	# get dropped); static ones instead.
	cmds="link set lo up
link add name veth-client type veth peer name eth0 netns $_client
link set veth-client addrgenmode none
link set veth-client up
addr add 192.168.0.1/24 dev veth-client
addr add fd00::1/64 dev veth-client nodad
addr add fe80::1/64 dev veth-client nodad
link add name br0 type bridge forward_delay 0 mcast_snooping 0
link set br0 addrgenmode none
link set br0 up
addr add 10.0.1.254/24 dev br0
addr add fd00:1::fe/64 dev br0 nodad
addr add fe80::fe/64 dev br0 nodad
route add default via 192.168.0.2
route add default via fd00::2
"
	for ((i = 1; i <= n; i++)); do
		cmds+="link add name veth-b$i type veth peer name eth0 netns ${_backends[i - 1]}
link set veth-b$i addrgenmode none
link set veth-b$i master br0 up
"
	done
	ip -n "$_node" -batch - <<<"$cmds" || return 1
	in_ns "$_node" sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.conf.default.send_redirects=0 >/dev/null || return 1

	ip -n "$_client" -batch - <<EOF || return 1
link set lo up
link set eth0 addrgenmode none
link set eth0 up
addr add 192.168.0.2/24 dev eth0
addr add fd00::2/64 dev eth0 nodad
addr add fe80::2/64 dev eth0 nodad
route add default via 192.168.0.1
route add default via fd00::1
EOF
	for ((i = 1; i <= n; i++)); do
		ip -n "${_backends[i - 1]}" -batch - <<EOF || return 1
link set lo up
link set eth0 addrgenmode none
link set eth0 up
addr add 10.0.1.$i/24 dev eth0
addr add fd00:1::$i/64 dev eth0 nodad
addr add fe80::1:$i/64 dev eth0 nodad
route add default via 10.0.1.254
route add default via fd00:1::fe
EOF
	done
}

# kvip_servers PREFIX [SERVER-ARGS...]: start one kvip_server.py daemon
# serving every backend of the last kvip_topology as PREFIX1..PREFIXN
# (kvip_servers_tag TAG PREFIX ... for a tagged topology). Sets
# $server_pid; stopped at exit.
kvip_servers() {
	kvip_servers_tag "" "$@"
}

kvip_servers_tag() {
	local -n _b=${1}backends
	local prefix=$2 i args=()
	shift 2
	for ((i = 1; i <= ${#_b[@]}; i++)); do
		args+=(--netns "${_b[i - 1]}=$prefix$i")
	done
	server_pid=$(py_ns "" "$KVIP_SERVER" --daemon "${args[@]}" "$@") || return 1
	defer kill_wait "$server_pid"
}

# endpoints4 PORT I... / endpoints6 PORT I...: kvipctl endpoint lists
# (backend I's address).
endpoints4() {
	local port=$1 i out=""
	shift
	for i in "$@"; do out+="10.0.1.$i:$port "; done
	echo "${out% }"
}
endpoints6() {
	local port=$1 i out=""
	shift
	for i in "$@"; do out+="[fd00:1::$i]:$port "; done
	echo "${out% }"
}

# ------------------------------------------------------------- traffic ----

# hold_start NS ARGS...: one long-lived connection (kvip_client.py --hold
# ARGS) from NS; hold_send LINE [TIMEOUT] sends a line on it and prints
# the answer (nothing when none came within TIMEOUT s, default 30; status
# 1 when the connection is gone); hold_stop closes it and waits for the
# client. One at a time.
hold_start() {
	local ns=$1
	shift
	# exec: the coproc's pid is the client's, for hold_stop's kill.
	coproc KVIP_HOLD { exec nsenter --net="/run/netns/$ns" "$PYTHON" "$KVIP_CLIENT" --hold "$@" 2>&1; }
	# Kept: bash unsets KVIP_HOLD* when the client exits.
	kvip_hold_pid=$KVIP_HOLD_PID kvip_hold_in=${KVIP_HOLD[1]} kvip_hold_out=${KVIP_HOLD[0]}
	defer kill_wait "$kvip_hold_pid"
}

hold_send() {
	local reply=""
	echo "$1" >&"$kvip_hold_in" 2>/dev/null || return 1
	read -r -t "${2:-30}" reply <&"$kvip_hold_out"
	echo "$reply"
}

hold_stop() {
	exec {kvip_hold_in}>&-
	kill_wait "$kvip_hold_pid"
}

# client_run OUT NS ARGS...: run kvip_client.py ARGS in NS, output and
# errors into OUT; show OUT as diagnostics and parse it (client_parse).
client_run() {
	local out=$1 ns=$2 rc
	shift 2
	((KVIP_VERBOSE)) && ktap_print_msg "[${ns%-*}] kvip_client.py $*"
	py_ns "$ns" "$KVIP_CLIENT" "$@" >"$out" 2>&1
	rc=$?
	show_file "$out"
	client_parse "$out"
	return $rc
}

# client_parse FILE: from kvip_client.py output set R[conns], R[ok],
# R[refused], R[timeout], R[unreachable], R[error], R[max_ms], and
# TALLY[key]=count for every backend (or endpoint) line.
declare -A R TALLY
client_parse() {
	local line kv
	R=() TALLY=()
	while read -r line; do
		if [[ "$line" == conns=* ]]; then
			for kv in $line; do
				R[${kv%%=*}]=${kv#*=}
			done
		elif [[ "$line" =~ ^([^ ]+)\ ([0-9]+)$ ]]; then
			TALLY[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
		fi
	done <"$1"
	: "${R[conns]:=0}" "${R[ok]:=0}" "${R[refused]:=0}" "${R[timeout]:=0}"
	: "${R[unreachable]:=0}" "${R[error]:=0}" "${R[max_ms]:=0}"
}

# tally_max: the largest TALLY count.
tally_max() {
	local k m=0
	for k in "${!TALLY[@]}"; do
		((TALLY[$k] > m)) && m=${TALLY[$k]}
	done
	echo "$m"
}

# sort_words WORD...: the words sorted, on one line (small lists).
sort_words() {
	local sorted=() w i
	for w in "$@"; do
		for ((i = ${#sorted[@]}; i > 0; i--)); do
			[[ "${sorted[i - 1]}" > "$w" ]] || break
			sorted[i]=${sorted[i - 1]}
		done
		sorted[i]=$w
	done
	echo "${sorted[*]}"
}

# matches STRING REGEX: [[ STRING =~ REGEX ]] as a command (for ktap_check).
matches() {
	[[ "$1" =~ $2 ]]
}

# at_least N CMD...: CMD prints a number >= N (for busywait).
at_least() {
	local n=$1
	shift
	(($("$@") >= n))
}

# tally_keys: the TALLY keys, sorted, on one line.
tally_keys() {
	sort_words "${!TALLY[@]}"
}

# show_file FILE [MAX-LINES]: a file as diagnostics.
show_file() {
	local line n=0 max=${2:-200}
	while IFS= read -r line && ((n++ < max)); do
		echo "# $line"
	done <"$1" >&"$KTAP_OUT"
}

# kvip_count NS: number of services in NS, from a raw netlink dump
# (independent of kvipctl).
kvip_count() {
	py_ns "$1" -c "import kvip_nl
msgs = kvip_nl.KvipNl().request(kvip_nl.CMDS['get_service'], flags=kvip_nl.NLM_F_DUMP)
print(len({m['name'] for m in msgs}))"
}

# kvip_dump_check NS: dump NS's table over raw netlink and check it keeps
# the contract (header once per service, continuations right after it,
# endpoint counts right); prints "ok N-SERVICES" or the problem.
kvip_dump_check() {
	py_ns "$1" -c "import kvip_nl
try:
    print('ok', len(kvip_nl.KvipNl().services()))
except kvip_nl.NlError as e:
    print(e)"
}

# ---------------------------------------------------------------- JSON ----

# kvip_json NS EXPR...: print python expressions evaluated over `s`, the
# service list of `kvipctl service show -j` in NS (one line each), e.g.
#   read -r a b < <(kvip_json "$node" "len(s)" "s[0]['stats']['conns']")
# `svc(name)` gives a service by name.
kvip_json() {
	local ns=$1 prog="import json, sys
try:
    s = json.load(sys.stdin)
except ValueError:
    print('(kvipctl gave no JSON)')
    sys.exit(1)
def svc(name):
    return [x for x in s if x['name'] == name][0]
"
	shift
	local e
	for e in "$@"; do
		prog+="print($e)"$'\n'
	done
	"$KVIPCTL" -n "$ns" service show -j | py_ns "" -c "$prog"
}

# ------------------------------------------------- kernel memory (leaks) ----
#
# Leak checks: kernel memory counters taken before the module is loaded
# and again after it is unloaded (caches dropped, deferred frees given
# time) must agree within a tolerance.
#
#   kvip_unload [S]                rmmod kvip, retried while busy (EBUSY) for
#                                  up to S seconds (default 30); sets
#                                  UNLOAD_TRIES, UNLOAD_MS
#   kvip_memcg_setup               a memory cgroup for the processes that
#                                  configure kvip (see below); sets KVIP_MEMCG
#   kvip_memcg_enter               move this (sub)shell into it: ( kvip_memcg_enter; exec CMD )
#   kvip_mem_snapshot VAR          the counters into the associative array VAR
#   kvip_mem_baseline VAR          settle, then snapshot: the "before"
#   kvip_mem_compare BASE NOW      one line per counter into MEM_REPORT;
#                                  status 1 if a checked one grew too much
#   kvip_mem_settle BASE VAR [S]   drop caches and snapshot into VAR until
#                                  kvip_mem_compare passes or S seconds
#                                  (default 30) are over
#   kvip_mem_top BASE NOW [N]      the slab caches that grew most
#
# Counters (KiB unless said otherwise) and their tolerances, the growth
# allowed over the baseline (KVIP_MEM_TOL_<COUNTER> overrides, in the
# counter's unit):
#
#   kmalloc     bytes in use in the kmalloc-* and kmalloc-cg-* caches:
#               active objects x object size, /proc/slabinfo. kvip has no
#               cache of its own; its objects are all here. The guest runs
#               with slub_debug, so caches are not merged and debug caches
#               keep no per-CPU slabs: the count is exact, and after a
#               warm-up it comes back to within ~2 KiB. Tolerance 128.
#   sunreclaim  /proc/meminfo SUnreclaim: whole slab pages. Slabs left
#               partly used after a workload stay (kvip_drop_caches makes
#               caches give back the empty ones): 200-350 KiB. Tolerance 1024.
#   slab        /proc/meminfo Slab: also dentries and inodes. Reported only.
#   percpu      /proc/meminfo Percpu: populated per-CPU pages. The
#               allocator keeps freed pages (and an empty chunk) populated,
#               so this is a high-water mark more than a usage count.
#               Tolerance 1024 (one 2-CPU chunk of this guest).
#   vmalloc     /proc/meminfo VmallocUsed (large kvmalloc()s). Tolerance 256.
#   cg_percpu   bytes, percpu of the memory cgroup (kvip_memcg_setup) the
#               configuring processes ran in. kvip allocates with
#               GFP_KERNEL_ACCOUNT, so everything it holds for them is
#               charged there, exactly: when the module is gone this is 0.
#               Tolerance 0.
#   cg_slab     bytes, slab_unreclaimable of that cgroup: kvip's objects
#               plus what the processes leave, e.g. the inodes of files
#               they created in the test's tmpfs: 5-20 KiB. Tolerance 65536.
#   cg_kernel   bytes, all kernel memory charged to that cgroup: the above
#               and page-sized allocations (large kvmalloc()s: endpoint
#               arrays, staged sets). Tolerance 131072.
#
# The global counters need a warm-up: the first network namespace, veth
# and bridge of a boot load modules and size caches for good (~130 KiB of
# kmalloc). Take the baseline after kvip_load; kvip_unload and after
# `modprobe -a veth bridge`, or after an earlier test did that. They also
# see everything else the kernel does, so they catch big leaks; the
# cgroup counters catch small ones (KVIP_MEM_CGROUP=0: no cgroup).

KVIP_MEM_COUNTERS=(kmalloc sunreclaim slab percpu vmalloc cg_percpu cg_slab cg_kernel)
declare -A KVIP_MEM_TOL=(
	[kmalloc]=${KVIP_MEM_TOL_KMALLOC:-128}
	[sunreclaim]=${KVIP_MEM_TOL_SUNRECLAIM:-1024}
	[percpu]=${KVIP_MEM_TOL_PERCPU:-1024}
	[vmalloc]=${KVIP_MEM_TOL_VMALLOC:-256}
	[cg_percpu]=${KVIP_MEM_TOL_CG_PERCPU:-0}
	[cg_slab]=${KVIP_MEM_TOL_CG_SLAB:-65536}
	[cg_kernel]=${KVIP_MEM_TOL_CG_KERNEL:-131072}
)
KVIP_MEMCG=""
MEM_REPORT=""

kvip_unload() {
	local timeout_ms=$((${1:-30} * 1000)) start err
	UNLOAD_TRIES=0
	start=$(now_ms)
	while :; do
		UNLOAD_TRIES=$((UNLOAD_TRIES + 1))
		err=$(rmmod kvip 2>&1) && break
		UNLOAD_MS=$(($(now_ms) - start))
		if [[ "$err" != *"in use"* && "$err" != *"busy"* &&
		      "$err" != *"temporarily unavailable"* ]] ||
		   ((UNLOAD_MS >= timeout_ms)); then
			ktap_print_msg "rmmod kvip (try $UNLOAD_TRIES): $err"
			return 1
		fi
		nap 0.1
	done
	UNLOAD_MS=$(($(now_ms) - start))
	! kvip_loaded
}

# The cgroup is removed at exit (after its processes are gone).
kvip_memcg_setup() {
	local root=/sys/fs/cgroup
	[[ "${KVIP_MEM_CGROUP:-1}" == 0 ]] && return 1
	[[ -f $root/cgroup.controllers ]] || return 1
	if [[ " $(<"$root/cgroup.subtree_control") " != *" memory "* ]]; then
		echo +memory >"$root/cgroup.subtree_control" 2>/dev/null || return 1
	fi
	KVIP_MEMCG=$root/kvip-selftest.$$
	mkdir "$KVIP_MEMCG" || { KVIP_MEMCG=""; return 1; }
	defer rmdir "$KVIP_MEMCG"
}

kvip_memcg_enter() {
	[[ -n "$KVIP_MEMCG" ]] && echo "$BASHPID" >"$KVIP_MEMCG/cgroup.procs"
	return 0
}

kvip_mem_snapshot() {
	local -n _m=$1
	local name active num size rest kmalloc=0
	_m=()
	while read -r name active num size rest; do
		[[ "$name" == kmalloc-* ]] && kmalloc=$((kmalloc + active * size))
		[[ "$active" == [0-9]* ]] && _m["c:$name"]=$((active * size / 1024))
	done </proc/slabinfo
	_m["kmalloc"]=$((kmalloc / 1024))
	while read -r name size rest; do
		case "$name" in
		Slab:) _m["slab"]=$size ;;
		SUnreclaim:) _m["sunreclaim"]=$size ;;
		Percpu:) _m["percpu"]=$size ;;
		VmallocUsed:) _m["vmalloc"]=$size ;;
		esac
	done </proc/meminfo
	[[ -n "$KVIP_MEMCG" ]] || return 0
	while read -r name size; do
		case "$name" in
		percpu) _m["cg_percpu"]=$size ;;
		slab_unreclaimable) _m["cg_slab"]=$size ;;
		kernel) _m["cg_kernel"]=$size ;;
		esac
	done <"$KVIP_MEMCG/memory.stat"
}

# Drop the page cache, dentries and inodes, and have every slab cache give
# back its empty slabs (SLUB keeps some per cache otherwise).
kvip_drop_caches() {
	local f
	echo 3 >/proc/sys/vm/drop_caches
	for f in /sys/kernel/slab/*/shrink; do
		echo 1 >"$f"
	done 2>/dev/null
}

# Caches are dropped sparingly: the guest's root filesystem is 9p, and
# every binary and library then has to be read again (seconds under TCG).
# The baseline waits (up to 20 s) until kmalloc holds still for a second:
# a previous test's namespaces may still be being dismantled. Under KASAN
# it never does: freed objects wait in its quarantine, counted as in use,
# and leave in batches (+-300 KiB from second to second, idle, on the
# debug kernel), so there the baseline waits 5 s and takes what it sees.
kvip_mem_baseline() {
	local -n _b=$1
	local prev end=$((SECONDS + 20))
	kvip_drop_caches
	if zgrep -q '^CONFIG_KASAN=y' /proc/config.gz 2>/dev/null; then
		nap 5
		kvip_mem_snapshot "$1"
		return
	fi
	kvip_mem_snapshot "$1"
	while ((SECONDS < end)); do
		prev=${_b[kmalloc]}
		nap 1
		kvip_mem_snapshot "$1"
		((_b[kmalloc] - prev < 8 && prev - _b[kmalloc] < 8)) && break
	done
}

kvip_mem_compare() {
	local -n _b=$1 _n=$2
	local c d tol unit over=0 line
	MEM_REPORT=""
	for c in "${KVIP_MEM_COUNTERS[@]}"; do
		[[ -n "${_b[$c]:-}" && -n "${_n[$c]:-}" ]] || continue
		d=$((${_n[$c]} - ${_b[$c]}))
		unit=KiB
		[[ $c == cg_* ]] && unit=B
		tol=${KVIP_MEM_TOL[$c]:-}
		printf -v line '%-10s %9s -> %9s %s  delta %+d' "$c" "${_b[$c]}" "${_n[$c]}" "$unit" "$d"
		if [[ -z "$tol" ]]; then
			line+="  (not checked)"
		elif ((d > tol)); then
			line+="  > tolerance $tol: LEAK?"
			over=1
		else
			line+="  (tolerance $tol)"
		fi
		MEM_REPORT+="$line"$'\n'
	done
	MEM_REPORT=${MEM_REPORT%$'\n'}
	return $over
}

# kvip_mem_top BASE NOW [N]: the N (default 8) slab caches that grew most,
# in KiB of objects in use, as "name +delta" words (to tell what leaked).
kvip_mem_top() {
	local -n _b=$1 _n=$2
	local k d out=""
	for k in "${!_n[@]}"; do
		[[ $k == c:* ]] || continue
		d=$((${_n[$k]} - ${_b[$k]:-0}))
		((d > 0)) && out+="$d ${k#c:}"$'\n'
	done
	sort -rn <<<"$out" | head -n "${3:-8}" | while read -r d k; do
		[[ -n "$k" ]] && printf '%s +%s ' "$k" "$d"
	done
	echo
}

# kvip_mem_check_baseline WHAT: wait for kernel memory to settle back to
# MEM_BASE (kvip_mem_settle, 30 s), print the deltas, and ktap_check it.
kvip_mem_check_baseline() {
	local t0=$SECONDS rc
	kvip_mem_settle MEM_BASE MEM_NOW 30
	rc=$?
	ktap_print_msg "kernel memory after $1 ($((SECONDS - t0)) s settle), against the baseline before load:"
	ktap_print_msg "$MEM_REPORT"
	ktap_print_msg "caches that grew most (KiB): $(kvip_mem_top MEM_BASE MEM_NOW)"
	ktap_check "kernel memory returns to the baseline (lib.sh tolerances)" \
		"see the deltas above" [ "$rc" = 0 ]
}

kvip_mem_settle() {
	local base=$1 out=$2 timeout_s=${3:-30} start=$SECONDS i=0
	while :; do
		((i++ % 5)) || kvip_drop_caches
		kvip_mem_snapshot "$out"
		kvip_mem_compare "$base" "$out" && return 0
		((SECONDS - start >= timeout_s)) && return 1
		nap 1
	done
}

# Kernel log checks inside a test (run_tests checks the whole test too; these
# pin a warning to a step). Same patterns as run_tests; memcg OOM reports,
# which the limits test provokes on purpose, are filtered out first.
KVIP_BAD_LOG_RE='WARNING:|BUG[: ]|Oops|Call Trace|KASAN|UBSAN|general protection|Kernel panic|kernel BUG|soft lockup|hard LOCKUP|rcu_.* self-detected stall|rcu: INFO|blocked for more than|list_(add|del) corruption|refcount_t:'

# log_lines: the current length of the kernel log, a mark for kernel_log_clean.
log_lines() { dmesg | wc -l; }

# kernel_log_clean SINCE-LINE: no warning in dmesg after line SINCE-LINE.
# shellcheck disable=SC2317 # called through ktap_check
kernel_log_clean() {
	local bad
	bad=$(dmesg | tail -n +$(($1 + 1)) |
		awk -f "$KVIP_SELFTESTS/strip_memcg_oom.awk" |
		grep -E "$KVIP_BAD_LOG_RE")
	[[ -z "$bad" ]] && return 0
	ktap_print_msg "kernel log: $bad"
	return 1
}

# check_spread [LABEL] N [MAX]: ktap checks on the replies of the last
# client_run: every one of backend-1..backend-N answered and, given MAX, none
# answered more than MAX times (tests use twice the fair share).
check_spread() {
	local label=${1:+$1: } n=$2 max=${3:-} want=() busiest i
	for ((i = 1; i <= n; i++)); do want+=("backend-$i"); done
	ktap_check "${label}all $n backends answer" "backends used: $(tally_keys)" \
		[ "$(tally_keys)" = "$(sort_words "${want[@]}")" ]
	[[ -n "$max" ]] || return 0
	busiest=$(tally_max)
	ktap_check "${label}no backend gets more than $max (2x fair share)" \
		"busiest backend got $busiest" [ "$busiest" -le "$max" ]
}

# ----------------------------------------------------------- affinity ----

# kvip_affinity NS NAME: "COUNT ENDPOINT..." for service NAME: the number of
# session affinity entries and the endpoint of each entry listed, from a
# raw netlink GET (independent of kvipctl).
kvip_affinity() {
	in_ns "$1" "$PYTHON" -B -c "import sys
sys.path.insert(0, '$KVIP_SELFTESTS')
import kvip_nl
m = kvip_nl.KvipNl().request(kvip_nl.CMDS['get_service'],
                             kvip_nl.nla_str(1, '$2'))[0]
print(m.get('affinity_count', 0),
      *sorted(str(a.get('endpoint')) for a in m.get('affinity', [])))"
}
