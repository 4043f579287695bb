#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Bad input, through kvipctl and through raw generic netlink (kvip_nl.py):
# every request is refused with its own clear error, and nothing changes.
#
#  ┌──────────────────────────────────────────────┐
#  │ node                                         │
#  │  default/a  tcp 10.96.0.10:80  -> 2 endpoints│   kvipctl ──┐
#  │  default/b  udp 10.96.0.11:53                │   kvip_nl.py├─ genl "kvip"
#  │                                              │   setpriv   │  (no CAP_NET_ADMIN)
#  └──────────────────────────────────────────────┘ ────────────┘
#
# kvipctl: invalid address, unknown protocol, port 0, oversized name (and
# the 255-byte maximum that works), duplicate frontend (EEXIST naming the
# owner), duplicate name, missing service (ENOENT), duplicate endpoint.
# Exit status 2 for what kvipctl itself rejects, 1 for what the kernel
# rejects, and the error text says what is wrong.
# Raw netlink: unknown attribute (top level and in a nest), unknown flag
# bits (service, endpoint, set flags: EOPNOTSUPP), bad address length,
# family/length mismatch, port 0, bad protocol, missing attributes, an
# unterminated or oversized name, unknown command, APPEND without a staged
# set (ESRCH), too many frontends (E2BIG), read-only statistics; service
# options: affinity timeout without the flag or out of range, source ranges
# with host bits, too long a prefix, family/length mismatch, no prefix
# length, a list without NLA_F_NESTED, 65 ranges (E2BIG), read-only
# affinity attributes; settings: none given, out-of-range flag, unknown
# attribute, host bits, 65 prefixes (E2BIG), no NLA_F_NESTED. Each error
# carries an extack message.
# Without CAP_NET_ADMIN: every change fails with EPERM, reading still works.
# Afterwards `kvipctl service show -j` is byte for byte what it was before.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

ktap_print_header
kvip_require

setup_ns node || ktap_exit_fail_msg "netns setup failed"
ip -n "$node" link set lo up

kvipctl_batch "$node" <<EOF || ktap_exit_fail_msg "service setup failed"
service add default/a proto tcp clusterip 10.96.0.10:80
endpoints set default/a 10.0.1.1:8080 10.0.1.2:8080@2
service add default/b proto udp clusterip 10.96.0.11:53
EOF
before=$("$KVIPCTL" -n "$node" service show -j; "$KVIPCTL" -n "$node" config show -j)
ktap_print_msg "table before: $before"

