#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# Integration smoke test of kvipctl against the real kvip module. Runs as
# root in the QEMU guest:
#
#   selftests/vm-run -- tools/tests/vm-smoke.sh
#   KVIP_SMOKE_BIG=1 selftests/vm-run -- tools/tests/vm-smoke.sh  # + 100k
#   KVIP_SMOKE_VALGRIND=1 ...                                      # + memcheck
#
# Loads kmod/kvip.ko (or $KVIP_KO) unless kvip is loaded, works in a fresh
# network namespace, checks outputs, messages and exit statuses.
set -u

cd "$(dirname "$(readlink -f "$0")")/../.." || exit 2
ROOT=$PWD
K=$ROOT/tools/kvipctl/kvipctl
KO=${KVIP_KO:-$ROOT/kmod/kvip.ko}
NS=kvsmoke-$$
TMP=$(mktemp -d)
PY=python3
TIMEFORMAT='%R s real, %U s user, %S s sys'

if [[ ${KVIP_IN_VM:-} != 1 && ${KVIP_SMOKE_HOST:-} != 1 ]]; then
	echo "vm-smoke.sh: run in the guest: selftests/vm-run -- $0" >&2
	exit 2
fi

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $((pass + fail)) - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok $((pass + fail)) - $*"; }
diag() { printf '# %s\n' "$@"; }

