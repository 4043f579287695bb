#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Memory allocation failures during every kind of kvip netlink operation.
# Needs a kernel with fault injection (CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC,
# CONFIG_FAULT_INJECTION_DEBUG_FS: `selftests/vm-run --kernel debug`);
# skipped elsewhere.
#
#  ┌────────┐     ┌──────────────┐     ┌──────────┐  known service, never
#  │ client ├─────┤ node    kvip ├─────┤ backends │  touched: must keep
#  └────────┘     └──────────────┘     └──────────┘  translating throughout
#  ┌──────────────────────────────┐
#  │ fz: a table of 3 services    │  a Python sender (kvip_nl.py) whose
#  │ (tcp, udp v6, sctp nodeport) │  allocations fail on purpose
#  └──────────────────────────────┘
#
# Operations: new, replace (keeping and replacing endpoints, and creating),
# del, set endpoints (one message, empty, and three MORE/APPEND messages
# with the failure in each), flush, get, dump (all and by name). Every
# attempt starts from the same table and must either succeed, leaving the
# table exactly as the operation does without faults (a get or dump must
# then return exactly the table), or fail with ENOMEM (ENOBUFS when the
# netlink core loses the request or the reply), leaving the table exactly
# as before (a lost ack: before or after). Four ways to fail:
#
#   nth        /proc/thread-self/fail-nth = 1, 2, 3...: each allocation of
#              each operation fails in turn, until one runs without
#   random     failslab + fail_page_alloc, task-filter and make-it-fail on
#              the sender around each request, probability 20 %
#   interval   probability 100 %, every 5th allocation
#   space      probability 100 %, times 1, the first allocation after a
#              random budget of 0..8 KiB (space)
#
# Afterwards: the known service still translates, the fuzzed table keeps
# the dump contract, kvip's per-netns counts of services and (staged)
# endpoints leaked nothing (the limits can be filled exactly), and, on a
# kernel with kmemleak, no object leaked since the start of the test.
#
# KVIP_FAULTS_SEED    seed of the random phases (printed)
# KVIP_FAULTS_ROUNDS  attempts of each random phase (default 100)
# KVIP_FAULTS_KMEMLEAK=0  no kmemleak check here: check-debug scans after
#                     every test instead (three scans, a minute or more)

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 DBG=/sys/kernel/debug
readonly KMEMLEAK=$DBG/kmemleak P=/sys/module/kvip/parameters

ktap_print_header
[[ -d $DBG/failslab ]] || mount -t debugfs debugfs "$DBG" 2>/dev/null
[[ -d $DBG/failslab && -d $DBG/fail_page_alloc ]] ||
	ktap_exit_skip "no $DBG/failslab or fail_page_alloc (needs a fault injection kernel: vm-run --kernel debug)"
[[ -w /proc/thread-self/fail-nth ]] || ktap_exit_skip "no /proc/thread-self/fail-nth"
kvip_require
ktap_set_plan 9

seed=${KVIP_FAULTS_SEED:-$((RANDOM * 32768 + RANDOM))}
rounds=${KVIP_FAULTS_ROUNDS:-100}
ktap_print_msg "seed: $seed"

# kmemleak: forget what was unreferenced before this test.
leakcheck=0
if [[ -w $KMEMLEAK && "${KVIP_FAULTS_KMEMLEAK:-1}" != 0 ]]; then
	leakcheck=1
	echo scan >"$KMEMLEAK" && echo clear >"$KMEMLEAK"
fi

# Fault attributes: saved, restored at exit.
for a in failslab fail_page_alloc; do
	for k in probability interval times space verbose task-filter ignore-gfp-wait; do
		defer eval "echo $(<"$DBG/$a/$k") >$DBG/$a/$k"
	done
done
defer eval "echo $(<"$DBG/fail_page_alloc/min-order") >$DBG/fail_page_alloc/min-order"
for a in failslab fail_page_alloc; do
	# verbose=0: the injections themselves log nothing (a stack trace
	# would look like a kernel problem); sleeping allocations fail too.
	echo 0 >"$DBG/$a/probability"
	echo 0 >"$DBG/$a/verbose"
	echo 1 >"$DBG/$a/interval"
	echo -1 >"$DBG/$a/times"
	echo 0 >"$DBG/$a/space"
	echo Y >"$DBG/$a/task-filter"
	echo N >"$DBG/$a/ignore-gfp-wait"
