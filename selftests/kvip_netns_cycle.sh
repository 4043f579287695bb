#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Network namespaces come and go with services in them; nothing stays
# behind.
#
#   repeat KVIP_NETNS_CYCLES times (default 40, under a minute in all under
#   TCG; the long mode is 1,000, beyond run_tests' timeout of 240 s, so
#     KVIP_NETNS_CYCLES=1000 selftests/vm-run -- selftests/kvip_netns_cycle.sh
#   ):
#  ┌───────────────────────────────────────────────────────────────────┐
#  │ netns (new)   lo: 10.0.1.254, local 10.0.0.0/16 (AnyIP endpoints), │
#  │               10.96.0.0/16 via lo                                  │
#  │ kvipctl -batch: 100 services default/svc-0..99 at 10.96.0.(i+1):80,│
#  │   3 endpoints each, svc-99 with 3,000 (several netlink messages,   │
#  │   two per-CPU counter chunks)                                      │
#  │ a set staged (first message of 1,000 endpoints) and abandoned      │
#  │ 2 TCP connections to one VIP, payload checked, from LOCAL_OUT      │
#  │ odd cycles: flush; even ones: the netns dies with its 100 services │
#  └───────────────────────────────────────────────────────────────────┘
#
# One python process runs the cycles: unshare(CLONE_NEWNET) creates each
# namespace, rtnetlink configures it, kvipctl -batch (a child, so in the
# same namespace) adds the services, and going back to the first namespace
# with nothing left open in the new one destroys it. Per connection it
# checks: the reply carries the payload, came from the VIP, was answered by
# one of the service's endpoints, and the backend saw the client's own
# address.
#
# Afterwards: no kernel warning, the module unloads and kernel memory is
# back at the baseline taken before it was loaded (lib.sh, kvip_mem_*); a
# live table of one cycle is well over the tolerances of the precise
# counters (the check can fail); the module loads again and works.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly CYCLES=${KVIP_NETNS_CYCLES:-40}

ktap_print_header
kvip_require
ktap_set_plan 7

t_setup=$SECONDS
elapsed() { echo "t+$((SECONDS - t_setup))s"; }

mark=$(log_lines)

# --- baseline: dependencies loaded, kvip not ---
kvip_unload 30 || ktap_exit_fail_msg "kvip is loaded and cannot be unloaded"
kvip_memcg_setup || ktap_print_msg "no memory cgroup: global counters only"
# shellcheck disable=SC2034 # filled through namerefs
declare -A MEM_BASE MEM_NOW MEM_A MEM_B
kvip_mem_baseline MEM_BASE
kvip_load
ktap_print_msg "$(elapsed): baseline taken, kvip loaded"

# --- the services of every cycle ---
batch=$KVIP_TMP/services.batch
awk 'BEGIN {
	for (i = 0; i < 100; i++) {
		printf "service add default/svc-%d proto tcp clusterip 10.96.0.%d:80\n", i, i + 1
		if (i < 99) {
			printf "endpoints set default/svc-%d 10.0.1.1:8080 10.0.1.2:8080 10.0.1.3:8080\n", i
			continue
		}
		printf "endpoints set default/svc-%d", i
		for (j = 0; j < 3000; j++)
			printf " 10.0.%d.%d:8080", 10 + int(j / 250), j % 250 + 1
		printf "\n"
	}
}' >"$batch"

cycle_py=$KVIP_TMP/cycle.py
cat >"$cycle_py" <<'PYEOF'
"""kvip_netns_cycle.sh's cycles (see the test)."""
import errno
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.environ["KVIP_SELFTESTS"])
import kvip_nl as K  # noqa: E402

RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x200, 0x400