cleanup() {
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

k() { ip netns exec "$NS" "$K" "$@"; }

# run ARGS...: kvipctl in the netns; $rc, $out, $err.
run() {
	k "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	out=$(cat "$TMP/out")
	err=$(cat "$TMP/err")
}

# expect RC STDERR DESC ARGS...: exit status and exact stderr.
expect() {
	local want_rc=$1 want_err=$2 desc=$3
	shift 3
	run "$@"
	if [[ $rc == "$want_rc" && "$err" == "$want_err" ]]; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "want rc=$want_rc: $want_err" "got  rc=$rc: $err"
	fi
}

expect_ok() {
	local desc=$1
	shift
	expect 0 "" "$desc" "$@"
}

# py DESC CODE: run python over the JSON in $TMP/json; CODE must exit 0.
py() {
	local desc=$1
	if $PY - "$TMP/json" >"$TMP/pyout" 2>&1 <<<"$2"; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "$(head -c 2000 "$TMP/pyout")"
	fi
}

show_json() { k service show -j "$@" >"$TMP/json"; }

# ------------------------------------------------------------ setup ----

modprobe -a nf_nat nf_conntrack nf_reject_ipv4 nf_reject_ipv6
if [[ ! -d /sys/module/kvip ]]; then
	insmod "$KO" || { echo "Bail out! insmod $KO failed"; exit 1; }
fi
ip netns add "$NS" || { echo "Bail out! ip netns add"; exit 1; }
diag "kvipctl $("$K" --version | cut -d' ' -f2), kernel $(uname -r)"

# ----------------------------------------------------- add and show ----

SVC=default/elastic
expect_ok "service add (4 frontends)" service add $SVC proto tcp \
	clusterip 10.96.0.10:9200 clusterip '[fd00:10:96::a]:9200' \
	nodeport 30080 external 203.0.113.7:443
expect_ok "endpoints set (4 endpoints, weights, flags)" endpoints set $SVC \
	10.0.1.1:9200 10.0.2.1:9200@2,local 10.0.3.1:9200@0,notready,notserving \
	'[fd00::1]:9200,terminating,notready'

run service show
want='Service default/elastic  proto tcp  conns -  rejects 0  drops 0
  external-traffic-policy cluster  internal-traffic-policy cluster  affinity none
  clusterip 10.96.0.10:9200
  clusterip [fd00:10:96::a]:9200
  nodeport  30080
  external  203.0.113.7:443
  endpoints 4
  -> 10.0.1.1:9200   weight 1  ready,serving
  -> 10.0.2.1:9200   weight 2  ready,serving,local
  -> 10.0.3.1:9200   weight 0  -
  -> [fd00::1]:9200  weight 1  serving,terminating'
if [[ $rc == 0 && "$out" == "$want" && -z "$err" ]]; then
	ok "service show: human table"
else
	not_ok "service show: human table"
	diag "got rc=$rc:" "$out" "$err"
fi

show_json
py "service show -j: exact JSON" '
import json, sys
got = json.load(open(sys.argv[1]))
ep = lambda fam, a, w, fl: {"family": fam, "address": a, "port": 9200,
	"weight": w, "flags": fl}
want = [{"name": "default/elastic", "proto": "tcp", "flags": [],
	"external_traffic_policy": "cluster", "internal_traffic_policy": "cluster",
	"affinity": "none", "source_ranges": [], "managed": False,
	"endpoint_stats": False, "conn_stats": False,
	"frontends": [
		{"type": "clusterip", "family": "inet", "address": "10.96.0.10", "port": 9200},
		{"type": "clusterip", "family": "inet6", "address": "fd00:10:96::a", "port": 9200},
		{"type": "nodeport", "port": 30080},
		{"type": "external", "family": "inet", "address": "203.0.113.7", "port": 443}],
	"stats": {"rejects": 0, "drops": 0},
	"affinity_count": 0,
	"endpoints": [
		ep("inet", "10.0.1.1", 1, ["ready", "serving"]),
		ep("inet", "10.0.2.1", 2, ["ready", "serving", "local"]),
		ep("inet", "10.0.3.1", 0, []),
		ep("inet6", "fd00::1", 1, ["serving", "terminating"])]}]
assert got == want, json.dumps(got)
'
# A named service also lists its affinity entries (none here).
named_json=$(sed 's/,"endpoints":/,"affinity_entries":[],"endpoints":/' "$TMP/json")
run service show $SVC --json
[[ $rc == 0 && "$out" == "$named_json" ]] && ok "show NAME --json" ||
	not_ok "show NAME --json (rc=$rc)"
run -j service show $SVC
[[ $rc == 0 && "$out" == "$named_json" ]] && ok "-j service show NAME" ||
	not_ok "-j service show NAME (rc=$rc)"
run service
[[ $rc == 0 && "$out" == "$want" ]] && ok "'service' alone lists" ||
	not_ok "'service' alone lists (rc=$rc)"

# ------------------------------------------------------ kernel errors ----

expect 1 "kvipctl: service add $SVC: File exists: service exists" \
	"add existing name: EEXIST" \
	service add $SVC proto tcp clusterip 10.96.0.11:80
expect 1 "kvipctl: service add default/y: File exists: frontend 10.96.0.10:9200/tcp is used by service 'default/elastic'" \
	"frontend owned by another service: EEXIST names the owner" \
	service add default/y proto tcp clusterip 10.96.0.10:9200
expect 1 "kvipctl: service add default/y: File exists: frontend [fd00:10:96::a]:9200/tcp is used by service 'default/elastic'" \
	"IPv6 frontend owned by another service" \
	service add default/y proto tcp clusterip '[fd00:10:96::a]:9200'
expect 1 "kvipctl: service replace default/y: File exists: node port 30080/tcp is used by service 'default/elastic'" \
	"node port owned by another service" \
	service replace default/y proto tcp nodeport 30080
expect_ok "same frontend, other protocol" \
	service add default/elastic-udp proto udp clusterip 10.96.0.10:9200
expect 1 "kvipctl: service del default/nope: No such file or directory: no such service" \
	"del unknown: ENOENT" service del default/nope
expect 1 "kvipctl: service show default/nope: No such file or directory: no such service" \
	"show unknown: ENOENT" service show default/nope
expect 1 "kvipctl: service show default/nope: No such file or directory: no such service" \
	"show -j unknown: ENOENT" service show -j default/nope
expect 1 "kvipctl: endpoints set default/nope: No such file or directory: no such service" \
	"endpoints set unknown: ENOENT" endpoints set default/nope 10.0.0.1:80
expect 1 "kvipctl: endpoints set $SVC: File exists: endpoint 10.0.9.9:80 listed twice" \
	"duplicate endpoint: EEXIST" \
	endpoints set $SVC 10.0.9.9:80 10.0.9.8:80 10.0.9.9:80@3
expect 1 "kvipctl: service add default/z: Invalid argument: unspecified address (attribute frontends[1].addr)" \
	"unspecified frontend address: extack names the attribute" \
	service add default/z proto tcp clusterip 10.96.1.1:80 clusterip 0.0.0.0:80
expect 1 "kvipctl: endpoints set $SVC: Invalid argument: unspecified address (attribute endpoints[1].addr)" \
	"unspecified endpoint address" endpoints set $SVC 10.0.0.1:80 '[::]:80'
run service show -j $SVC
[[ "$out" == "$named_json" ]] && ok "failed requests changed nothing" ||
	not_ok "failed requests changed nothing"

# Unprivileged: changes fail with EPERM and a hint, show works.
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	--bounding-set=-all)
ip netns exec "$NS" "${NOBODY[@]}" "$K" service del $SVC >"$TMP/out" 2>"$TMP/err"
rc=$?
if [[ $rc == 1 && "$(cat "$TMP/err")" == "kvipctl: service del $SVC: Operation not permitted (you need CAP_NET_ADMIN)" ]]; then
	ok "unprivileged del: EPERM with hint"
