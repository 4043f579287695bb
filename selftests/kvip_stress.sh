#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stress: the control plane, dumps and new flows all at once, then rmmod
# under traffic, and no memory left behind.
#
#  ┌───────────────┐     ┌──────────────────────────────┐     ┌─────────────┐
#  │ client        ├veth─┤ node  kvip                   ├br0──┤ backend1..3 │
#  │ stable loop   │     │ default/stable 10.96.0.10:80 │     │ :8080, also │
#  │  10.96.0.10   │     │ writers w0 w1 (w0/hot owns   │     │ 10.1i.0.0/16│
#  │ churn loop    │     │  10.96.1.1:80 now and then)  │     │ (AnyIP)     │
#  │  10.96.1.1    │     │ dumpers: raw netlink, kvipctl│     └─────────────┘
#  └───────────────┘     └──────────────────────────────┘
#                        ┌──────────────────────────────┐
#                        │ aux   writers w2 w3; w2 also │
#                        │ flushes the whole table      │
#                        └──────────────────────────────┘
#
# For KVIP_STRESS_SECONDS (default 10, under a minute in all under TCG;
# the long mode is minutes: run_tests' timeout is 240 s, so run it alone,
#   KVIP_STRESS_SECONDS=300 selftests/vm-run -- selftests/kvip_stress.sh
# ), each role is one long-running process (python, selftests/kvip_nl.py):
#
#  writers   add, replace (and create by replace), delete services, swap
#            endpoint sets of 0 to 3,000 endpoints (multi-message sets of
#            more than 32 KiB among them), flush their own services (a
#            private name prefix and frontend range each), abandon staged
#            sets (socket closed, service deleted) and check that another
#            socket's APPEND gets ESRCH; in the node netns every error is a
#            failure and now and then a service is read back and compared.
#            In aux, w2 also flushes everything and both tolerate ENOENT.
#  dumpers   in the node netns, full dumps in a loop: raw netlink (1 MiB
#            and 8 KiB receive buffers, i.e. 32 KiB and 8 KiB messages) and
#            `kvipctl service show -j`; NLM_F_DUMP_INTR means retry (kvipctl
#            retries by itself). Each complete dump must keep the contract
#            and be self-consistent: unique names, no frontend in two
#            services, no endpoint twice in a set, the stable service
#            exactly as configured, each writer's services in its ranges.
#  traffic   kvip_client.py loops: through the stable service none may fail;
#            through 10.96.1.1, which w0/hot owns, loses, and points at
#            sets of up to 3,000 reachable endpoints, failures are allowed
#            but no connection may hang.
#
# Then the node writers stop and the node table must be exactly what they
# think it is; `rmmod kvip` runs while traffic, dumps and the aux writers
# go on, first while a dump held open pins the module (rmmod must fail
# with EBUSY and is retried, for up to 60 s in all);
# the namespaces go; kernel memory returns to the baseline taken before
# the module was loaded (lib.sh, kvip_mem_*: slab, kmalloc, percpu, vmalloc
# and the memory cgroup all kvip configuration ran in); the module loads
# again and works.
#
# Prints operations per second of every role.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.10 HOT_VIP=10.96.1.1 STABLE=default/stable
readonly DURATION=${KVIP_STRESS_SECONDS:-10}

ktap_print_header
kvip_require
ktap_set_plan 11

mark=$(log_lines)

t_setup=$SECONDS
# --- baseline: dependencies loaded, kvip not ---
modprobe -a veth bridge 2>/dev/null
kvip_unload 30 || ktap_exit_fail_msg "kvip is loaded and cannot be unloaded"
kvip_memcg_setup || ktap_print_msg "no memory cgroup: global counters only"
# shellcheck disable=SC2034 # filled through namerefs
declare -A MEM_BASE MEM_NOW MEM_LOADED
kvip_mem_baseline MEM_BASE
kvip_load
elapsed() { echo "t+$((SECONDS - t_setup))s"; }
ktap_print_msg "$(elapsed): baseline taken, kvip loaded"

# --- the roles ---
stress_py=$KVIP_TMP/stress.py
cat >"$stress_py" <<'PYEOF'
"""kvip_stress.sh's roles: writers and dumpers (see the test)."""
import argparse
import errno
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.environ["KVIP_SELFTESTS"])
import kvip_nl as K  # noqa: E402

NEW, DEL, GET, SET, FLUSH, REPLACE = 1, 2, 3, 4, 5, 6
MORE, APPEND = 1, 2
CHUNK = 32 * 1024           # as kvipctl: bytes of endpoints per message
NESTED = K.NLA_F_NESTED
FE_TYPES = {1: "clusterip", 2: "external", 3: "nodeport"}
PROTOS = {6: "tcp", 17: "udp", 132: "sctp"}
STABLE = ("default/stable", "tcp", ["clusterip 10.96.0.10:80"],
          ["10.0.1.1:8080", "10.0.1.2:8080", "10.0.1.3:8080"])
HOT_VIP = "10.96.1.1"
# Set sizes (weight): 800 endpoints (35 KiB) and more take several messages.
SIZES = [(0, 4), (1, 8), (2, 8), (3, 10), (10, 10), (50, 8), (100, 8),
         (800, 5), (1500, 3), (3000, 2)]
LARGE = 800


def stopping(a):
    return os.path.exists(a.stop)


