#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Limits and privileges: what one network namespace (a container with
# CAP_NET_ADMIN in its own user namespace) can do to the node.
#
#   per-netns limits   kvip.max_services / kvip.max_endpoints: ENOSPC with
#                      a message, the table unchanged, other netns unaffected
#   memory cgroup      kvip's memory is charged to the caller's cgroup: a
#                      cgroup's kernel memory grows with the services it
#                      adds, and memory.max stops it with ENOMEM (no OOM
#                      kill), never the node
#   user namespaces    root of a user namespace configures the netns it
#                      owns, but cannot change the node's netns (EPERM);
#                      reading the node's table needs no privilege
#
#  ┌──────────── node netns ───────────┐   ┌── ns1 ──┐ ┌── ns2 ──┐
#  │ kvip table      default/web VIP   │   │ limits  │ │ limits  │
#  └───────────────────────────────────┘   └─────────┘ └─────────┘
#        ▲ unshare -U (EPERM)                 ▲ memory cgroup "kvip-*"

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly P=/sys/module/kvip/parameters

ktap_print_header
kvip_require
checktool "unshare --version" "needs unshare(1)"
ktap_set_plan 14

setup_ns ns1 ns2 || ktap_exit_fail_msg "netns setup failed"
old_svc=$(<"$P/max_services") old_ep=$(<"$P/max_endpoints")
defer eval "echo $old_svc >$P/max_services; echo $old_ep >$P/max_endpoints"

# ---- per-netns service limit
echo 20 >"$P/max_services"
gen_services() { # NS PREFIX N: N one-frontend services, VIPs 10.96.x.y
	local i cmds=""
	for ((i = 0; i < $3; i++)); do
		cmds+="service add $2/s$i proto tcp clusterip 10.96.$((i / 250)).$((i % 250 + 1)):80"$'\n'
	done
	"$KVIPCTL" -n "$1" -batch - <<<"$cmds"
}
gen_services "$ns1" a 20 >/dev/null 2>&1
err=$("$KVIPCTL" -n "$ns1" service add a/s20 proto tcp clusterip 10.97.0.1:80 2>&1)
rc=$?
ktap_print_msg "21st service: rc=$rc: $err"
ktap_check "the 21st service of a netns fails with ENOSPC and names the limit" \
	"rc=$rc '$err'" matches "$rc $err" '^1 .*No space left on device: .*maximum of 20 services'
ktap_check "the netns keeps its 20 services" "got $(kvip_count "$ns1")" \
	[ "$(kvip_count "$ns1")" = 20 ]
gen_services "$ns2" b 20 >/dev/null 2>&1
ktap_check "the limit is per netns: another one takes 20 too" \
	"got $(kvip_count "$ns2")" [ "$(kvip_count "$ns2")" = 20 ]
"$KVIPCTL" -n "$ns1" flush
"$KVIPCTL" -n "$ns2" flush
echo "$old_svc" >"$P/max_services"

# ---- per-netns endpoint limit, single and multi-message sets
echo 1000 >"$P/max_endpoints"
eps() { # N: N endpoints 10.1.x.y:80
	local i out=""
	for ((i = 0; i < $1; i++)); do
		out+="10.1.$((i / 250)).$((i % 250 + 1)):80 "
	done
	echo "$out"
}
"$KVIPCTL" -n "$ns1" service add a/web proto tcp clusterip 10.96.0.10:80
# shellcheck disable=SC2046
"$KVIPCTL" -n "$ns1" endpoints set a/web $(eps 1000)
n=$(kvip_json "$ns1" "len(s[0]['endpoints'])")
ktap_check "1000 endpoints fit a limit of 1000" "got $n" [ "$n" = 1000 ]
# shellcheck disable=SC2046
err=$("$KVIPCTL" -n "$ns1" endpoints set a/web $(eps 3000) 2>&1)
rc=$?
ktap_print_msg "3000 endpoints (several messages): rc=$rc: $err"
n=$(kvip_json "$ns1" "len(s[0]['endpoints'])")
ktap_check "3000 endpoints fail with ENOSPC, the 1000 stay" "rc=$rc n=$n '$err'" \
	matches "$rc $n $err" '^1 1000 .*No space left on device: .*maximum of 1000 endpoints'