done
echo 0 >"$DBG/fail_page_alloc/min-order"

kvip_topology 2 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"
kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/web proto tcp clusterip $VIP:80
endpoints set default/web $(endpoints4 8080 1 2)
EOF2
setup_ns fz || ktap_exit_fail_msg "netns"

# The sender: every attempt on a fresh socket, opened before the faults
# are armed and closed after (which also drops a staged set).
cat >"$KVIP_TMP/faults.py" <<'EOF'
import errno
import json
import os
import random
import sys

sys.path.insert(0, os.environ["KVIP_SELFTESTS"])
import kvip_nl as K

DBG = "/sys/kernel/debug"
ATTRS = ("failslab", "fail_page_alloc")
# Small receive buffers, reused: the replies fit, and no fresh user page
# needs a page table while allocations fail.
K.GenlSocket.recv_size = 65536
C = K.CMDS
DUMP = K.NLM_F_DUMP


def knob(attr, name, value=None):
    path = "%s/%s/%s" % (DBG, attr, name)
    if value is None:
        with open(path) as f:
            return int(f.read().split()[0])
    with open(path, "w") as f:
        f.write(str(value))


def svc_attrs(name, proto=6, fes=(), eps=None, flags=None, set_flags=None):
    a = [K.nla_str(1, name), K.nla_u8(2, proto)]
    if fes:
        a.append(K.nla_nest(4, [K.frontend(*fe) for fe in fes]))
    if eps is not None:
        a.append(K.nla_nest(5, [K.endpoint(*ep) for ep in eps]))
    if flags is not None:
        a.append(K.nla_u32(3, flags))
    return b"".join(a)


def eps_attrs(name, eps, set_flags=None):
    a = [K.nla_str(1, name)]
    if eps is not None:
        a.append(K.nla_nest(5, [K.endpoint(*ep) for ep in eps]))
    if set_flags is not None:
        a.append(K.nla_u32(7, set_flags))
    return b"".join(a)


