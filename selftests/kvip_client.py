#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""kvip_client.py - traffic generator for the kvip selftests.

Opens COUNT connections (UDP: connected sockets, one per "connection")
one after the other to ADDR:PORT, sends a numbered payload line on each,
and checks the reply of kvip_server.py ("NAME LOCAL PEER PAYLOAD"):

  * the socket's peer (getpeername) is ADDR:PORT, the VIP;
  * the payload comes back unchanged;
  * PEER, the client address the backend saw, is this socket's own
    address (no SNAT on the way; the port may differ when the NAT core
    had to pick another one to keep a reply tuple unique);
  * LOCAL, where the request landed, is not the VIP (it was translated).

Prints a summary and one "KEY COUNT" line per backend (KEY = NAME, LOCAL
with --tally endpoint, or NAME@LOCAL with --tally both):

  conns=140 ok=140 refused=0 timeout=0 unreachable=0 error=0 max_ms=9
  backend-1 19
  ...

--snat accepts a PEER other than this socket (the connection was
masqueraded); --tally peer then counts by the address the backend saw.

Exit status 0 when every connection was ok, 1 otherwise. Failures are
described on stderr (the first few of each kind).

--hold connects once and then, for each line read on stdin, sends it and
prints the reply line (for tests that need a long-lived connection); with
UDP, "TIMEOUT ..." when none came within the timeout, and it goes on.
--stop-file keeps connecting (COUNT 0: without limit) until the file
exists; --log writes "SEQ STATUS KEY MS" per connection, flushed.
--spread K goes on after COUNT connections, up to 4 x COUNT, until K
distinct keys were tallied: a check that every one of K backends gets
traffic then fails by chance one run in ~10^10, not one in ~10^3.
"""

import argparse
import errno
import os
import socket
import sys
import time

STATUSES = ("ok", "refused", "timeout", "unreachable", "error")


def host_of(addrport):
    """The address of "ADDR:PORT" or "[ADDR]:PORT"."""
    return addrport.rsplit(":", 1)[0].strip("[]")


def fmt_addr(addr):
    host, port = addr[0], addr[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def make_socket(family, proto):
    if proto == "udp":
        return socket.socket(family, socket.SOCK_DGRAM)
    if proto == "sctp":
        return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    return socket.socket(family, socket.SOCK_STREAM)


def classify(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno in (
            errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return "error"


def recv_line(sock, proto):
    if proto == "udp":
        return sock.recv(65536)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed after %r" % buf)
        buf += chunk
    return buf


class Client:
    def __init__(self, args):
        self.args = args
        info = socket.getaddrinfo(args.addr, args.port, 0, socket.SOCK_STREAM)
        self.family = info[0][0]
        self.target = info[0][4][:2]
        self.vip = fmt_addr(self.target)

    def check_reply(self, sock, reply, payload):
        """Return (key, None) or (None, complaint)."""
        fields = reply.decode(errors="replace").rstrip("\n").split(" ", 3)
        if len(fields) != 4:
            return None, "malformed reply %r" % reply
        name, local, peer, echo = fields
        if echo != payload:
            return None, "payload %r came back as %r" % (payload, echo)
        me = fmt_addr(sock.getsockname())
        # The address only: to keep reply tuples unique, the NAT core may
        # give a new connection another source port (when an earlier one,
        # say in TIME_WAIT, had the same reply tuple). That is no SNAT.
        if host_of(peer) != host_of(me) and not self.args.snat:
            return None, "backend %s saw client %s, expected %s (SNAT?)" % (
                name, peer, me)
        if local == self.vip:
            return None, "backend %s got the request on the VIP %s " \
                "itself (not translated)" % (name, local)
        got = fmt_addr(sock.getpeername())
        if got != self.vip:
            return None, "reply came from %s, not the VIP %s" % (got, self.vip)
        key = {"name": name, "endpoint": local,
               "both": "%s@%s" % (name, local),
               "peer": host_of(peer)}[self.args.tally]
        return key, None

    def one(self, seq):
        a = self.args
        payload = "kvip-%d-%d" % (os.getpid(), seq)
        sock = make_socket(self.family, a.proto)
        sock.settimeout(a.timeout)
        try:
            sock.connect(self.target)
            sock.sendall(payload.encode() + b"\n")
            reply = recv_line(sock, a.proto)
            key, complaint = self.check_reply(sock, reply, payload)
            if complaint:
                return "error", None, complaint
            return "ok", key, None
        except OSError as e:
            return classify(e), None, "%s: %s" % (type(e).__name__, e)
        finally:
            sock.close()

    def run(self):
        a = self.args
        counts = {s: 0 for s in STATUSES}
        tally = {}
        reported = {s: 0 for s in STATUSES}
        max_ms = 0
        log = open(a.log, "w", buffering=1) if a.log else None
        seq = 0
        while True:
            if a.count and seq >= a.count and (
                    len(tally) >= a.spread or seq >= 4 * a.count):
                break
            if a.stop_file and os.path.exists(a.stop_file):
                break
            seq += 1
            t0 = time.monotonic()
            status, key, complaint = self.one(seq)
            ms = (time.monotonic() - t0) * 1000
            max_ms = max(max_ms, ms)
            counts[status] += 1
            if key is not None:
                tally[key] = tally.get(key, 0) + 1
            if complaint and reported[status] < a.max_errors:
                reported[status] += 1
                print("conn %d to %s: %s (%.0f ms)" % (
                    seq, self.vip, complaint, ms), file=sys.stderr)
            if log:
                log.write("%d %s %s %.0f\n" % (seq, status, key or "-", ms))
            if a.interval:
                time.sleep(a.interval)
        print("conns=%d %s max_ms=%.0f" % (
            seq, " ".join("%s=%d" % (s, counts[s]) for s in STATUSES),
            max_ms))
        for key in sorted(tally):
            print("%s %d" % (key, tally[key]))
        sys.stdout.flush()
        return 0 if counts["ok"] == seq else 1

    def hold(self):
        a = self.args
        sock = make_socket(self.family, a.proto)
        sock.settimeout(a.timeout)
        try:
            sock.connect(self.target)
        except OSError as e:
            print("ERROR connect: %s" % e, flush=True)
            return 1
        for line in sys.stdin:
            payload = line.rstrip("\n")
            try:
                sock.sendall(payload.encode() + b"\n")
                reply = recv_line(sock, a.proto)
            except OSError as e:
                if isinstance(e, socket.timeout) and a.proto == "udp":
                    # A datagram or its answer may be lost, e.g. in flight
                    # while its conntrack entry is deleted: UDP goes on.
                    print("TIMEOUT no answer within %g s" % a.timeout,
                          flush=True)
                    continue
                print("ERROR %s: %s" % (type(e).__name__, e), flush=True)
                return 1
            key, complaint = self.check_reply(sock, reply, payload)
            if complaint:
                print("ERROR %s" % complaint, flush=True)
            else:
                print(reply.decode().rstrip("\n"), flush=True)
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-p", "--proto", default="tcp",
                    choices=["tcp", "udp", "sctp"])
    ap.add_argument("-n", "--count", type=int, default=1,
                    help="connections to make (0: until --stop-file)")
    ap.add_argument("-t", "--timeout", type=float, default=3.0,
                    help="per-connection timeout in seconds")
    ap.add_argument("-i", "--interval", type=float, default=0,
                    help="pause between connections, seconds")
    ap.add_argument("--tally", choices=["name", "endpoint", "both", "peer"],
                    default="name")
    ap.add_argument("--snat", action="store_true",
                    help="the backend may see another client address")
    ap.add_argument("--stop-file", help="stop once this file exists")
    ap.add_argument("--spread", type=int, default=0, metavar="K",
                    help="after COUNT, go on (up to 4 x COUNT) until K "
                    "keys were tallied")
    ap.add_argument("--log", help="per-connection log file")
    ap.add_argument("--max-errors", type=int, default=3,
                    help="failures of each kind to describe")
    ap.add_argument("--hold", action="store_true",
                    help="one connection, payload lines from stdin")
    ap.add_argument("addr")
    ap.add_argument("port", type=int)
    args = ap.parse_args()
    if args.count == 0 and not args.stop_file:
        ap.error("--count 0 needs --stop-file")
    client = Client(args)
    return client.hold() if args.hold else client.run()


if __name__ == "__main__":
    sys.exit(main())