else
	not_ok "unprivileged del: EPERM with hint"
	diag "rc=$rc $(cat "$TMP/err")"
fi
ip netns exec "$NS" "${NOBODY[@]}" "$K" service show -j >"$TMP/out" 2>"$TMP/err" &&
	[[ -s "$TMP/out" ]] && ok "unprivileged show works" ||
	not_ok "unprivileged show works: $(cat "$TMP/err")"

# ------------------------------------------------------------ replace ----

expect_ok "replace existing" service replace $SVC proto tcp clusterip 10.96.0.10:9200
show_json $SVC
py "replace kept the 4 endpoints, has 1 frontend" '
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s) == 1 and len(s[0]["endpoints"]) == 4, s
assert s[0]["frontends"] == [{"type": "clusterip", "family": "inet", "address": "10.96.0.10", "port": 9200}], s
'

# Per-endpoint counters are opt-in; switching keeps the endpoints.
expect_ok "replace: endpoint-stats on" service replace $SVC proto tcp \
	clusterip 10.96.0.10:9200 endpoint-stats
show_json $SVC
py "endpoint-stats on: the 4 endpoints kept, each with conns 0" '
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert s["endpoint_stats"] is True and s["flags"] == ["endpoint_stats"], s
assert len(s["endpoints"]) == 4, s
assert all(e["stats"] == {"conns": 0} for e in s["endpoints"]), s
'
run service show $SVC
[[ $rc == 0 && "$out" == *"endpoint-stats"* &&
   "$out" == *"-> 10.0.1.1:9200   weight 1  ready,serving        conns 0"* ]] &&
	ok "endpoint-stats: human output has the option and a conns column" ||
	not_ok "endpoint-stats human output (rc=$rc): $out"
expect_ok "endpoints set with endpoint-stats" endpoints set $SVC \
	10.0.1.1:9200 10.0.5.1:9200
show_json $SVC
py "a new set keeps counting per endpoint" '
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert [e["stats"] for e in s["endpoints"]] == [{"conns": 0}] * 2, s
'
expect_ok "replace: endpoint-stats off" service replace $SVC proto tcp \
	clusterip 10.96.0.10:9200
show_json $SVC
py "endpoint-stats off: endpoints kept, no per-endpoint stats" '
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert s["endpoint_stats"] is False and len(s["endpoints"]) == 2, s
assert not any("stats" in e for e in s["endpoints"]), s
'

# The service's connection counter is opt-in too: "-" is "not counted".
expect_ok "replace: conn-stats on" service replace $SVC proto tcp \
	clusterip 10.96.0.10:9200 conn-stats
