#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""kvip_server.py - backend servers for the kvip selftests.

One single-threaded process serves any number of "backends", each in its own
network namespace: the sockets are created after setns() into the namespace
(named as in /run/netns, i.e. created by `ip netns add`) and keep living
there, so one python startup serves a whole topology.

Every backend listens on 0.0.0.0 and :: (IPv6-only), on every port given,
for every protocol given, and answers with its own name:

  tcp, sctp  for each line received: "NAME LOCAL PEER LINE\\n"
  udp        for each datagram:       "NAME LOCAL PEER DATAGRAM\\n"
  http       any request:             200, body "NAME\\n" (X-Backend: NAME)

LOCAL is the address:port the backend saw the request arrive on (the
endpoint after DNAT), PEER the address:port it came from (the real client:
kvip must not SNAT). IPv6 addresses are written [ADDR]:PORT.

Usage:
  kvip_server.py [-p PROTO]... [--port P[-Q]]... [--log FILE] [--daemon]
                 {--netns NS=NAME... | --name NAME}

With --daemon the command returns once every socket listens, printing the
server's pid on stdout (kill it to stop the server); errors during setup
are printed and exit with status 1.
"""

import argparse
import os
import resource
import selectors
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvip_nl  # noqa: E402

SOL_IP = 0
IP_PKTINFO = 8              # not exported by the socket module
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50


def fmt_addr(addr):
    """Format a socket address as ip:port or [ip6]:port, unmapping v4."""
    host, port = addr[0], addr[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def parse_ports(specs):
    ports = []
    for spec in specs:
        lo, _, hi = spec.partition("-")
        lo = int(lo)
        hi = int(hi) if hi else lo
        if not 0 < lo <= hi < 65536:
            raise ValueError("bad port range %r" % spec)
        ports.extend(range(lo, hi + 1))
    return ports


class Netns:
    """Enter named network namespaces and come back."""

    def __init__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)

    def enter(self, name):
        kvip_nl.setns(name)

    def leave(self):
        kvip_nl.setns(self.home)


class Server:
    def __init__(self, log=None):
        self.sel = selectors.DefaultSelector()
        self.log = open(log, "a", buffering=1) if log else None
        self.nsock = 0

    def note(self, name, proto, local, peer):
        if self.log:
            self.log.write("%s %s %s %s\n" % (name, proto, local, peer))

    def listen(self, name, proto, port):
        for fam, any_addr in ((socket.AF_INET, "0.0.0.0"),
                              (socket.AF_INET6, "::")):
            if proto == "udp":
                s = socket.socket(fam, socket.SOCK_DGRAM)
            elif proto == "sctp":
                s = socket.socket(fam, socket.SOCK_STREAM,
                                  socket.IPPROTO_SCTP)
            else:
                s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if proto == "udp":
                # Learn each datagram's destination and answer from it:
                # the reply must leave from the address the request hit.
                if fam == socket.AF_INET:
                    s.setsockopt(SOL_IP, IP_PKTINFO, 1)
                else:
                    s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            s.bind((any_addr, port))
            if proto != "udp":
                s.listen(128)
            s.setblocking(False)
            kind = "udp" if proto == "udp" else "accept"
            self.sel.register(s, selectors.EVENT_READ,
                              (kind, name, proto, None))
            self.nsock += 1

    # -- event handlers ---------------------------------------------------

    def on_accept(self, lsock, name, proto):
        try:
            conn, peer = lsock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        conn.setblocking(False)
        local = fmt_addr(conn.getsockname())
        peer = fmt_addr(peer)
        self.note(name, proto, local, peer)
        state = {"buf": b"", "local": local, "peer": peer}
        self.sel.register(conn, selectors.EVENT_READ,
                          ("conn", name, proto, state))

    def close(self, conn):
        self.sel.unregister(conn)
        conn.close()

    def on_conn(self, conn, name, proto, st):
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn)
            return
        st["buf"] += data
        if proto == "http":
            if b"\r\n\r\n" not in st["buf"]:
                return
            body = ("%s\n" % name).encode()
            head = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    "X-Backend: %s\r\nContent-Length: %d\r\n"
                    "Connection: close\r\n\r\n" % (name, len(body)))
            self.send_all(conn, head.encode() + body)
            self.close(conn)
            return
        while b"\n" in st["buf"]:
            line, st["buf"] = st["buf"].split(b"\n", 1)
            reply = "%s %s %s " % (name, st["local"], st["peer"])
            if not self.send_all(conn, reply.encode() + line + b"\n"):
                self.close(conn)
                return

    def send_all(self, conn, data):
        # Replies are tiny; a full send buffer means a dead peer.
        try:
            conn.setblocking(True)
            conn.settimeout(2)
            conn.sendall(data)
            conn.setblocking(False)
            return True
        except OSError:
            return False

    def on_udp(self, s, name):
        try:
            data, anc, _flags, peer = s.recvmsg(65536, 256)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        fam = s.family
        pktinfo = None
        local_ip = None
        for level, typ, val in anc:
            if fam == socket.AF_INET and level == SOL_IP and \
                    typ == IP_PKTINFO:
                # struct in_pktinfo { int ifindex; spec_dst; addr; }
                dst = val[8:12]
                local_ip = socket.inet_ntop(socket.AF_INET, dst)
                pktinfo = [(SOL_IP, IP_PKTINFO,
                            struct.pack("=i4s4s", 0, dst, b"\0" * 4))]
            elif fam == socket.AF_INET6 and level == socket.IPPROTO_IPV6 \
                    and typ == IPV6_PKTINFO:
                # struct in6_pktinfo { struct in6_addr addr; int ifindex; }
                dst = val[0:16]
                local_ip = socket.inet_ntop(socket.AF_INET6, dst)
                pktinfo = [(socket.IPPROTO_IPV6, IPV6_PKTINFO,
                            struct.pack("=16si", dst, 0))]
        local = fmt_addr((local_ip or "?", s.getsockname()[1]))
        peer_s = fmt_addr(peer)
        self.note(name, "udp", local, peer_s)
        reply = ("%s %s %s " % (name, local, peer_s)).encode() + \
            data.rstrip(b"\n") + b"\n"
        try:
            s.sendmsg([reply], pktinfo or [], 0, peer)
        except OSError as e:
            print("kvip_server: %s: udp reply to %s: %s" % (name, peer_s, e),
                  file=sys.stderr)

    def run(self):
        while True:
            for key, _ in self.sel.select():
                kind, name, proto, st = key.data
                if kind == "accept":
                    self.on_accept(key.fileobj, name, proto)
                elif kind == "conn":
                    self.on_conn(key.fileobj, name, proto, st)
                else:
                    self.on_udp(key.fileobj, name)


def setup(args):
    ports = parse_ports(args.port or ["8080"])
    protos = args.proto or ["tcp"]
    need = len(ports) * len(protos) * 2 * max(1, len(args.netns)) + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need + 1024:
        want = need + 1024
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (want, max(hard, want)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    srv = Server(args.log)
    if args.netns:
        ns = Netns()
        for spec in args.netns:
            nsname, sep, name = spec.partition("=")
            if not sep or not nsname or not name:
                raise ValueError("--netns wants NS=NAME, got %r" % spec)
            ns.enter(nsname)
            try:
                for proto in protos:
                    for port in ports:
                        srv.listen(name, proto, port)
            finally:
                ns.leave()
    else:
        for proto in protos:
            for port in ports:
                srv.listen(args.name, proto, port)
    return srv


def main():
    ap = argparse.ArgumentParser(
        description="name-echo backend servers for the kvip selftests")
    ap.add_argument("-p", "--proto", action="append",
                    choices=["tcp", "udp", "sctp", "http"],
                    help="protocol to serve (repeatable, default tcp)")
    ap.add_argument("--port", action="append",
                    help="port or range P-Q (repeatable, default 8080)")
    ap.add_argument("--netns", action="append", default=[],
                    metavar="NS=NAME", help="serve as NAME inside netns NS")
    ap.add_argument("--name", default=socket.gethostname(),
                    help="name when serving in the current netns")
    ap.add_argument("--log", help="append 'NAME PROTO LOCAL PEER' per "
                    "connection or datagram to this file")
    ap.add_argument("--daemon", action="store_true",
                    help="return once listening; print the pid")
    args = ap.parse_args()

    if not args.daemon:
        try:
            srv = setup(args)
        except (OSError, ValueError) as e:
            print("kvip_server: %s" % e, file=sys.stderr)
            return 1
        try:
            srv.run()
        except KeyboardInterrupt:
            return 0

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(wfd)
        with os.fdopen(rfd) as r:
            status = r.read()
        if status != "ok\n":
            print("kvip_server: %s" % (status.strip() or "setup failed"),
                  file=sys.stderr)
            os.waitpid(pid, 0)
            return 1
        print(pid)
        return 0

    os.close(rfd)
    try:
        srv = setup(args)
    except (OSError, ValueError) as e:
        os.write(wfd, str(e).encode())
        os._exit(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    os.write(wfd, b"ok\n")
    os.close(wfd)
    try:
        srv.run()
    except KeyboardInterrupt:
        pass
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