"$KVIPCTL" -n "$ns1" service add a/two proto tcp clusterip 10.96.0.11:80
err=$("$KVIPCTL" -n "$ns1" endpoints set a/two 10.2.0.1:80 2>&1)
rc=$?
ktap_check "the limit counts every service of the netns" "rc=$rc '$err'" \
	matches "$rc $err" '^1 .*No space left on device'
# shellcheck disable=SC2046
"$KVIPCTL" -n "$ns1" endpoints set a/web $(eps 900) &&
	"$KVIPCTL" -n "$ns1" endpoints set a/two 10.2.0.1:80
rc=$?
ktap_check "shrinking one set makes room in another" "rc=$rc" [ "$rc" = 0 ]
"$KVIPCTL" -n "$ns1" flush
echo "$old_ep" >"$P/max_endpoints"

# ---- user namespaces
"$KVIPCTL" -n "$ns1" service add node/web proto tcp clusterip 10.96.0.10:80
out=$(ip netns exec "$ns1" unshare --user --map-root-user --net sh -c \
	"$KVIPCTL service add c/web proto tcp clusterip 10.96.0.10:80 &&
	 $KVIPCTL service show -j" 2>&1)
ktap_check "root of a user namespace configures its own netns" "'$out'" \
	matches "$out" '"name":"c/web"'
err=$(ip netns exec "$ns1" unshare --user --map-root-user \
	"$KVIPCTL" service del node/web 2>&1)
rc=$?
ktap_check "but gets EPERM in the node's netns" "rc=$rc '$err'" \
	matches "$rc $err" '^1 .*Operation not permitted'
out=$(ip netns exec "$ns1" unshare --user --map-root-user "$KVIPCTL" service show -j 2>&1)
ktap_check "reading the node's table needs no privilege" "'$out'" \
	matches "$out" '^\[\{"name":"node/web"'
"$KVIPCTL" -n "$ns1" flush

# ---- memory cgroup
cg=/sys/fs/cgroup
if [[ ! -f $cg/cgroup.controllers ]]; then
	mount -t cgroup2 none "$cg" 2>/dev/null || ktap_exit_fail_msg "cannot mount cgroup2"
fi
grep -qw memory "$cg/cgroup.controllers" || ktap_exit_fail_msg "no memory controller"
echo +memory >"$cg/cgroup.subtree_control" 2>/dev/null
grp=$cg/kvip-limits-$$
mkdir "$grp" || ktap_exit_fail_msg "cannot create $grp"
defer rmdir "$grp"
# in_cgroup CMD...: run CMD in netns ns2 as a member of the test cgroup
# (joined first: ip netns exec mounts a sysfs without the cgroup tree).
in_cgroup() {
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec ip netns exec "$@"' \
		sh "$grp" "$ns2" "$@"
}
cgmem() { # kernel memory charged to the test cgroup: slab + percpu bytes
	awk '$1 == "slab" || $1 == "percpu" { s += $2 } END { print s }' "$grp/memory.stat"
}
before=$(cgmem)
cmds=""
for ((i = 0; i < 2000; i++)); do
	cmds+="service add m/s$i proto tcp clusterip 10.98.$((i / 250)).$((i % 250 + 1)):80"$'\n'
	cmds+="endpoints set m/s$i 10.3.0.1:80 10.3.0.2:80"$'\n'
done
in_cgroup "$KVIPCTL" -batch - <<<"$cmds"
after=$(cgmem)
per=$(((after - before) / 2000))
ktap_print_msg "cgroup slab+percpu: $before -> $after bytes, $per per service"
ktap_check "2000 services charge their memory to the caller's cgroup" \
	"$per bytes per service" [ "$per" -ge 200 ]

# One 60,000-endpoint set, sent in many messages: measure what the kernel
# keeps for it (kvipctl -batch), undo it, then send it again from a client
# that has already allocated everything it will send (kvip_nl.py --hold)
# and is then moved to a cgroup that may grow by only a quarter of that:
# kvip must fail the set with ENOMEM. Charges stay where they were made,
# so the second cgroup's usage and peak are the sending's alone, whatever
# the client needed before (a process's footprint varies from run to run
# by more than the kernel's part). Per-endpoint counters make the kernel's
# part large (about 4 MB with them).
in_cgroup "$KVIPCTL" service replace m/s0 proto tcp clusterip 10.98.0.1:80 \
	endpoint-stats || ktap_exit_fail_msg "service replace failed"
"$PYTHON" - "$KVIP_TMP" <<'EOF_PY' || ktap_exit_fail_msg "cannot write the sets"
import sys
n, per = 60000, 2000
addr = ["10.%d.%d.%d" % (i >> 16 & 255 | 64, i >> 8 & 255, i & 255)
        for i in range(n)]
with open(sys.argv[1] + "/big", "w") as f:
    f.write("endpoints set m/s0 " + " ".join(a + ":80" for a in addr) + "\n")
with open(sys.argv[1] + "/big.nl", "w") as f:
    for c in range(0, n, per):
        flags = "|".join((["append"] if c else []) +
                         (["more"] if c + per < n else []))
        eps = " ".join("{family=inet addr=%s port=80}" % a
                       for a in addr[c:c + per])
        f.write("set_endpoints name=m/s0 set_flags=%s endpoints=[%s]\n"
                % (flags, eps))
EOF_PY
kbase=$(cgmem)
in_cgroup "$KVIPCTL" -batch "$KVIP_TMP/big"
kneed=$(($(cgmem) - kbase))
in_cgroup "$KVIPCTL" endpoints set m/s0 10.3.0.1:80 10.3.0.2:80
# The big set is freed after an RCU grace period: wait for the uncharge.
slowwait 10 eval '(($(cgmem) < kbase + kneed / 4))'
held=$cg/kvip-limits-held-$$
mkdir "$held" || ktap_exit_fail_msg "cannot create $held"
defer rmdir "$held"
echo +memory >"$held/cgroup.subtree_control"
mkdir "$held/build" "$held/send" || ktap_exit_fail_msg "cannot create cgroups"
defer rmdir "$held/build" "$held/send"
grp=$held/build
mkfifo "$KVIP_TMP/cue"
in_cgroup "$PYTHON" "$KVIP_NL" --hold -b "$KVIP_TMP/big.nl" \
	<"$KVIP_TMP/cue" >"$KVIP_TMP/held.out" 2>&1 &
job=$!
exec {cue}>"$KVIP_TMP/cue"
slowwait 300 grep -q READY "$KVIP_TMP/held.out" ||
	ktap_exit_fail_msg "kvip_nl.py --hold not ready: $(<"$KVIP_TMP/held.out")"
grp=$held/send
echo $((kneed / 4)) >"$grp/memory.max"
cat "$held/build/cgroup.procs" >"$grp/cgroup.procs"
echo go >&"$cue"
exec {cue}>&-
wait "$job"
rc=$?
peak=$(<"$grp/memory.peak") max=$(<"$grp/memory.max")
out=$(grep -v '^READY$' "$KVIP_TMP/held.out" | sort | uniq -c | tr -s ' \n' ' ')
ktap_print_msg "kvip keeps $kneed bytes for the set; the sender may add" \
	"$max, its peak $peak; rc=$rc:$out"
ktap_print_msg "memory.events: $(tr '\n' ' ' <"$grp/memory.events")"
n=$(kvip_json "$ns2" "len(svc('m/s0')['endpoints'])")
ktap_check "over memory.max kvip fails the set with ENOMEM, the old set stays" \
	"rc=$rc endpoints=$n" matches "$rc $n $out" '^1 2 .*ERROR ENOMEM'
ktap_check "the sender's peak stayed within its memory.max" "$peak > $max" [ "$peak" -le "$max" ]
"$KVIPCTL" -n "$ns1" service add ok/after proto tcp clusterip 10.96.0.12:80
ktap_check "the node is unharmed: another netns still adds services" \
	"count $(kvip_count "$ns1")" [ "$(kvip_count "$ns1")" = 1 ]

ktap_finished
