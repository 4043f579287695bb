#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""kvip_nl.py - raw generic netlink client for the kvip family.

Sends hand-built messages, well-formed or not, so that tests (and fuzzers)
can reach kernel code paths that kvipctl never exercises: unknown
attributes, bad lengths, unknown flag bits, unknown commands.

Usage:
  kvip_nl.py [OPTIONS] REQUEST...        one request (the words of it)
  kvip_nl.py [OPTIONS] -b FILE|-         one request per line
  kvip_nl.py --monitor [COUNT]           print events ("EVENT cmd {json}"),
                                         after "READY"; stop after COUNT

Options: --offsets (print extack attribute offsets), --recv-size N (bytes
per recv(), default 1 MiB; the kernel sizes dump messages after it),
--hold (with -b FILE: build every request and open the socket, print
"READY", and send nothing until a line arrives on stdin; a test can then
limit the memory of a process that has already allocated what it needs).

Request syntax (see include/uapi/linux/kvip.h for the attributes):

  CMD [nlflags=F,F...] [version=N] [ATTR...]

  CMD     new_service, replace_service, del_service, get_service,
          set_endpoints, flush, set_config, get_config, or a number (e.g.
          99, an unknown command)
  nlflags extra header flags: create excl replace append dump root match
          echo (generic netlink rejects all but dump and echo). REQUEST is
          always set, and ACK unless it is a dump.
  ATTR    KEY=VALUE, KEY an attribute name of the current nest (name, proto,
          flags, frontends, endpoints, set_flags, ...; in a frontend: type,
          family, addr, port; in an endpoint: family, addr, port, weight,
          flags; affinity_timeout, source_ranges=[{family addr prefix}],
          config={nodeport_addrs=[...] cluster_cidrs=[...] masquerade_all
          drop_invalid}) or a number (an unknown attribute).
  VALUE   {ATTR...}         a nest
          [{ATTR...}...]    a list nest; entries have type 0, or N:{...}
          SCALAR            typed by the attribute (u8/u16/u32/u64, string,
                            address), symbolic names allowed: tcp udp sctp,
                            inet inet6, clusterip external nodeport,
                            ready|serving|terminating|local, more|append,
                            external_local|internal_local|affinity|managed|
                            endpoint_stats|conn_stats;
                            or forced with a prefix: u8: u16: u32: u64:
                            str: (NUL-terminated) bytes: (no NUL) hex: ip:
  Quote with "..." (shell-like) to put spaces in a value.

Example:
  kvip_nl.py new_service name=default/a proto=tcp \\
      'frontends=[{type=clusterip family=inet addr=10.96.0.10 port=80}]'

Output, per request: one "MSG {json}" line per reply message (get/dump),
then "OK" or "ERROR ENAME: extack message" ("ERROR ENAME" without one;
with --offsets the extack attribute offset is appended as "[offset N]").
Exit status: 0 if every request succeeded, 1 if one failed, 2 on a
syntax error.