def rtnl(requests):
    """Send rtnetlink requests, one at a time, each acknowledged."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        for seq, (mtype, flags, body) in enumerate(requests, 1):
            s.send(struct.pack("=IHHII", 16 + len(body), mtype,
                               NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) +
                   body)
            data = s.recv(65536)
            err = -struct.unpack_from("=i", data, 16)[0]
            if err:
                raise OSError(err, "rtnetlink request %d: %s" % (
                    mtype, os.strerror(err)))
    finally:
        s.close()


def ip4(text):
    return socket.inet_aton(text)


def configure():
    """lo up; 10.0.1.254/32 on it; 10.0.0.0/16 local (every endpoint is
    this namespace); 10.96.0.0/16 via lo, for the VIPs."""
    new = NLM_F_CREATE | NLM_F_EXCL
    rtnl([
        # ifinfomsg: lo (index 1) up
        (RTM_NEWLINK, 0, struct.pack("=BxHiII", 0, 0, 1, 1, 1)),
        # ifaddrmsg + IFA_LOCAL + IFA_ADDRESS
        (RTM_NEWADDR, new, struct.pack("=BBBBI", socket.AF_INET, 32, 0, 0, 1) +
         K.nla(2, ip4("10.0.1.254")) + K.nla(1, ip4("10.0.1.254"))),
        # rtmsg: table local, proto boot, scope host, type local
        (RTM_NEWROUTE, new, struct.pack("=BBBBBBBBI", socket.AF_INET, 16, 0, 0,
                                        255, 3, 254, 2, 0) +
         K.nla(1, ip4("10.0.0.0")) + K.nla_u32(4, 1)),
        # table main, scope link, type unicast
        (RTM_NEWROUTE, new, struct.pack("=BBBBBBBBI", socket.AF_INET, 16, 0, 0,
                                        254, 3, 253, 1, 0) +
         K.nla(1, ip4("10.96.0.0")) + K.nla_u32(4, 1)),
    ])


def endpoints_of(i):
    if i < 99:
        return {"10.0.1.%d:8080" % k for k in (1, 2, 3)}
    return {"10.0.%d.%d:8080" % (10 + j // 250, j % 250 + 1)
            for j in range(3000)}


def fmt(addr):
    return "%s:%d" % addr[:2]


def connection(srv, vip, payload, eps):
    """One connection to VIP; a complaint, or None."""
    c = socket.socket()
    c.settimeout(5)
    # RST on close: no TIME_WAIT socket keeps the namespace alive.
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        c.connect(vip)
        c.sendall(payload.encode() + b"\n")
        s, peer = srv.accept()
        with s:
            s.settimeout(5)
            line = s.recv(4096).decode().strip()
            local = fmt(s.getsockname())
            s.sendall(("%s %s %s\n" % (local, fmt(peer), line)).encode())
        reply = c.recv(4096).decode().split()
        if reply[2:] != [payload]:
            return "payload %r came back as %r" % (payload, reply)
        if reply[0] not in eps:
            return "answered on %s, not an endpoint of the service" % reply[0]
        if reply[1] != fmt(c.getsockname()):
            return "backend saw %s, the client is %s" % (
                reply[1], fmt(c.getsockname()))
        if c.getpeername()[:2] != vip:
            return "reply from %s, not the VIP" % fmt(c.getpeername())
        return None
    except OSError as e:
        return "%s: %s" % (type(e).__name__, e)
    finally:
        c.close()


def cycle(k, kvipctl, batch):
    K.unshare_netns()
    configure()
    p = subprocess.run([kvipctl, "-batch", batch], capture_output=True,
                       text=True)
    if p.returncode:
        return "kvipctl -batch: exit %d: %s" % (p.returncode,
                                                p.stderr.strip()[:300])
    # A set staged and abandoned: freed when the socket closes.
    nl = K.KvipNl()
    srv = socket.socket()
    try:
        eps = b"".join(K.endpoint("10.0.2.%d" % (j % 250 + 1), 1000 + j)
                       for j in range(1000))
        nl.request(4, K.nla_str(1, "default/svc-%d" % (k % 100)) +
                   K.nla(5, eps, nested=True) + K.nla_u32(7, 1))
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", 8080))
        srv.listen(8)
        i = k % 100
        vip = ("10.96.0.%d" % (i + 1), 80)
        for n in range(2):
            problem = connection(srv, vip, "cycle-%d-%d" % (k, n),
                                 endpoints_of(i))
            if problem:
                return "%s:80: %s" % (vip[0], problem)
        if k % 2:
            nl.request(5)   # flush: the NAT hooks go before the netns
        return None
    finally:
        srv.close()
        nl.sock.close()


def main():
    cycles, kvipctl, batch, log = sys.argv[1:5]
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    failures = 0
    t0 = time.monotonic()
    with open(log, "w", buffering=1) as f:
        for k in range(int(cycles)):
            t = time.monotonic()
            try:
                problem = cycle(k, kvipctl, batch)
            except (OSError, K.NlError) as e:
                problem = "%s" % e
            # Back home: nothing holds the new namespace any more.
            K.setns(home)
            if problem:
                failures += 1
            f.write("%d %s %.0f %s\n" % (k, "fail" if problem else "ok",
                                         (time.monotonic() - t) * 1000,
                                         problem or ""))
    secs = time.monotonic() - t0
    print("cycles=%s failures=%d secs=%.1f rate=%.2f/s" % (
        cycles, failures, secs, int(cycles) / secs))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
PYEOF
export KVIP_SELFTESTS

# --- the cycles ---
log=$KVIP_TMP/cycles.log
ktap_print_msg "$(elapsed): $CYCLES cycles: netns, 100 services (kvipctl -batch), 2 connections, destroy"
out=$( (kvip_memcg_enter; exec "$PYTHON" -S "$cycle_py" "$CYCLES" "$KVIPCTL" "$batch" "$log") 2>&1)
rc=$?
ktap_print_msg "$out"
read -r n_ok n_fail max_ms < <(awk '$2 == "ok" { ok++ } $2 != "ok" { bad++ }
	$3 > m { m = $3 } END { print ok + 0, bad + 0, m + 0 }' "$log")
awk '$2 != "ok"' "$log" | head -n 5 >"$KVIP_TMP/fails"
show_file "$KVIP_TMP/fails"
ktap_check "$CYCLES cycles: services configured, traffic through a VIP, netns destroyed" \
	"exit $rc, $n_ok ok, $n_fail failed, slowest cycle $max_ms ms" \
	[ "$rc/$n_ok" = "0/$CYCLES" ]
ktap_check "no kernel warning from the cycles" "see above" kernel_log_clean "$mark"

# --- the check can fail: one cycle's table, alive ---
probe=""
setup_ns probe || ktap_exit_fail_msg "netns setup failed"
ip -n "$probe" -batch - <<EOF || ktap_exit_fail_msg "probe netns setup"
link set lo up
addr add 10.0.1.254/32 dev lo
route add local 10.0.0.0/16 dev lo
route add 10.96.0.0/16 dev lo
EOF
kvip_mem_baseline MEM_A	# the last cycles' namespaces may still be going
( kvip_memcg_enter; exec "$KVIPCTL" -n "$probe" -batch "$batch" ) ||
	ktap_exit_fail_msg "probe batch"
kvip_mem_snapshot MEM_B
kvip_mem_compare MEM_A MEM_B
probe_rc=$?
ktap_print_msg "one cycle's table (100 services, 3,297 endpoints), alive, as if leaked:"
ktap_print_msg "$MEM_REPORT"
ktap_check "the leak check sees a single cycle's table (it can fail)" \
	"compare status $probe_rc" [ "$probe_rc" = 1 ]
cleanup_ns "$probe"

# --- unload, memory back to the baseline, load again ---
mark=$(log_lines)
ktap_print_msg "$(elapsed): unloading"
run kvip_unload 60
rc=$?
ktap_check "the module unloads" "exit $rc after $UNLOAD_TRIES tries, $UNLOAD_MS ms" [ "$rc" = 0 ]
kvip_mem_check_baseline "$CYCLES cycles and the unload"

kvip_load
fresh=""
setup_ns fresh || ktap_exit_fail_msg "netns setup failed"
out=$("$KVIPCTL" -n "$fresh" service add default/x proto tcp clusterip 10.96.0.1:80 2>&1 &&
	"$KVIPCTL" -n "$fresh" service show 2>&1)
# shellcheck disable=SC2317 # called through ktap_check
reload_ok() { matches "$out" "default/x" && kernel_log_clean "$mark"; }
ktap_check "the module loads again and takes a service, no kernel warning" \
	"kvipctl said: $out" reload_ok
ktap_print_msg "$(elapsed): done"

ktap_finished