def ready(a):
    """Tell the test this role is up (python starts slowly under TCG)."""
    open(a.report + ".ready", "w").close()


def gone(a):
    return bool(a.gone) and os.path.exists(a.gone)


class Report:
    def __init__(self, a, role):
        self.a = a
        self.role = role
        self.t0 = time.monotonic()
        self.counts = {}
        self.failures = []
        self.nfail = 0

    def count(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, text):
        self.nfail += 1
        if len(self.failures) < 5:
            self.failures.append(text)
        print("%s: %s" % (self.role, text), file=sys.stderr, flush=True)

    def write(self, main_key, extra=""):
        secs = time.monotonic() - self.t0
        n = self.counts.get(main_key, 0)
        line = "role=%s secs=%.1f %s=%d rate=%.1f/s failures=%d" % (
            self.role, secs, main_key, n, n / secs if secs else 0, self.nfail)
        for k in sorted(self.counts):
            if k != main_key:
                line += " %s=%d" % (k, self.counts[k])
        with open(self.a.report, "w") as f:
            f.write(line + extra + "\n")
            for t in self.failures:
                f.write("failure: %s\n" % t)


# --- endpoint sets ----------------------------------------------------------

def ep_nest(addr, port, weight, flags):
    """One endpoint list entry, 44 bytes."""
    return (struct.pack("=HH", 44, NESTED) + K.nla_u16(1, socket.AF_INET) +
            K.nla(2, addr) + K.nla_u16(3, port) + K.nla_u32(4, weight) +
            K.nla_u32(5, flags))


_sets = {}


