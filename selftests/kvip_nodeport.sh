#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Node ports, external IPs, and the same port with two protocols.
#
#  ┌─────────────┐      ┌─────────────────────┐    ┌────────────────────────┐
#  │ client      ├veth──┤ node  kvip          ├br0─┤ backend1..3            │
#  │ 192.168.0.2 │      │ 192.168.0.1 (veth)  │    │ tcp, udp :8080         │
#  └─────────────┘      │ 10.0.1.254 (br0)    │    └────────────────────────┘
#                       └─────────────────────┘
#   default/web  tcp  clusterip 10.96.0.50:80, nodeport 30050,
#                     external 203.0.113.50:80 -> backends 1, 2
#   default/dns  udp  clusterip 10.96.0.50:80, nodeport 30050 -> backend 3
#
# Modelled on the e2e tests "should be able to create a functioning
# NodePort service", "should be possible to connect to a service via
# ExternalIP when the external IP is not assigned to a node" and "should
# serve endpoints on same port and different protocols":
#
#  - the node port answers on every node address, from outside and from
#    the node itself, but not on 127.0.0.1 (CVE-2020-8558);
#  - an address added to the node later works at once;
#  - nodeport-addresses restricts the addresses (and can name loopback);
#  - the external IP works from outside and from the node;
#  - TCP and UDP on the same port are independent; deleting one protocol's
#    service leaves the other working.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.50 EXT=203.0.113.50 NP=30050

ktap_print_header
kvip_require
ktap_set_plan 13

kvip_topology 3 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- -p tcp -p udp --port 8080 ||
	ktap_exit_fail_msg "servers did not start"

kvipctl_batch "$node" <<EOF2 || ktap_exit_fail_msg "service setup failed"
service add default/web proto tcp clusterip $VIP:80 nodeport $NP external $EXT:80
endpoints set default/web $(endpoints4 8080 1 2)
service add default/dns proto udp clusterip $VIP:80 nodeport $NP
endpoints set default/dns $(endpoints4 8080 3)
EOF2

out=$KVIP_TMP/client.out

# try NS ADDR PORT [ARGS...]: 4 TCP connections (masquerading allowed);
# prints "OK/BACKENDS".
try() {
	local ns=$1 addr=$2 port=$3
	shift 3
	client_run "$out" "$ns" -n 4 -t 3 --max-errors 1 --snat "$@" "$addr" "$port"
	echo "${R[ok]}/$(tally_keys)"
}

got=$(try "$client" 192.168.0.1 "$NP")
ktap_check "node port on the node's client-facing address, from outside" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'

got=$(try "$client" 10.0.1.254 "$NP")
ktap_check "node port on another node address (br0), from outside" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'

got=$(try "$node" 192.168.0.1 "$NP")
ktap_check "node port from the node itself" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'

# CVE-2020-8558 is about nodes with route_localnet=1 (kube-proxy sets it),
# where a loopback node port would work: it must not exist by default.
ip netns exec "$node" sysctl -qw net.ipv4.conf.all.route_localnet=1
got=$(try "$node" 127.0.0.1 "$NP")
ktap_check "node port not on 127.0.0.1 by default, even with route_localnet (CVE-2020-8558)" \
	"$got" [ "${got%%/*}" = 0 ]

ip -n "$node" addr add 192.168.0.100/24 dev veth-client
got=$(try "$client" 192.168.0.100 "$NP")
ktap_check "an address added to the node later serves the node port at once" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'

kvipctl_ns "$node" config set nodeport-addresses 192.168.0.100/32 ||
	ktap_exit_fail_msg "config set failed"
got=$(try "$client" 192.168.0.100 "$NP")
ktap_check "nodeport-addresses 192.168.0.100/32: that address serves" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'
got=$(try "$client" 192.168.0.1 "$NP")
ktap_check "nodeport-addresses 192.168.0.100/32: 192.168.0.1 no longer does" \
	"$got" [ "${got%%/*}" = 0 ]

# Like kube-proxy with --nodeport-addresses 127.0.0.0/8: needs route_localnet
# (set above) for the translated packets and their replies to pass as
# non-martian.
kvipctl_ns "$node" config set nodeport-addresses 127.0.0.0/8 ||
	ktap_exit_fail_msg "config set failed"
got=$(try "$node" 127.0.0.1 "$NP")
ktap_check "nodeport-addresses 127.0.0.0/8: the node reaches 127.0.0.1:$NP" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'
kvipctl_ns "$node" config set nodeport-addresses 0.0.0.0/0 ::/0 ||
	ktap_exit_fail_msg "config set failed"

# --- external IP (not assigned to the node) ---
got=$(try "$client" "$EXT" 80)
ktap_check "external IP from outside" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'
got=$(try "$node" "$EXT" 80)
ktap_check "external IP from the node itself" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'

# --- same port, two protocols ---
client_run "$out" "$client" -p udp -n 4 -t 3 "$VIP" 80
ktap_check "udp on the same cluster IP and port reaches the udp service" \
	"ok=${R[ok]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "4/backend-3" ]

kvipctl_ns "$node" service del default/dns
client_run "$out" "$client" -p udp -n 2 -t 1 "$VIP" 80
udp_ok=${R[ok]}
got=$(try "$client" "$VIP" 80)
ktap_check "udp service deleted: udp no longer answered" \
	"udp ok=$udp_ok" [ "$udp_ok" = 0 ]
ktap_check "udp service deleted: tcp on the same port still works" \
	"$got" matches "$got" '^4/backend-[12]( backend-[12])?$'

ktap_finished