show_json $SVC
py "conn-stats on: stats.conns is there, 0" '
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert s["conn_stats"] is True and s["flags"] == ["conn_stats"], s
assert s["stats"] == {"conns": 0, "rejects": 0, "drops": 0}, s
'
run service show $SVC
[[ $rc == 0 && "$out" == "Service $SVC  proto tcp  conns 0  rejects 0  drops 0
  external-traffic-policy cluster  internal-traffic-policy cluster  affinity none  conn-stats"* ]] &&
	ok "conn-stats: human output has the option and conns 0" ||
	not_ok "conn-stats human output (rc=$rc): $out"
expect_ok "replace: conn-stats off" service replace $SVC proto tcp \
	clusterip 10.96.0.10:9200
show_json $SVC
py "conn-stats off: no stats.conns" '
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert s["conn_stats"] is False and "conns" not in s["stats"], s
'
expect_ok "replace creates" service replace default/new proto sctp nodeport 30999
show_json default/new
py "replace created an SCTP service with no endpoints" '
import json, sys
s = json.load(open(sys.argv[1]))
assert s[0]["proto"] == "sctp" and s[0]["endpoints"] == [], s
'
expect_ok "endpoints set: empty set" endpoints set $SVC
show_json $SVC
py "empty set" 'import json, sys; assert json.load(open(sys.argv[1]))[0]["endpoints"] == []'

# -------------------------------------------------- large endpoint sets ----

# gen_eps N: N endpoints, half IPv4 and half IPv6, varied weights and flags.
gen_eps() {
	awk -v n="$1" -v port="${2:-8080}" 'BEGIN {
		split(",local|,notready|,terminating,notserving||", fl, "|")
		for (i = 0; i < n; i++) {
			if (i % 2) a = sprintf("10.%d.%d.%d:%d", 1 + int(i / 65536), int(i / 256) % 256, i % 256, port)
			else a = sprintf("[fd00::%x:%x]:%d", int(i / 65536), i % 65536, port)
			printf "%s@%d%s\n", a, i % 7, fl[i % 5 + 1]
		}
	}'
}

gen_eps 10000 >"$TMP/eps10k"
mapfile -t EPS <"$TMP/eps10k"
diag "endpoints set with 10,000 endpoints (argv):"
{ time k endpoints set $SVC "${EPS[@]}" >"$TMP/out" 2>"$TMP/err"; } 2>"$TMP/time"
rc=$?
diag "  $(cat "$TMP/time")"
[[ $rc == 0 ]] && ok "endpoints set 10,000 (chunked)" ||
	not_ok "endpoints set 10,000: $(cat "$TMP/err")"
{ time k service show -j $SVC >"$TMP/json"; } 2>"$TMP/time"
diag "service show -j of 10,000 endpoints: $(cat "$TMP/time")"
cp "$TMP/eps10k" "$TMP/want"
# (The set is unordered; the kernel happens to keep IPv4 first.)
py "show -j returns the 10,000 endpoints exactly" '
import json, sys, ipaddress
s = json.load(open(sys.argv[1]))[0]
assert s["endpoints"] and len(s["endpoints"]) == 10000, len(s["endpoints"])
key = lambda a: (a.version, int(a))
got = sorted((key(ipaddress.ip_address(e["address"])), e["port"], e["weight"],
	tuple(sorted(e["flags"]))) for e in s["endpoints"])
want = []
for line in open(sys.argv[1].rsplit("/", 1)[0] + "/want"):
	ap, _, rest = line.strip().partition("@")
	w, *fl = rest.split(",")
	a, _, p = ap.rpartition(":")
	f = {"ready", "serving"}
	for x in fl:
		if x.startswith("not"): f.discard(x[3:])
		else: f.add(x)
	want.append((key(ipaddress.ip_address(a.strip("[]"))), int(p), int(w), tuple(sorted(f))))
want.sort()
bad = [(g, w) for g, w in zip(got, want) if g != w]
assert not bad, bad[:5]
'
run service show $SVC
n=$(grep -c '^  -> ' <<<"$out")
[[ $rc == 0 && $n == 10000 && "$out" == *"  endpoints 10000"* ]] &&
	ok "human show lists 10,000 endpoints" || not_ok "human show: rc=$rc, $n endpoints"

# The bad entry is #9999, in the last chunk: the index must be global.
sed '$d' "$TMP/eps10k" >"$TMP/epsbad"
echo '0.0.0.0:80' >>"$TMP/epsbad"
mapfile -t EPS <"$TMP/epsbad"
expect 1 "kvipctl: endpoints set $SVC: Invalid argument: unspecified address (attribute endpoints[9999].addr)" \
	"bad endpoint #9999 in the last chunk: extack index is global" \
	endpoints set $SVC "${EPS[@]}"
run service show -j $SVC
[[ "$out" == "$(cat "$TMP/json")" ]] && ok "failed chunked set changed nothing" ||
	not_ok "failed chunked set changed nothing"

# Maximum set size, through a batch line (argv would be near ARG_MAX).
{ printf 'endpoints set %s ' $SVC; gen_eps 65536 | tr '\n' ' '; echo; } >"$TMP/b64k"
diag "endpoints set with 65,536 endpoints (batch):"
{ time k -batch "$TMP/b64k" >"$TMP/out" 2>"$TMP/err"; } 2>"$TMP/time"
rc=$?
diag "  $(cat "$TMP/time")"
[[ $rc == 0 ]] && ok "endpoints set 65,536 (KVIP_ENDPOINTS_MAX)" ||
	not_ok "endpoints set 65,536: $(cat "$TMP/err")"
show_json $SVC
py "65,536 endpoints dumped" '
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert len(s["endpoints"]) == 65536, len(s["endpoints"])
assert len({(e["address"], e["port"]) for e in s["endpoints"]}) == 65536
'
{ printf 'endpoints set %s ' $SVC; gen_eps 65537 | tr '\n' ' '; echo; } >"$TMP/b64k1"
expect 1 "kvipctl: line 1: endpoints set $SVC: Argument list too long: too many endpoints for one service" \
	"65,537 endpoints: E2BIG" -batch "$TMP/b64k1"
show_json $SVC
py "E2BIG changed nothing" 'import json, sys; assert len(json.load(open(sys.argv[1]))[0]["endpoints"]) == 65536'

# ------------------------------------------------ dump consistency ----

# Replace a 20,000 and a 15,000 endpoint set (several dump messages each)
# while dumping: every dump must show one whole set (DUMP_INTR retries).
gen_eps 20000 1111 | tr '\n' ' ' | sed "s|^|endpoints set $SVC |" >"$TMP/setA"
gen_eps 15000 2222 | tr '\n' ' ' | sed "s|^|endpoints set $SVC |" >"$TMP/setB"
echo >>"$TMP/setA"
echo >>"$TMP/setB"
k -batch "$TMP/setA"
(
	for i in $(seq 15); do
		k -batch "$TMP/setB" && k -batch "$TMP/setA" || exit 1
	done
) &
writer=$!
bad=0 dumps=0
while kill -0 $writer 2>/dev/null; do
	if ! k service show -j $SVC >"$TMP/json" 2>"$TMP/err"; then
		bad=$((bad + 1))
		diag "dump failed: $(cat "$TMP/err")"
		continue
	fi
	dumps=$((dumps + 1))
	$PY - "$TMP/json" <<'EOF' || bad=$((bad + 1))
import json, sys
e = json.load(open(sys.argv[1]))[0]["endpoints"]
ports = {x["port"] for x in e}
ok = (len(e) == 20000 and ports == {1111}) or (len(e) == 15000 and ports == {2222})
if not ok:
	print("# inconsistent dump: %d endpoints, ports %s" % (len(e), ports))
sys.exit(0 if ok else 1)
EOF
done
wait $writer
wrc=$?
[[ $bad == 0 && $wrc == 0 && $dumps -gt 0 ]] &&
	ok "$dumps dumps during 30 set replacements were all consistent" ||
	not_ok "dump consistency: $bad bad of $dumps, writer rc=$wrc"

# Many services with a few endpoints each: dump messages end in the middle
# of services, so some services continue in the next message. This is the
# table of selftests/kvip_lifecycle.sh, where a boundary falls right after
# the header of default/svc-125.
expect_ok "flush" flush
awk 'BEGIN {
	print "service add default/web proto tcp clusterip 10.96.0.10:80"
	print "endpoints set default/web 10.0.1.1:8080 10.0.1.2:8080 10.0.1.3:8080"
	for (i = 0; i < 1000; i++) {
		printf "service add default/svc-%d proto tcp clusterip 10.97.%d.%d:80\n", i, int(i / 250), i % 250 + 1
		printf "endpoints set default/svc-%d 10.0.1.1:8080 10.0.1.2:8080\n", i } }' >"$TMP/many"
