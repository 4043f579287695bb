#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The events multicast group and `kvipctl monitor [-j]`.
#
#  ┌──────────────────────────────────────────┐   ┌──────────────────────┐
#  │ a                                        │   │ b                    │
#  │  kvipctl monitor -j  (no CAP_NET_ADMIN)  │   │  changes of its own, │
#  │  kvipctl monitor                         │   │  never seen in a     │
#  │  kvipctl / kvip_nl.py make changes       │   │                      │
#  └──────────────────────────────────────────┘   └──────────────────────┘
#
# Two monitors (JSON lines, and text) watch a while a fixed sequence of
# changes is made: service add (with options), endpoints set, a rejected
# add (no event), service replace, a set sent in three chunks (one event,
# at the commit), service del, a second service, flush, config set. Both
# monitors print exactly those events, in that order, with what each
# carries; every -j line is a JSON object; changes in namespace b never
# show up in a's monitors; the JSON monitor runs without CAP_NET_ADMIN.

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

ktap_print_header
kvip_require
ktap_set_plan 6

a="" b=""
setup_ns a b || ktap_exit_fail_msg "netns setup failed"

jout=$KVIP_TMP/monitor.json
tout=$KVIP_TMP/monitor.txt
unpriv=()
if setpriv --inh-caps=-all --bounding-set=-net_admin true 2>/dev/null; then
	unpriv=(setpriv --inh-caps=-all --bounding-set=-net_admin --)
fi
ip netns exec "$a" "${unpriv[@]}" "$KVIPCTL" monitor -j >"$jout" 2>&1 &
jpid=$!
defer kill_wait "$jpid"
"$KVIPCTL" -n "$a" monitor >"$tout" 2>&1 &
tpid=$!
defer kill_wait "$tpid"

# Both monitors have joined once each has seen a (repeated) settings event.
sync_event() {
	"$KVIPCTL" -n "$a" config set drop-invalid off &&
		[[ -s "$jout" && -s "$tout" ]]
}
busywait 60000 sync_event || ktap_exit_fail_msg "the monitors print nothing"

kvipctl_ns "$a" service add default/m proto tcp clusterip 10.96.0.10:80 \
	affinity clientip timeout 30 source-ranges 10.0.0.0/8,fd00::/8 ||
	ktap_exit_fail_msg "service add failed"
kvipctl_ns "$b" service add default/b proto tcp clusterip 10.96.0.20:80 ||
	ktap_exit_fail_msg "service add in b failed"
kvipctl_ns "$a" endpoints set default/m 10.0.1.1:80 10.0.1.2:80@2,local ||
	ktap_exit_fail_msg "endpoints set failed"
if kvipctl_ns "$a" service add default/m proto tcp clusterip 10.96.0.10:80 2>/dev/null; then
	ktap_exit_fail_msg "adding an existing service worked"
fi
kvipctl_ns "$a" service replace default/m proto tcp clusterip 10.96.0.10:80 \
	nodeport 30080 external-traffic-policy local ||
	ktap_exit_fail_msg "service replace failed"
ep() { echo "{family=inet addr=10.0.2.$1 port=80}"; }
chunks=$(py_ns "$a" "$KVIP_NL" -b - 2>&1 <<EOF
set_endpoints name=default/m set_flags=more endpoints=[$(ep 1)]
set_endpoints name=default/m set_flags=append|more endpoints=[$(ep 2)]
set_endpoints name=default/m set_flags=append endpoints=[$(ep 3)]
EOF
)
[[ "$chunks" == $'OK\nOK\nOK' ]] || ktap_exit_fail_msg "chunked set failed: $chunks"
kvipctl_ns "$b" flush || ktap_exit_fail_msg "flush in b failed"
kvipctl_ns "$a" service del default/m || ktap_exit_fail_msg "service del failed"
kvipctl_ns "$a" service add default/n proto udp clusterip '[fd00::53]:53' ||
	ktap_exit_fail_msg "service add failed"
kvipctl_ns "$a" flush || ktap_exit_fail_msg "flush failed"
kvipctl_ns "$a" config set cluster-cidr 10.244.0.0/16 masquerade-all on ||
	ktap_exit_fail_msg "config set failed"

# The last event is in both files once the config line is.
last_seen() {
	grep -q 'cluster-cidr 10.244.0.0/16' "$tout" &&
		grep -q '"cluster_cidrs":\["10.244.0.0/16"\]' "$jout"
}
busywait 60000 last_seen
kill_wait "$jpid" "$tpid"