# expect_cli DESC STATUS-RE MESSAGE-RE KVIPCTL-ARGS...: kvipctl in the node
# exits with a status matching STATUS-RE and prints a message matching
# MESSAGE-RE (bash regex).
expect_cli() {
	local desc=$1 want_rc=$2 want_msg=$3 msg rc args
	shift 3
	msg=$("$KVIPCTL" -n "$node" "$@" 2>&1)
	rc=$?
	args="$*"
	((${#args} > 100)) && args="${args:0:100}..."
	ktap_print_msg "kvipctl $args -> exit $rc: ${msg:0:300}"
	if [[ "$rc" =~ ^($want_rc)$ && "$msg" =~ $want_msg ]]; then
		ktap_test_pass "kvipctl: $desc"
	else
		ktap_print_msg "FAIL: expected exit $want_rc and a message matching /$want_msg/"
		ktap_test_fail "kvipctl: $desc"
	fi
}

# --- raw netlink cases (run after the kvipctl ones) ---
# Each case: DESC;ERRNO-RE;MESSAGE-RE;REQUEST. One kvip_nl.py run does all.
# Out-of-range values caught by the netlink policy (port 0, weight, frontend
# type, an address longer than 16 bytes) get the policy's ERANGE; the uapi
# header's list says EINVAL for ports and address lengths: both accepted.
long=$(printf 'n%.0s' {1..256})
ranges=""
for ((i = 0; i < 65; i++)); do
	ranges+="{family=inet addr=10.$i.0.0 prefix=16}"
done
fe="{type=clusterip family=inet addr=10.96.0.50 port=80}"
many=""
for ((i = 1; i <= 257; i++)); do
	many+="{type=clusterip family=inet addr=10.96.1.$((i % 250 + 1)) port=$((1000 + i))}"
done
raw_cases=(
	"unknown top-level attribute;EINVAL;[Uu]nknown attribute;new_service name=default/r proto=tcp frontends=[$fe] 99=u32:1"
	"unknown attribute in a frontend;EINVAL;[Uu]nknown attribute;new_service name=default/r proto=tcp frontends=[{type=clusterip family=inet addr=10.96.0.50 port=80 9=u32:1}]"
	"unknown service flag bits;EOPNOTSUPP;flag;new_service name=default/r proto=tcp flags=0x40 frontends=[$fe]"
	"unknown endpoint flag bits;EOPNOTSUPP;flag;set_endpoints name=default/a endpoints=[{family=inet addr=10.0.1.1 port=8080 flags=0x10}]"
	"unknown set flag bits;EOPNOTSUPP;flag;set_endpoints name=default/a set_flags=4 endpoints=[{family=inet addr=10.0.1.1 port=8080}]"
	"address of 5 bytes;EINVAL;length;new_service name=default/r proto=tcp frontends=[{type=clusterip family=inet addr=hex:0a6000320a port=80}]"
	"IPv6 family with an IPv4 address;EINVAL;length;new_service name=default/r proto=tcp frontends=[{type=clusterip family=inet6 addr=10.96.0.50 port=80}]"
	"endpoint address of 17 bytes;EINVAL|ERANGE;length|policy;set_endpoints name=default/a endpoints=[{family=inet6 addr=hex:fd0000000000000000000000000000000001 port=80}]"
	"unknown address family;EINVAL;family;new_service name=default/r proto=tcp frontends=[{type=clusterip family=u16:99 addr=10.96.0.50 port=80}]"
	"frontend port 0;EINVAL|ERANGE;range|port;new_service name=default/r proto=tcp frontends=[{type=clusterip family=inet addr=10.96.0.50 port=0}]"
	"endpoint port 0;EINVAL|ERANGE;range|port;set_endpoints name=default/a endpoints=[{family=inet addr=10.0.1.1 port=0}]"
	"weight above the maximum;EINVAL|ERANGE;range|weight;set_endpoints name=default/a endpoints=[{family=inet addr=10.0.1.1 port=80 weight=65536}]"
	"protocol ICMP;EINVAL;[Pp]rotocol;new_service name=default/r proto=u8:1 frontends=[$fe]"
	"unknown frontend type;EINVAL|ERANGE;range|type;new_service name=default/r proto=tcp frontends=[{type=u8:9 family=inet addr=10.96.0.50 port=80}]"
	"no frontends;EINVAL;frontend;new_service name=default/r proto=tcp"
	"no name;EINVAL;name;new_service proto=tcp frontends=[$fe]"
	"name without its NUL;EINVAL;.;new_service name=bytes:default/r proto=tcp frontends=[$fe]"
	"256-byte name;EINVAL|ERANGE;.;new_service name=$long proto=tcp frontends=[$fe]"
	"unknown command 99;EOPNOTSUPP;.*;99 name=default/a"
	"APPEND without a staged set;ESRCH;staged;set_endpoints name=default/a set_flags=append endpoints=[{family=inet addr=10.0.1.1 port=8080}]"
	"257 frontends;E2BIG;frontends;new_service name=default/r proto=tcp frontends=[$many]"
	"statistics are read-only;EINVAL;read-only|NESTED;set_endpoints name=default/a endpoints=[{family=inet addr=10.0.1.1 port=80 stats={conns=u64:5}}]"
	"get a missing service;ENOENT;.*;get_service name=default/nope"
	"affinity timeout without the affinity flag;EINVAL;without client IP affinity;new_service name=default/r proto=tcp flags=external_local affinity_timeout=60 frontends=[$fe]"
	"affinity timeout 0;ERANGE;out of range;new_service name=default/r proto=tcp flags=affinity affinity_timeout=0 frontends=[$fe]"
	"affinity timeout 86401;ERANGE;out of range;replace_service name=default/a proto=tcp flags=affinity affinity_timeout=86401 frontends=[$fe]"
	"source range with host bits;EINVAL;bits set past the prefix length;new_service name=default/r proto=tcp source_ranges=[{family=inet addr=10.1.0.0 prefix=8}] frontends=[$fe]"
	"IPv4 source range /33;EINVAL;prefix length too long;new_service name=default/r proto=tcp source_ranges=[{family=inet addr=10.0.0.0 prefix=33}] frontends=[$fe]"
	"source range /129;ERANGE;out of range;new_service name=default/r proto=tcp source_ranges=[{family=inet6 addr=fd00:: prefix=129}] frontends=[$fe]"
	"source range family/length mismatch;EINVAL;length;new_service name=default/r proto=tcp source_ranges=[{family=inet6 addr=10.0.0.0 prefix=8}] frontends=[$fe]"
	"source range without a prefix length;EINVAL;prefix length missing;new_service name=default/r proto=tcp source_ranges=[{family=inet addr=10.0.0.0}] frontends=[$fe]"
	"source range of an unknown family;EINVAL;family;new_service name=default/r proto=tcp source_ranges=[{family=u16:7 addr=10.0.0.0 prefix=8}] frontends=[$fe]"
	"source range list without NLA_F_NESTED;EINVAL;NLA_F_NESTED;new_service name=default/r proto=tcp source_ranges=hex:0600010002000000 frontends=[$fe]"
	"unknown attribute in a source range;EINVAL;[Uu]nknown attribute;new_service name=default/r proto=tcp source_ranges=[{family=inet addr=10.0.0.0 prefix=8 7=u8:1}] frontends=[$fe]"
	"65 source ranges;E2BIG;prefixes;new_service name=default/r proto=tcp source_ranges=[$ranges] frontends=[$fe]"
	"affinity entries are read-only;EINVAL;.;new_service name=default/r proto=tcp affinity=[] frontends=[$fe]"
	"affinity count is read-only;EINVAL;.;replace_service name=default/a proto=tcp affinity_count=u32:1 frontends=[$fe]"
	"SET_CONFIG without settings;EINVAL;settings missing;set_config"
	"masquerade_all 2;ERANGE;out of range;set_config config={masquerade_all=2}"
	"unknown setting attribute;EINVAL;[Uu]nknown attribute;set_config config={9=u8:1}"
	"cluster CIDR with host bits;EINVAL;bits set past the prefix length;set_config config={cluster_cidrs=[{family=inet6 addr=fd00::1 prefix=64}]}"
	"65 node-port prefixes;E2BIG;prefixes;set_config config={nodeport_addrs=[$ranges]}"
	"settings without NLA_F_NESTED;EINVAL;NLA_F_NESTED;set_config config=hex:0500030001000000"
)
# 18 kvipctl cases, the raw ones, 6 unprivileged, 1 final comparison.
ktap_set_plan $((18 + ${#raw_cases[@]} + 6 + 1))

# --- kvipctl ---
expect_cli "invalid IPv4 address" 2 "invalid address '10\.96\.0\.300" \
	service add default/x proto tcp clusterip 10.96.0.300:80
expect_cli "invalid IPv6 endpoint address" 2 "invalid address.*fd00::zz" \
	endpoints set default/a "[fd00::zz]:80"
expect_cli "unknown protocol" 2 "unknown protocol 'icmp'" \
	service add default/x proto icmp clusterip 10.96.0.20:80
expect_cli "port 0 in a frontend" 2 "invalid port '0'" \
	service add default/x proto tcp clusterip 10.96.0.20:0
expect_cli "port 0 in an endpoint" 2 "invalid port '0'" \
	endpoints set default/a 10.0.1.1:0
expect_cli "256-byte service name" 2 "too long" \
	service add "$long" proto tcp clusterip 10.96.0.20:80
expect_cli "duplicate frontend: EEXIST naming the owner" 1 \
	"service add default/c: File exists: .*default/a" \
	service add default/c proto tcp clusterip 10.96.0.10:80
expect_cli "duplicate service name: EEXIST" 1 "service add default/a: File exists" \
	service add default/a proto tcp clusterip 10.96.0.30:80
expect_cli "delete a missing service: ENOENT" 1 \
	"default/nope: No such file or directory" service del default/nope
expect_cli "endpoints of a missing service: ENOENT" 1 \
	"default/nope: No such file or directory" \
	endpoints set default/nope 10.0.1.1:80
expect_cli "show a missing service: ENOENT" 1 "No such file or directory" \
	service show default/nope
expect_cli "the same endpoint twice: rejected" "1|2" "10\.0\.1\.1:8080|twice|duplicate|exists" \
	endpoints set default/a 10.0.1.1:8080 10.0.1.1:8080
expect_cli "weight above 65535" 2 "weight" \
	endpoints set default/a 10.0.1.1:8080@65536
expect_cli "no frontend" 2 "FRONTEND|frontend|[Uu]sage" \
	service add default/x proto tcp
expect_cli "source range with host bits" 2 \
	"invalid CIDR '10\.0\.0\.1/8' \(bits set past the prefix length\)" \
	service add default/x proto tcp nodeport 30001 source-ranges 10.0.0.0/8,10.0.0.1/8
expect_cli "affinity timeout out of range" 2 "invalid affinity timeout '86401'" \
	service replace default/a proto tcp clusterip 10.96.0.10:80 affinity clientip timeout 86401
expect_cli "config set with a bad CIDR" 2 "invalid CIDR 'x'" \
	config set masquerade-all on cluster-cidr 10.0.0.0/8 x

# The longest name works (and goes away again).
max=$(printf 'm%.0s' {1..255})
"$KVIPCTL" -n "$node" service add "$max" proto tcp clusterip 10.96.0.99:80 &&
	lens=$(kvip_json "$node" "' '.join(str(len(x['name'])) for x in s)") &&
	"$KVIPCTL" -n "$node" service del "$max"
ktap_check "kvipctl: a 255-byte name is accepted" "name lengths in the table: '$lens'" \
	[ "$lens" = "9 9 255" ]

# --- raw netlink ---
reqs=$KVIP_TMP/raw.req
: >"$reqs"
for c in "${raw_cases[@]}"; do
	echo "${c##*;}" >>"$reqs"
done
mapfile -t raw_out < <(py_ns "$node" "$KVIP_NL" -b "$reqs" 2>&1 | grep -v '^MSG ')
i=0
for c in "${raw_cases[@]}"; do
	IFS=';' read -r desc errnos msg_re _ <<<"$c"
	got=${raw_out[i]:-"(no result)"}
	i=$((i + 1))
	ktap_print_msg "raw: $desc -> $got"
	if [[ "$got" =~ ^ERROR\ ($errnos)(:\ (.*))?$ ]] &&
		{ [[ "$msg_re" == ".*" ]] || [[ "${BASH_REMATCH[3]}" =~ $msg_re ]]; }; then
		ktap_test_pass "netlink: $desc"
	else
		ktap_print_msg "FAIL: expected ERROR $errnos with an extack matching /$msg_re/"
		ktap_test_fail "netlink: $desc"
	fi
done

# --- without CAP_NET_ADMIN ---
if ! setpriv --inh-caps=-all --bounding-set=-net_admin true 2>/dev/null; then
	for d in "service add" "endpoints set" flush "raw new_service" "config set" "show works"; do
		ktap_test_skip "unprivileged: $d" "setpriv cannot drop CAP_NET_ADMIN"
	done
else
	unpriv=(setpriv --inh-caps=-all --bounding-set=-net_admin --)
	out=$(ip netns exec "$node" "${unpriv[@]}" "$KVIPCTL" service add default/x \
		proto tcp clusterip 10.96.0.60:80 2>&1)
	rc=$?
	ktap_print_msg "unprivileged service add -> exit $rc: $out"
	ktap_check "unprivileged: service add fails with EPERM" "exit $rc: $out" \
		matches "$rc $out" "^1 .*Operation not permitted"
	out=$(ip netns exec "$node" "${unpriv[@]}" "$KVIPCTL" endpoints set default/a 2>&1)
	rc=$?
	ktap_print_msg "unprivileged endpoints set -> exit $rc: $out"
	ktap_check "unprivileged: endpoints set fails with EPERM" "exit $rc: $out" \
		matches "$rc $out" "^1 .*Operation not permitted"
	out=$(ip netns exec "$node" "${unpriv[@]}" "$KVIPCTL" flush 2>&1)
	rc=$?
	ktap_print_msg "unprivileged flush -> exit $rc: $out"
	ktap_check "unprivileged: flush fails with EPERM" "exit $rc: $out" \
		matches "$rc $out" "^1 .*Operation not permitted"
	out=$(ip netns exec "$node" "${unpriv[@]}" "$PYTHON" "$KVIP_NL" -b - 2>&1 <<EOF
del_service name=default/a
get_service nlflags=dump
EOF
	)
	ktap_print_msg "unprivileged raw del_service, get dump -> $out"
	ktap_check "unprivileged: raw del_service gets EPERM, a dump works" "$out" \
		matches "$out" "^ERROR EPERM.*MSG.*default/a.*MSG.*default/b.*OK$"
	out=$(ip netns exec "$node" "${unpriv[@]}" "$KVIPCTL" config set drop-invalid on 2>&1)
	rc=$?
	ktap_print_msg "unprivileged config set -> exit $rc: $out"
	ktap_check "unprivileged: config set fails with EPERM" "exit $rc: $out" \
		matches "$rc $out" "^1 .*Operation not permitted"
	show=$(ip netns exec "$node" "${unpriv[@]}" "$KVIPCTL" service show -j 2>&1;
	       ip netns exec "$node" "${unpriv[@]}" "$KVIPCTL" config show -j 2>&1)
	ktap_check "unprivileged: service show -j works and shows the table" \
		"got: $show" [ "$show" = "$before" ]
fi

after=$("$KVIPCTL" -n "$node" service show -j; "$KVIPCTL" -n "$node" config show -j)
ktap_check "the table is unchanged after all of it" \
	"before: $before"$'\n'"after:  $after" [ "$after" = "$before" ]

ktap_finished