def endpoint_set(size, variant, style):
    """(entries, chunks): SIZE reachable endpoints 10.1b.x.y:8080, b = 1..3
    (backend b answers on all of 10.1b.0.0/16). VARIANT moves the range;
    STYLE "plain" (weight 1, ready) or "mixed" (weights 0..3, some
    terminating or not ready)."""
    key = (size, variant, style)
    if key in _sets:
        return _sets[key]
    base = variant * 28
    tail_plain = K.nla_u16(3, 8080) + K.nla_u32(4, 1) + K.nla_u32(5, 3)
    head = struct.pack("=HH", 44, NESTED) + K.nla_u16(1, socket.AF_INET) + \
        struct.pack("=HH", 8, 2)
    entries = []
    for k in range(size):
        j = k // 3
        addr = bytes((10, 11 + k % 3, base + j // 250, j % 250 + 1))
        if style == "plain":
            entries.append(head + addr + tail_plain)
        else:
            w = k % 4
            fl = 3 if k % 5 else (2 | 4 if k % 2 else 2)
            entries.append(ep_nest(addr, 8080, w, fl))
    chunks, cur, n = [], [], 0
    for e in entries:
        if cur and n + len(e) > CHUNK:
            chunks.append(b"".join(cur))
            cur, n = [], 0
        cur.append(e)
        n += len(e)
    if cur:
        chunks.append(b"".join(cur))
    if len(_sets) > 40:
        _sets.clear()
    _sets[key] = (entries, chunks)
    return _sets[key]


def fe_nest(addr, port):
    return K.frontend(1, addr, port)


# --- writer -----------------------------------------------------------------

class Writer:
    def __init__(self, a):
        self.a = a
        self.rnd = random.Random(a.seed)
        self.nl = K.KvipNl()
        self.rep = Report(a, a.role)
        self.model = {}         # name -> {"proto", "fe": [(addr, port)], "eps"}
        self.serial = 0
        self.pool = ["10.%d.%d.%d" % (100 + a.index, j // 250, j % 250 + 1)
                     for j in range(48)]
        self.hot = a.prefix + "hot" if a.hot else None

    # requests
    def req(self, cmd, attrs, what):
        self.rep.count("requests")
        return self.nl.request(cmd, attrs)

    def used(self):
        return {f for m in self.model.values() for f in m["fe"]}

    def pick_fes(self, keep=()):
        free = [(p, 80) for p in self.pool if (p, 80) not in self.used()]
        cand = list(keep) + free
        n = min(len(cand), self.rnd.randint(1, 3))
        return self.rnd.sample(cand, n) if n else []

    def svc_attrs(self, name, proto, fes, eps=None):
        attrs = K.nla_str(1, name) + K.nla_u8(2, proto) + \
            K.nla_nest(4, [fe_nest(a, p) for a, p in fes])
        if eps is not None:
            attrs += K.nla(5, b"".join(eps), nested=True)
        return attrs

    def small_set(self):
        size = self.rnd.choice([0, 1, 2, 3, 10, 50])
        return size, endpoint_set(size, self.rnd.randrange(8), "mixed")[0]

    def choose_size(self, name):
        sizes, weights = zip(*SIZES)
        size = self.rnd.choices(sizes, weights)[0]
        # One large set per writer at a time keeps dumps short.
        if size >= LARGE and any(m["eps"] >= LARGE for n, m in
                                 self.model.items() if n != name):
            size = 100
        return size

    # operations
    def op_add(self, name=None, replace=False):
        if name is None:
            if len(self.model) >= self.a.max_services:
                return self.op_del()
            self.serial += 1
            name = "%ss%d" % (self.a.prefix, self.serial)
        if name == self.hot:
            proto, fes = 6, [(HOT_VIP, 80)]
        else:
            proto = 17 if self.rnd.random() < 0.2 else 6
            fes = self.pick_fes()
            if not fes:
                return self.op_del()
        eps = None
        if self.rnd.random() < 0.3:
            size, eps = self.small_set() if name != self.hot else \
                (3, endpoint_set(3, 0, "plain")[0])
        self.req(REPLACE if replace else NEW,
                 self.svc_attrs(name, proto, fes, eps), "add")
        self.model[name] = {"proto": proto, "fe": fes,
                            "eps": size if eps is not None else 0}
        self.rep.count("replace_create" if replace else "add")
        return name

    def op_replace(self):
        name = self.pick()
        if name is None:
            return self.op_add()
        m = self.model[name]
        if name == self.hot:
            # Move the VIP away (nothing translates it) or back.
            proto = 6
            if (HOT_VIP, 80) in m["fe"]:
                fes = self.pick_fes() or [(HOT_VIP, 80)]
            else:
                fes = [(HOT_VIP, 80)]
        else:
            proto = m["proto"] if self.rnd.random() < 0.9 else \
                (17 if m["proto"] == 6 else 6)
            fes = self.pick_fes(keep=m["fe"])
        eps = None
        if self.rnd.random() < 0.2 and name != self.hot:
            size, eps = self.small_set()
        self.req(REPLACE, self.svc_attrs(name, proto, fes, eps), "replace")
        m.update(proto=proto, fe=fes)
        if eps is not None:
            m["eps"] = size
        self.rep.count("replace")
        return name

    def set_endpoints(self, nl, name, chunks, count_req=True):
        nattr = K.nla_str(1, name)
        if not chunks:
            body = nattr if self.rnd.random() < 0.5 else \
                nattr + K.nla(5, b"", nested=True)
            nl.request(SET, body)
            self.rep.count("requests")
            return
        last = len(chunks) - 1
        for i, c in enumerate(chunks):
            fl = (APPEND if i else 0) | (MORE if i < last else 0)
            body = nattr + K.nla(5, c, nested=True)
            if fl:
                body += K.nla_u32(7, fl)
            nl.request(SET, body)
            self.rep.count("requests")
        if last:
            self.rep.count("multi_msg_sets")

    def op_set(self, name=None):
        name = name or self.pick()
        if name is None:
            return self.op_add()
        size = self.choose_size(name)
        style = "plain" if name == self.hot or self.rnd.random() < 0.5 \
            else "mixed"
        _, chunks = endpoint_set(size, self.rnd.randrange(8), style)
        self.set_endpoints(self.nl, name, chunks)
        self.model[name]["eps"] = size
        self.rep.count("set")
        self.rep.count("endpoints_sent", size)
        return name

    def op_del(self, name=None):
        name = name or self.pick()
        if name is None:
            return None
        self.req(DEL, K.nla_str(1, name), "del")
        del self.model[name]
        self.rep.count("del")
        if name == self.hot:
            self.op_add(self.hot)
        return None

    def op_flush_own(self):
        for name in list(self.model):
            if name != self.hot:
                self.op_del(name)
        self.rep.count("flush_own")

    def op_flush_all(self):
        self.req(FLUSH, b"", "flush")
        self.model.clear()
        self.rep.count("flush_all")

    def op_abandon(self):
        """A staged set that is never committed: its socket closes, or its
        service goes; meanwhile an APPEND from another socket gets ESRCH."""
        name = self.pick()
        if name is None:
            return self.op_add()
        _, chunks = endpoint_set(1500, self.rnd.randrange(8), "plain")
        other = K.KvipNl()
        try:
            other.request(SET, K.nla_str(1, name) +
                          K.nla(5, chunks[0], nested=True) +
                          K.nla_u32(7, MORE))
            self.rep.count("requests")
            try:
                self.nl.request(SET, K.nla_str(1, name) +
                                K.nla(5, chunks[1], nested=True) +
                                K.nla_u32(7, APPEND | MORE))
                self.rep.fail("APPEND to a set staged by another socket "
                              "succeeded (%s)" % name)
            except K.NlError as e:
                if e.errno != errno.ESRCH and not (
                        self.a.tolerant and e.errno == errno.ENOENT):
                    raise
            if self.rnd.random() < 0.5:
                self.op_del(name)
                try:
                    other.request(SET, K.nla_str(1, name) +
                                  K.nla(5, chunks[1], nested=True) +
                                  K.nla_u32(7, APPEND))
                    if name not in self.model:
                        self.rep.fail("APPEND after the service was "
                                      "deleted succeeded (%s)" % name)
                except K.NlError as e:
                    # ENOENT, or ESRCH for the re-created hot service.
                    if e.errno not in (errno.ENOENT, errno.ESRCH):
                        raise
        finally:
            other.sock.close()
        self.rep.count("abandon")
        return None

    def pick(self):
        names = sorted(self.model)
        if self.hot in self.model and self.rnd.random() < 0.3:
            return self.hot
        return self.rnd.choice(names) if names else None

    def verify(self, name):
        m = self.model.get(name)
        # GET answers EMSGSIZE for sets of more than ~900 (one attribute).
        if m is None or m["eps"] > 800:
            return
        got = self.nl.request(GET, K.nla_str(1, name))[0]
        self.rep.count("verify")
        fes = sorted((f["addr"], f["port"]) for f in got.get("frontends", []))
        eps = got.get("endpoints", [])
        want = (m["proto"], sorted(m["fe"]), m["eps"])
        have = (got.get("proto"), fes, got.get("endpoint_count"))
        if want != have or len(eps) != m["eps"]:
            self.rep.fail("%s reads back as %s, %d endpoints; expected %s" %
                          (name, have, len(eps), want))

    def run(self):
        a = self.a
        if self.hot:
            self.op_add(self.hot)
            self.op_set(self.hot)
        ready(a)
        ops = [(self.op_add, 16), (self.op_replace, 14), (self.op_set, 40),
               (self.op_del, 10), (self.op_abandon, 3),
               (lambda: self.op_add(replace=True), 4)]
        fns, weights = zip(*ops)
        n = 0
        while not stopping(a):
            n += 1
            try:
                if n % 50 == 0:
                    self.op_flush_own()
                    continue
                if a.flush_all_every and n % a.flush_all_every == 0:
                    self.op_flush_all()
                    continue
                if n % 7 == 0 and self.hot:
                    name = self.op_set(self.hot)
                else:
                    name = self.rnd.choices(fns, weights)[0]()
                self.rep.count("ops")
                if not a.tolerant and name and self.rnd.random() < 0.15:
                    self.verify(name)
            except K.NlError as e:
                if gone(a):
                    self.rep.count("errors_after_rmmod")
                    break
                if a.tolerant and e.errno == errno.ENOENT:
                    # Flushed by w2 under our feet: see what is left.
                    self.rep.count("enoent")
                    self.resync()
                    continue
                self.rep.fail("op %d: %s" % (n, e))
                self.resync()
            if a.pace:
                time.sleep(a.pace)
        self.rep.count("ops", 0)
        self.rep.write("ops", " requests_per_s=%.1f" % (
            self.rep.counts.get("requests", 0) /
            max(time.monotonic() - self.rep.t0, 0.001)))
        if a.model:
            with open(a.model, "w") as f:
                json.dump({n: {"proto": m["proto"],
                               "fe": sorted("%s:%d" % x for x in m["fe"]),
                               "eps": m["eps"]}
                           for n, m in self.model.items()}, f)

    def resync(self):
        """Believe the kernel again: after a failure (so that one failure
        is reported once), or after a flush by someone else."""
        self.model.clear()
        for _ in range(20):
            try:
                svcs = dump_raw(self.nl, self.rep)
            except K.NlError as e:
                if e.errno == errno.EINTR:
                    continue
                return
            for s in svcs:
                if s[0].startswith(self.a.prefix):
                    self.model[s[0]] = {
                        "proto": {"tcp": 6, "udp": 17}[s[1]],
                        "fe": [tuple_fe(f) for f in s[2]], "eps": len(s[3])}
            return


def tuple_fe(text):
    addr, port = text.split(" ")[1].rsplit(":", 1)
    return (addr, int(port))


# --- dumps ------------------------------------------------------------------

class SmallNl(K.KvipNl):
    # Read with 8 KiB buffers: the kernel then fills 8 KiB messages.
    recv_size = 8192


def dump_raw(nl, rep):
    """A whole dump, merged per the contract: [(name, proto, [frontend
    text], [(addr, port)])]. Raises NlError(EINTR) for NLM_F_DUMP_INTR,
    NlError(EBADMSG) when the dump breaks the contract."""
    seq = nl.send_raw(nl.family, GET, 1, b"", K.NLM_F_DUMP)
    out = []
    counts = {}
    for _, _, payload in nl.collect(seq):
        name = proto = count = None
        fes, eps = [], []
        for t, v in K.iter_attrs(payload[4:]):
            t &= K.NLA_TYPE_MASK
            if t == 1:
                name = v.split(b"\0", 1)[0].decode()
            elif t == 2:
                proto = PROTOS.get(v[0], str(v[0]))
            elif t == 8:
                count = struct.unpack("=I", v)[0]
            elif t == 4:
                for _, f in K.iter_attrs(v):
                    d = K.parse_attrs(f, "frontend")
                    fes.append("%s %s:%d" % (FE_TYPES.get(d.get("type")),
                                             d.get("addr", "*"), d["port"]))
            elif t == 5:
                for _, e in K.iter_attrs(v):
                    addr = port = None
                    for et, ev in K.iter_attrs(e):
                        if et == 2:
                            addr = socket.inet_ntoa(ev) if len(ev) == 4 \
                                else socket.inet_ntop(socket.AF_INET6, ev)
                        elif et == 3:
                            port = struct.unpack("=H", ev)[0]
                    eps.append("%s:%d" % (addr, port))
        if count is not None:
            if name in counts:
                raise K.NlError(errno.EBADMSG, "service %s dumped twice" % name)
            counts[name] = count
            out.append((name, proto, sorted(fes), eps))
        elif out and out[-1][0] == name:
            out[-1][3].extend(eps)
        else:
            raise K.NlError(errno.EBADMSG, "continuation for %s does not "
                            "follow its service" % name)
    for s in out:
        if len(s[3]) != counts[s[0]]:
            raise K.NlError(errno.EBADMSG, "%s: endpoint count %d, %d "
                            "endpoints dumped" % (s[0], counts[s[0]],
                                                  len(s[3])))
    return out


def dump_kvipctl(kvipctl):
    """[(name, proto, [frontend text], [endpoint text])] from kvipctl -j;
    None when kvipctl gave up on a table that kept changing."""
    p = subprocess.run([kvipctl, "service", "show", "-j"],
                       capture_output=True, text=True)
    if p.returncode:
        if "dump interrupted" in p.stderr:
            return None
        raise K.NlError(errno.EIO, "kvipctl exit %d: %s" % (
            p.returncode, p.stderr.strip()[:300]))
    out = []
    for s in json.loads(p.stdout):
        fes = sorted("%s %s:%d" % (f["type"], f.get("address", "*"), f["port"])
                     for f in s["frontends"])
        eps = ["%s:%d" % (e["address"], e["port"]) for e in s["endpoints"]]
        out.append((s["name"], s["proto"], fes, eps))
    return out


def check_table(svcs, prefixes):
    """Problems of one consistent dump, as text."""
    bad = []
    names = set()
    owners = {}
    for name, proto, fes, eps in svcs:
        if name in names:
            bad.append("service %s twice" % name)
        names.add(name)
        for f in fes:
            key = (proto, f)
            if key in owners:
                bad.append("frontend %s/%s in %s and %s" % (
                    f, proto, owners[key], name))
            owners[key] = name
        if len(set(eps)) != len(eps):
            bad.append("%s: an endpoint twice in its set" % name)
        if name == STABLE[0]:
            if (proto, fes, sorted(eps)) != STABLE[1:]:
                bad.append("stable service changed: %s %s %s" % (
                    proto, fes, eps[:5]))
            continue
        w = [i for i, p in enumerate(prefixes) if name.startswith(p)]
        if not w:
            bad.append("unexpected service %s" % name)
            continue
        net = "10.%d." % (100 + int(prefixes[w[0]][1:-1]))
        for f in fes:
            addr = f.split(" ")[1]
            if not (addr.startswith(net) or
                    (name.endswith("/hot") and addr == HOT_VIP + ":80")):
                bad.append("%s: frontend %s outside its range" % (name, f))
        for e in eps:
            if not (e.startswith(("10.11.", "10.12.", "10.13.")) and
                    e.endswith(":8080")):
                bad.append("%s: endpoint %s outside its range" % (name, e))
                break
    if STABLE[0] not in names:
        bad.append("stable service missing")
    return bad


def dumper(a):
    rep = Report(a, a.role)
    prefixes = a.prefixes.split(",")
    socks = []
    if a.kind == "raw":
        socks = [K.KvipNl(), SmallNl()]
    ready(a)
    n = 0
    while not stopping(a):
        if a.verify and os.path.exists(a.verify):
            # Asked once, when the node writers are done (saves a python
            # start while everything else still runs).
            verify(a, socks[0])
            os.rename(a.verify, a.verify + ".done")
        if a.hold and os.path.exists(a.hold):
            hold(a, socks[1], rep)
        n += 1
        try:
            if a.kind == "raw":
                svcs = dump_raw(socks[n % 2], rep)
            else:
                svcs = dump_kvipctl(a.kvipctl)
                if svcs is None:
                    rep.count("gave_up")
                    continue
        except K.NlError as e:
            if gone(a):
                rep.count("errors_after_rmmod")
                if a.kind == "raw":
                    break
                time.sleep(0.2)
                continue
            if e.errno == errno.EINTR:
                rep.count("intr")
                continue
            rep.fail(str(e))
            continue
        except ValueError as e:
            rep.fail("unparsable kvipctl output: %s" % e)
            continue
        rep.count("dumps")
        rep.count("services_seen", len(svcs))
        rep.count("endpoints_seen", sum(len(s[3]) for s in svcs))
        for b in check_table(svcs, prefixes)[:3]:
            rep.fail("dump %d: %s" % (n, b))
    rep.write("dumps")


def hold(a, nl, rep):
    """Start a dump and read nothing until the file a.hold goes (at most
    a.hold_secs): the dump holds a reference on the module
    (__netlink_dump_start() takes one, the end of the dump drops it), so
    rmmod must fail with EBUSY meanwhile."""
    seq = nl.send_raw(nl.family, GET, 1, b"", K.NLM_F_DUMP)
    open(a.hold + ".held", "w").close()
    t = time.monotonic()
    while os.path.exists(a.hold) and time.monotonic() - t < a.hold_secs:
        time.sleep(0.1)
    try:
        nl.collect(seq)
        rep.count("held_dumps")
    except K.NlError as e:
        if e.errno != errno.EINTR:
            rep.fail("the held dump: %s" % e)


def verify(a, nl):
    """The node table is the stable service plus the writers' models (the
    files listed in the file a.verify)."""
    rep = Report(a, "verify")
    rep.a = argparse.Namespace(report=a.verify_report)
    want = {}
    with open(a.verify) as f:
        for path in f.read().split():
            with open(path) as m:
                want.update(json.load(m))
    svcs = None
    for _ in range(50):
        try:
            svcs = dump_raw(nl, rep)
            break
        except K.NlError as e:
            if e.errno != errno.EINTR:
                rep.fail("dump for the check: %s" % e)
                break
    if svcs is None:
        rep.write("services")
        return
    for b in check_table(svcs, a.prefixes.split(",")):
        rep.fail(b)
    have = {s[0]: {"proto": {"tcp": 6, "udp": 17}.get(s[1]),
                   "fe": sorted(f.split(" ")[1] for f in s[2]),
                   "eps": len(s[3])}
            for s in svcs if s[0] != STABLE[0]}
    for name in sorted(set(want) | set(have)):
        if want.get(name) != have.get(name):
            rep.fail("%s: writer expects %s, kernel has %s" % (
                name, want.get(name), have.get(name)))
    rep.count("services", len(have))
    rep.write("services")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role")
    ap.add_argument("--kind", default="raw")
    ap.add_argument("--stop", default="/nonexistent")
    ap.add_argument("--gone")
    ap.add_argument("--report", required=True)
    ap.add_argument("--model")
    ap.add_argument("--verify", help="when this file (a list of model "
                    "files) appears, check the table against the models")
    ap.add_argument("--verify-report")
    ap.add_argument("--hold", help="when this file appears, hold a dump "
                    "open until it goes (at most --hold-secs)")
    ap.add_argument("--hold-secs", type=float, default=60)
    ap.add_argument("--prefix")
    ap.add_argument("--prefixes", default="")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hot", action="store_true")
    ap.add_argument("--tolerant", action="store_true")
    ap.add_argument("--flush-all-every", type=int, default=0)
    ap.add_argument("--max-services", type=int, default=8)
    ap.add_argument("--pace", type=float, default=0)
    ap.add_argument("--kvipctl")
    a = ap.parse_args()
    if a.role.startswith("w"):
        Writer(a).run()
    else:
        dumper(a)


if __name__ == "__main__":
    main()
PYEOF
export KVIP_SELFTESTS

# --- topology: reachable endpoint ranges, a sink for untranslated VIPs ---
kvip_topology 3 || ktap_exit_fail_msg "topology setup failed"
# A connection to a VIP nobody translates goes to backend3, which owns
# 10.96.0.0/12 but does not listen on port 80: refused at once (an
# unreachable route would answer at most once a second).
ip -n "${backends[2]}" route add local 10.96.0.0/12 dev lo || ktap_exit_fail_msg "sink route"
ncmds="route add 10.96.0.0/12 via 10.0.1.3"$'\n'
for i in 1 2 3; do
	ip -n "${backends[i - 1]}" route add local "10.$((10 + i)).0.0/16" dev lo ||
		ktap_exit_fail_msg "AnyIP route"
	ncmds+="route add 10.$((10 + i)).0.0/16 via 10.0.1.$i"$'\n'
done
ip -n "$node" -batch - <<<"$ncmds" || ktap_exit_fail_msg "node routes"
# No TIME_WAIT sockets: they would outlive the namespace by a minute and
# keep its memory from the leak check.
ip netns exec "$client" sysctl -qw net.ipv4.tcp_max_tw_buckets=0 ||
	ktap_exit_fail_msg "sysctl"
aux=""
setup_ns aux || ktap_exit_fail_msg "netns setup failed"

( kvip_memcg_enter; kvipctl_batch "$node" ) <<EOF || ktap_exit_fail_msg "service setup failed"
service add $STABLE proto tcp clusterip $VIP:80
endpoints set $STABLE $(endpoints4 8080 1 2 3)
EOF

lines() {	# FILE: lines in a log file (no exec: busywait polls it)
	local l=()
	[[ -f "$1" ]] && mapfile -t l <"$1"
	echo "${#l[@]}"
}

# --- writers and dumpers, then traffic ---
stop=$KVIP_TMP/stop gone=$KVIP_TMP/gone stop_nodew=$KVIP_TMP/stop-node-writers

role_bg() {	# NS ROLE ARGS...
	local ns=$1 role=$2
	shift 2
	( kvip_memcg_enter
	  py_ns "$ns" "$stress_py" "$role" \
		--report "$KVIP_TMP/$role.report" --gone "$gone" "$@" \
		2>>"$KVIP_TMP/roles.err" ) &
	pids+=($!)
	defer kill_wait $!
}
pids=()
seed=${KVIP_STRESS_SEED:-$RANDOM}
ktap_print_msg "roles: writers w0 w1 (node), w2 w3 (aux), dumpers raw and kvipctl (node); seed $seed; $DURATION s"
role_bg "$node" w0 --prefix w0/ --index 0 --seed "$seed" --hot --stop "$stop_nodew" \
	--model "$KVIP_TMP/w0.model"
role_bg "$node" w1 --prefix w1/ --index 1 --seed $((seed + 1)) --stop "$stop_nodew" \
	--model "$KVIP_TMP/w1.model"
nodew=("${pids[@]}")
pids=()
role_bg "$aux" w2 --prefix w2/ --index 2 --seed $((seed + 2)) --stop "$stop" \
	--tolerant --flush-all-every 40
role_bg "$aux" w3 --prefix w3/ --index 3 --seed $((seed + 3)) --stop "$stop" \
	--tolerant
role_bg "$node" dump-raw --kind raw --stop "$stop" --prefixes w0/,w1/ \
	--verify "$KVIP_TMP/verify" --verify-report "$KVIP_TMP/verify.report" \
	--hold "$KVIP_TMP/hold"
role_bg "$node" dump-kvipctl --kind kvipctl --kvipctl "$KVIPCTL" --stop "$stop" \
	--prefixes w0/,w1/
others=("${pids[@]}")

# The roles start up while the servers do.
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"
client_bg() {	# NAME VIP TIMEOUT
	py_ns "$client" "$KVIP_CLIENT" -n 0 -t "$3" \
		--stop-file "$stop" --log "$KVIP_TMP/$1.log" "$2" 80 \
		>"$KVIP_TMP/$1.out" 2>&1 &
	pids+=($!)
	defer kill_wait $!
}
pids=()
client_bg stable "$VIP" 5
client_bg churn "$HOT_VIP" 1
clients=("${pids[@]}")

# Python starts slowly under TCG: the clock starts when every role is up.
# shellcheck disable=SC2317 # called through busywait
all_up() {
	local r
	for r in w0 w1 w2 w3 dump-raw dump-kvipctl; do
		[[ -e "$KVIP_TMP/$r.report.ready" ]] || return 1
	done
	(($(lines "$KVIP_TMP/stable.log") > 0 && $(lines "$KVIP_TMP/churn.log") > 0))
}
busywait 120000 all_up || ktap_exit_fail_msg "the roles did not start"
ktap_print_msg "$(elapsed): all roles up; running for $DURATION s"
t_start=$SECONDS
stable0=$(lines "$KVIP_TMP/stable.log") churn0=$(lines "$KVIP_TMP/churn.log")
nap "$DURATION"
for ((i = 0; i < ${#nodew[@]}; i++)); do
	kill -0 "${nodew[i]}" 2>/dev/null || ktap_print_msg "a node writer died early"
done

# --- the node writers stop; the node table must be what they think ---
: >"$stop_nodew"
t_writers=$((SECONDS - t_start))
stable1=$(lines "$KVIP_TMP/stable.log") churn1=$(lines "$KVIP_TMP/churn.log")
ktap_print_msg "$(elapsed): stopping the node writers"
for p in "${nodew[@]}"; do wait "$p"; done
ktap_print_msg "$(elapsed): node writers stopped, verifying"
# dump-raw does it.
echo "$KVIP_TMP/w0.model $KVIP_TMP/w1.model" >"$KVIP_TMP/verify.tmp"
mv "$KVIP_TMP/verify.tmp" "$KVIP_TMP/verify"
busywait 60000 test -e "$KVIP_TMP/verify.done"
show_file "$KVIP_TMP/verify.report" 8
vline="no report from dump-raw"
[[ -f "$KVIP_TMP/verify.report" ]] && read -r vline <"$KVIP_TMP/verify.report"
ktap_check "after the node writers stop, the node table is what they expect" \
	"$vline" matches "$vline" "failures=0"

# The check can fail: with services still configured (as if the unload had
# leaked them) the counters are well over the baseline.
ktap_print_msg "$(elapsed): verified"
kvip_mem_snapshot MEM_LOADED
kvip_mem_compare MEM_BASE MEM_LOADED
loaded_rc=$?
ktap_print_msg "kernel memory with the table loaded, against the baseline:"
ktap_print_msg "$MEM_REPORT"
ktap_print_msg "caches that grew most (KiB): $(kvip_mem_top MEM_BASE MEM_LOADED)"
ktap_check "the leak check sees the live table (it can fail)" \
	"compare status $loaded_rc, cgroup percpu ${MEM_LOADED[cg_percpu]:-n/a}" \
	[ "$loaded_rc/$(( ${MEM_LOADED[cg_percpu]:-1} > 0 ))" = 1/1 ]

# --- rmmod under traffic, dumps and the aux writers ---
# First while dump-raw holds a dump open, which pins the module: rmmod
# must fail cleanly (EBUSY, "in use") and everything goes on. Then the
# dump is let go, and kvip_unload retries until rmmod succeeds.
: >"$KVIP_TMP/hold"
busywait 60000 test -e "$KVIP_TMP/hold.held"
ktap_print_msg "$(elapsed): a dump held open: rmmod kvip"
busy=$(rmmod kvip 2>&1)
busy_rc=$?
ktap_print_msg "rmmod: exit $busy_rc: $busy; module loaded: $(kvip_loaded && echo yes || echo no)"
# shellcheck disable=SC2317 # called through ktap_check
busy_ok() { ((busy_rc)) && matches "$busy" "in use" && kvip_loaded; }
ktap_check "rmmod while a dump holds the module fails cleanly (in use, EBUSY)" \
	"exit $busy_rc: $busy" busy_ok
nap 1	# traffic after the failed rmmod: must all be served
stable_before=$(lines "$KVIP_TMP/stable.log")
churn_before=$(lines "$KVIP_TMP/churn.log")
: >"$gone"
rm "$KVIP_TMP/hold"
ktap_print_msg "$(elapsed): the dump let go, unloading"
run kvip_unload 60
rc=$?
stable_after=$(lines "$KVIP_TMP/stable.log")
ktap_print_msg "rmmod: $UNLOAD_TRIES tries, $UNLOAD_MS ms; stable connections $stable_before..$stable_after meanwhile"
ktap_check "then rmmod kvip succeeds under load, retried while busy, within 60 s" \
	"exit $rc after $UNLOAD_TRIES tries, $UNLOAD_MS ms" [ "$rc" = 0 ]
busywait 20000 at_least $((churn_before + 3)) lines "$KVIP_TMP/churn.log"
: >"$stop"
for p in "${clients[@]}" "${others[@]}"; do wait "$p"; done
t_all=$((SECONDS - t_start))

# --- what each role did ---
ktap_print_msg "--- roles (the clock ran ${t_writers} s for the node writers, ${t_all} s for the rest; rates over each role's life) ---"
for r in w0 w1 w2 w3 dump-raw dump-kvipctl; do
	if [[ -s "$KVIP_TMP/$r.report" ]]; then
		show_file "$KVIP_TMP/$r.report" 6
	else
		ktap_print_msg "role=$r: no report"
	fi
done
[[ -s "$KVIP_TMP/roles.err" ]] && show_file "$KVIP_TMP/roles.err" 20

# role_field ROLE KEY: KEY=VALUE from a role's report (0 if none).
role_field() {
	local line="" kv
	[[ -f "$KVIP_TMP/$1.report" ]] && read -r line <"$KVIP_TMP/$1.report"
	for kv in $line; do
		[[ "${kv%%=*}" == "$2" ]] && { echo "${kv#*=}"; return; }
	done
	echo 0
}
wsum=""
for r in w0 w1 w2 w3; do
	[[ -s "$KVIP_TMP/$r.report" ]] || { wsum+="$r: no report; "; continue; }
	wsum+="$r: $(role_field "$r" ops) ops, $(role_field "$r" failures) failures; "
done
ktap_check "writers: no unexpected error, ESRCH/ENOENT as specified" "$wsum" \
	matches "$wsum" "^(w[0-3]: [1-9][0-9]* ops, 0 failures; ){4}$"
dsum=""
for r in dump-raw dump-kvipctl; do
	[[ -s "$KVIP_TMP/$r.report" ]] || { dsum+="$r: no report; "; continue; }
	dsum+="$r: $(role_field "$r" dumps) dumps, $(role_field "$r" failures) failures; "
done
ktap_check "dumpers: every complete dump consistent, both made progress" "$dsum" \
	matches "$dsum" "^(dump-[a-z]+: [1-9][0-9]* dumps, 0 failures; ){2}$"

# Traffic: log lines are "SEQ STATUS KEY MS".
show_file "$KVIP_TMP/stable.out" 5
show_file "$KVIP_TMP/churn.out" 5
read -r s_ok s_bad s_max < <(awk -v b="$stable_before" '
	$1 <= b { if ($2 == "ok") ok++; else bad++; if ($4 > m) m = $4 }
	END { print ok + 0, bad + 0, m + 0 }' "$KVIP_TMP/stable.log")
ktap_check "stable service: no new connection failed while the tables churned" \
	"$s_ok ok, $s_bad failed before the unload (max $s_max ms)" \
	[ "$s_bad/$((s_ok >= 10))" = 0/1 ]
read -r c_n c_max c_kinds < <(awk '
	{ n++; k[$2]++; if ($4 > m) m = $4 }
	END { s = ""; for (x in k) s = s x "=" k[x] ","; print n + 0, m + 0, s }' \
	"$KVIP_TMP/churn.log")
ktap_check "churned VIP: connections kept going, none hung (max <= 5 s)" \
	"$c_n connections ($c_kinds), max $c_max ms" \
	[ "$((c_n >= 10 && c_max <= 5000))" = 1 ]

ktap_print_msg "--- rates ---"
for r in w0 w1 w2 w3; do
	ktap_print_msg "$(printf '%-13s %6s ops/s, %6s netlink requests/s, %s multi-message sets' \
		"$r" "$(role_field "$r" rate)" "$(role_field "$r" requests_per_s)" \
		"$(role_field "$r" multi_msg_sets)")"
done
avg() { local a=${1:-0} b=${2:-0}; ((b)) && echo $((a / b)) || echo 0; }
for r in dump-raw dump-kvipctl; do
	n=$(role_field "$r" dumps)
	ktap_print_msg "$(printf '%-13s %6s dumps/s (%s interrupted, %s given up), %s services and %s endpoints per dump' \
		"$r" "$(role_field "$r" rate)" "$(role_field "$r" intr)" \
		"$(role_field "$r" gave_up)" "$(avg "$(role_field "$r" services_seen)" "$n")" \
		"$(avg "$(role_field "$r" endpoints_seen)" "$n")")"
done
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.1f", n / (t ? t : 1) }'; }
ktap_print_msg "$(printf '%-13s %6s conns/s while all roles ran (%s in %s s; %s in all)' stable \
	"$(rate $((stable1 - stable0)) "$t_writers")" $((stable1 - stable0)) "$t_writers" "$stable_before")"
ktap_print_msg "$(printf '%-13s %6s conns/s while all roles ran (%s in %s s; %s in all)' churn \
	"$(rate $((churn1 - churn0)) "$t_writers")" $((churn1 - churn0)) "$t_writers" "$c_n")"

ktap_check "no kernel warning from the stress and the unload" "see above" \
	kernel_log_clean "$mark"

# --- memory back to the baseline ---
kill_wait "$server_pid"
cleanup_ns "${NS_LIST[@]}"
ktap_print_msg "$(elapsed): namespaces deleted, waiting for memory to settle"
kvip_mem_check_baseline "unload, namespaces deleted, caches dropped"

# --- load again ---
kvip_load
fresh=""
setup_ns fresh || ktap_exit_fail_msg "netns setup failed"
out=$("$KVIPCTL" -n "$fresh" service add default/x proto tcp clusterip 10.96.0.1:80 2>&1 &&
	"$KVIPCTL" -n "$fresh" service show 2>&1)
ktap_check "afterwards the module loads again and takes a service" \
	"kvipctl said: $out" matches "$out" "default/x"
ktap_print_msg "$(elapsed): done"

ktap_finished
