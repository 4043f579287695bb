#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""kvip_zygote.py: run the selftests' python programs without starting python.

A python start costs 1-3 s on the debug kernel under TCG (the exec, then
some 30 imports read over 9p), and a test runs python dozens of times:
kvip_client.py for every round of connections, the raw netlink checks,
the JSON checks. This process starts once per test (lib.sh's py_ns), with
what those programs import already imported, and runs each of them in a
fork of itself, which costs some 0.05 s there.

  kvip_zygote.py --port-file FILE

writes the loopback TCP port it listens on to FILE (whole, by a rename),
and serves until its parent (the test) exits. Bash reaches it through
/dev/tcp, so a request costs no exec either. One request per connection,
NUL-terminated fields:

  COUNT CALLER NETNS STDOUT STDERR NENV NAME=VALUE... PROG ARG...

COUNT is the number of fields after it; CALLER the pid of the requesting
shell; NETNS a name under /run/netns, or "" to stay in this one; STDOUT
and STDERR paths, STDERR "=" to share STDOUT's file; the NENV NAME=VALUE
fields are PROG's environment; PROG a python file, or "-c" with the
program text as the first ARG. PROG runs as a command of CALLER would:
with CALLER's stdin (reopened through /proc/CALLER/fd/0), environment and
cgroup, and it is killed when this process goes. The answer is its exit
status and a newline, sent when it ends; the connection then closes.
"""

import ctypes
import gc
import os
import random
import signal
import socket
import sys
import traceback

# What the programs import, imported once here (the point of all this).
import argparse  # noqa: F401
import errno  # noqa: F401
import ipaddress  # noqa: F401
import json  # noqa: F401
import resource  # noqa: F401
import selectors  # noqa: F401
import shlex  # noqa: F401
import struct  # noqa: F401
import time  # noqa: F401

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvip_nl  # noqa: F401,E402

PR_SET_PDEATHSIG = 1

libc = ctypes.CDLL(None, use_errno=True)


def join_cgroup(pid):
    """Move into process PID's cgroup (v2), as a child of it would be."""
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return
    try:
        with open("/proc/%s/cgroup" % pid) as f:
            theirs = [ln[3:].strip() for ln in f if ln.startswith("0::")]
        with open("/proc/self/cgroup") as f:
            mine = [ln[3:].strip() for ln in f if ln.startswith("0::")]
    except OSError:
        return
    if theirs and theirs != mine:
        with open("/sys/fs/cgroup%s/cgroup.procs" % theirs[0], "w") as f:
            f.write("%d\n" % os.getpid())


def read_request(conn):
    """The request's fields, or None when the peer closed early."""
    buf = b""
    fields = []
    count = None
    while count is None or len(fields) < count + 1:
        i = buf.find(b"\0")
        if i < 0:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buf += chunk
            continue
        fields.append(os.fsdecode(buf[:i]))
        buf = buf[i + 1:]
        if count is None:
            count = int(fields[0])
            if count < 6:
                raise ValueError("short request")
    return fields[1:]


_code = {}


def compiled(prog, args):
    """PROG's code object and argv; files compiled once, here."""
    if prog == "-c":
        return compile(args[0], "<string>", "exec"), ["-c"] + args[1:], None
    st = os.stat(prog)
    key = (prog, st.st_mtime_ns, st.st_size)
    if key not in _code:
        with open(prog, "rb") as f:
            _code[key] = compile(f.read(), prog, "exec")
    return _code[key], [prog] + args, prog


def redirect(path, fd, flags):
    new = os.open(path, flags, 0o644)
    if new != fd:
        os.dup2(new, fd)
        os.close(new)


def child(listener, conn, req, prepared):
    """Runs in the fork: become PROG and never return."""
    listener.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    random.seed()
    status = 1
    try:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        caller, netns, stdout, stderr, nenv = req[:5]
        os.environ.clear()
        for kv in req[5:5 + int(nenv)]:
            name, _, value = kv.partition("=")
            os.environ[name] = value
        join_cgroup(caller)
        if netns:
            kvip_nl.setns(netns)
        try:
            redirect("/proc/%s/fd/0" % caller, 0, os.O_RDONLY)
        except OSError:
            # Closed, or not reopenable through /proc (a socket).
            redirect(os.devnull, 0, os.O_RDONLY)
        redirect(stdout, 1, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        if stderr == "=":
            os.dup2(1, 2)
        else:
            redirect(stderr, 2, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        if isinstance(prepared, BaseException):
            print("kvip_zygote: %s" % prepared, file=sys.stderr)
            prepared = None, None, None
            status = 2
        code, argv, path = prepared
        sys.argv = argv
        glob = {"__name__": "__main__", "__builtins__": __builtins__}
        if path:
            glob["__file__"] = path
            sys.path[0] = os.path.dirname(os.path.abspath(path))
        try:
            if code is not None:
                exec(code, glob)
                status = 0
        except SystemExit as e:
            if e.code is None:
                status = 0
            elif isinstance(e.code, int):
                status = e.code & 0xff
            else:
                print(e.code, file=sys.stderr)
                status = 1
        except KeyboardInterrupt:
            status = 130
        except BaseException:
            traceback.print_exc()
            status = 1
    except BaseException:
        traceback.print_exc()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    try:
        conn.sendall(b"%d\n" % status)
    except OSError:
        pass
    os._exit(status)


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "--port-file":
        print("usage: kvip_zygote.py --port-file FILE", file=sys.stderr)
        return 2
    port_file = sys.argv[2]
    # Gone with the test, whatever way it ends.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:
        return 1
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies
    # What is here now stays: the collector of a fork must not walk (and so
    # copy, page by page) this process's objects.
    gc.freeze()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % listener.getsockname()[1])
    os.rename(tmp, port_file)
    while True:
        conn, _ = listener.accept()
        try:
            req = read_request(conn)
            if req is None:
                conn.close()
                continue
        except (OSError, ValueError, UnicodeError) as e:
            print("kvip_zygote: bad request: %s" % e, file=sys.stderr)
            conn.close()
            continue
        try:
            nenv = int(req[4])
            prepared = compiled(req[5 + nenv], req[6 + nenv:])
        except (OSError, SyntaxError, ValueError, IndexError) as e:
            prepared = e
        try:
            pid = os.fork()
        except OSError as e:
            print("kvip_zygote: fork: %s" % e, file=sys.stderr)
            conn.close()
            continue
        if pid == 0:
            child(listener, conn, req, prepared)
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