def v4(base, n, port=8080):
    return [("10.%d.%d.%d" % (base, i // 200, 1 + i % 200), port, 1 + i % 7)
            for i in range(n)]


def v6(base, n, port=53):
    return [("fd00:%x::%x" % (base, i + 1), port, 1 + i % 3) for i in range(n)]


CIP, EXT, NP = 1, 2, 3
# The table every attempt starts from.
BASE = [
    (C["new_service"], svc_attrs("f/a", 6, [(CIP, "10.96.1.1", 80),
                                           (EXT, "192.0.2.1", 80)],
                                 v4(1, 20))),
    (C["new_service"], svc_attrs("f/b", 17, [(CIP, "fd00:96::1", 53)],
                                 v6(2, 10))),
    (C["new_service"], svc_attrs("f/c", 132, [(NP, None, 30001)])),
]
MORE, APPEND = 1, 2
# name -> list of (cmd, attrs, nlflags) sent on one socket. Requests stay
# under a page: bigger ones take vmalloc()ed skbs, whose failures the
# kernel logs with a stack trace (not a kvip problem, but it looks like one).
OPS = {
    "new": [(C["new_service"], svc_attrs(
        "f/new", 6, [(CIP, "10.96.1.9", 80), (CIP, "fd00:96::9", 80)],
        v4(9, 5) + v6(9, 5, 8080)), 0)],
    "replace-keep-endpoints": [(C["replace_service"], svc_attrs(
        "f/a", 17, [(CIP, "10.96.1.2", 53)], flags=0), 0)],
    "replace-with-endpoints": [(C["replace_service"], svc_attrs(
        "f/a", 6, [(CIP, "10.96.1.1", 80), (NP, None, 30002)],
        v4(3, 30)), 0)],
    "replace-create": [(C["replace_service"], svc_attrs(
        "f/new", 6, [(EXT, "192.0.2.9", 443)], v4(4, 3)), 0)],
    "del": [(C["del_service"], K.nla_str(1, "f/b"), 0)],
    "set": [(C["set_endpoints"], eps_attrs("f/a", v4(5, 60)), 0)],
    "set-empty": [(C["set_endpoints"], eps_attrs("f/a", None), 0)],
    "set-chunked": [
        (C["set_endpoints"], eps_attrs("f/b", v6(6, 40), MORE), 0),
        (C["set_endpoints"], eps_attrs("f/b", v6(7, 40), APPEND | MORE), 0),
        (C["set_endpoints"], eps_attrs("f/b", v6(8, 40), APPEND), 0)],
    "flush": [(C["flush"], b"", 0)],
    "get": [(C["get_service"], K.nla_str(1, "f/a"), 0)],
    "dump": [(C["get_service"], b"", DUMP)],
    "dump-name": [(C["get_service"], K.nla_str(1, "f/b"), DUMP)],
}
READS = ("get", "dump", "dump-name")


def norm(svcs):
    """A table (or replies) without counters, comparable."""
    out = []
    for s in svcs:
        s = {k: v for k, v in s.items() if k != "stats"}
        if "endpoints" in s:
            s["endpoints"] = sorted(
                json.dumps({k: v for k, v in e.items() if k != "stats"},
                           sort_keys=True) for e in s["endpoints"])
        out.append(json.dumps(s, sort_keys=True))
    return sorted(out)


def table():
    for _ in range(20):
        try:
            return norm(K.KvipNl().services())
        except K.NlError as e:
            if e.errno != errno.EINTR:
                raise
    raise RuntimeError("dump interrupted 20 times")


def reset():
    nl = K.KvipNl()
    nl.request(C["flush"])
    for cmd, attrs in BASE:
        nl.request(cmd, attrs)
    nl.sock.close()


class Stats:
    def __init__(self):
        self.c = {}
        self.msgs = {}
        self.findings = []

    def count(self, key, n=1):
        self.c[key] = self.c.get(key, 0) + n


ST = Stats()


def finding(text):
    ST.findings.append(text)
    print("FINDING " + text, flush=True)


def run_op(name, msgs, fault_at, arm, disarm):
    """Send MSGS on one socket, the one at index FAULT_AT with faults armed.
    Returns (outcome, replies of the faulted message, injected)."""
    nl = K.KvipNl()
    replies = None
    outcome = "ok"
    injected = 0
    try:
        for i, (cmd, attrs, fl) in enumerate(msgs):
            if i != fault_at:
                nl.request(cmd, attrs, fl)
                continue
            arm()
            try:
                replies = nl.request(cmd, attrs, fl)
            except K.NlError as e:
                outcome = ("nlerr", e.errno, e.msg)
            except OSError as e:
                outcome = ("oserr", e.errno, None)
            finally:
                injected = disarm()
            if outcome != "ok":
                break
    finally:
        nl.sock.close()
    return outcome, replies, injected


def attempt(name, fault_at, arm, disarm, pre, post, expect_reply):
    outcome, replies, injected = run_op(name, OPS[name], fault_at, arm, disarm)
    if injected:
        ST.count("injected", injected)
    now = table()
    where = "%s (message %d)" % (name, fault_at + 1)
    if outcome == "ok":
        ST.count("ok-injected" if injected else "ok")
        if now != post:
            finding("%s succeeded but the table is not the new one: %s"
                    % (where, now))
        if expect_reply is not None and replies is not None:
            got = norm(merge(replies))
            if got != expect_reply:
                finding("%s: reply differs from the table: %s" % (where, got))
        return outcome, injected
    kind, err, msg = outcome
    if not injected:
        finding("%s failed without an injected fault: %s %s %s"
                % (where, kind, K.errname(err), msg))
    elif kind == "nlerr" and err == errno.ENOMEM:
        ST.count("enomem")
        key = msg or "(no extack message)"
        ST.msgs[key] = ST.msgs.get(key, 0) + 1
    elif err == errno.ENOBUFS:
        ST.count("enobufs-" + kind)
    else:
        finding("%s failed with %s %s (%s), not ENOMEM"
                % (where, kind, K.errname(err), msg))
    if now != pre and not (kind == "oserr" and now == post):
        finding("%s failed (%s %s) but the table changed: %s"
                % (where, kind, K.errname(err), now))
    return outcome, injected


def merge(replies):
    """Dump/get replies merged per service (continuations appended)."""
    out = []
    for m in replies:
        if out and out[-1]["name"] == m.get("name") and "endpoint_count" not in m:
            out[-1].setdefault("endpoints", []).extend(m.get("endpoints", []))
        else:
            out.append(dict(m))
    return out


def references():
    """The table before and after each operation, without faults."""
    reset()
    pre = table()
    posts, replies = {}, {}
    for name, msgs in OPS.items():
        reset()
        outcome, rep, _ = run_op(name, msgs, len(msgs) - 1,
                                 lambda: None, lambda: 0)
        if outcome != "ok":
            raise RuntimeError("%s fails without faults: %s" % (name, outcome))
        posts[name] = table()
        replies[name] = norm(merge(rep)) if name in READS else None
    reset()
    return pre, posts, replies


def phase_nth(pre, posts, replies):
    fd = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    n = [0]

    def arm():
        os.write(fd, b"%d" % n[0])

    def disarm():
        left = int(os.pread(fd, 32, 0))
        os.write(fd, b"0")
        return 1 if left == 0 else 0

    for name, msgs in OPS.items():
        for at in range(len(msgs)):
            n[0] = 0
            while True:
                n[0] += 1
                outcome, injected = attempt(name, at, arm, disarm, pre,
                                            posts[name], replies[name])
                if outcome != "ok" or injected:
                    ST.count("nth-" + name)
                if table() != pre:
                    reset()
                if not injected or n[0] >= 500:
                    break
            print("# nth: %s message %d: %d allocations can fail"
                  % (name, at + 1, n[0] - 1), flush=True)
    os.close(fd)


def times_left():
    return sum(knob(a, "times") for a in ATTRS)


def phase_knobs(mode, pre, posts, replies, rounds, rng):
    mif = os.open("/proc/self/make-it-fail", os.O_WRONLY)
    space = [0]
    for a in ATTRS:
        knob(a, "probability", 20 if mode == "random" else 100)
        knob(a, "interval", 5 if mode == "interval" else 1)
        knob(a, "times", 1 if mode == "space" else 1000000)
        knob(a, "space", 0)

    def arm():
        if mode == "space":
            for a in ATTRS:
                knob(a, "times", 1)
                knob(a, "space", space[0])
        arm.before = times_left()
        os.write(mif, b"1")

    def disarm():
        os.write(mif, b"0")
        return arm.before - times_left()

    names = list(OPS)
    for _ in range(rounds):
        name = rng.choice(names)
        at = rng.randrange(len(OPS[name]))
        space[0] = rng.randrange(8192)
        outcome, injected = attempt(name, at, arm, disarm, pre, posts[name],
                                    replies[name])
        ST.count(mode + "-attempts")
        ST.count(mode + "-injected", injected)
        if table() != pre:
            reset()
    for a in ATTRS:
        knob(a, "probability", 0)
        knob(a, "times", -1)
        knob(a, "space", 0)
        knob(a, "interval", 1)
    os.close(mif)


def main():
    mode, seed, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pre, posts, replies = references()
    if mode == "nth":
        phase_nth(pre, posts, replies)
    else:
        phase_knobs(mode, pre, posts, replies, rounds, random.Random(seed))
    print("# %s: %s" % (mode, " ".join("%s=%d" % kv for kv in sorted(ST.c.items()))))
    for m, n in sorted(ST.msgs.items()):
        print("# ENOMEM x%d: %s" % (n, m))
    print("RESULT injected=%d findings=%d" % (ST.c.get("injected", 0),
                                               len(ST.findings)), flush=True)
    if table() != pre:
        print("FINDING the table is not back to the base table at the end")
        return 1
    return 1 if ST.findings else 0


sys.exit(main())
EOF

total_injected=0
# run_phase MODE: one phase in fz; sets PHASE_RC, PHASE_INJECTED.
run_phase() {
	local out=$KVIP_TMP/$1.out
	# nsenter, not ip netns exec: that mounts a /sys without debugfs.
	KVIP_SELFTESTS=$KVIP_SELFTESTS nsenter --net="/run/netns/$fz" \
		"$PYTHON" "$KVIP_TMP/faults.py" "$1" "$seed" "$rounds" >"$out" 2>&1
	PHASE_RC=$?
	grep -Ev '^# nth:' "$out" | tail -n 40 | sed 's/^/# /' >&"$KTAP_OUT"
	grep -E '^# nth:' "$out" | sed 's/^/# /' >&"$KTAP_OUT"
	PHASE_INJECTED=$(sed -n 's/^RESULT injected=\([0-9]*\).*/\1/p' "$out")
	PHASE_INJECTED=${PHASE_INJECTED:-0}
	total_injected=$((total_injected + PHASE_INJECTED))
}

traffic_ok() {
	local out=$KVIP_TMP/traffic.out
	client_run "$out" "$client" -n 10 "$VIP" 80 >/dev/null
}

for phase in nth random interval space; do
	run_phase "$phase"
	ktap_check "$phase: $PHASE_INJECTED faults injected, every operation succeeded or failed cleanly, table exact" \
		"exit $PHASE_RC" [ "$PHASE_RC" = 0 -a "$PHASE_INJECTED" -gt 0 ]
done
ktap_print_msg "faults injected in total: $total_injected"

traffic_ok
ktap_check "the known service still translates (10 of 10 connections)" \
	"${R[ok]:-?} of 10" [ "${R[ok]:-}" = 10 ]

d=$(kvip_dump_check "$fz")
ktap_check "the table faults were injected into keeps the dump contract" "$d" \
	matches "$d" '^ok 3$'

# No leaked counts: with the limits at exactly what fits, the netns can
# still be filled up to them (a leaked service or staged endpoint would
# make the last one fail with ENOSPC).
old_svc=$(<"$P/max_services") old_ep=$(<"$P/max_endpoints")
defer eval "echo $old_svc >$P/max_services; echo $old_ep >$P/max_endpoints"
echo 5 >"$P/max_services"
echo 200 >"$P/max_endpoints"
out=$(py_ns "$fz" "$KVIP_NL" -b - 2>&1 <<'EOF2'
flush
new_service name=l/1 proto=tcp frontends=[{type=clusterip family=inet addr=10.97.0.1 port=80}]
new_service name=l/2 proto=tcp frontends=[{type=clusterip family=inet addr=10.97.0.2 port=80}]
new_service name=l/3 proto=tcp frontends=[{type=clusterip family=inet addr=10.97.0.3 port=80}]
new_service name=l/4 proto=tcp frontends=[{type=clusterip family=inet addr=10.97.0.4 port=80}]
new_service name=l/5 proto=tcp frontends=[{type=clusterip family=inet addr=10.97.0.5 port=80}]
EOF2
)
rc=$?
ktap_check "5 services fit under max_services=5 after the faults" "exit $rc: $out" [ "$rc" = 0 ]
eps=""
for i in $(seq 1 100); do eps+="{family=inet addr=10.98.0.$i port=80} "; done
out=$(py_ns "$fz" "$KVIP_NL" -b - 2>&1 <<EOF2
set_endpoints name=l/1 endpoints=[$eps]
set_endpoints name=l/2 endpoints=[$eps]
EOF2
)
rc=$?
ktap_check "200 endpoints fit under max_endpoints=200 after the faults" "exit $rc: $out" [ "$rc" = 0 ]
echo "$old_svc" >"$P/max_services"
echo "$old_ep" >"$P/max_endpoints"
py_ns "$fz" "$KVIP_NL" flush >/dev/null

if ((leakcheck)); then
	# kmemleak reports objects unreferenced for 5 s, found by two scans.
	nap 6
	echo scan >"$KMEMLEAK"
	echo scan >"$KMEMLEAK"
	leaks=$(grep -c '^unreferenced object' "$KMEMLEAK")
	if ((leaks)); then
		head -n 60 "$KMEMLEAK" | sed 's/^/# /' >&"$KTAP_OUT"
	fi
	ktap_check "kmemleak: no object leaked during the test" "$leaks leaked" [ "$leaks" = 0 ]
elif [[ -w $KMEMLEAK ]]; then
	ktap_test_skip "kmemleak: no object leaked during the test" \
		"KVIP_FAULTS_KMEMLEAK=0: the caller scans afterwards"
else
	ktap_test_skip "kmemleak: no object leaked during the test" "no $KMEMLEAK"
fi

ktap_finished