expect_ok "1,001 services with 2 or 3 endpoints" -batch "$TMP/many"
k service show -j >"$TMP/json" 2>"$TMP/err"
py "all 1,001 dumped with all their endpoints" '
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s) == 1001, len(s)
bad = [x["name"] for x in s if len(x["endpoints"]) != (3 if x["name"] == "default/web" else 2)]
assert not bad, bad[:5]
'
[[ -s "$TMP/err" ]] && diag "$(cat "$TMP/err")"

# ---------------------------------------------------------------- batch ----

expect_ok "flush" flush
run service show
[[ $rc == 0 && -z "$out" ]] && ok "empty table prints nothing" || not_ok "empty show: '$out'"
run service show -j
[[ $rc == 0 && "$out" == "[]" ]] && ok "empty table -j prints []" || not_ok "empty -j: '$out'"

# batch_lines N: N `service add` lines.
# Node ports are unique per protocol: only the first 30,000 get one.
batch_lines() {
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
		printf "service add default/svc-%d proto tcp clusterip 10.%d.%d.%d:80%s\n",
			i, 96 + int(i / 65536), int(i / 256) % 256, i % 256,
			i < 30000 ? sprintf(" nodeport %d", 30000 + i) : "" }'
}
batch_lines 10000 >"$TMP/b10k"
diag "-batch with 10,000 service add lines:"
{ time k -batch "$TMP/b10k" >"$TMP/out" 2>"$TMP/err"; } 2>"$TMP/time"
rc=$?
diag "  $(cat "$TMP/time")"
[[ $rc == 0 && ! -s "$TMP/err" ]] && ok "batch of 10,000 adds" ||
	not_ok "batch of 10,000 adds: rc=$rc $(head -3 "$TMP/err")"
{ time k service show -j >"$TMP/json"; } 2>"$TMP/time"
diag "service show -j of 10,000 services: $(cat "$TMP/time")"
py "10,000 services dumped, sorted, with their frontends" '
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s) == 10000, len(s)
names = [x["name"] for x in s]
assert names == sorted(names)
x = {v["name"]: v for v in s}["default/svc-4242"]
assert x["frontends"] == [
	{"type": "clusterip", "family": "inet", "address": "10.96.16.146", "port": 80},
	{"type": "nodeport", "port": 34242}], x
