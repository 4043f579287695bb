#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# Host tests of kvipctl's command line: help, usage errors, messages and exit
# statuses. Needs no kernel module: arguments are parsed before a netlink
# session is opened, and -c/--check never opens one.
#
#   tools/tests/cli.sh [path/to/kvipctl]
#
# Environment:
#   KVIPCTL             the kvipctl to test when no argument is given (e.g. the
#                       ASan+UBSan build, tools/build-asan/kvipctl/kvipctl);
#                       default tools/kvipctl/kvipctl
#   KVIPCTL_PERF_LIMIT  CPU seconds allowed for the 100,000-line -c -batch
#                       (default 1.0; sanitized builds are slower)
# Any sanitizer report (ASan, LSan, UBSan) on kvipctl's stderr is a failure.
set -u

KVIPCTL=${1:-${KVIPCTL:-$(dirname "$0")/../kvipctl/kvipctl}}
PERF_LIMIT=${KVIPCTL_PERF_LIMIT:-1.0}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass=0
fail=0

ok() { pass=$((pass + 1)); }
not_ok() {
	local msg="$*"
	fail=$((fail + 1))
	((${#msg} < 300)) || msg="${msg:0:300}..."
	echo "FAIL: $msg" >&2
}

# sanitizer_check FILE WHAT: fail on a sanitizer report in FILE.
sanitizer_check() {
	if grep -qE '(Address|Leak|Memory|Thread|UndefinedBehavior)Sanitizer|runtime error: ' "$1"; then
		not_ok "sanitizer report from $2:"
		cat "$1" >&2
	fi
}

# run ARGS...: run kvipctl, leaving $rc, $out, $err.
run() {
	"$KVIPCTL" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	out=$(cat "$TMP/out")
	err=$(cat "$TMP/err")
	sanitizer_check "$TMP/err" "kvipctl $*"
}

# expect RC STDERR ARGS...: exact exit status and stderr, empty stdout.
expect() {
	local want_rc=$1 want_err=$2
	shift 2
	run "$@"
	if [[ $rc != "$want_rc" || "$err" != "$want_err" || -n "$out" ]]; then
		not_ok "kvipctl $*"
		echo "  want rc=$want_rc stderr: $want_err" >&2
		echo "  got  rc=$rc stderr: $err" >&2
		[[ -z "$out" ]] || echo "  stdout: $out" >&2
	else
		ok
	fi
}

# expect_usage ERROR ARGS...: exit 2 with "kvipctl: ERROR".
expect_usage() {
	local msg=$1
	shift
	expect 2 "kvipctl: $msg" "$@"
}

# expect_out RC PATTERN ARGS...: status and stdout matching a glob.
expect_out() {
	local want_rc=$1 pat=$2
	shift 2
	run "$@"
	# shellcheck disable=SC2053
	if [[ $rc != "$want_rc" || "$out" != $pat ]]; then
		not_ok "kvipctl $* (rc=$rc, stdout: ${out:0:200}, stderr: $err)"
	else
		ok
	fi
}

module_loaded() { [[ -d /sys/module/kvip ]]; }

# ---------------------------------------------------------------- help ----

expect_out 0 'Usage: kvipctl *' --help
for word in "service add NAME proto PROTO FRONTEND" "service replace NAME" \
	"service del NAME" "service show [NAME] [-j|--json]" \
	"endpoints set NAME [ENDPOINT...]" "kvipctl flush" "-batch FILE" \
	"clusterip ADDR:PORT | external ADDR:PORT | nodeport PORT" \
	"ADDR:PORT[@WEIGHT][,FLAG]..." "Exit status:" "Examples:" \
	"CAP_NET_ADMIN" "external-traffic-policy cluster|local" \
	"internal-traffic-policy cluster|local" \
	"affinity none|clientip [timeout SECONDS]" \
	"source-ranges CIDR[,CIDR]..." "managed" \
	"config set SETTING..." "nodeport-addresses CIDR...|default" \
	"cluster-cidr CIDR...|none" "masquerade-all on|off" \
	"drop-invalid on|off" "config show [-j|--json]" \
	"monitor [-j|--json]"; do
	[[ "$out" == *"$word"* ]] && ok || not_ok "--help lacks '$word'"
done
expect_out 0 'Usage: kvipctl *' -h
expect_out 0 'Usage: kvipctl *' help
expect_out 0 'Usage:*kvipctl service add*' help service
expect_out 0 'Usage:*kvipctl service add*' service help
expect_out 0 'Usage:*kvipctl service add*' service show --help
expect_out 0 'Usage:*kvipctl endpoints set*' endpoints help
expect_out 0 'Usage:*kvipctl endpoints set*' help endpoints
expect_out 0 'Usage:*kvipctl config set*' help config
expect_out 0 'Usage:*kvipctl config set*' config help
expect_out 0 'Usage:*kvipctl config set*' config set --help
expect_out 0 'Usage:*kvipctl monitor*' help monitor
expect_out 0 'Usage:*kvipctl monitor*' monitor --help
expect_out 0 'kvipctl *' --version
[[ "$out" =~ ^kvipctl\ [0-9a-zA-Z.+-]+$ ]] && ok || not_ok "--version: $out"
expect_out 0 'kvipctl *' -V

# kvipctl sync runs kvipctl-sync from kvipctl's own directory, else from
# PATH, and says so when there is none.
expect_out 0 'Usage: kvipctl sync *' sync --help
cp "$KVIPCTL" "$TMP/kvipctl"
alone_err=$(PATH=/nonexistent "$TMP/kvipctl" sync --help 2>&1 >/dev/null)
alone_rc=$?
[[ $alone_rc == 1 && "$alone_err" == "kvipctl: sync: cannot run kvipctl-sync: No such file or directory" ]] &&
	ok || not_ok "sync without kvipctl-sync: rc=$alone_rc: $alone_err"

run
[[ $rc == 2 && "$err" == "Usage: kvipctl"* && -z "$out" ]] && ok ||
	not_ok "no arguments: rc=$rc"

# -n NETNS: a runtime error when it cannot be entered (before sync's exec
# too), a usage error without one; -c never enters it.
expect 1 "kvipctl: cannot enter network namespace '/nonexistent/ns': No such file or directory" \
	-n /nonexistent/ns service show
expect 1 "kvipctl: cannot enter network namespace 'kvip-no-such-ns': No such file or directory" \
	-netns kvip-no-such-ns -batch /dev/null
expect 1 "kvipctl: cannot enter network namespace 'kvip-no-such-ns': No such file or directory" \
	-n kvip-no-such-ns sync --help
expect 0 "" -n kvip-no-such-ns -c service show
expect_usage "option '-n' needs a network namespace" -n
expect_usage "option '--netns' needs a network namespace" --netns "" flush

# -------------------------------------------------------- usage errors ----

expect_usage "unknown command 'bogus' (try 'kvipctl help')" bogus
expect_usage "unknown option '-x' (try 'kvipctl --help')" -x
expect_usage "unknown argument '--json'" flush --json
expect_usage "unknown command 'service frob' (try 'kvipctl service help')" \
	service frob
expect_usage "missing command after 'endpoints' (try 'kvipctl endpoints help')" \
	endpoints
expect_usage "unknown command 'endpoints add' (try 'kvipctl endpoints help')" \
	endpoints add
expect_usage "unknown command 'frob'" help frob
expect_usage "unknown argument 'now'" flush now

A=(service add default/x)
expect_usage "missing service NAME" service add
expect_usage "missing 'proto PROTO' (tcp, udp or sctp)" "${A[@]}"
expect_usage "missing 'proto PROTO' (tcp, udp or sctp)" \
	"${A[@]}" clusterip 10.96.0.10:80
expect_usage "at least one FRONTEND is required (clusterip ADDR:PORT, external ADDR:PORT or nodeport PORT)" \
	"${A[@]}" proto tcp
expect_usage "unknown protocol 'foo' (use tcp, udp or sctp)" \
	"${A[@]}" proto foo clusterip 10.96.0.10:80
expect_usage "missing PROTO after 'proto'" "${A[@]}" proto
expect_usage "duplicate 'proto'" "${A[@]}" proto tcp proto udp
expect_usage "invalid address 'x'" "${A[@]}" proto tcp clusterip x:80
expect_usage "invalid port '0'" "${A[@]}" proto tcp clusterip 10.96.0.10:0
expect_usage "invalid port '65536'" "${A[@]}" proto tcp nodeport 65536
expect_usage "invalid port 'abc'" "${A[@]}" proto tcp nodeport abc
expect_usage "missing port in '10.96.0.10' (expected ADDR:PORT)" \
	"${A[@]}" proto tcp clusterip 10.96.0.10
expect_usage "invalid address 'fd00::1:80' (write IPv6 addresses as [ADDR]:PORT)" \
	"${A[@]}" proto tcp clusterip fd00::1:80
expect_usage "invalid IPv6 address '10.0.0.1'" \
	"${A[@]}" proto tcp external '[10.0.0.1]:80'
expect_usage "missing ADDR:PORT after 'clusterip'" "${A[@]}" proto tcp clusterip
expect_usage "missing ADDR:PORT after 'external'" "${A[@]}" proto tcp external
expect_usage "missing PORT after 'nodeport'" "${A[@]}" proto tcp nodeport
expect_usage "unknown argument 'sessionaffinity'" \
	"${A[@]}" proto tcp nodeport 30000 sessionaffinity clientip
# Service options
B=("${A[@]}" proto tcp nodeport 30000)
expect_usage "invalid external-traffic-policy 'foo' (use cluster or local)" \
	"${B[@]}" external-traffic-policy foo
expect_usage "invalid internal-traffic-policy 'Local' (use cluster or local)" \
	"${B[@]}" internal-traffic-policy Local
expect_usage "missing cluster|local after 'external-traffic-policy'" \
	"${B[@]}" external-traffic-policy
expect_usage "duplicate 'external-traffic-policy'" \
	"${B[@]}" external-traffic-policy local external-traffic-policy cluster
expect_usage "invalid affinity 'sticky' (use none or clientip)" \
	"${B[@]}" affinity sticky
expect_usage "missing none|clientip after 'affinity'" "${B[@]}" affinity
expect_usage "'timeout' needs 'affinity clientip'" \
	"${B[@]}" affinity none timeout 10
expect_usage "missing SECONDS after 'timeout'" \
	"${B[@]}" affinity clientip timeout
expect_usage "invalid affinity timeout '0' (1..86400 seconds)" \
	"${B[@]}" affinity clientip timeout 0
expect_usage "invalid affinity timeout '86401' (1..86400 seconds)" \
	"${B[@]}" affinity clientip timeout 86401
expect_usage "invalid affinity timeout '99999999999999999999' (1..86400 seconds)" \
	"${B[@]}" affinity clientip timeout 99999999999999999999
expect_usage "invalid affinity timeout '1h' (1..86400 seconds)" \
	"${B[@]}" affinity clientip timeout 1h
expect_usage "duplicate 'affinity'" \
	"${B[@]}" affinity clientip affinity none
expect_usage "unknown argument 'timeout'" "${B[@]}" timeout 5
expect_usage "invalid CIDR 'x'" "${B[@]}" source-ranges x
expect_usage "invalid CIDR '10.0.0.0'" "${B[@]}" source-ranges 10.0.0.0
expect_usage "invalid CIDR '10.0.0.0/33'" "${B[@]}" source-ranges 10.0.0.0/33
expect_usage "invalid CIDR 'fd00::/129'" "${B[@]}" source-ranges fd00::/129
expect_usage "invalid CIDR '10.0.0.1/8' (bits set past the prefix length)" \
	"${B[@]}" source-ranges 10.0.0.0/8,10.0.0.1/8
expect_usage "invalid CIDR 'fd00::1/64' (bits set past the prefix length)" \
	"${B[@]}" source-ranges fd00::1/64
expect_usage "invalid CIDR ''" "${B[@]}" source-ranges 10.0.0.0/8,
expect_usage "invalid CIDR ''" "${B[@]}" source-ranges ,10.0.0.0/8
expect_usage "invalid CIDR '10.0.0.0/+8'" "${B[@]}" source-ranges 10.0.0.0/+8
expect_usage "missing CIDR[,CIDR]... after 'source-ranges'" \
	"${B[@]}" source-ranges
expect_usage "duplicate 'managed'" "${B[@]}" managed managed
# Settings
expect_usage "missing setting after 'config set' (nodeport-addresses, cluster-cidr, masquerade-all or drop-invalid)" \
	config set
expect_usage "unknown setting 'masquerade'" config set masquerade on
expect_usage "invalid value 'yes' for 'masquerade-all' (use on or off)" \
	config set masquerade-all yes
expect_usage "missing on|off after 'drop-invalid'" config set drop-invalid
expect_usage "duplicate 'drop-invalid'" \
	config set drop-invalid on drop-invalid off
expect_usage "missing CIDR... or 'none' after 'cluster-cidr'" \
	config set cluster-cidr masquerade-all on
expect_usage "missing CIDR... or 'default' after 'nodeport-addresses'" \
	config set nodeport-addresses
expect_usage "'none' cannot be mixed with CIDRs" \
	config set cluster-cidr none 10.0.0.0/8
expect_usage "'default' cannot be mixed with CIDRs" \
	config set nodeport-addresses 10.0.0.0/8 default
expect_usage "invalid CIDR '10.0.0.1/8' (bits set past the prefix length)" \
	config set cluster-cidr 10.0.0.1/8
expect_usage "duplicate 'cluster-cidr'" \
	config set cluster-cidr none cluster-cidr 10.0.0.0/8
expect_usage "unknown command 'config get' (try 'kvipctl config help')" \
	config get
expect_usage "unknown argument 'x'" config show x
expect_usage "unknown option '-x'" config show -x
expect_usage "unknown argument 'x'" monitor x
expect_usage "unknown option '--yaml'" monitor --yaml
# NAME is positional: here it is "proto".
expect_usage "unknown argument 'tcp'" service replace proto tcp nodeport 1
expect_usage "service name too long (max 255 bytes)" \
	service add "$(printf 'n%.0s' {1..256})" proto tcp nodeport 30000
expect_usage "invalid service name ''" service add "" proto tcp nodeport 30000
expect_usage "missing service NAME" service del
expect_usage "unknown argument 'y'" service del x y
expect_usage "unknown argument 'y'" service show x y
expect_usage "unknown option '-x'" service show -x
expect_usage "invalid service name ''" service show ""
expect_usage "missing service NAME" endpoints set
expect_usage "invalid weight '65536' (0..65535)" \
	endpoints set x 10.0.0.1:80 10.0.0.2:80@65536
expect_usage "invalid weight '' (0..65535)" endpoints set x 10.0.0.1:80@
expect_usage "unknown endpoint flag 'ready2' (use local, notready, notserving or terminating)" \
	endpoints set x 10.0.0.1:80,local,ready2
expect_usage "invalid address '10.0.0.300'" endpoints set x 10.0.0.300:80
expect_usage "invalid port '0'" endpoints set x '[fd00::1]:0'
expect_usage "option '-batch' needs a FILE" -batch
expect_usage "-force only applies to -batch" -force flush
expect_usage "unexpected argument 'flush' after -batch FILE" -batch - flush
expect_usage "cannot open '$TMP/nope': No such file or directory" \
	-batch "$TMP/nope"

# A 10,000-byte token is quoted shortened.
long=$(printf 'x%.0s' {1..10000})
expect_usage "invalid endpoint '${long:0:61}...'" \
	endpoints set x "$long:80"
expect_usage "invalid address '${long:0:61}...'" \
	service add x proto tcp clusterip "$long:80"

# -------------------------------------------------- check mode (-c) ----

expect 0 "" -c service add default/x proto TCP clusterip 10.96.0.10:80 \
	clusterip '[fd00::a]:80' external 203.0.113.1:443 nodeport 30080
expect 0 "" -c service replace default/x proto sctp nodeport 30080
expect 0 "" -c endpoints set default/x 10.0.0.1:80 '[fd00::1]:80@0,local' \
	10.0.0.2:80@65535,notready,notserving,terminating
expect 0 "" -c endpoints set default/x
expect 0 "" -c service show -j default/x
expect 0 "" -c -j service show
expect 0 "" -c service del default/x
expect 0 "" -c flush
expect 0 "" -c service
expect 0 "" -c service add default/x proto tcp nodeport 30080 \
	external-traffic-policy local internal-traffic-policy cluster \
	affinity clientip timeout 86400 source-ranges 10.0.0.0/8,fd00::/64
expect 0 "" -c service replace default/x proto tcp nodeport 30080 managed \
	affinity clientip external-traffic-policy cluster \
	internal-traffic-policy local source-ranges 0.0.0.0/0
expect 0 "" -c service replace default/x proto udp clusterip 10.96.0.1:53 \
	affinity none
expect 0 "" -c config set nodeport-addresses 192.168.0.0/16 127.0.0.1/32,::1/128 \
	cluster-cidr none masquerade-all on drop-invalid off
expect 0 "" -c config set nodeport-addresses default cluster-cidr 10.244.0.0/16
expect 0 "" -c config show -j
expect 0 "" -c config
expect 0 "" -c monitor
expect 0 "" -c -j monitor

# ------------------------------------------------------------- batch ----

cat >"$TMP/good" <<'EOF'
# a comment, then a blank line

service add default/a proto tcp clusterip 10.96.0.1:80   # trailing comment
service add "default/b c" proto udp clusterip [fd00::b]:53
  endpoints set default/a 10.0.0.1:80 10.0.0.2:80@2,local
endpoints set default/a
service show -j
service del 'default/b c'
service replace default/a proto tcp nodeport 30080 affinity clientip timeout 60 source-ranges 10.0.0.0/8
config set cluster-cidr 10.244.0.0/16 masquerade-all off
config show -j
flush
EOF
expect 0 "" -c -batch "$TMP/good"
expect 0 "" -c -batch - <"$TMP/good"

cat >"$TMP/bad" <<'EOF'
service add default/a proto tcp clusterip 10.96.0.1:80
service add default/b proto tcp clusterip 10.96.0.1:0
endpoints set default/a 10.0.0.1:80

service frob
service del "unterminated
flush
EOF
expect 2 "kvipctl: line 2: invalid port '0'
kvipctl: line 5: unknown command 'service frob' (try 'kvipctl service help')
kvipctl: line 6: unterminated double quote" -batch "$TMP/bad"
printf -- '-j service show\n' >"$TMP/opt"
expect_usage "line 1: unknown option '-j' (options go before the command)" \
	-batch "$TMP/opt"
# Syntax errors are found before any kernel access, -c or not.
expect 2 "kvipctl: line 2: invalid port '0'
kvipctl: line 5: unknown command 'service frob' (try 'kvipctl service help')
kvipctl: line 6: unterminated double quote" -c -batch - <"$TMP/bad"

# A NUL byte, even escaped, is an error, not the end of an argument.
printf 'service del a\\\000b\n' >"$TMP/nul"
expect_usage "line 1: NUL byte in line" -batch "$TMP/nul"
printf 'service del a\000b\n' >"$TMP/nul"
expect_usage "line 1: NUL byte in line" -batch "$TMP/nul"

printf 'help service\n\n# only help: no kernel needed\n' >"$TMP/help"
expect_out 0 'Usage:*kvipctl service add*' -batch "$TMP/help"
expect 0 "" -batch /dev/null

# ---------------------------------------------------- without module ----

if ! module_loaded; then
	nomod="kvipctl: kvip module not loaded (genl family 'kvip' not found)"
	expect 1 "$nomod" flush
	expect 1 "$nomod" service show
	expect 1 "$nomod" service add default/x proto tcp clusterip 10.96.0.10:80
	expect 1 "$nomod" config show
	expect 1 "$nomod" config set masquerade-all on
	expect 1 "$nomod" monitor
	expect 1 "$nomod" -batch "$TMP/good"
	expect 1 "$nomod" -force -batch "$TMP/good"
	# Usage errors win over the missing module.
	expect_usage "invalid port '0'" service add x proto tcp nodeport 0
else
	echo "# kvip is loaded here: skipping the module-not-loaded checks" >&2
fi

# ------------------------------------------------- parse performance ----

# 100,000 `service add` lines checked with -c: the parser must be cheap.
awk 'BEGIN { for (i = 0; i < 100000; i++)
	printf "service add default/svc-%d proto tcp clusterip 10.%d.%d.%d:80 nodeport %d\n",
		i, int(i / 65536) + 96, int(i / 256) % 256, i % 256, 30000 + i % 20000 }' \
	>"$TMP/big"
TIMEFORMAT=%U
user=$( { time "$KVIPCTL" -c -batch "$TMP/big" >/dev/null 2>"$TMP/err"; } 2>&1 )
rc=$?
sanitizer_check "$TMP/err" "kvipctl -c -batch (100,000 lines)"
if [[ $rc == 0 ]] && awk -v u="$user" -v max="$PERF_LIMIT" 'BEGIN { exit !(u < max) }'; then
	ok
else
	not_ok "-c -batch of 100,000 lines: rc=$rc, ${user}s user (limit ${PERF_LIMIT}s)"
fi
echo "# -c -batch with 100,000 service add lines: ${user}s user CPU (limit ${PERF_LIMIT}s)" >&2

echo "cli.sh: $((pass + fail)) checks, $fail failures"
((fail == 0))
