#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Traffic policies and endpoint choice (kube-proxy's CategorizeEndpoints).
#
#  ┌─────────────┐      ┌────────────────────┐    ┌────────────────────────┐
#  │ client      ├veth──┤ node  kvip         ├br0─┤ backend1..4 tcp :8080  │
#  │ 192.168.0.2 │      │ 192.168.0.1        │    │ 1, 2 flagged "local"   │
#  └─────────────┘      └────────────────────┘    └────────────────────────┘
#   clusterip 10.96.0.30:80, nodeport 30080 (default/pol)
#
# Modelled on the e2e tests "should respect internalTrafficPolicy=Local Pod
# to Pod", "should fallback to terminating endpoints when there are no
# ready endpoints with internalTrafficPolicy=Cluster" and its three sibling
# combinations, and "should be rejected when no endpoints exist":
#
#  - no endpoint at all, or only unready non-serving ones: TCP refused;
#  - ITP local: only local endpoints; none local: dropped (a timeout, not a
#    refusal), counted in the service's drops;
#  - no ready endpoint: the serving terminating ones take the traffic
#    (ITP cluster, ITP local, ETP cluster, ETP local);
#  - ETP local: a node port uses local endpoints only and keeps the client
#    address; the node itself still reaches every endpoint (cluster).

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly VIP=10.96.0.30 NP=30080 NODE=192.168.0.1 SVC=default/pol
readonly L1=10.0.1.1:8080 L2=10.0.1.2:8080 R3=10.0.1.3:8080 R4=10.0.1.4:8080

ktap_print_header
kvip_require
ktap_set_plan 14

kvip_topology 4 || ktap_exit_fail_msg "topology setup failed"
kvip_servers backend- --port 8080 || ktap_exit_fail_msg "servers did not start"

out=$KVIP_TMP/client.out

# svc OPTIONS...: (re)define the service with these options.
svc() {
	kvipctl_ns "$node" service replace "$SVC" proto tcp \
		clusterip "$VIP:80" nodeport "$NP" "$@"
}

eps() {
	kvipctl_ns "$node" endpoints set "$SVC" "$@"
}

# conns NS ADDR PORT [CLIENT-ARGS...]: 12 connections, sets R[] and TALLY[].
# A generous timeout for connections that should work (a loaded machine
# may stall); checks that expect drops pass -t 1.
conns() {
	local ns=$1 addr=$2 port=$3
	shift 3
	client_run "$out" "$ns" -n 12 -t 3 --max-errors 1 "$@" "$addr" "$port"
}

svc || ktap_exit_fail_msg "service setup failed"

# --- no usable endpoints: reject ---
conns "$client" "$VIP" 80 -n 2
ktap_check "no endpoints: connections are refused" \
	"ok=${R[ok]} refused=${R[refused]} timeout=${R[timeout]}" \
	[ "${R[refused]}" = 2 ]

eps "$L1,notready,notserving" "$R3,notready,notserving"
conns "$client" "$VIP" 80 -n 2
ktap_check "only unready, non-serving endpoints: refused as well" \
	"ok=${R[ok]} refused=${R[refused]} timeout=${R[timeout]}" \
	[ "${R[refused]}" = 2 ]

# --- internalTrafficPolicy ---
svc internal-traffic-policy local
eps "$L1,local" "$L2,local" "$R3" "$R4"
conns "$client" "$VIP" 80 --spread 2
ktap_check "ITP local: the cluster IP uses only local endpoints" \
	"ok=${R[ok]} of ${R[conns]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "${R[conns]}/backend-1 backend-2" ]

eps "$R3" "$R4"
drops0=$(kvip_json "$node" "svc('$SVC')['stats']['drops']")
conns "$client" "$VIP" 80 -n 2 -t 1
drops1=$(kvip_json "$node" "svc('$SVC')['stats']['drops']")
ktap_check "ITP local without local endpoints: dropped, not refused" \
	"ok=${R[ok]} refused=${R[refused]} timeout=${R[timeout]}" \
	[ "${R[timeout]}" = 2 ]
ktap_check "ITP local without local endpoints: counted as drops" \
	"drops $drops0 -> $drops1" [ "$((drops1 - drops0))" -ge 2 ]

conns "$client" "$NODE" "$NP" --snat --spread 2
ktap_check "ITP local does not restrict the node port" \
	"ok=${R[ok]} of ${R[conns]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "${R[conns]}/backend-3 backend-4" ]

# --- terminating fallback, the four combinations ---
svc
eps "$L1,notready,terminating" "$L2,notready,notserving,terminating" \
	"$R3,notready,notserving"
conns "$client" "$VIP" 80
ktap_check "ITP cluster, no ready endpoint: serving terminating ones serve" \
	"ok=${R[ok]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "12/backend-1" ]

conns "$client" "$NODE" "$NP" --snat
ktap_check "ETP cluster, no ready endpoint: serving terminating ones serve" \
	"ok=${R[ok]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "12/backend-1" ]

eps "$L1,notready,terminating" "$L2,notready,notserving,terminating" "$R3" "$R4"
conns "$client" "$VIP" 80 --spread 2
ktap_check "ITP cluster: ready endpoints win over terminating ones" \
	"ok=${R[ok]} of ${R[conns]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "${R[conns]}/backend-3 backend-4" ]

svc internal-traffic-policy local external-traffic-policy local
eps "$L1,local,notready,terminating" "$L2,local,notready,notserving,terminating" \
	"$R3" "$R4"
conns "$client" "$VIP" 80
ktap_check "ITP local, no local ready endpoint: local terminating one serves" \
	"ok=${R[ok]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "12/backend-1" ]

conns "$client" "$NODE" "$NP"
ktap_check "ETP local, no local ready endpoint: local terminating one, client address kept" \
	"ok=${R[ok]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "12/backend-1" ]

# --- externalTrafficPolicy local ---
svc external-traffic-policy local
eps "$L1,local" "$R3" "$R4"
conns "$client" "$NODE" "$NP"
ktap_check "ETP local: node port from outside reaches only local endpoints, client address kept" \
	"ok=${R[ok]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "12/backend-1" ]

conns "$node" "$NODE" "$NP" -n 30 --snat --spread 3
ktap_check "ETP local: the node itself is cluster traffic (all endpoints)" \
	"ok=${R[ok]} of ${R[conns]}, backends $(tally_keys)" \
	[ "${R[ok]}/$(tally_keys)" = "${R[conns]}/backend-1 backend-3 backend-4" ]

eps "$R3" "$R4"
conns "$client" "$NODE" "$NP" -n 2 -t 1
ktap_check "ETP local without local endpoints: dropped, not refused" \
	"ok=${R[ok]} refused=${R[refused]} timeout=${R[timeout]}" \
	[ "${R[timeout]}" = 2 ]

ktap_finished