'
sed 's/^service add \([^ ]*\) .*/service del \1/' "$TMP/b10k" >"$TMP/d10k"
{ time k -batch - <"$TMP/d10k" >"$TMP/out" 2>"$TMP/err"; } 2>"$TMP/time"
rc=$?
diag "-batch - (stdin) with 10,000 service del lines: $(cat "$TMP/time")"
[[ $rc == 0 && -z "$(k service show)" ]] && ok "batch of 10,000 dels from stdin" ||
	not_ok "batch dels: rc=$rc $(head -3 "$TMP/err")"

printf '%s\n' 'service add b/1 proto tcp clusterip 10.97.0.1:80' \
	'# comment' 'service add b/1 proto tcp clusterip 10.97.0.2:80' \
	'service add b/2 proto tcp clusterip 10.97.0.3:80' >"$TMP/bstop"
expect 1 "kvipctl: line 3: service add b/1: File exists: service exists" \
	"batch stops at the first kernel error" -batch "$TMP/bstop"
run service show -j
[[ "$out" == *'"b/1"'* && "$out" != *'"b/2"'* ]] && ok "lines before applied, after not" ||
	not_ok "batch stop state: $out"
expect 1 "kvipctl: line 1: service add b/1: File exists: service exists
kvipctl: line 3: service add b/1: File exists: service exists" \
	"-force continues after errors" -force -batch "$TMP/bstop"
run service show -j
[[ "$out" == *'"b/2"'* ]] && ok "-force ran the later lines" || not_ok "-force state: $out"

# ------------------------------------- batch: merged and pipelined ----

# A batch runs `service add X` + `endpoints set X` as one request (without
# -force) and pipelines requests (with -force); neither may change what a
# batch does or which line an error names.
#
# pairs N: N services m/svc-I, each an add and a set line (lines 2I+1 and
# 2I+2): tcp/udp, 1 to 4 endpoints with weights and flags, every fifth an
# IPv6 one more; m/svc-1234's 1,500 endpoints take several messages.
pairs() {
	awk -v n="$1" 'BEGIN {
		split("|@2|,local|@0,notserving", v, "|")
		for (i = 0; i < n; i++) {
			printf "service add m/svc-%d proto %s clusterip 10.100.%d.%d:80\n",
				i, i % 3 ? "tcp" : "udp", int((i + 1) / 256), (i + 1) % 256
			printf "endpoints set m/svc-%d", i
			ne = i == 1234 ? 1500 : 1 + i % 4
			for (j = 0; j < ne; j++)
				printf " 10.%d.%d.%d:%d%s", 200 + int(j / 256), int(i / 256), i % 256,
					8000 + j % 256, v[j % 4 + 1]
			if (i % 5 == 0)
				printf " [fd00::%x]:8080@3,terminating,notready", i + 1
			printf "\n"
		}
	}'
}

