#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Per-netns settings: `kvipctl config set/show` (KVIP_CMD_SET_CONFIG /
# KVIP_CMD_GET_CONFIG) and the service options of `service add/replace`,
# read back through `service show -j` and raw netlink.
#
#  ┌────────────────────┐   ┌────────────────────┐   ┌──────────────────┐
#  │ a                  │   │ b                  │   │ init netns       │
#  │ config set ...     │   │ (never configured) │   │ (never touched)  │
#  │ default/opt (opts) │   │                    │   │                  │
#  └────────────────────┘   └────────────────────┘   └──────────────────┘
#
# Checks: a fresh netns shows the defaults; `config set` of all four
# settings round-trips exactly (text and JSON, IPv4 and IPv6 prefixes);
# a later `config set` of one setting keeps the others; `default` / `none`
# (the empty list) restore the defaults; a rejected `config set` (one bad
# prefix among good ones, too many prefixes) changes nothing at all; b and
# the initial namespace keep their defaults throughout; without
# CAP_NET_ADMIN `config set` fails with EPERM while `config show` works;
# service options round-trip, REPLACE without options resets them to their
# defaults, and deleting a namespace with settings leaks nothing visible.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

ktap_print_header
kvip_require
ktap_set_plan 17

a="" b=""
setup_ns a b || ktap_exit_fail_msg "netns setup failed"

DEFAULT_JSON='{"nodeport_addresses":[],"cluster_cidrs":[],"masquerade_all":false,"drop_invalid":false}'
DEFAULT_TEXT='nodeport-addresses default
cluster-cidr none
masquerade-all off
drop-invalid off'

# cfg NS [-j]: `kvipctl config show` in NS.
cfg() {
	local ns=$1
	shift
	"$KVIPCTL" -n "$ns" config show "$@" 2>&1
}

got=$(cfg "$a" -j)
ktap_check "a fresh netns has the default settings (JSON)" "got $got" \
	[ "$got" = "$DEFAULT_JSON" ]
got=$(cfg "$a")
ktap_check "a fresh netns has the default settings (text)" "got $got" \
	[ "$got" = "$DEFAULT_TEXT" ]

kvipctl_ns "$a" config set nodeport-addresses 192.168.1.0/24 127.0.0.1/32,fd00:1::/64 \
	cluster-cidr 10.244.0.0/16 fd00:244::/56 masquerade-all on drop-invalid on ||
	ktap_exit_fail_msg "config set failed"
want='{"nodeport_addresses":["192.168.1.0/24","127.0.0.1/32","fd00:1::/64"],"cluster_cidrs":["10.244.0.0/16","fd00:244::/56"],"masquerade_all":true,"drop_invalid":true}'
got=$(cfg "$a" -j)
ktap_check "config set of all four settings round-trips (JSON)" \
	"want $want"$'\n'"got  $got" [ "$got" = "$want" ]
got=$(cfg "$a")
want_text='nodeport-addresses 192.168.1.0/24 127.0.0.1/32 fd00:1::/64
cluster-cidr 10.244.0.0/16 fd00:244::/56
masquerade-all on
drop-invalid on'
ktap_check "config show prints what was set (text)" "got $got" \
	[ "$got" = "$want_text" ]

# The kernel's own view, not only kvipctl's decoding of it.
raw=$(py_ns "$a" "$KVIP_NL" get_config 2>&1)
ktap_check "GET_CONFIG carries every setting (raw netlink)" "got $raw" \
	matches "$raw" '"cluster_cidrs": \[\{"addr": "10\.244\.0\.0", "family": 2, "prefix": 16\}, \{"addr": "fd00:244::", "family": 10, "prefix": 56\}\].*"masquerade_all": 1'

kvipctl_ns "$a" config set masquerade-all off || ktap_exit_fail_msg "config set failed"
got=$(cfg "$a" -j)
want='{"nodeport_addresses":["192.168.1.0/24","127.0.0.1/32","fd00:1::/64"],"cluster_cidrs":["10.244.0.0/16","fd00:244::/56"],"masquerade_all":false,"drop_invalid":true}'
ktap_check "setting one value keeps the others" "got $got" [ "$got" = "$want" ]

# Atomic: one bad prefix in the second list, after a good first list.
before=$(cfg "$a" -j)
out=$(py_ns "$a" "$KVIP_NL" set_config \
	'config={nodeport_addrs=[{family=inet addr=10.0.0.0 prefix=8}] cluster_cidrs=[{family=inet addr=10.0.0.0 prefix=8} {family=inet addr=10.1.0.1 prefix=16}] masquerade_all=1}' 2>&1)
after=$(cfg "$a" -j)
# refused OUT BEFORE AFTER ERRNO MSG-RE: an error, and no change.
refused() {
	[[ "$1" =~ ^ERROR\ $4:\ .*$5 && "$2" == "$3" ]]
}
ktap_check "a rejected SET_CONFIG (host bits in its 2nd list) changes nothing" \
	"reply: $out"$'\n'"before $before"$'\n'"after  $after" \
	refused "$out" "$before" "$after" EINVAL "prefix"
