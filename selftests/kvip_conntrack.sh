#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Conntrack hygiene, done by the module (no conntrack(8)).
#
#  ┌─────────────┐      ┌────────────────────┐    ┌────────────────────────┐
#  │ client      ├veth──┤ node  kvip         ├br0─┤ backend1..2            │
#  │ 192.168.0.2 │      │ 192.168.0.1        │    │ udp, tcp :8080         │
#  └─────────────┘      └────────────────────┘    └────────────────────────┘
#   default/tcp  tcp clusterip 10.96.0.81:80
#   default/udp  udp clusterip 10.96.0.80:80, nodeport 30080
#   default/late udp clusterip 10.96.0.82:80 (created while traffic flows)
#
# Modelled on the e2e tests "should drop INVALID conntrack entries",
# "should be able to preserve UDP traffic when server pod cycles for a
# ClusterIP service / for a NodePort service" and "should be able to
# preserve UDP traffic when initial unready endpoints get ready":
#
#  - the endpoint of a translated TCP connection sends a segment far
#    beyond the client's window (conntrack: INVALID, so NAT leaves it
#    alone). With drop-invalid off it reaches the client from the
#    endpoint's own address; the client answers that unknown segment with
#    a reset which kills the endpoint's side of the real connection
#    (kubernetes#74839). With drop-invalid on it never reaches the client
#    and the connection survives;
#  - one UDP socket keeps talking to the service while its only endpoint
#    is replaced: its datagrams reach the new endpoint as soon as the
#    module's worker has deleted the entry towards the old one, within
#    seconds although every datagram refreshes that entry (the old
#    endpoint still answers, so a stale entry shows), by the cluster IP
#    and by the node port;
#  - a UDP flow that started before its service existed (untranslated
#    entry) is answered as soon as the service gets a ready endpoint.
#
# No check depends on a short timeout: waits end on an event (a reply, a
# marker segment seen), the limits are only there for a broken module.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.80 NP=30080 VIP_TCP=10.96.0.81 VIP_LATE=10.96.0.82

ktap_print_header
kvip_require
ktap_set_plan 8

kvip_topology 2 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- -p udp -p tcp --port 8080 ||
	ktap_exit_fail_msg "servers did not start"

# hold_say LINE: send a line on the held connection (lib.sh's hold_start),
# set $reply to the answer.
hold_say() {
	reply=$(hold_send "$1" 30)
	[[ -n "$reply" ]] || reply="(no reply)"
	ktap_print_msg "> $1: $reply"
	[[ "$reply" != "(no reply)" ]]
}

# --- INVALID: an out-of-window segment from the endpoint ---

# One process in the client (it enters backend 1's netns for a raw
# socket there): a connection to the VIP; backend 1 answers its "probe"
# line with an extra segment 1 GiB beyond the client's window (SEQ over
# the upper bound: INVALID for conntrack whatever the window, unless
# nf_conntrack_tcp_be_liberal) acknowledging exactly what the client
# sent, so that the client's reset for it is in the endpoint's window.
# Then the "fence" line: its reply follows the segment's path, so once
# it is in, the client's raw socket has seen the segment if it came.
cat >"$KVIP_TMP/invalid.py" <<'EOF'
import socket, struct, sys

import kvip_nl

# In the client netns: a TCP connection to VIP:80 served by backend 1
# (netns argv[1]). Backend 1 answers the "probe" line with an extra
# segment 1 GiB beyond the client's window, then the client sends
# "fence"; prints what the client's raw socket saw of that segment.
backend_ns, vip = sys.argv[1], sys.argv[2]
c = socket.create_connection((vip, 80), timeout=30)
cport = c.getsockname()[1]
watch = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
kvip_nl.setns(backend_ns)
spy = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)


def say(line):
    try:
        c.sendall(line + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            d = c.recv(4096)
            if not d:
                return "ERROR closed"
            buf += d
        return buf.decode().strip()
    except OSError as e:
        return "ERROR %s" % type(e).__name__


def packets(s):
    s.setblocking(False)
    while True:
        try:
            p = s.recv(65535)
        except BlockingIOError:
            return
        ihl = (p[0] & 15) * 4
        tcp = p[ihl:]
        yield p, tcp, tcp[(tcp[12] >> 4) * 4:]


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


print("hello:", say(b"hello"), flush=True)
print("probe:", say(b"probe"), flush=True)
last = None
for p, tcp, data in packets(spy):
    sport, dport = struct.unpack("!HH", tcp[:4])
    if p[12:16] == socket.inet_aton("192.168.0.2") and sport == cport and \
       dport == 8080 and data:
        last = struct.unpack("!II", tcp[4:12]) + (len(data),)
if not last:
    sys.exit("backend 1 did not see the probe")
seq, ack, dlen = last
src, dst = "10.0.1.1", "192.168.0.2"
payload = b"stale\n"
hdr = struct.pack("!HHIIBBHHH", 8080, cport, (ack + 0x40000000) & 0xffffffff,
                  (seq + dlen) & 0xffffffff, 5 << 4, 0x18, 502, 0, 0)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + \
    struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(hdr) + len(payload))
hdr = hdr[:16] + struct.pack("!H", ~csum(pseudo + hdr + payload) & 0xffff) + \
    hdr[18:]