# batch_state DESC FILE LAST [FAILED...]: the table is what FILE's lines 1 to
# LAST (0: all) make, leaving out the FAILED ones.
batch_state() {
	local desc=$1
	shift
	k service show -j >"$TMP/json"
	if $PY - "$TMP/json" "$@" >"$TMP/pyout" 2>&1 <<'PYEOF'; then
import json, sys
dump = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().split("\n")
last = int(sys.argv[3]) or len(lines)
failed = {int(x) for x in sys.argv[4:]}
FLAGS = {"local": ("local", True), "terminating": ("terminating", True),
         "notready": ("ready", False), "notserving": ("serving", False)}

def ep(s):
    parts = s.split(",")
    ap, _, weight = parts[0].partition("@")
    addr, _, port = ap.rpartition(":")
    flags = {"ready", "serving"}
    for f in parts[1:]:
        name, on = FLAGS[f]
        (flags.add if on else flags.discard)(name)
    return (addr.strip("[]"), int(port), int(weight or 1), sorted(flags))

want = {}
for n, line in enumerate(lines[:last], 1):
    w = line.split()
    if not w or n in failed:
        continue
    if w[:2] == ["service", "add"]:
        assert w[2] not in want, "line %d: %s exists" % (n, w[2])
        fe = w[6].rpartition(":")
        want[w[2]] = (w[4], [(w[5], fe[0], int(fe[2]))], [])
    elif w[:2] == ["endpoints", "set"]:
        want[w[2]][2][:] = [ep(x) for x in w[3:]]
got = {s["name"]: (s["proto"],
                   [(f["type"], f.get("address"), f["port"]) for f in s["frontends"]],
                   [(e["address"], e["port"], e["weight"], sorted(e["flags"]))
                    for e in s["endpoints"]])
       for s in dump}
if got != want:
    print("%d services, want %d" % (len(got), len(want)))
    print("missing:", sorted(set(want) - set(got))[:5])
    print("extra:", sorted(set(got) - set(want))[:5])
    bad = [x for x in want if x in got and got[x] != want[x]]
    for x in bad[:3]:
        print(x, "got", got[x], "want", want[x])
    sys.exit(1)
PYEOF
		ok "$desc"
	else
		not_ok "$desc"
		diag "$(head -c 2000 "$TMP/pyout")"
	fi
}

# timed_load DESC ARGS...: kvipctl ARGS must succeed silently; timed.
timed_load() {
	local desc=$1
	shift
	{ time k "$@" >"$TMP/out" 2>"$TMP/err"; } 2>"$TMP/time"
	rc=$?
	diag "  $(cat "$TMP/time")"
	[[ $rc == 0 && ! -s "$TMP/err" && ! -s "$TMP/out" ]] && ok "$desc" ||
		not_ok "$desc: rc=$rc $(head -3 "$TMP/err")"
}

expect_ok "flush" flush
pairs 2000 >"$TMP/pairs"
diag "-batch of 2,000 service add + endpoints set pairs:"
timed_load "2,000 merged pairs load" -batch "$TMP/pairs"
batch_state "the dump equals the 2,000 pairs" "$TMP/pairs" 0
show_json m/svc-7
py "a merged add + set has its endpoints" '
import json, sys
s = json.load(open(sys.argv[1]))
assert [(e["address"], e["port"], e["weight"]) for e in s[0]["endpoints"]] == [
	("10.200.0.7", 8000, 1), ("10.200.0.7", 8001, 2),
	("10.200.0.7", 8002, 1), ("10.200.0.7", 8003, 0)], s
'
expect_ok "flush" flush
diag "-force -batch of the same (pipelined):"
timed_load "2,000 pairs load pipelined" -force -batch "$TMP/pairs"
batch_state "the dump equals the 2,000 pairs (-force)" "$TMP/pairs" 0

# Failures: line 2002 (m/svc-1000's set) lists an endpoint twice; line 3001
# adds m/svc-1500 on m/svc-0's frontend, so its set (3002) finds no service.
# The last line shows a service: it must see every line before it.
expect_ok "flush" flush
awk 'NR == 2002 { print "endpoints set m/svc-1000 10.9.9.9:80 10.9.9.9:80"; next }
     NR == 3001 { print "service add m/svc-1500 proto udp clusterip 10.100.0.1:80"; next }
     { print } END { print "service show m/svc-1999 -j" }' "$TMP/pairs" >"$TMP/pfail"
expect 1 "kvipctl: line 2002: endpoints set m/svc-1000: File exists: endpoint 10.9.9.9:80 listed twice" \
	"batch stops at a failed set merged with its add, naming its line" \
	-batch "$TMP/pfail"
[[ -z "$out" ]] && ok "nothing after the failed line ran" ||
	not_ok "the show at the end ran: $(head -c 200 <<<"$out")"
batch_state "lines 1-2001 applied (m/svc-1000 without endpoints), 2002 on not" \
	"$TMP/pfail" 2002 2002