many=""
for ((i = 0; i < 65; i++)); do many+="{family=inet addr=10.$i.0.0 prefix=16} "; done
out=$(py_ns "$a" "$KVIP_NL" set_config "config={cluster_cidrs=[$many] drop_invalid=0}" 2>&1)
after=$(cfg "$a" -j)
ktap_check "65 cluster CIDRs: E2BIG, nothing changed" \
	"reply: $out"$'\n'"before $before"$'\n'"after  $after" \
	refused "$out" "$before" "$after" E2BIG "prefixes"

kvipctl_ns "$a" config set nodeport-addresses default cluster-cidr none ||
	ktap_exit_fail_msg "config set failed"
got=$(cfg "$a" -j)
want='{"nodeport_addresses":[],"cluster_cidrs":[],"masquerade_all":false,"drop_invalid":true}'
ktap_check "'default' and 'none' (empty lists) restore the default lists" \
	"got $got" [ "$got" = "$want" ]
kvipctl_ns "$a" config set drop-invalid off || ktap_exit_fail_msg "config set failed"
got=$(cfg "$a" -j)
ktap_check "all defaults again" "got $got" [ "$got" = "$DEFAULT_JSON" ]

# Isolation: b and the initial netns never changed.
kvipctl_ns "$a" config set cluster-cidr 10.244.0.0/16 masquerade-all on ||
	ktap_exit_fail_msg "config set failed"
gb=$(cfg "$b" -j)
gi=$("$KVIPCTL" config show -j 2>&1)
ktap_check "other namespaces keep their own (default) settings" \
	"b: $gb, init: $gi" [ "$gb|$gi" = "$DEFAULT_JSON|$DEFAULT_JSON" ]

# Privilege: changing needs CAP_NET_ADMIN, reading does not.
if ! setpriv --inh-caps=-all --bounding-set=-net_admin true 2>/dev/null; then
	ktap_test_skip "unprivileged config set: EPERM" "setpriv cannot drop CAP_NET_ADMIN"
	ktap_test_skip "unprivileged config show works" "setpriv cannot drop CAP_NET_ADMIN"
else
	unpriv=(setpriv --inh-caps=-all --bounding-set=-net_admin --)
	out=$(ip netns exec "$a" "${unpriv[@]}" "$KVIPCTL" config set masquerade-all off 2>&1)
	rc=$?
	ktap_check "unprivileged config set: EPERM, exit 1" "exit $rc: $out" \
		matches "$rc $out" "^1 kvipctl: config set: Operation not permitted"
	got=$(ip netns exec "$a" "${unpriv[@]}" "$KVIPCTL" config show -j 2>&1)
	ktap_check "unprivileged config show works (and nothing changed)" "got $got" \
		matches "$got" '"cluster_cidrs":\["10\.244\.0\.0/16"\],"masquerade_all":true'
fi

# Service options round trip.
kvipctl_ns "$a" service add default/opt proto tcp clusterip 10.96.0.10:80 \
	nodeport 30080 external-traffic-policy local internal-traffic-policy local \
	affinity clientip timeout 600 source-ranges 203.0.113.0/24,2001:db8::/32 \
	managed || ktap_exit_fail_msg "service add with options failed"
got=$(kvip_json "$a" "json.dumps([svc('default/opt')[k] for k in ('flags', 'external_traffic_policy', 'internal_traffic_policy', 'affinity', 'affinity_timeout', 'source_ranges', 'managed', 'affinity_count')])")
want='[["external_local", "internal_local", "affinity", "managed"], "local", "local", "clientip", 600, ["203.0.113.0/24", "2001:db8::/32"], true, 0]'
ktap_check "service options round-trip through service show -j" \
	"want $want"$'\n'"got  $got" [ "$got" = "$want" ]
got=$("$KVIPCTL" -n "$a" service show default/opt 2>&1 | sed -n 2p)
ktap_check "service show prints every option" "got '$got'" \
	[ "$got" = "  external-traffic-policy local  internal-traffic-policy local  affinity clientip timeout 600  source-ranges 203.0.113.0/24,2001:db8::/32  managed" ]
kvipctl_ns "$a" service add default/dflt proto udp clusterip 10.96.0.11:53 affinity clientip ||
	ktap_exit_fail_msg "service add failed"
kvipctl_ns "$a" service replace default/opt proto tcp clusterip 10.96.0.10:80 ||
	ktap_exit_fail_msg "service replace failed"
got=$(kvip_json "$a" "json.dumps([(x['name'], x['flags'], x['affinity'], x.get('affinity_timeout'), x['source_ranges'], x['external_traffic_policy']) for x in s])")
want='[["default/dflt", ["affinity"], "clientip", 10800, [], "cluster"], ["default/opt", [], "none", null, [], "cluster"]]'
ktap_check "replace without options resets them; the timeout defaults to 10800" \
	"want $want"$'\n'"got  $got" [ "$got" = "$want" ]

# A netns with settings and options goes away cleanly (kmemleak and the
# kernel log are checked by the harness).
cleanup_ns "$a"
ktap_check "a namespace with settings is deleted cleanly" "a still exists" \
	slowwait 10 bash -c "! ip netns list | grep -q '^$a\\b'"

ktap_finished