want_text='service default/m proto tcp clusterip 10.96.0.10:80 external-traffic-policy cluster internal-traffic-policy cluster affinity clientip timeout 30 source-ranges 10.0.0.0/8,fd00::/8 endpoints 0
endpoints default/m count 2
service default/m proto tcp clusterip 10.96.0.10:80 nodeport 30080 external-traffic-policy local internal-traffic-policy cluster affinity none endpoints 2
endpoints default/m count 3
delete default/m
service default/n proto udp clusterip [fd00::53]:53 external-traffic-policy cluster internal-traffic-policy cluster affinity none endpoints 0
flush
config nodeport-addresses default cluster-cidr 10.244.0.0/16 masquerade-all on drop-invalid off'
# Drop the leading synchronisation events.
got_text=$(sed '/^config nodeport-addresses default cluster-cidr none masquerade-all off drop-invalid off$/d' "$tout")
ktap_print_msg "text monitor:"$'\n'"$(sed 's/^/    /' "$tout")"
ktap_check "kvipctl monitor prints every change once, in order" \
	"want:"$'\n'"$want_text"$'\n'"got:"$'\n'"$got_text" \
	[ "$got_text" = "$want_text" ]
ktap_check "no event for the rejected add or the staged chunks" \
	"$(grep -c . <<<"$got_text") events" [ "$(grep -c . <<<"$got_text")" = 8 ]
ktap_check "changes in another namespace are not announced here" \
	"$(grep -E 'default/b|10\.96\.0\.20' "$tout")" \
	bash -c "! grep -qE 'default/b|10\\.96\\.0\\.20' '$tout' '$jout'"

ktap_print_msg "JSON monitor:"$'\n'"$(sed 's/^/    /' "$jout")"
summary=$("$PYTHON" - "$jout" <<'EOF' 2>&1
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert all(isinstance(e, dict) for e in evs)
while evs and evs[0]["event"] == "config" and not evs[0]["cluster_cidrs"]:
    evs.pop(0)
out = []
for e in evs:
    k = e["event"]
    if k == "service":
        out.append("%s %s %s %s %s %s %s %s %d" % (
            k, e["name"], e["proto"], ",".join(e["flags"]) or "-",
            e["affinity"], e.get("affinity_timeout", "-"),
            ",".join(e["source_ranges"]) or "-",
            ",".join(f.get("address", "") + ":" + str(f["port"])
                     for f in e["frontends"]), e["endpoint_count"]))
    elif k == "endpoints":
        out.append("%s %s %d" % (k, e["name"], e["endpoint_count"]))
    elif k == "delete":
        out.append("%s %s" % (k, e["name"]))
    elif k == "config":
        out.append("config %s %s %s %s" % (e["nodeport_addresses"],
            e["cluster_cidrs"], e["masquerade_all"], e["drop_invalid"]))
    else:
        out.append(k)
print("|".join(out))
EOF
)
want='service default/m tcp affinity clientip 30 10.0.0.0/8,fd00::/8 10.96.0.10:80 0|endpoints default/m 2|service default/m tcp external_local none - - 10.96.0.10:80,:30080 2|endpoints default/m 3|delete default/m|service default/n udp - none - - fd00::53:53 0|flush|config [] ['"'"'10.244.0.0/16'"'"'] True False'
ktap_check "kvipctl monitor -j: one JSON object per line, the same events" \
	"want $want"$'\n'"got  $summary" [ "$summary" = "$want" ]
if ((${#unpriv[@]})); then
	ktap_test_pass "the JSON monitor ran without CAP_NET_ADMIN"
else
	ktap_test_skip "the JSON monitor ran without CAP_NET_ADMIN" "setpriv cannot drop CAP_NET_ADMIN"
fi

# The raw group: an unprivileged listener in b sees b's changes.
mon=$KVIP_TMP/raw.txt
ip netns exec "$b" "${unpriv[@]}" "$PYTHON" "$KVIP_NL" --monitor 1 >"$mon" 2>&1 &
rpid=$!
defer kill_wait "$rpid"
busywait 60000 grep -q READY "$mon" || ktap_exit_fail_msg "kvip_nl.py --monitor did not start: $(cat "$mon")"
kvipctl_ns "$b" service add default/c proto sctp nodeport 30132
busywait 60000 grep -q EVENT "$mon"
kill_wait "$rpid"
ktap_check "KVIP_MCGRP_EVENTS: NEW_SERVICE carries name, proto, frontends" \
	"$(cat "$mon")" matches "$(cat "$mon")" \
	'EVENT new_service \{"endpoint_count": 0, "flags": 0, "frontends": \[\{"port": 30132, "type": 3\}\], "name": "default/c", "proto": 132\}'

ktap_finished