expect_ok "flush" flush
expect 1 "kvipctl: line 2002: endpoints set m/svc-1000: File exists: endpoint 10.9.9.9:80 listed twice
kvipctl: line 3001: service add m/svc-1500: File exists: frontend 10.100.0.1:80/udp is used by service 'm/svc-0'
kvipctl: line 3002: endpoints set m/svc-1500: No such file or directory: no such service" \
	"-force: every failure named by its line, in order" \
	-force -batch "$TMP/pfail"
batch_state "-force: every other line applied" "$TMP/pfail" 0 2002 3001 3002
printf '%s\n' "$out" >"$TMP/json"
py "-force: the show ran after every line before it" '
import json, sys
s = json.load(open(sys.argv[1]))
assert s[0]["name"] == "m/svc-1999" and len(s[0]["endpoints"]) == 4, s
'
expect_ok "flush" flush

printf '%s\n' 'service add c/1 proto tcp clusterip 10.98.0.1:80' \
	'service add c/2 proto tcp clusterip 10.98.0.2:0' >"$TMP/bsyntax"
expect 2 "kvipctl: line 2: invalid port '0'" "batch syntax error" \
	-batch "$TMP/bsyntax"
run service show -j
[[ "$out" != *'"c/1"'* ]] && ok "batch with a syntax error sends nothing" ||
	not_ok "syntax error batch applied line 1"
expect_ok "flush" flush

# ------------------------------------------------------------ valgrind ----

if [[ ${KVIP_SMOKE_VALGRIND:-} == 1 ]] && command -v valgrind >/dev/null; then
	VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect)
	head -2000 "$TMP/b10k" >"$TMP/b2k"
	ip netns exec "$NS" "${VG[@]}" "$K" -batch "$TMP/b2k" 2>"$TMP/vg"
	rc=$?
	[[ $rc == 0 ]] && ok "valgrind: batch" || not_ok "valgrind: batch rc=$rc $(head -20 "$TMP/vg")"
	mapfile -t EPS <"$TMP/eps10k"
	ip netns exec "$NS" "${VG[@]}" "$K" endpoints set default/svc-1 "${EPS[@]}" 2>"$TMP/vg"
	rc=$?
	[[ $rc == 0 ]] && ok "valgrind: endpoints set 10k" || not_ok "valgrind: set rc=$rc $(head -20 "$TMP/vg")"
	ip netns exec "$NS" "${VG[@]}" "$K" service show -j >/dev/null 2>"$TMP/vg"
	rc=$?
	[[ $rc == 0 ]] && ok "valgrind: show -j" || not_ok "valgrind: show rc=$rc $(head -20 "$TMP/vg")"
	ip netns exec "$NS" "${VG[@]}" "$K" service show nope 2>"$TMP/vg"
	rc=$?
	[[ $rc == 1 ]] && ok "valgrind: show unknown" || not_ok "valgrind: show unknown rc=$rc $(head -20 "$TMP/vg")"
	ip netns exec "$NS" "${VG[@]}" "$K" flush 2>"$TMP/vg"
fi

# ---------------------------------------------------------- 100k lines ----

if [[ ${KVIP_SMOKE_BIG:-} == 1 ]]; then
	batch_lines 100000 >"$TMP/b100k"
	{ time k -c -batch "$TMP/b100k"; } 2>"$TMP/time"
	diag "-c -batch (parse only) of 100,000 lines: $(cat "$TMP/time")"
	diag "-batch with 100,000 service add lines:"
	{ time k -batch "$TMP/b100k" >"$TMP/out" 2>"$TMP/err"; } 2>"$TMP/time"
	rc=$?
	diag "  $(cat "$TMP/time")"
	[[ $rc == 0 ]] && ok "batch of 100,000 adds" ||
		not_ok "batch of 100,000 adds: $(head -3 "$TMP/err")"
	{ time k service show -j >"$TMP/json"; } 2>"$TMP/time"
	diag "service show -j of 100,000 services: $(cat "$TMP/time")"
	py "100,000 services dumped" 'import json, sys; assert len(json.load(open(sys.argv[1]))) == 100000'
	{ time k service show >"$TMP/out"; } 2>"$TMP/time"
	diag "service show of 100,000 services: $(cat "$TMP/time")"
	[[ $(grep -c '^Service ' "$TMP/out") == 100000 ]] && ok "human show of 100,000" ||
		not_ok "human show of 100,000"
	{ time k flush; } 2>"$TMP/time"
	diag "flush of 100,000 services: $(cat "$TMP/time")"
fi

echo "1..$((pass + fail))"
diag "vm-smoke: $pass passed, $fail failed"
((fail == 0))