spy.sendto(hdr + payload, (dst, 0))
print("injected: seq %08x ack %08x, the endpoint is at %08x" % (
    (ack + 0x40000000) & 0xffffffff, (seq + dlen) & 0xffffffff, ack), flush=True)
# The reply to the fence takes the path the segment took, after it.
fence = say(b"fence")
seen = "none"
for p, tcp, data in packets(watch):
    sport, dport = struct.unpack("!HH", tcp[:4])
    if dport == cport and data.startswith(b"stale"):
        ok = csum(p[12:20] + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
        seen = "%s from %s:%d, checksum %s" % (
            "leak" if p[12:16] == socket.inet_aton(src) else "translated",
            socket.inet_ntoa(p[12:16]), sport, "ok" if ok == 0xffff else "BAD")
print("seen:", seen, flush=True)
print("fence:", fence, flush=True)
EOF

# invalid_probe: sets $seen (what the client saw of the segment: "leak
# ..." untranslated from the endpoint, "translated ..." from the VIP, or
# "none") and $fence (the fence's reply or ERROR).
invalid_probe() {
	local out=$KVIP_TMP/invalid.out

	py_ns "$client" "$KVIP_TMP/invalid.py" \
		"${backends[0]}" "$VIP_TCP" >"$out" 2>&1
	while read -r line; do
		ktap_print_msg "$line"
	done <"$out"
	seen=$(sed -n 's/^seen: //p' "$out")
	fence=$(sed -n 's/^fence: //p' "$out")
}

# drop-invalid is off by default.
kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/tcp proto tcp clusterip $VIP_TCP:80
endpoints set default/tcp 10.0.1.1:8080
EOF2
invalid_probe
ktap_check "drop-invalid off: the out-of-window segment reaches the client untranslated" \
	"$seen" matches "$seen" '^leak .* checksum ok$'
ktap_check "drop-invalid off: the client's reset for it kills the connection (#74839)" \
	"$fence" matches "$fence" '^ERROR'

# On. The service goes and comes back, so that the setting also applies
# where SET_CONFIG only takes effect when the netns gets its hooks.
kvipctl_ns "$node" config set drop-invalid on
kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service del default/tcp
service add default/tcp proto tcp clusterip $VIP_TCP:80
endpoints set default/tcp 10.0.1.1:8080
EOF2
invalid_probe
ktap_check "drop-invalid on: the out-of-window segment does not reach the client" \
	"$seen" [ "$seen" = none ]
ktap_check "drop-invalid on: the connection survives" "$fence" \
	matches "$fence" '^backend-1 .* fence$'

# --- UDP: the server pod cycles ---
kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/udp proto udp clusterip $VIP:80 nodeport $NP
EOF2
for via in "cluster IP:$VIP 80" "node port:192.168.0.1 $NP"; do
	what=${via%%:*}
	read -r addr port <<<"${via#*:}"
	kvipctl_ns "$node" endpoints set default/udp 10.0.1.1:8080
	hold_start "$client" -t 2 --snat -p udp "$addr" "$port"
	hold_say "before"
	before=$reply
	kvipctl_ns "$node" endpoints set default/udp 10.0.1.2:8080
	# The entry is deleted after the reply (conntrack.c's worker): a
	# datagram or two may still reach the old endpoint, and one in flight
	# while its entry goes is lost (its answer comes back untranslated),
	# as with kube-proxy's conntrack -D; the client then sends again.
	stale=0 lost=0 t0=$SECONDS
	while hold_say "after"; do
		case $reply in
		backend-1\ *) ((++stale)) ;;
		TIMEOUT*) ((++lost)) ;;
		*) break ;;
		esac
		((SECONDS - t0 < 10)) || break
		nap 0.25
	done
	ktap_check "udp via the $what: the flow moves to the new endpoint within 10 s" \
		"before: $before; after: $reply, after $stale datagrams to the old one and $lost unanswered" \
		matches "$before/$reply" '^backend-1 .*/backend-2 '
	hold_stop
done

# --- UDP: a flow older than its service ---
# Until the service exists the node forwards the datagrams untranslated
# (default route), which gives the flow a confirmed conntrack entry; the
# pinger stops at its first answer.
pinger=$KVIP_TMP/pinger.out
ip netns exec "$client" "$PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(0.2)
print("started", flush=True)
end = time.monotonic() + 120
while time.monotonic() < end:
    try:
        s.send(b"ping\n")
        print(s.recv(4096).decode().split()[0], flush=True)
        sys.exit(0)
    except OSError:
        pass
print("none", flush=True)
' "$VIP_LATE" 80 >"$pinger" 2>&1 &
pinger_pid=$!
defer kill_wait "$pinger_pid"

slowwait 60 grep -q started "$pinger"
nap 1
kvipctl_batch "$node" <<EOF2
service add default/late proto udp clusterip $VIP_LATE:80
endpoints set default/late 10.0.1.2:8080,notready,notserving
EOF2
nap 1
early=$(grep -v started "$pinger")
kvipctl_ns "$node" endpoints set default/late 10.0.1.2:8080
start=$SECONDS
slowwait 30 grep -qv started "$pinger"
late=$(grep -v started "$pinger")
ktap_check "udp flow from before the service: no answer while no endpoint is ready" \
	"got '$early'" [ -z "$early" ]
ktap_check "udp flow from before the service: answered once an endpoint is ready" \
	"got '$late' after $((SECONDS - start)) s" [ "$late" = backend-2 ]

ktap_finished