As a module: KvipNl().request(cmd, attrs, flags) returns the parsed replies
or raises NlError(errno, message, offset); KvipNl().services() dumps the
table and checks the dump contract; build_request()/parse_attrs() turn
request text into attribute bytes and attribute bytes into values;
nla*()/frontend()/endpoint() build attributes directly; setns() and
unshare_netns() move the calling thread between network namespaces.
"""

import ctypes
import errno as errno_mod
import ipaddress
import json
import os
import re
import shlex
import socket
import struct
import sys

# --- netlink constants ------------------------------------------------------

NETLINK_GENERIC = 16
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ECHO = 0x8
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100        # in acks
NLM_F_ACK_TLVS = 0x200      # in acks
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2
NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_MCAST_GROUPS = 7
CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2
NETLINK_ADD_MEMBERSHIP = 1

NLFLAG_NAMES = {
    "create": NLM_F_CREATE, "excl": NLM_F_EXCL, "replace": NLM_F_REPLACE,
    "append": NLM_F_APPEND, "dump": NLM_F_DUMP, "root": NLM_F_ROOT,
    "match": NLM_F_MATCH, "echo": NLM_F_ECHO,
}

# --- the kvip contract (include/uapi/linux/kvip.h) --------------------------

KVIP_GENL_NAME = "kvip"
KVIP_GENL_VERSION = 1

CMDS = {"new_service": 1, "del_service": 2, "get_service": 3,
        "set_endpoints": 4, "flush": 5, "replace_service": 6,
        "set_config": 7, "get_config": 8}
CMD_NAMES = {v: k for k, v in CMDS.items()}
KVIP_MCGRP_EVENTS = "events"

SYMBOLS = {
    "proto": {"tcp": 6, "udp": 17, "sctp": 132},
    "family": {"inet": socket.AF_INET, "inet6": socket.AF_INET6},
    "type": {"clusterip": 1, "external": 2, "nodeport": 3},
    "ep_flags": {"ready": 1, "serving": 2, "terminating": 4, "local": 8},
    "set_flags": {"more": 1, "append": 2},
    "svc_flags": {"external_local": 1, "internal_local": 2, "affinity": 4,
                  "managed": 8, "endpoint_stats": 16, "conn_stats": 32},
}

# space -> {type number: (name, kind, symbols or sub-space)}
# kinds: u8 u16 u32 u64 string addr nest list pad
SPACES = {
    "kvip": {
        1: ("name", "string", None),
        2: ("proto", "u8", "proto"),
        3: ("flags", "u32", "svc_flags"),
        4: ("frontends", "list", "frontend"),
        5: ("endpoints", "list", "endpoint"),
        6: ("stats", "nest", "stats"),
        7: ("set_flags", "u32", "set_flags"),
        8: ("endpoint_count", "u32", None),
        9: ("affinity_timeout", "u32", None),
        10: ("source_ranges", "list", "cidr"),
        11: ("config", "nest", "config"),
        12: ("affinity", "list", "affinity"),
        13: ("affinity_count", "u32", None),
    },
    "cidr": {
        1: ("family", "u16", "family"),
        2: ("addr", "addr", None),
        3: ("prefix", "u8", None),
    },
    "config": {
        1: ("nodeport_addrs", "list", "cidr"),
        2: ("cluster_cidrs", "list", "cidr"),
        3: ("masquerade_all", "u8", None),
        4: ("drop_invalid", "u8", None),
    },
    "affinity": {
        1: ("family", "u16", "family"),
        2: ("client", "addr", None),
        3: ("endpoint", "addr", None),
        4: ("port", "u16", None),
        5: ("expires", "u32", None),
    },
    "frontend": {
        1: ("type", "u8", "type"),
        2: ("family", "u16", "family"),
        3: ("addr", "addr", None),
        4: ("port", "u16", None),
    },
    "endpoint": {
        1: ("family", "u16", "family"),
        2: ("addr", "addr", None),
        3: ("port", "u16", None),
        4: ("weight", "u32", None),
        5: ("flags", "u32", "ep_flags"),
        6: ("stats", "nest", "stats"),
    },
    "stats": {
        1: ("pad", "pad", None),
        2: ("conns", "u64", None),
        3: ("rejects", "u64", None),
        4: ("drops", "u64", None),
    },
}

INT_FMT = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "s32": "i"}

# --- network namespaces (os.setns() is Python 3.12; Debian 12 has 3.11) ----

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _netns_call(ret, what):
    if ret:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def setns(ns):
    """Enter network namespace NS: an open fd, a name under /run/netns or
    a path."""
    if isinstance(ns, int):
        _netns_call(_libc.setns(ns, CLONE_NEWNET), "setns")
        return
    path = ns if "/" in ns else "/run/netns/" + ns
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _netns_call(_libc.setns(fd, CLONE_NEWNET), "setns " + ns)
    finally:
        os.close(fd)


def unshare_netns():
    """Move into a new network namespace."""
    _netns_call(_libc.unshare(CLONE_NEWNET), "unshare")


# errno names shared by two values: use the ones kernel code uses.
ERRNAME_PREFERRED = {errno_mod.EOPNOTSUPP: "EOPNOTSUPP",
                     errno_mod.EAGAIN: "EAGAIN",
                     errno_mod.EDEADLK: "EDEADLK"}


def errname(e):
    return ERRNAME_PREFERRED.get(e) or errno_mod.errorcode.get(e, "E%d" % e)


class NlError(Exception):
    def __init__(self, err, msg=None, offset=None):
        super().__init__(err, msg)
        self.errno = err
        self.msg = msg
        self.offset = offset

    def __str__(self):
        s = "ERROR %s" % errname(self.errno)
        if self.msg:
            s += ": %s" % self.msg
        return s


class SyntaxErr(Exception):
    pass


# --- attribute encoding -----------------------------------------------------

def align4(n):
    return (n + 3) & ~3


def nla(atype, payload, nested=False):
    """One netlink attribute, padded to 4 bytes."""
    if nested:
        atype |= NLA_F_NESTED
    hdr = struct.pack("=HH", 4 + len(payload), atype)
    return hdr + payload + b"\0" * (align4(len(payload)) - len(payload))


def nla_u8(t, v):
    return nla(t, struct.pack("=B", v))


def nla_u16(t, v):
    return nla(t, struct.pack("=H", v))


def nla_u32(t, v):
    return nla(t, struct.pack("=I", v))


def nla_u64(t, v):
    return nla(t, struct.pack("=Q", v))


def nla_str(t, s):
    return nla(t, s.encode() + b"\0")


def nla_nest(t, attrs):
    return nla(t, b"".join(attrs), nested=True)


def addr_bytes(text):
    return ipaddress.ip_address(text).packed


def frontend(ftype, addr=None, port=None):
    """Attributes of one frontend nest (helper for library users)."""
    a = [nla_u8(1, ftype)]
    if addr is not None:
        ip = ipaddress.ip_address(addr)
        a.append(nla_u16(2, socket.AF_INET if ip.version == 4
                         else socket.AF_INET6))
        a.append(nla(3, ip.packed))
    if port is not None:
        a.append(nla_u16(4, port))
    return nla_nest(0, a)


def cidr(text, family=None, prefix=None):
    """Attributes of one KVIP_CIDR_A_* nest from "ADDR/LEN" (host bits
    allowed: the kernel is the one to reject them)."""
    addr, _, plen = text.partition("/")
    ip = ipaddress.ip_address(addr)
    if family is None:
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    if prefix is None:
        prefix = int(plen) if plen else ip.max_prefixlen
    return nla_nest(0, [nla_u16(1, family), nla(2, ip.packed),
                        nla_u8(3, prefix)])


def endpoint(addr, port, weight=None, flags=None):
    ip = ipaddress.ip_address(addr)
    a = [nla_u16(1, socket.AF_INET if ip.version == 4 else socket.AF_INET6),
         nla(2, ip.packed), nla_u16(3, port)]
    if weight is not None:
        a.append(nla_u32(4, weight))
    if flags is not None:
        a.append(nla_u32(5, flags))
    return nla_nest(0, a)


# --- request text -> bytes --------------------------------------------------

_PLAIN_TOKEN = re.compile(r"[{}\[\]]|[^\s{}\[\]]+")


def tokenize(text):
    # shlex is slow (seconds for 60,000 endpoints in the guest); text
    # without quotes or escapes splits the same with a regex.
    if not any(c in text for c in "\"'\\"):
        return _PLAIN_TOKEN.findall(text)
    lex = shlex.shlex(text, posix=True, punctuation_chars="{}[]")
    lex.whitespace_split = True
    lex.commenters = ""
    out = []
    for tok in lex:
        if tok and all(c in "{}[]" for c in tok):
            out.extend(tok)         # "}]" -> "}", "]"
        else:
            out.append(tok)
    return out


def lookup(space, key):
    """Attribute number and description for KEY in SPACE."""
    table = SPACES.get(space, {})
    if key.isdigit():
        n = int(key)
        return n, table.get(n, (key, None, None))
    for n, desc in table.items():
        if desc[0] == key:
            return n, desc
    raise SyntaxErr("unknown attribute %r in %s" % (key, space))


def scalar(value, kind, symbols):
    """Encode a scalar VALUE for an attribute of KIND."""
    prefix, sep, rest = value.partition(":")
    if sep and prefix in ("u8", "u16", "u32", "u64", "s32", "str", "bytes",
                          "hex", "ip"):
        kind, value = prefix, rest
    if kind in INT_FMT:
        return struct.pack("=" + INT_FMT[kind], number(value, symbols))
    if kind in ("string", "str"):
        return value.encode() + b"\0"
    if kind == "bytes":
        return value.encode()
    if kind == "hex":
        return bytes.fromhex(value)
    if kind in ("addr", "ip"):
        try:
            return addr_bytes(value)
        except ValueError:
            raise SyntaxErr("bad address %r" % value)
    if kind is None:
        raise SyntaxErr("attribute %r needs a type prefix" % value)
    raise SyntaxErr("cannot encode %r as %s" % (value, kind))


def number(value, symbols):
    table = SYMBOLS.get(symbols or "", {})
    total = 0
    for part in value.split("|"):
        if part in table:
            total |= table[part]
        else:
            try:
                total |= int(part, 0)
            except ValueError:
                raise SyntaxErr("bad number %r" % part)
    return total


class Parser:
    def __init__(self, tokens):
        self.toks = tokens
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self):
        tok = self.peek()
        if tok is None:
            raise SyntaxErr("unexpected end of request")
        self.i += 1
        return tok

    def attrs(self, space, end=None):
        out = []
        while True:
            tok = self.peek()
            if tok is None or tok == end:
                if end:
                    self.next()
                return out
            out.append(self.attr(space))

    def attr(self, space):
        tok = self.next()
        key, sep, value = tok.partition("=")
        if not sep:
            raise SyntaxErr("expected KEY=VALUE, got %r" % tok)
        n, (_name, kind, sub) = lookup(space, key)
        if value:
            return nla(n, scalar(value, kind, sub))
        tok = self.next()
        if tok == "{":
            return nla(n, b"".join(self.attrs(sub or "?", "}")), nested=True)
        if tok == "[":
            return nla(n, self.list(sub or "?"), nested=True)
        return nla(n, scalar(tok, kind, sub))

    def list(self, space):
        entries = []
        while True:
            tok = self.next()
            if tok == "]":
                return b"".join(entries)
            etype = 0
            if tok.endswith(":") and tok[:-1].isdigit():
                etype = int(tok[:-1])
                tok = self.next()
            if tok != "{":
                raise SyntaxErr("list entries are {...}, got %r" % tok)
            entries.append(nla(etype, b"".join(self.attrs(space, "}")),
                               nested=True))


def build_request(text):
    """Parse a request (a line, or a list of argv words) into
    (cmd, nlmsg flags, genl version, attribute bytes)."""
    if isinstance(text, str):
        toks = tokenize(text)
    else:                       # argv words: each may hold several tokens
        toks = [t for word in text for t in tokenize(word)]
    if not toks:
        raise SyntaxErr("empty request")
    name = toks[0]
    if name.isdigit():
        cmd = int(name)
    elif name.lower() in CMDS:
        cmd = CMDS[name.lower()]
    else:
        raise SyntaxErr("unknown command %r" % name)
    flags = 0
    version = KVIP_GENL_VERSION
    p = Parser(toks[1:])
    while p.peek() and p.peek().startswith(("nlflags=", "version=")):
        key, _, val = p.next().partition("=")
        if key == "version":
            version = int(val, 0)
            continue
        flags = 0
        for f in filter(None, val.split(",")):
            if f not in NLFLAG_NAMES:
                raise SyntaxErr("unknown nlflag %r" % f)
            flags |= NLFLAG_NAMES[f]
    return cmd, flags, version, b"".join(p.attrs("kvip"))


# --- bytes -> values --------------------------------------------------------

def iter_attrs(data):
    off = 0
    while off + 4 <= len(data):
        alen, atype = struct.unpack_from("=HH", data, off)
        if alen < 4 or off + alen > len(data):
            break
        yield atype, data[off + 4:off + alen]
        off += align4(alen)


def decode(kind, sub, payload):
    if kind in INT_FMT and len(payload) == struct.calcsize(INT_FMT[kind]):
        return struct.unpack("=" + INT_FMT[kind], payload)[0]
    if kind == "string":
        return payload.split(b"\0", 1)[0].decode(errors="replace")
    if kind == "addr" and len(payload) in (4, 16):
        return str(ipaddress.ip_address(payload))
    if kind == "nest":
        return parse_attrs(payload, sub)
    if kind == "list":
        return [parse_attrs(p, sub) for _, p in iter_attrs(payload)]
    return payload.hex()


def parse_attrs(data, space="kvip"):
    """Attributes of SPACE as a dict (unknown ones keyed by number)."""
    out = {}
    for atype, payload in iter_attrs(data):
        t = atype & NLA_TYPE_MASK
        name, kind, sub = SPACES.get(space, {}).get(t, (str(t), None, None))
        if kind == "pad":
            continue
        out[name] = decode(kind, sub, payload)
    return out


# --- the socket -------------------------------------------------------------

class GenlSocket:
    # Receive size: the kernel sizes dump messages after what the reader
    # asks for, so a small one changes where a dump is split.
    recv_size = 1 << 20

    def __init__(self, family_name):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                  NETLINK_GENERIC)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.bind((0, 0))
        self.seq = 0
        self.family = self.resolve(family_name)

    def resolve(self, name):
        try:
            msgs = self._request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1,
                                 nla_str(CTRL_ATTR_FAMILY_NAME, name), 0)
        except NlError as e:
            if e.errno == errno_mod.ENOENT:
                raise NlError(e.errno, "generic netlink family '%s' not "
                              "found (module not loaded?)" % name)
            raise
        for _, _, payload in msgs:
            for atype, val in iter_attrs(payload[4:]):
                if atype == CTRL_ATTR_FAMILY_ID:
                    return struct.unpack("=H", val)[0]
        raise NlError(errno_mod.ENOENT, "no id for family '%s'" % name)

    def send_raw(self, msg_type, cmd, version, attrs, flags):
        """Send one message; return its sequence number."""
        self.seq += 1
        flags |= NLM_F_REQUEST
        if not flags & NLM_F_DUMP == NLM_F_DUMP:
            flags |= NLM_F_ACK
        body = struct.pack("=BBH", cmd, version, 0) + attrs
        hdr = struct.pack("=IHHII", 16 + len(body), msg_type, flags,
                          self.seq, 0)
        self.sock.send(hdr + body)
        return self.seq

    def _request(self, msg_type, cmd, version, attrs, flags):
        seq = self.send_raw(msg_type, cmd, version, attrs, flags)
        return self.collect(seq)

    def collect(self, seq):
        """Replies to SEQ: [(nlmsg flags, genl cmd, payload)]; raises
        NlError for an error ack. NLM_F_DUMP_INTR raises EINTR."""
        replies = []
        intr = False
        while True:
            data = self.sock.recv(self.recv_size)
            off = 0
            while off + 16 <= len(data):
                mlen, mtype, mflags, mseq, _pid = struct.unpack_from(
                    "=IHHII", data, off)
                if mlen < 16:
                    raise NlError(errno_mod.EBADMSG, "short nlmsg")
                payload = data[off + 16:off + mlen]
                off += align4(mlen)
                if mseq != seq:
                    continue
                if mflags & NLM_F_DUMP_INTR:
                    intr = True
                if mtype == NLMSG_DONE:
                    if len(payload) >= 4:
                        self.raise_error(payload, mflags)
                    if intr:
                        raise NlError(errno_mod.EINTR,
                                      "dump interrupted (NLM_F_DUMP_INTR)")
                    return replies
                if mtype == NLMSG_ERROR:
                    self.raise_error(payload, mflags)
                    return replies          # a plain ack
                cmd = payload[0] if payload else 0
                replies.append((mflags, cmd, payload))
                if not mflags & NLM_F_MULTI:
                    # a doit reply: an ack follows (we asked for one)
                    continue

    @staticmethod
    def raise_error(payload, mflags):
        err = -struct.unpack_from("=i", payload, 0)[0]
        if err == 0:
            return
        msg = offset = None
        if mflags & NLM_F_ACK_TLVS:
            if mflags & NLM_F_CAPPED:
                tlv = 4 + 16
            else:
                orig_len = struct.unpack_from("=I", payload, 4)[0]
                tlv = 4 + align4(orig_len)
            for atype, val in iter_attrs(payload[tlv:]):
                if atype == NLMSGERR_ATTR_MSG:
                    msg = val.split(b"\0", 1)[0].decode(errors="replace")
                elif atype == NLMSGERR_ATTR_OFFS and len(val) == 4:
                    offset = struct.unpack("=I", val)[0]
        raise NlError(err, msg, offset)


class KvipNl(GenlSocket):
    def __init__(self):
        super().__init__(KVIP_GENL_NAME)

    def request(self, cmd, attrs=b"", flags=0, version=KVIP_GENL_VERSION):
        """Send a kvip command; return the parsed reply messages."""
        msgs = self._request(self.family, cmd, version, attrs, flags)
        return [parse_attrs(p[4:]) for _, _, p in msgs]

    def join_events(self):
        """Join the events multicast group (no privilege needed)."""
        msgs = self._request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1,
                             nla_str(CTRL_ATTR_FAMILY_NAME, KVIP_GENL_NAME),
                             0)
        for _, _, payload in msgs:
            for atype, val in iter_attrs(payload[4:]):
                if atype != CTRL_ATTR_MCAST_GROUPS:
                    continue
                for _, grp in iter_attrs(val):
                    g = dict(iter_attrs(grp))
                    name = g.get(CTRL_ATTR_MCAST_GRP_NAME, b"")
                    if name.split(b"\0", 1)[0].decode() == KVIP_MCGRP_EVENTS:
                        gid = struct.unpack("=I",
                                            g[CTRL_ATTR_MCAST_GRP_ID])[0]
                        self.sock.setsockopt(SOL_NETLINK,
                                             NETLINK_ADD_MEMBERSHIP, gid)
                        return gid
        raise NlError(errno_mod.ENOENT, "no events multicast group")

    def events(self):
        """Yield (command name, attributes) for each event received."""
        while True:
            data = self.sock.recv(self.recv_size)
            off = 0
            while off + 16 <= len(data):
                mlen, mtype, _f, mseq, _pid = struct.unpack_from("=IHHII",
                                                                 data, off)
                payload = data[off + 16:off + mlen]
                off += align4(max(mlen, 16))
                if mtype != self.family or mseq != 0 or len(payload) < 4:
                    continue
                yield (CMD_NAMES.get(payload[0], str(payload[0])),
                       parse_attrs(payload[4:]))

    def services(self, name=None):
        """Dump the table as the contract describes it: one dict per
        service, continuation messages (NAME + ENDPOINTS only) merged into
        the service they follow. Raises NlError(EBADMSG) when the dump
        breaks the contract: a continuation for another service, a service
        whose header comes twice, or an endpoint count that does not match
        the endpoints received."""
        attrs = nla_str(1, name) if name else b""
        out = []
        for m in self.request(CMDS["get_service"], attrs, NLM_F_DUMP):
            if "endpoint_count" in m:
                if any(s["name"] == m["name"] for s in out):
                    raise NlError(errno_mod.EBADMSG, "service '%s' dumped "
                                  "twice" % m["name"])
                m.setdefault("endpoints", [])
                out.append(m)
            elif out and out[-1]["name"] == m.get("name"):
                out[-1]["endpoints"] += m.get("endpoints", [])
            else:
                raise NlError(errno_mod.EBADMSG, "continuation for '%s' "
                              "does not follow its service" % m.get("name"))
        for s in out:
            if len(s["endpoints"]) != s["endpoint_count"]:
                raise NlError(errno_mod.EBADMSG, "service '%s': endpoint "
                              "count %d, %d endpoints dumped" % (
                                  s["name"], s["endpoint_count"],
                                  len(s["endpoints"])))
        return out


# --- command line -----------------------------------------------------------

def run_one(nl, built, offsets):
    """Run one request built by build_request(), print its result; return
    True on success."""
    cmd, flags, version, attrs = built
    try:
        msgs = nl.request(cmd, attrs, flags, version)
    except NlError as e:
        line = str(e)
        if offsets and e.offset is not None:
            line += " [offset %d]" % e.offset
        print(line, flush=True)
        return False
    for m in msgs:
        print("MSG " + json.dumps(m, sort_keys=True))
    print("OK", flush=True)
    return True


def monitor(count):
    try:
        nl = KvipNl()
        nl.join_events()
    except NlError as e:
        print("kvip_nl.py: %s" % e, file=sys.stderr)
        return 1
    print("READY", flush=True)
    n = 0
    for cmd, attrs in nl.events():
        print("EVENT %s %s" % (cmd, json.dumps(attrs, sort_keys=True)),
              flush=True)
        n += 1
        if count and n >= count:
            return 0
    return 0


def main(argv):
    offsets = hold = False
    while argv and argv[0] in ("--offsets", "--recv-size", "--hold"):
        if argv[0] == "--recv-size":
            GenlSocket.recv_size = int(argv[1])
            argv = argv[2:]
            continue
        offsets |= argv[0] == "--offsets"
        hold |= argv[0] == "--hold"
        argv = argv[1:]
    if argv and argv[0] == "--monitor":
        return monitor(int(argv[1]) if len(argv) > 1 else 0)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] == "-b":
        if len(argv) != 2 or (hold and argv[1] == "-"):
            print("kvip_nl.py: [--hold] -b FILE (--hold reads its cue "
                  "from stdin)", file=sys.stderr)
            return 2
        f = sys.stdin if argv[1] == "-" else open(argv[1])
        lines = [l.strip() for l in f
                 if l.strip() and not l.lstrip().startswith("#")]
    else:
        lines = [argv]
    # Build everything first: no half-run batches on a syntax error.
    requests = []
    for line in lines:
        try:
            requests.append(build_request(line))
        except (SyntaxErr, ValueError) as e:
            print("kvip_nl.py: %s: %.200s" % (e, line), file=sys.stderr)
            return 2
    try:
        nl = KvipNl()
    except NlError as e:
        print("kvip_nl.py: %s" % e, file=sys.stderr)
        return 1
    if hold:
        print("READY", flush=True)
        sys.stdin.readline()
    ok = True
    for r in requests:
        ok &= run_one(nl, r, offsets)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
