#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""kvip_fuzz.py - structure-aware fuzzer for the kvip generic netlink family.

Usage: kvip_fuzz.py [--seed N] [--count N] [--procs N] [--concurrent PCT]
                    [--corrupt-model] [--check-every N]
                    (KVIP_FUZZ_TRACE=1: trace)

Messages are built from valid templates of every command (new, replace
with service options and source ranges, del, get doit/dump, set_endpoints
single and MORE/APPEND sequences, flush, set_config, get_config)
over a small pool of names, VIPs and endpoints, so that operations collide,
then mutated: boundary values, wrong attribute types and lengths, truncated
and oversized attributes, nlmsg_len lies, unknown attributes, commands and
flag bits, missing or stray NLA_F_NESTED, deep and repeated nests, reserved
genl header bytes, big multi-chunk endpoint sets, abandoned sequences,
APPENDs from other sockets, sockets closed mid-sequence or mid-dump.

Phase 1 (one process, --count N, or with --procs > 1 what the concurrent
senders do not send: N/2 by default, see --concurrent) keeps a model of
what the kernel acknowledged (name -> proto, frontends, endpoint multiset,
options; staged sets; the netns settings) and predicts the outcome of every semantic request: the
errno must be one the contract allows (0 when none applies), GET replies
and the dumps taken along the way and at the end must equal the model.
Phase 2 (--procs N > 1) forks N senders with seeds derived from the main
seed, which send --concurrent PCT percent of --count between them (default
50; their messages cost more each, the senders contending for the kvip
mutex, so a debug kernel's run gives them less); afterwards the dump must
keep the contract (kvip_nl checks) and no frontend may belong to two
services.

Always: every reply is an ACK, an error, DONE or a well-formed kvip
message; every error carries an extack message, except those the netlink
and genetlink cores return before kvip sees the message (EPERM, unknown
command, missing genl header; listed in CORE_NO_EXTACK).

--corrupt-model changes the model once before the final comparison: the
run must then fail (proves the oracle can fail).

Prints "# seed: N", one "FINDING ..." line per problem (with the request,
as hex and, when known, as a kvip_nl.py request line) and a summary with
messages per second. Exit status 0 if nothing was found, 1 otherwise.
"""

import errno as E
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvip_nl as K  # noqa: E402

NEW, DEL, GET, SET, FLUSH, REPLACE, CFG_SET, CFG_GET = range(1, 9)
A_NAME, A_PROTO, A_FLAGS, A_FES, A_EPS, A_STATS, A_SETF, A_EPCOUNT = range(1, 9)
A_AFF_TIMEOUT, A_RANGES, A_CONFIG = 9, 10, 11
C_NODEPORT, C_CLUSTER, C_MASQ, C_DROP = 1, 2, 3, 4
SVC_F_ALL = 0x3f
SVC_F_AFFINITY = 4
AFF_DEFAULT, AFF_MAX = 10800, 86400
MORE, APPEND = 1, 2
TCP, UDP, SCTP = 6, 17, 132
AF4, AF6 = socket.AF_INET, socket.AF_INET6
NESTED = K.NLA_F_NESTED
POLICY = {NEW: {1, 2, 3, 4, 5, 9, 10}, REPLACE: {1, 2, 3, 4, 5, 9, 10},
          DEL: {1}, GET: {1}, SET: {1, 5, 7}, FLUSH: set(), CFG_SET: {11},
          CFG_GET: set()}
NONAME = (FLUSH, CFG_SET, CFG_GET)
# Errors the netlink/genetlink cores return without an extack message.
CORE_NO_EXTACK = {"EPERM", "badcmd", "shortgenl", "nlflags", "dumpflag"}

S_PACK = struct.Struct("=HH").pack
HDR = struct.Struct("=IHHII")
GHDR = struct.Struct("=BBH")


def nla(t, payload):
    n = len(payload)
    return S_PACK(4 + n, t) + payload + b"\0" * ((4 - n) & 3)


def u8(t, v):
    return nla(t, struct.pack("=B", v & 0xff))


def u16(t, v):
    return nla(t, struct.pack("=H", v & 0xffff))


def u32(t, v):
    return nla(t, struct.pack("=I", v & 0xffffffff))


def nest(t, parts):
    return nla(t | NESTED, b"".join(parts))


TRACE = os.environ.get("KVIP_FUZZ_TRACE") == "1"
NAMES = ["fz/a", "fz/b", "fz/c", "default/svc:http", "x" * 255]
VIPS = [(AF4, bytes([10, 96, 0, i])) for i in (1, 2, 3)] + \
       [(AF6, bytes.fromhex("fd000096" + "00" * 11 + "%02x" % i)) for i in (1, 2)]
PORTS = [80, 443, 65535]
NODEPORTS = [30080, 30443]


def mask(a, plen):
    """A with the bits past PLEN cleared."""
    n = int.from_bytes(a, "big")
    bits = 8 * len(a)
    plen = min(plen, bits)
    n &= ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
    return n.to_bytes(len(a), "big")


def cidr_bytes(c):
    fam, a, plen = c
    return nest(0, [u16(1, fam), nla(2, a), u8(3, plen)])


def ep_addr(i):
    if i % 7 == 6:
        return AF6, bytes.fromhex("fd000001" + "00" * 8) + struct.pack(">I", i)
    return AF4, bytes([10, 1 + (i >> 16) % 200, (i >> 8) & 255, i & 255])


class Req:
    """One request: semantics (for the model) and its bytes."""
    __slots__ = ("cmd", "name", "proto", "sflags", "fes", "eps", "has_eps",
                 "setf", "errs", "policy_err", "mut", "raw", "nlflags",
                 "dump", "must_fail", "no_reply", "either", "text",
                 "semantic", "big", "tmo", "ranges", "cfg", "parse_err")

    def __init__(self, cmd):
        self.cmd = cmd
        self.name = None
        self.proto = TCP
        self.sflags = 0
        self.fes = []           # (type, family, addr, port)
        self.eps = []           # (family, addr, port, weight, flags)
        self.tmo = None         # KVIP_A_AFFINITY_TIMEOUT or None
        self.ranges = []        # source ranges: (family, addr, prefix)
        self.cfg = None         # SET_CONFIG: {attr: value or prefix list}
        self.has_eps = False
        self.setf = 0
        self.errs = set()       # errnos the contract allows for this request
        self.policy_err = False  # rejected by the genl core (policy)
        self.parse_err = False  # rejected by kvip's own attribute parser
        self.mut = ""           # mutation tag
        self.raw = None
        self.nlflags = 0
        self.dump = False
        self.must_fail = False
        self.no_reply = False
        self.either = False     # outcome not predicted (flag bits, version)
        self.text = None
        self.semantic = True
        self.big = None


class Finding(Exception):
    pass


# How long an answer may take before the kernel counts as hung. A debug
# kernel (KASAN, lockdep, kmemleak) under TCG on a busy host needs more:
# kvip_fuzz.sh sets KVIP_FUZZ_REPLY_TIMEOUT there.
REPLY_TIMEOUT = float(os.environ.get("KVIP_FUZZ_REPLY_TIMEOUT", "10"))


class Conn:
    """A generic netlink socket with its own sequence numbers."""
    def __init__(self, fam, rng, ident):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                  K.NETLINK_GENERIC)
        self.sock.setsockopt(K.SOL_NETLINK, K.NETLINK_EXT_ACK, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.sock.bind((0, 0))
        self.sock.settimeout(REPLY_TIMEOUT)
        self.portid = self.sock.getsockname()[0]
        self.fam = fam
        self.seq = rng.randrange(1 << 20)
        self.ident = ident
        self.bufsize = rng.choice((1 << 17, 1 << 20))
        self.buf = bytearray(self.bufsize)
        self.pending_dump = None     # seq of an abandoned dump

    def close(self):
        self.sock.close()


class Fuzzer:
    def __init__(self, seed, model=True, tag=""):
        self.rng = random.Random(seed)
        self.seed = seed
        self.tag = tag
        self.use_model = model
        probe = K.KvipNl()
        self.fam = probe.family
        probe.sock.close()
        self.conns = [self.open(i) for i in range(3)]
        self.findings = []
        self.sent = 0
        self.stats = {}
        self.model = {}          # name -> [proto, fes, eps, options]
        self.staged = {}         # name -> [conn ident, eps, certain]
        # SET_CONFIG model: a fresh netns has the defaults.
        self.cfg = {C_NODEPORT: (), C_CLUSTER: (), C_MASQ: 0, C_DROP: 0}
        self.next_ident = 3
        self.epcache = {}
        self.bigcache = {}

    # --- reporting -------------------------------------------------------

    def find(self, what, req=None):
        line = "FINDING%s %s" % (self.tag, what)
        if req is not None:
            line += " | mut=%s cmd=%d" % (req.mut or "-", req.cmd)
            if req.semantic and len(req.eps) <= 20 and len(req.fes) <= 8:
                line += " | kvip_nl.py %s" % self.to_text(req)
            if req.raw is not None and len(req.raw) <= 512:
                line += " | hex=%s" % req.raw.hex()
        self.findings.append(line)
        print(line, flush=True)
        if len(self.findings) > 50:
            raise Finding("too many findings")

    @staticmethod
    def to_text(q):
        """Q as a kvip_nl.py request line (semantic requests only)."""
        cmds = {v: k for k, v in K.CMDS.items()}
        out = [cmds.get(q.cmd, str(q.cmd))]
        if q.dump:
            out.append("nlflags=dump")
        if q.name is not None:
            if "nulname" in q.mut:
                out.append("name=hex:%s" % (q.name.encode() + b"\0junk\0").hex())
            else:
                out.append("'name=str:%s'" % q.name)

        def addr(fam, a):
            if fam in (AF4, AF6) and len(a) == (4 if fam == AF4 else 16):
                return "ip:" + K.ipaddress.ip_address(a).compressed
            return "hex:" + a.hex()
        if q.cmd in (NEW, REPLACE):
            out.append("proto=%d" % q.proto)
            if q.sflags:
                out.append("flags=%d" % q.sflags)
            fes = []
            for t, f, a, p in q.fes:
                e = "{type=%d" % t
                if f is not None:
                    e += " family=%d addr=%s" % (f, addr(f, a))
                fes.append(e + " port=%d}" % p)
            out.append("frontends=[%s]" % " ".join(fes))
        if q.cmd in (NEW, REPLACE, SET) and q.has_eps:
            eps = []
            for f, a, p, w, fl in q.eps:
                e = "{family=%d addr=%s port=%d" % (f, addr(f, a), p)
                if w is not None:
                    e += " weight=%d" % w
                if fl is not None:
                    e += " flags=%d" % fl
                eps.append(e + "}")
            out.append("'endpoints=[%s]'" % " ".join(eps))
        if q.cmd == SET and q.setf:
            out.append("set_flags=%d" % q.setf)
        return " ".join(out)

    def open(self, ident):
        return Conn(self.fam, self.rng, ident)

    # --- encoding --------------------------------------------------------

    def ep_bytes(self, ep, drop=None):
        key = (ep, drop)
        b = self.epcache.get(key)
        if b is None:
            fam, addr, port, w, fl = ep
            parts = []
            if drop != 1:
                parts.append(u16(1, fam))
            if drop != 2:
                parts.append(nla(2, addr))
            if drop != 3:
                parts.append(u16(3, port))
            if w is not None:
                parts.append(u32(4, w))
            if fl is not None:
                parts.append(u32(5, fl))
            b = nest(0, parts)
            if len(self.epcache) < 200000:
                self.epcache[key] = b
        return b

    @staticmethod
    def fe_bytes(fe):
        ftype, fam, addr, port = fe
        parts = [u8(1, ftype)]
        if fam is not None:
            parts.append(u16(2, fam))
        if addr is not None:
            parts.append(nla(3, addr))
        if port is not None:
            parts.append(u16(4, port))
        return nest(0, parts)

    # --- generation ------------------------------------------------------

    def rand_ep(self, i=None):
        r = self.rng
        if i is None:
            i = r.randrange(24)
        fam, addr = ep_addr(i)
        w = r.choice((None, None, 1, 0, 7, 65535))
        fl = r.choice((None, None, 3, 0, 15, 1 | 8))
        return (fam, addr, 8080 + (i % 2), w, fl)

    def rand_fe(self):
        r = self.rng
        if r.random() < 0.2:
            return (3, None, None, r.choice(NODEPORTS))
        fam, addr = r.choice(VIPS)
        return (r.choice((1, 1, 2)), fam, addr, r.choice(PORTS))

    def rand_cidr(self):
        r = self.rng
        if r.random() < 0.7:
            plen = r.choice((0, 8, 16, 24, 32))
            a = bytes([10, r.randrange(4), 0, 0])
            return (AF4, mask(a, plen), plen)
        plen = r.choice((0, 8, 48, 64, 128))
        return (AF6, mask(bytes.fromhex("fd00" + "12" * 14), plen), plen)

    def gen(self):
        r = self.rng
        x = r.random()
        if x < 0.03:
            q = Req(CFG_SET)
            q.cfg = {}
            for a in (C_NODEPORT, C_CLUSTER, C_MASQ, C_DROP):
                if r.random() < 0.5:
                    q.cfg[a] = [self.rand_cidr() for _ in range(
                        r.choice((0, 1, 2, 3)))] if a <= C_CLUSTER else \
                        r.randrange(2)
            return q
        if x < 0.045:
            return Req(CFG_GET)
        if x < 0.22:
            q = Req(r.choice((NEW, NEW, REPLACE)))
            q.name = r.choice(NAMES)
            q.proto = r.choice((TCP, TCP, UDP, SCTP))
            q.fes = [self.rand_fe() for _ in range(r.choice((1, 1, 2, 3)))]
            if r.random() < 0.5:
                q.sflags = r.randrange(SVC_F_ALL + 1)
                if q.sflags & SVC_F_AFFINITY and r.random() < 0.5:
                    q.tmo = r.choice((1, 60, AFF_MAX))
            if r.random() < 0.3:
                q.ranges = [self.rand_cidr() for _ in range(r.choice((0, 1, 3)))]
            if r.random() < 0.4:
                q.has_eps = True
                q.eps = [self.rand_ep() for _ in range(r.randrange(5))]
        elif x < 0.30:
            q = Req(DEL)
            q.name = r.choice(NAMES)
        elif x < 0.42:
            q = Req(GET)
            q.dump = r.random() < 0.6
            if not q.dump or r.random() < 0.5:
                q.name = r.choice(NAMES)
        elif x < 0.44:
            q = Req(FLUSH)
        elif x < 0.446:
            return self.big_set()
        else:
            q = Req(SET)
            q.name = r.choice(NAMES)
            y = r.random()
            q.setf = 0 if y < 0.4 else MORE if y < 0.6 else \
                MORE | APPEND if y < 0.8 else APPEND
            q.has_eps = r.random() < 0.9
            if q.has_eps:
                base = r.randrange(1 << 14) if q.setf & APPEND else 0
                q.eps = [self.rand_ep(base + r.randrange(24))
                         for _ in range(r.randrange(6))]
        return q

    def big_set(self):
        """A multi-chunk set of thousands of endpoints, as a list of
        requests to send back to back (sometimes abandoned)."""
        r = self.rng
        name = r.choice(NAMES[:3])
        n = r.choice((1000, 2000, 3000))
        start = r.choice((0, 3000, 20000))
        chunk = r.choice((700, 1500, 2000))
        key = (n, start, chunk)
        chunks = self.bigcache.get(key)
        if chunks is None:
            eps = [ep_addr(start + i) + (9000, None, None) for i in range(n)]
            chunks = [(eps[i:i + chunk], [self.norm_ep(e) for e in
                                          eps[i:i + chunk]],
                       nest(A_EPS, [self.ep_bytes(e) for e in
                                    eps[i:i + chunk]]))
                      for i in range(0, n, chunk)]
            self.bigcache[key] = chunks
        reqs = []
        for i, (eps, normed, raw) in enumerate(chunks):
            q = Req(SET)
            q.name = name
            q.has_eps = True
            q.eps = eps
            q.big = (normed, raw)
            q.setf = (APPEND if i else 0) | (MORE if i + 1 < len(chunks)
                                              else 0)
            reqs.append(q)
        if r.random() < 0.15 and len(reqs) > 1:
            reqs = reqs[:-1]        # abandoned
        return reqs

    # --- semantic mutation (still modeled) -------------------------------

    def mutate_cidrs(self, lst):
        """Break one prefix of LST (a new list); returns (list, tag)."""
        r = self.rng
        lst = list(lst) or [self.rand_cidr()]
        i = r.randrange(len(lst))
        fam, a, plen = lst[i]
        m = r.randrange(6)
        if m == 0:                      # host bits set
            lst[i] = (AF4, bytes([10, 1, 2, 3]), r.choice((8, 16, 24)))
            return lst, "cidrhost"
        if m == 1:
            lst[i] = (AF4, bytes(4), r.choice((33, 64, 128)))
            return lst, "cidrlong"
        if m == 2:
            lst[i] = (fam, a, r.choice((129, 255)))
            return lst, "cidrpolicy"
        if m == 3:
            lst[i] = (AF6 if fam == AF4 else AF4, a, 0)
            return lst, "cidrfam"
        if m == 4:
            lst[i] = (r.choice((0, 7, 99)), a, 0)
            return lst, "cidrunknownfam"
        return [self.rand_cidr() for _ in range(65)], "cidr65"

    def mutate_semantic(self, q):
        r = self.rng
        cmd = q.cmd
        m = r.randrange(17)
        if cmd == CFG_SET:
            y = r.randrange(4)
            if y == 0:
                q.cfg = None; q.mut = "nocfg"
            elif y == 1:
                q.cfg[r.choice((C_MASQ, C_DROP))] = r.choice((2, 255))
                q.mut = "cfgflag"
            else:
                a = r.choice((C_NODEPORT, C_CLUSTER))
                q.cfg[a], q.mut = self.mutate_cidrs(q.cfg.get(a, []))
            return q
        if cmd in (NEW, REPLACE):
            if m == 0:
                q.proto = r.choice((0, 1, 58, 255)); q.mut = "proto"
            elif m == 1:
                q.sflags = r.choice((0x10, 0x80000000)) | \
                    r.randrange(SVC_F_ALL + 1)
                q.mut = "sflags"
            elif m == 14:
                q.sflags |= SVC_F_AFFINITY
                q.tmo = r.choice((0, AFF_MAX + 1, 0xffffffff)); q.mut = "tmo"
            elif m == 15:
                q.sflags &= ~SVC_F_AFFINITY
                q.tmo = r.choice((1, 60)); q.mut = "tmonoflag"
            elif m == 16:
                q.ranges, q.mut = self.mutate_cidrs(q.ranges)
            elif m == 2:
                q.fes = []; q.mut = "nofe"
            elif m == 3 and q.fes:
                q.fes.append(q.fes[0]); q.mut = "fedup"
            elif m == 4 and q.fes:
                t, f, a, p = q.fes[0]
                q.fes[0] = (t, f, a, 0); q.mut = "feport0"
            elif m == 5 and q.fes:
                t, f, a, p = q.fes[0]
                q.fes[0] = (r.choice((0, 4, 255)), f, a, p); q.mut = "fetype"
            elif m == 6 and q.fes:
                t, f, a, p = q.fes[0]
                if t == 3:
                    q.fes[0] = (3, AF4, bytes(4), p)
                else:
                    q.fes[0] = (t, r.choice((AF6 if f == AF4 else AF4, 0, 99)),
                                a, p)
                q.mut = "fefam"
            elif m == 7:
                q.fes = [(1, AF4, bytes([10, 97, i >> 8, i & 255]), 80)
                         for i in range(257)]
                q.mut = "fe257"
            elif m == 8 and q.fes and q.fes[0][0] != 3:
                t, f, a, p = q.fes[0]
                q.fes[0] = (t, f, bytes(len(a)), p); q.mut = "feany"
            else:
                self.mutate_eps(q)
        elif cmd == SET:
            if m < 3:
                q.setf = r.choice((4, 8, 0x80000000, 7)); q.mut = "setf"
            else:
                self.mutate_eps(q)
        if cmd not in NONAME and r.random() < 0.15:
            y = r.randrange(4)
            if y == 0:
                q.name = ""; q.mut += "+emptyname"
            elif y == 1:
                q.name = "y" * 256; q.mut += "+longname"
            elif y == 2 and q.name:
                q.mut += "+nulname"   # "a\0junk": the name is "a"
            else:
                q.name = None; q.mut += "+noname"
        return q

    def mutate_eps(self, q):
        r = self.rng
        if not q.eps:
            q.has_eps = True
            q.eps = [self.rand_ep()]
        i = r.randrange(len(q.eps))
        fam, addr, port, w, fl = q.eps[i]
        m = r.randrange(7)
        if m == 0:
            q.eps[i] = (fam, addr, port, r.choice((65536, 0xffffffff)), fl)
            q.mut = "weight"
        elif m == 1:
            q.eps[i] = (fam, addr, port, w, r.choice((16, 0x80000000)))
            q.mut = "epflags"
        elif m == 2:
            q.eps[i] = (fam, addr, 0, w, fl); q.mut = "epport0"
        elif m == 3:
            q.eps.append(q.eps[i]); q.mut = "epdup"
        elif m == 4:
            q.eps[i] = (AF6 if fam == AF4 else AF4, addr, port, w, fl)
            q.mut = "epfam"
        elif m == 5:
            q.eps[i] = (fam, r.choice((b"", b"\1\2\3\4\5", bytes(17))), port,
                        w, fl)
            q.mut = "epaddrlen"
        else:
            q.eps[i] = (fam, bytes(len(addr)), port, w, fl); q.mut = "epany"

    # --- expected outcome ------------------------------------------------

    @staticmethod
    def fe_key(fe):
        t, f, a, p = fe
        return (0, b"", p) if t == 3 else (f, a, p)

    def fe_errs(self, q):
        errs = set()
        if not q.fes:
            errs.add(E.EINVAL)
        if len(q.fes) > 256:
            errs.add(E.E2BIG)
        keys = set()
        for fe in q.fes:
            t, f, a, p = fe
            if not 1 <= t <= 3:
                errs.add(E.ERANGE); q.policy_err = True
            if p == 0:
                errs.add(E.EINVAL)
            if t == 3:
                if f is not None or a is not None:
                    errs.add(E.EINVAL)
            elif f not in (AF4, AF6) or len(a) != (4 if f == AF4 else 16) \
                    or not any(a):
                errs.add(E.EINVAL)
            k = self.fe_key(fe)
            if k in keys:
                errs.add(E.EEXIST)
            keys.add(k)
        return errs

    def ep_errs(self, q, commit_eps=None):
        errs = set()
        if q.big:
            return errs
        for fam, addr, port, w, fl in q.eps:
            if w is not None and w > 65535:
                errs.add(E.ERANGE); q.policy_err = True
            if fl is not None and fl & ~15:
                errs.add(E.EOPNOTSUPP)
            if port == 0 or fam not in (AF4, AF6) or \
                    len(addr) != (4 if fam == AF4 else 16) or not any(addr):
                errs.add(E.EINVAL)
        return errs

    @staticmethod
    def norm_ep(ep):
        fam, addr, port, w, fl = ep
        return (fam, addr, port, 1 if w is None else w, 3 if fl is None else fl)

    @staticmethod
    def has_dup(eps):
        return len({(e[0], e[1], e[2]) for e in eps}) != len(eps)

    @staticmethod
    def cidr_errs(q, lst, cap):
        errs = set()
        if len(lst) > cap:
            errs.add(E.E2BIG)
        for fam, a, plen in lst:
            if plen > 128:
                errs.add(E.ERANGE); q.policy_err = True
            if fam not in (AF4, AF6) or len(a) != (4 if fam == AF4 else 16) \
                    or plen > 8 * len(a) or mask(a, plen) != a:
                errs.add(E.EINVAL)
        return errs

    def opts_errs(self, q):
        errs = set()
        if q.sflags & ~SVC_F_ALL:
            errs.add(E.EOPNOTSUPP)
        if q.tmo is not None:
            if not 1 <= q.tmo <= AFF_MAX:
                errs.add(E.ERANGE); q.policy_err = True
            if not q.sflags & SVC_F_AFFINITY:
                errs.add(E.EINVAL)
        return errs | self.cidr_errs(q, q.ranges, 64)

    @staticmethod
    def opts_of(q):
        """The options as the kernel reports them."""
        aff = q.sflags & SVC_F_AFFINITY
        return (q.sflags, (q.tmo or AFF_DEFAULT) if aff else None,
                tuple(sorted(q.ranges)))

    def name_errs(self, q):
        if q.name is None:
            return {E.EINVAL}
        if len(q.name.encode()) + (5 if "nulname" in q.mut else 0) > 255:
            q.policy_err = True
            return {E.ERANGE, E.EINVAL}
        if q.name == "":
            return {E.EINVAL}
        return set()

    def eff_name(self, q):
        return q.name

    def predict(self, q, conn):
        """The set of allowed errnos ({0} when the request must succeed)."""
        cmd = q.cmd
        errs = set() if cmd in NONAME else self.name_errs(q)
        name = q.name
        if cmd == CFG_SET:
            if q.cfg is None:
                errs.add(E.EINVAL)
            else:
                for a, v in q.cfg.items():
                    if a <= C_CLUSTER:
                        errs |= self.cidr_errs(q, v, 64)
                    elif v > 1:
                        errs.add(E.ERANGE); q.policy_err = True
        if cmd in (NEW, REPLACE):
            if q.proto not in (TCP, UDP, SCTP):
                errs.add(E.EINVAL)
            errs |= self.opts_errs(q)
            errs |= self.fe_errs(q)
            if q.has_eps:
                errs |= self.ep_errs(q)
                if self.has_dup(q.eps):
                    errs.add(E.EEXIST)
            if not errs:
                if cmd == NEW and name in self.model:
                    errs.add(E.EEXIST)
                for k in map(self.fe_key, q.fes):
                    for other, (proto, fes, *_) in self.model.items():
                        if other != name and proto == q.proto and \
                                k in map(self.fe_key, fes):
                            errs.add(E.EEXIST)
        elif cmd == DEL:
            if not errs and name not in self.model:
                errs.add(E.ENOENT)
        elif cmd == GET:
            if q.dump and q.name is None:
                errs = set()
            elif q.dump and q.name == "":
                errs.add(E.ENOENT)      # a filter that matches nothing
            if not errs and q.name is not None and name not in self.model:
                errs.add(E.ENOENT)
            if not errs and not q.dump and len(self.model[name][2]) >= 800:
                errs |= {0, E.EMSGSIZE}
        elif cmd == SET:
            errs |= self.ep_errs(q)
            if q.setf & ~3:
                errs.add(E.EOPNOTSUPP)
            if not errs:
                if name not in self.model:
                    errs.add(E.ENOENT)
                elif q.setf & APPEND:
                    st = self.staged.get(name)
                    if st is None or st[0] != conn.ident:
                        errs.add(E.ESRCH)
                    else:
                        total = len(st[1]) + len(q.eps)
                        if total > 65536:
                            errs.add(E.E2BIG)
                        elif not q.setf & MORE and \
                                self.has_dup(st[1] + q.eps):
                            errs.add(E.EEXIST)
                elif not q.setf & MORE and self.has_dup(q.eps):
                    errs.add(E.EEXIST)
        return errs or {0}

    def apply(self, q, conn, err):
        """Update the model after the kernel answered ERR to Q."""
        name = q.name
        cmd = q.cmd
        if cmd == CFG_SET and not err:
            for a, v in q.cfg.items():
                self.cfg[a] = tuple(v) if a <= C_CLUSTER else v
        if cmd in (NEW, REPLACE) and not err:
            old = self.model.get(name)
            eps = [self.norm_ep(e) for e in q.eps] if q.has_eps else \
                (old[2] if old else [])
            self.model[name] = [q.proto, list(q.fes), eps, self.opts_of(q)]
        elif cmd == DEL and not err:
            self.model.pop(name, None)
            self.staged.pop(name, None)
        elif cmd == FLUSH and not err:
            self.model.clear()
            self.staged.clear()
        elif cmd == SET:
            st = self.staged.get(name)
            if err:
                if q.policy_err or err == E.ESRCH or st is None:
                    return              # the core rejected it: no change
                if self.name_errs(q) or q.setf & ~3:
                    return              # refused before the lookup
                if q.parse_err or self.ep_errs(q) or q.setf & APPEND:
                    # parse error, or a failed APPEND: ends this socket's
                    # staged set only
                    if st[0] == conn.ident:
                        del self.staged[name]
                    return
                # a first message that failed later (duplicates, limits)
                # has discarded any socket's staged set already
                del self.staged[name]
                return
            neweps = q.big[0] if q.big else [self.norm_ep(e) for e in q.eps]
            if not q.setf & APPEND:
                if q.setf & MORE:
                    self.staged[name] = [conn.ident, neweps]
                else:
                    self.staged.pop(name, None)
                    self.model[name][2] = neweps
            else:
                st[1] = st[1] + neweps
                if not q.setf & MORE:
                    del self.staged[name]
                    self.model[name][2] = st[1]

    # --- byte-level mutation (must fail) ---------------------------------

    def attrs_of(self, q, nulname=False):
        out = []
        if q.name is not None:
            s = q.name.encode() + b"\0"
            if nulname:
                s += b"junk\0"
            out.append(nla(A_NAME, s))
        if q.cmd == CFG_SET and q.cfg is not None:
            parts = []
            for a, v in sorted(q.cfg.items()):
                parts.append(nest(a, [cidr_bytes(c) for c in v])
                             if a <= C_CLUSTER else u8(a, v))
            out.append(nest(A_CONFIG, parts))
        if q.cmd in (NEW, REPLACE):
            out.append(u8(A_PROTO, q.proto))
            if q.sflags or self.rng.random() < 0.2:
                out.append(u32(A_FLAGS, q.sflags))
            if q.tmo is not None:
                out.append(u32(A_AFF_TIMEOUT, q.tmo))
            if q.ranges or self.rng.random() < 0.1:
                out.append(nest(A_RANGES, [cidr_bytes(c) for c in q.ranges]))
            if q.fes or self.rng.random() < 0.5:
                out.append(nest(A_FES, [self.fe_bytes(f) for f in q.fes]))
        if q.big:
            out.append(q.big[1])
        elif q.cmd in (NEW, REPLACE, SET) and q.has_eps:
            out.append(nest(A_EPS, [self.ep_bytes(e) for e in q.eps]))
        if q.cmd == SET and (q.setf or self.rng.random() < 0.3):
            out.append(u32(A_SETF, q.setf))
        return out

    def mutate_bytes(self, attrs, q):
        """Break a valid attribute list so that strict validation must
        reject it. Returns (attrs, tag)."""
        r = self.rng
        pol = POLICY[q.cmd]
        m = r.randrange(9)
        if m == 0 or not attrs:
            t = r.choice([t for t in (0, 6, 8, 9, 10, 200, 0x3fff)
                          if t not in pol])
            a = nla(t, os.urandom(r.randrange(9)))
            attrs.insert(r.randrange(len(attrs) + 1), a)
            return attrs, "unknownattr"
        i = r.randrange(len(attrs))
        a = attrs[i]
        alen, atype = struct.unpack_from("=HH", a)
        t = atype & K.NLA_TYPE_MASK
        payload = a[4:alen]
        if m == 1:                      # wrong length for a scalar
            if t in (A_PROTO, A_FLAGS, A_SETF, A_AFF_TIMEOUT):
                attrs[i] = nla(t, payload + b"\0" * r.choice((1, 4)) if
                               r.random() < 0.5 else payload[:len(payload) - 1])
                return attrs, "badlen"
            if t == A_NAME:
                attrs[i] = nla(t, payload.rstrip(b"\0") or b"x")
                return attrs, "nonul"
        if m == 2 and atype & NESTED:   # missing NLA_F_NESTED
            attrs[i] = S_PACK(alen, t) + a[4:]
            return attrs, "nonested"
        if m == 3 and not atype & NESTED and t in pol:
            attrs[i] = S_PACK(alen, t | NESTED) + a[4:]
            return attrs, "strayednested"
        if (m == 4 and atype & NESTED and len(payload) >= 4 and
                struct.unpack_from("=H", payload, 2)[0] & NESTED):
            # break the first list entry: missing nested flag, unknown
            # attribute or wrong scalar length inside. Only where the first
            # entry is a nest (a list), not a scalar of a plain nest such
            # as KVIP_A_CONFIG's, where clearing the flag changes nothing.
            ealen, etype = struct.unpack_from("=HH", payload)
            inner = payload[4:ealen]
            y = r.randrange(3)
            if y == 0:
                e = S_PACK(ealen, etype & ~NESTED) + inner
                tag = "entrynonested"
            elif y == 1:
                e = nest(0, [inner, nla(r.choice((7, 8, 99)), b"\1\2\3\4")])
                tag = "entryunknown"
            else:
                deep = b""
                for _ in range(r.choice((3, 20, 200))):
                    deep = nest(1, [deep])
                e = nest(0, [inner, nla(r.choice((7, 99)) | NESTED, deep)])
                tag = "entrydeep"
            rest = payload[K.align4(ealen):]
            attrs[i] = nla(t | NESTED, e + rest)
            return attrs, tag
        if m == 5 and atype & NESTED and len(payload) >= 8:
            # an inner scalar of the wrong length
            ealen, etype = struct.unpack_from("=HH", payload)
            inner = payload[4:ealen]
            if len(inner) >= 8:
                ilen, itype = struct.unpack_from("=HH", inner)
                if itype in (1, 3, 4, 5) and ilen in (5, 6, 8):
                    bad = nla(itype, os.urandom(r.choice((0, 1, 3, 12))))
                    if len(bad) != K.align4(ilen) or bad[0] != ilen:
                        e = nest(0, [bad, inner[K.align4(ilen):]])
                        attrs[i] = nla(t | NESTED,
                                       e + payload[K.align4(ealen):])
                        return attrs, "innerlen"
        if m == 6:                      # the last attribute overruns
            a = attrs[-1]
            attrs[-1] = S_PACK(len(a) + r.choice((4, 8, 1000)),
                               struct.unpack_from("=H", a, 2)[0]) + a[4:]
            return attrs, "overrun"
        if m == 7:                      # nla_len < 4 or garbage tail
            attrs.append(r.choice((b"\1\0\1\0", b"\3\0\1\0", b"\2\0")))
            return attrs, "shortattr"
        t = r.choice([t for t in (9, 10, 0x7fff)])
        attrs.append(nla(t, b""))
        return attrs, "unknownattr"

    # --- sending and receiving -------------------------------------------

    def frame(self, conn, cmd, attrs, flags, version=1, resv=0, lenfix=None,
              cut=0):
        conn.seq = (conn.seq + 1) & 0xffffffff or 1
        body = GHDR.pack(cmd, version, resv) + b"".join(attrs)
        if cut:
            body = body[:-cut] if cut < len(body) else b""
        n = 16 + len(body)
        return conn.seq, HDR.pack(n if lenfix is None else lenfix(n),
                                  self.fam, flags, conn.seq, 0) + body

    def build(self, q, conn, semantic):
        """Encode Q; for a non-semantic request, break it at byte level."""
        r = self.rng
        nulname = "nulname" in q.mut
        attrs = self.attrs_of(q, nulname)
        if q.name is not None and "+nulname" in q.mut:
            pass
        flags = K.NLM_F_REQUEST
        if q.dump:
            flags |= K.NLM_F_DUMP
        else:
            flags |= K.NLM_F_ACK
        version, resv, lenfix, cut, cmd = 1, 0, None, 0, q.cmd
        if not semantic:
            m = r.randrange(10)
            q.semantic = False
            if m < 5:
                attrs, q.mut = self.mutate_bytes(attrs, q)
                q.must_fail = True
                q.policy_err = True
                if q.mut == "entrynonested":
                    # The core validates a nested array's entries, not
                    # their NLA_F_NESTED flag: kvip's parser rejects it,
                    # and that ends this socket's staged set.
                    q.policy_err = False
                    q.parse_err = True
            elif m == 5:
                cmd = r.choice((0, 9, 100, 255))
                q.mut = "badcmd"
                q.must_fail = True
            elif m == 6:
                resv = r.choice((1, 0x100, 0xffff))
                q.mut = "resv"
                q.must_fail = True
                q.policy_err = True
            elif m == 7:
                y = r.randrange(4)
                if y == 0:
                    lenfix = lambda n: n + r.choice((4, 100, 1 << 20))
                    q.no_reply = True
                    q.mut = "lenlong"
                elif y == 1:
                    lenfix = lambda n: r.randrange(16)
                    q.no_reply = True
                    q.mut = "lentiny"
                elif y == 2:
                    attrs = []
                    cut = r.randrange(1, 4)         # genl hdr incomplete
                    q.mut = "shortgenl"
                    q.must_fail = True
                else:
                    attrs.append(nla(A_NAME, b"zzzzzzzz"))
                    c = r.randrange(1, 4)       # inside the last attribute
                    lenfix = lambda n: n - c
                    q.mut = "lencut"
                    q.must_fail = True
                    q.policy_err = True
            elif m == 8:
                extra = r.choice((K.NLM_F_CREATE, K.NLM_F_EXCL, K.NLM_F_APPEND,
                                  0x1000, 0x8000, K.NLM_F_ECHO))
                if q.dump:
                    extra = r.choice((0x1000, 0x8000, K.NLM_F_ECHO))
                flags |= extra
                q.mut = "nlflags"
                q.either = True
            else:
                if q.cmd == GET or r.random() < 0.5:
                    version = r.choice((0, 2, 255))
                    q.mut = "version"
                    q.either = True
                else:
                    flags = (flags & ~K.NLM_F_ACK) | K.NLM_F_DUMP
                    q.dump = True
                    q.mut = "dumpflag"
                    q.must_fail = True
        q.nlflags = flags
        seq, raw = self.frame(conn, cmd, attrs, flags, version, resv, lenfix,
                              cut)
        q.raw = raw
        return seq, raw

    def check_msg(self, data, off, mlen, mtype, mflags, q):
        """A non-error reply must be a well-formed kvip message."""
        if mtype != self.fam:
            self.find("reply of unexpected type %d" % mtype, q)
            return None
        if mlen < 20:
            self.find("kvip reply without genl header (%d bytes)" % mlen, q)
            return None
        cmd = data[off + 16]
        if cmd not in (GET, CFG_GET):
            self.find("kvip reply with cmd %d" % cmd, q)
        pl = bytes(data[off + 20:off + mlen])
        m = self.parse(pl, 0, len(pl), "kvip")
        if m is None:
            self.find("malformed kvip reply: %s" % pl[:200].hex(), q)
            return None
        if cmd == CFG_GET and set(m) != {"config"}:
            self.find("GET_CONFIG reply is not KVIP_A_CONFIG alone", q)
        elif cmd == GET and "name" not in m:
            self.find("kvip reply without a name", q)
        return m

    SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}

    FMT = {"u8": "=B", "u16": "=H", "u32": "=I", "u64": "=Q"}

    def parse(self, data, off, end, space):
        """Check and decode attributes of SPACE in data[off:end] in one
        pass: every attribute known, of the right size, nests flagged,
        strings terminated, no trailing bytes. None if malformed."""
        table = K.SPACES[space]
        out = {}
        unpack = struct.unpack_from
        while off < end:
            if off + 4 > end:
                return None
            alen, atype = unpack("=HH", data, off)
            if alen < 4 or off + alen > end:
                return None
            desc = table.get(atype & K.NLA_TYPE_MASK)
            if desc is None:
                return None
            name, kind, sub = desc
            p0, p1 = off + 4, off + alen
            fmt = self.FMT.get(kind)
            if fmt:
                if p1 - p0 != self.SIZES[kind]:
                    return None
                out[name] = unpack(fmt, data, p0)[0]
            elif kind == "string":
                if p1 == p0 or data[p1 - 1] != 0 or p1 - p0 > 256:
                    return None
                out[name] = data[p0:p1 - 1].decode(errors="replace")
            elif kind == "addr":
                if p1 - p0 not in (4, 16):
                    return None
                out[name] = data[p0:p1]
            elif kind == "nest":
                if not atype & NESTED:
                    return None
                v = self.parse(data, p0, p1, sub)
                if v is None:
                    return None
                out[name] = v
            elif kind == "pad":
                pass
            elif kind == "list":
                if not atype & NESTED:
                    return None
                lst = []
                o = p0
                while o < p1:
                    if o + 4 > p1:
                        return None
                    el, et = unpack("=HH", data, o)
                    if el < 4 or o + el > p1 or not et & NESTED:
                        return None
                    v = self.parse(data, o + 4, o + el, sub)
                    if v is None:
                        return None
                    lst.append(v)
                    o += (el + 3) & ~3
                out[name] = lst
            off += (alen + 3) & ~3
        return out

    def well_formed(self, data, space):
        off = 0
        table = K.SPACES[space]
        while off < len(data):
            if off + 4 > len(data):
                return False
            alen, atype = struct.unpack_from("=HH", data, off)
            if alen < 4 or off + alen > len(data):
                return False
            t = atype & K.NLA_TYPE_MASK
            desc = table.get(t)
            if desc is None:
                return False
            name, kind, sub = desc
            p = data[off + 4:off + alen]
            if kind in self.SIZES:
                if len(p) != self.SIZES[kind]:
                    return False
            elif kind == "string":
                if not p or p[-1] != 0 or len(p) > 256:
                    return False
            elif kind == "addr":
                if len(p) not in (4, 16):
                    return False
            elif kind == "nest":
                if not atype & NESTED or not self.well_formed(p, sub):
                    return False
            elif kind == "list":
                if not atype & NESTED:
                    return False
                o = 0
                while o < len(p):
                    if o + 4 > len(p):
                        return False
                    el, et = struct.unpack_from("=HH", p, o)
                    if el < 4 or o + el > len(p) or not et & NESTED or \
                            not self.well_formed(p[o + 4:o + el], sub):
                        return False
                    o += K.align4(el)
            off += K.align4(alen)
        return True

    def error_of(self, data, off, mlen, mflags, q, done=False):
        err = -struct.unpack_from("=i", data, off + 16)[0]
        if err == 0:
            return 0
        msg = None
        if mflags & K.NLM_F_ACK_TLVS:
            if done:                    # NLMSG_DONE: errno, then TLVs
                tlv = off + 16 + 4
            elif mflags & K.NLM_F_CAPPED:
                tlv = off + 16 + 4 + 16
            else:
                olen = struct.unpack_from("=I", data, off + 20)[0]
                tlv = off + 16 + 4 + K.align4(olen)
            for atype, val in K.iter_attrs(bytes(data[tlv:off + mlen])):
                if atype == K.NLMSGERR_ATTR_MSG:
                    msg = val
        if not msg or msg == b"\0":
            exempt = err == E.EPERM or (q is not None and
                                        q.mut in CORE_NO_EXTACK)
            if not exempt:
                self.find("error %s without extack message" % K.errname(err),
                          q)
        return err

    def recv_until(self, conn, seq, q, dump_msgs=None, stop_after=None):
        """Read replies until the ACK/error/DONE of SEQ; validate every
        message. Returns the errno (0 ok, None nothing). DUMP_MSGS collects
        parsed kvip messages for SEQ."""
        got = 0
        sock = conn.sock
        while True:
            try:
                n, fl = sock.recvfrom_into(conn.buf, conn.bufsize,
                                           socket.MSG_TRUNC)[0], 0
            except socket.timeout:
                self.find("no reply within %g s" % REPLY_TIMEOUT, q)
                return None
            if n > conn.bufsize:
                self.find("reply of %d bytes truncated by the %d-byte "
                          "buffer" % (n, conn.bufsize), q)
                return None
            data = conn.buf
            off = 0
            result = "more"
            while off + 16 <= n:
                mlen, mtype, mflags, mseq, _ = HDR.unpack_from(data, off)
                if mlen < 16 or off + mlen > n:
                    self.find("bad nlmsg_len %d in reply" % mlen, q)
                    return None
                mine = mseq == seq
                if mtype == K.NLMSG_ERROR:
                    err = self.error_of(data, off, mlen, mflags,
                                        q if mine else None)
                    if mine:
                        result = err
                elif mtype == K.NLMSG_DONE:
                    err = 0
                    if mlen >= 20:
                        err = -struct.unpack_from("=i", data, off + 16)[0]
                        if err:
                            self.error_of(data, off, mlen, mflags,
                                          q if mine else None, True)
                    if mine:
                        if mflags & K.NLM_F_DUMP_INTR:
                            err = err or E.EINTR
                        result = err
                    elif mseq == conn.pending_dump:
                        conn.pending_dump = None
                else:
                    m = self.check_msg(data, off, mlen, mtype, mflags, q)
                    if mine and dump_msgs is not None and m is not None:
                        if mflags & K.NLM_F_DUMP_INTR:
                            dump_msgs.append(None)
                        dump_msgs.append(m)
                off += K.align4(mlen)
            got += 1
            if result != "more":
                return result
            if stop_after is not None and got >= stop_after:
                return "stopped"

    def reopen(self, i):
        old = self.conns[i]
        old.close()
        for name, st in list(self.staged.items()):
            if st[0] == old.ident:
                del self.staged[name]
        self.conns[i] = self.open(self.next_ident)
        if TRACE:
            print("T reopen c%d -> c%d" % (old.ident, self.next_ident))
        self.next_ident += 1

    # --- the model vs the kernel -----------------------------------------

    @staticmethod
    def addr_b(a):
        return a if isinstance(a, bytes) else K.addr_bytes(a)

    def kernel_view(self, services):
        out = {}
        for s in services:
            ab = self.addr_b
            fes = sorted((f["type"], f.get("family"),
                          ab(f["addr"]) if "addr" in f else None,
                          f["port"]) for f in s.get("frontends", []))
            eps = sorted((e["family"], ab(e["addr"]), e["port"],
                          e["weight"], e["flags"]) for e in s["endpoints"])
            ranges = tuple(sorted((c["family"], ab(c["addr"]), c["prefix"])
                                  for c in s.get("source_ranges", [])))
            opts = (s.get("flags"), s.get("affinity_timeout"), ranges)
            out[s["name"]] = (s["proto"], fes, eps, opts)
        return out

    def model_view(self, names=None):
        out = {}
        for name, (proto, fes, eps, opts) in self.model.items():
            if names is not None and name not in names:
                continue
            out[name] = (proto, sorted(fes), sorted(eps), opts)
        return out

    def compare(self, kern, where, q=None):
        mod = self.model_view(set(kern) if where.startswith("get") else None)
        if kern == mod:
            return True
        for name in sorted(set(kern) | set(mod)):
            k, m = kern.get(name), mod.get(name)
            if k == m:
                continue
            if k is None or m is None:
                self.find("%s: service '%s' %s" % (
                    where, name[:40], "missing in the kernel" if k is None
                    else "in the kernel, not in the model"), q)
                continue
            diff = []
            if k[0] != m[0]:
                diff.append("proto %s != model %s" % (k[0], m[0]))
            if k[1] != m[1]:
                diff.append("frontends %s != model %s" % (k[1][:4], m[1][:4]))
            if k[2] != m[2]:
                ks, ms = set(k[2]), set(m[2])
                diff.append("endpoints %d != model %d (extra %s, missing %s)"
                            % (len(k[2]), len(m[2]), sorted(ks - ms)[:3],
                               sorted(ms - ks)[:3]))
            if k[3] != m[3]:
                diff.append("options %s != model %s" % (k[3], m[3]))
            self.find("%s: service '%s': %s" % (where, name[:40],
                                                "; ".join(diff)), q)
        return False

    def full_dump(self, where):
        for _ in range(5):
            try:
                svcs = self.dumper().services()
                break
            except K.NlError as e:
                if e.errno == E.EINTR:
                    continue
                self.find("%s: dump failed: %s" % (where, e))
                return None
        else:
            self.find("%s: dump interrupted 5 times" % where)
            return None
        return svcs

    def dumper(self):
        if not hasattr(self, "_dumper"):
            self._dumper = K.KvipNl()
        return self._dumper

    def check_dump(self, where):
        svcs = self.full_dump(where)
        if svcs is not None and self.use_model:
            self.compare(self.kernel_view(svcs), where)
        return svcs

    # --- one step --------------------------------------------------------

    def step(self):
        r = self.rng
        g = self.gen()
        reqs = g if isinstance(g, list) else [g]
        ci = r.randrange(len(self.conns))
        if isinstance(g, list):
            self.stats["bigset"] = self.stats.get("bigset", 0) + 1
            # sometimes another socket appends in the middle
            if len(reqs) > 1 and r.random() < 0.3:
                q = Req(SET)
                q.name = reqs[0].name
                q.has_eps = True
                q.eps = [self.rand_ep()]
                q.setf = APPEND | r.choice((0, MORE))
                q.mut = "otherappend"
                reqs.insert(1, (q, (ci + 1) % len(self.conns)))
        for item in reqs:
            if isinstance(item, tuple):
                q, i = item
            else:
                q, i = item, ci
            self.send_one(q, i, semantic=isinstance(g, list) or None)
        # close a socket now and then: mid-sequence, mid-dump
        if r.random() < 0.01:
            self.reopen(r.randrange(len(self.conns)))

    def send_one(self, q, ci, semantic=None):
        r = self.rng
        conn = self.conns[ci]
        if semantic is None:
            y = r.random()
            if y < 0.55:
                semantic = True
            elif y < 0.8:
                self.mutate_semantic(q)
                semantic = True
            else:
                semantic = False
        pred = self.predict(q, conn) if self.use_model and semantic else None
        seq, raw = self.build(q, conn, semantic)
        if q.either and self.use_model:
            pred = self.predict(q, conn)
        # A dump still unread on this socket is read to its end before
        # another dump starts (or its end would be taken for the new
        # one's). Only now is it known: build() may add NLM_F_DUMP.
        if q.dump and conn.pending_dump is not None:
            self.recv_until(conn, conn.pending_dump, None)
            conn.pending_dump = None
        self.sent += 1
        key = q.mut.split("+")[0] or "valid"
        self.stats[key] = self.stats.get(key, 0) + 1
        try:
            conn.sock.send(raw)
        except OSError as e:
            if len(raw) > 60000 and e.errno == E.EMSGSIZE:
                return
            self.find("send failed: %s" % e, q)
            return
        if q.no_reply:
            return
        msgs = [] if q.cmd in (GET, CFG_GET) else None
        stop = None
        if q.dump and r.random() < 0.1:
            stop = 1
        err = self.recv_until(conn, seq, q, msgs, stop)
        if TRACE:
            print("T %d c%d %s cmd=%d name=%.12r setf=%d n=%d err=%s st=%s" % (
                self.sent, conn.ident, q.mut or "-", q.cmd, q.name, q.setf,
                len(q.eps), err, {k[:6]: (v[0], len(v[1])) for k, v in
                                  self.staged.items()}))
        if err == "stopped":
            conn.pending_dump = seq
            if r.random() < 0.5:
                self.reopen(ci)     # close mid-dump
            return
        if err is None:
            return
        if err == E.EINTR and q.dump:
            return
        if q.must_fail:
            if err == 0:
                self.find("mutated request accepted", q)
                if self.use_model:
                    self.resync()
            elif q.parse_err and self.use_model:
                self.apply(q, conn, err)    # kvip saw it: staged set ends
            return
        if not self.use_model:
            return
        if q.either and err and err not in pred and \
                err in (E.EINVAL, E.EOPNOTSUPP):
            return                      # the core refused the header
        if pred is not None and err not in pred:
            self.find("errno %s, contract allows %s" % (
                K.errname(err) if err else "0 (OK)",
                "/".join(K.errname(e) if e else "OK" for e in sorted(pred))),
                q)
            self.resync()
            return
        if pred is None:
            return
        if q.cmd == GET and not err and msgs is not None:
            self.check_get(q, msgs)
        if q.cmd == CFG_GET and not err and msgs is not None:
            self.check_config(q, msgs)
        self.apply(q, conn, err)

    def check_get(self, q, msgs):
        if None in msgs:
            return
        svcs = []
        for m in msgs:
            if "endpoint_count" in m:
                m.setdefault("endpoints", [])
                svcs.append(m)
            elif svcs and svcs[-1]["name"] == m.get("name"):
                svcs[-1]["endpoints"] += m.get("endpoints", [])
            else:
                self.find("continuation does not follow its service", q)
                return
        for s in svcs:
            if len(s["endpoints"]) != s["endpoint_count"]:
                self.find("endpoint_count %d != %d endpoints" % (
                    s["endpoint_count"], len(s["endpoints"])), q)
                return
        where = "get dump" if q.dump else "get doit"
        if q.dump and q.name is None:
            where = "full dump"
            self.compare(self.kernel_view(svcs), where, q)
        else:
            self.compare(self.kernel_view(svcs), "get " + where, q)

    def config_view(self, m):
        ab = self.addr_b
        out = {}
        for a, key in ((C_NODEPORT, "nodeport_addrs"),
                       (C_CLUSTER, "cluster_cidrs")):
            out[a] = tuple((c["family"], ab(c["addr"]), c["prefix"])
                           for c in m.get(key, []))
        out[C_MASQ] = m.get("masquerade_all")
        out[C_DROP] = m.get("drop_invalid")
        return out

    def check_config(self, q, msgs):
        if len(msgs) != 1 or "config" not in msgs[0]:
            self.find("GET_CONFIG: %d replies" % len(msgs), q)
            return
        got = self.config_view(msgs[0]["config"])
        if got != self.cfg:
            self.find("GET_CONFIG %s != model %s" % (got, self.cfg), q)
            self.cfg = got

    def resync(self):
        """After a finding: take the kernel's table as the model."""
        svcs = self.full_dump("resync")
        if svcs is None:
            return
        self.model = {n: [p, list(f), list(e), o]
                      for n, (p, f, e, o) in self.kernel_view(svcs).items()}
        self.staged.clear()
        for i in range(len(self.conns)):
            self.reopen(i)

    def frontend_check(self, svcs, where):
        owner = {}
        for s in svcs:
            for f in s.get("frontends", []):
                k = (s["proto"], f.get("family"), f.get("addr"), f["port"])
                if f["type"] == 3:
                    k = (s["proto"], None, None, f["port"])
                if k in owner and owner[k] != s["name"]:
                    self.find("%s: frontend %s in '%s' and '%s'" % (
                        where, k, owner[k], s["name"]))
                owner[k] = s["name"]


def run_child(seed, count, tag):
    f = Fuzzer(seed, model=False, tag=tag)
    try:
        while f.sent < count:
            f.step()
    except Finding:
        pass
    return f


def percent(text):
    """argparse type: an integer 0..100."""
    import argparse
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError(
            "invalid percentage '%s' (0..100)" % text)
    return v


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="kvip generic netlink fuzzer")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--concurrent", type=percent, default=50, metavar="PCT",
                    help="percent of --count the concurrent senders send")
    ap.add_argument("--check-every", type=int, default=2000,
                    help="compare a full dump with the model every N")
    ap.add_argument("--corrupt-model", action="store_true")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else \
        int.from_bytes(os.urandom(4), "little")
    print("# seed: %d" % seed, flush=True)
    det = args.count if args.procs <= 1 else \
        args.count - args.count * args.concurrent // 100
    t0 = time.monotonic()
    f = Fuzzer(seed)
    f.conns[0].sock.send(f.frame(f.conns[0], FLUSH, [], K.NLM_F_REQUEST |
                                 K.NLM_F_ACK)[1])
    f.recv_until(f.conns[0], f.conns[0].seq, None)
    # ... and the default settings, which the model starts from.
    defaults = nest(A_CONFIG, [nest(C_NODEPORT, []), nest(C_CLUSTER, []),
                               u8(C_MASQ, 0), u8(C_DROP, 0)])
    f.conns[0].sock.send(f.frame(f.conns[0], CFG_SET, [defaults],
                                 K.NLM_F_REQUEST | K.NLM_F_ACK)[1])
    f.recv_until(f.conns[0], f.conns[0].seq, None)
    nextcheck = args.check_every
    try:
        while f.sent < det:
            f.step()
            if f.sent >= nextcheck:
                nextcheck += args.check_every
                f.check_dump("dump after %d messages" % f.sent)
    except Finding:
        pass
    for i in range(len(f.conns)):
        f.reopen(i)           # closing drops staged sets: nothing visible
    if args.corrupt_model:
        if f.model:
            name = sorted(f.model)[0]
            f.model[name][2] = f.model[name][2] + [(AF4, b"\1\2\3\4", 1, 1, 3)]
        else:
            f.model["corrupt"] = [TCP, [], [], (0, None, ())]
        print("# corrupted the model", flush=True)
    svcs = f.check_dump("final dump (phase 1, %d messages)" % f.sent)
    if svcs is not None:
        f.frontend_check(svcs, "phase 1")
    t1 = time.monotonic()
    sent = f.sent
    findings = len(f.findings)
    print("# phase 1: %d messages in %.1f s, %.0f msg/s, %d services at the "
          "end, %d findings" % (f.sent, t1 - t0, f.sent / max(t1 - t0, 1e-6),
                                len(svcs or []), findings), flush=True)
    print("# mutations: " + " ".join("%s=%d" % kv for kv in
                                     sorted(f.stats.items())), flush=True)

    rest = args.count - det
    if args.procs > 1 and rest > 0:
        per = max(1, rest // args.procs)
        pids = []
        for i in range(args.procs):
            cseed = (seed * 1000003 + i + 1) & 0xffffffff
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    c = run_child(cseed, per, " [proc %d seed %d]" % (i, cseed))
                    code = 1 if c.findings else 0
                finally:
                    sys.stdout.flush()
                    os._exit(code)
            pids.append(pid)
        bad = 0
        for pid in pids:
            _, st = os.waitpid(pid, 0)
            bad += st != 0
        t2 = time.monotonic()
        sent += per * args.procs
        findings += bad
        g = Fuzzer(seed ^ 0x5a5a5a5a, model=False)
        svcs = g.full_dump("final dump (phase 2)")
        if svcs is not None:
            g.frontend_check(svcs, "phase 2")
        findings += len(g.findings)
        print("# phase 2: %d procs x %d messages in %.1f s, %.0f msg/s, "
              "%d services at the end, %d procs with findings" % (
                  args.procs, per, t2 - t1, per * args.procs /
                  max(t2 - t1, 1e-6), len(svcs or []), bad), flush=True)
    t = time.monotonic() - t0
    print("# total: %d messages in %.1f s, %.0f msg/s, %s" % (
        sent, t, sent / max(t, 1e-6),
        "%d findings" % findings if findings else "no findings"), flush=True)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
