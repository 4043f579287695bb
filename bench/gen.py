#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Generate every contender's configuration for N services (make bench).

    bench/gen.py N OUTDIR [--endpoints E]

writes into OUTDIR (all loaded by bench/run.sh inside the guest):

  kvip.batch          kvipctl -batch: N services x E endpoints (+ 2 TCP probes)
  kvip-noeps.batch    the same services without endpoints (memory split)
  kvip-change         one endpoint change of svc-0 (kvipctl arguments)
  iptables.rules      kube-proxy iptables shape, iptables-restore (nat table)
  iptables-change.rules        the full table again with svc-0 changed
  iptables-change-partial.rules  then only svc-0's chains (--noflush, as
                      kube-proxy's MinimizeIPTablesRestore does): .254 -> .253
  iptables-flush.rules  an empty nat table
  nft.rules           kube-proxy nftables shape, nft -f
  nft-change.rules    svc-0's chains replaced in one transaction
  ipvs.rules          ipvsadm -R; ipvs-addr.batch: VIPs on kube-ipvs0 (ip -batch)
  ipvs-change.rules   svc-0's real servers replaced
  floor.rules         one static DNAT rule per probe VIP (iptables-restore)

Address plan (see bench/run.sh): UDP service i has VIP 10.96.0.1+i port 53
and endpoints 10.128.0.0+16i+j port 5353 (j < E); two TCP probe services,
10.95.0.1:80 -> 10.127.0.1-E:8080 (connect rate) and 10.95.0.2:5201 ->
10.127.1.1-E:5201 (iperf3), sit in the middle of the table (for iptables:
at position N/2 of KUBE-SERVICES, the average position of a service).
svc-0's change replaces its endpoints by the single 10.255.255.254:5353.
"""
import base64
import hashlib
import ipaddress
import os
import sys

CLUSTER_CIDR = "192.168.0.0/16"   # the client counts as a pod: no masquerade
NEW_EP = "10.255.255.254"


def ip(n):
    return str(ipaddress.IPv4Address(n))


VIP0 = int(ipaddress.IPv4Address("10.96.0.1"))
EP0 = int(ipaddress.IPv4Address("10.128.0.0"))


class Svc:
    def __init__(self, name, proto, vip, port, eps):
        self.name, self.proto, self.vip, self.port, self.eps = name, proto, vip, port, eps
        self.spn = "bench/%s:p%d" % (name, port)   # kube-proxy ServicePortName


def services(n, e):
    out = []
    for i in range(n):
        out.append(Svc("svc-%d" % i, "udp", ip(VIP0 + i), 53,
                       [(ip(EP0 + 16 * i + j), 5353) for j in range(e)]))
    probes = [Svc("tcp-conn", "tcp", "10.95.0.1", 80,
                  [("10.127.0.%d" % (j + 1), 8080) for j in range(e)]),
              Svc("tcp-iperf", "tcp", "10.95.0.2", 5201,
                  [("10.127.1.%d" % (j + 1), 5201) for j in range(e)])]
    mid = n // 2
    return out[:mid] + probes + out[mid:]


def changed(svc, new=NEW_EP):
    return Svc(svc.name, svc.proto, svc.vip, svc.port, [(new, 5353)])


# ------------------------------------------------------------------ kvip --

def kvip_lines(svcs, with_eps=True):
    for s in svcs:
        yield "service add %s proto %s clusterip %s:%d\n" % (s.name, s.proto, s.vip, s.port)
        if with_eps:
            yield "endpoints set %s %s\n" % (s.name, " ".join("%s:%d" % ep for ep in s.eps))


# --------------------------------------------------------------- iptables --
# pkg/proxy/iptables/proxier.go: servicePortChainName / endpointChainName.

def chain(prefix, *parts):
    h = hashlib.sha256("".join(parts).encode()).digest()
    return prefix + base64.b32encode(h).decode()[:16]


def svc_chain(s):
    return chain("KUBE-SVC-", s.spn, s.proto)


def sep_chain(s, ep):
    return chain("KUBE-SEP-", s.spn, s.proto, "%s:%d" % ep)


def ipt_svc(s):
    """(chain declarations, KUBE-SERVICES rule, chain rules) of one service."""
    sc = svc_chain(s)
    decl = [":%s - [0:0]\n" % sc] + [":%s - [0:0]\n" % sep_chain(s, ep) for ep in s.eps]
    jump = ('-A KUBE-SERVICES -m comment --comment "%s cluster IP" -m %s -p %s '
            '-d %s/32 --dport %d -j %s\n' % (s.spn, s.proto, s.proto, s.vip, s.port, sc))
    rules = ['-A %s -m comment --comment "%s cluster IP" -m %s -p %s -d %s/32 --dport %d '
             '! -s %s -j KUBE-MARK-MASQ\n' % (sc, s.spn, s.proto, s.proto, s.vip, s.port,
                                              CLUSTER_CIDR)]
    n = len(s.eps)
    for k, ep in enumerate(s.eps):
        sep = sep_chain(s, ep)
        stat = ""
        if k < n - 1:
            stat = "-m statistic --mode random --probability %.11f " % (1.0 / (n - k))
        rules.append('-A %s -m comment --comment "%s -> %s:%d" %s-j %s\n'
                     % (sc, s.spn, ep[0], ep[1], stat, sep))
    for ep in s.eps:
        sep = sep_chain(s, ep)
        rules.append('-A %s -m comment --comment %s -s %s/32 -j KUBE-MARK-MASQ\n'
                     % (sep, s.spn, ep[0]))
        rules.append('-A %s -m comment --comment %s -m %s -p %s -j DNAT '
                     '--to-destination %s:%d\n' % (sep, s.spn, s.proto, s.proto, ep[0], ep[1]))
    return decl, jump, rules


IPT_HEAD = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
"""
IPT_TAIL = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this '
            'must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n'
            'COMMIT\n')


def write_iptables(path, svcs):
    with open(path, "w") as f:
        f.write(IPT_HEAD)
        parts = [ipt_svc(s) for s in svcs]
        for d, _, _ in parts:
            f.writelines(d)
        for _, j, _ in parts:
            f.write(j)
        for _, _, r in parts:
            f.writelines(r)
        f.write(IPT_TAIL)


def write_iptables_partial(path, old, new):
    """kube-proxy's partial sync: only the changed service's chains."""
    d, _, r = ipt_svc(new)
    with open(path, "w") as f:
        f.write("*nat\n:KUBE-MARK-MASQ - [0:0]\n")
        f.writelines(d)
        gone = [sep_chain(old, ep) for ep in old.eps if ep not in new.eps]
        f.writelines(":%s - [0:0]\n" % c for c in gone)
        f.writelines(r)
        f.writelines("-X %s\n" % c for c in gone)
        f.write("COMMIT\n")


# ---------------------------------------------------------------- nftables --
# pkg/proxy/nftables/proxier.go: "service-HASH-ns/name/proto/pPORT",
# "endpoint-HASH-ns/name/proto/pPORT__IP/PORT", hash = first 8 base32 chars.

def nft_name(prefix, key):
    h = base64.b32encode(hashlib.sha256(key.encode()).digest()).decode()[:8]
    return "%s-%s-%s" % (prefix, h, key)


def nft_svc_chain(s):
    return nft_name("service", "bench/%s/%s/p%d" % (s.name, s.proto, s.port))


def nft_ep_chain(s, ep):
    return nft_name("endpoint", "bench/%s/%s/p%d__%s/%d" % (s.name, s.proto, s.port, ep[0], ep[1]))


NFT_HEAD = """add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy mark-for-masquerade
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add chain ip kube-proxy masquerading
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add chain ip kube-proxy services
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority dstnat ; }
add rule ip kube-proxy nat-prerouting jump services
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add rule ip kube-proxy nat-output jump services
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority srcnat ; }
add rule ip kube-proxy nat-postrouting jump masquerading
"""


def nft_svc(s, element=True):
    sc = nft_svc_chain(s)
    out = ["add chain ip kube-proxy %s\n" % sc]
    for ep in s.eps:
        ec = nft_ep_chain(s, ep)
        out.append("add chain ip kube-proxy %s\n" % ec)
        out.append("add rule ip kube-proxy %s ip saddr %s jump mark-for-masquerade\n" % (ec, ep[0]))
        out.append("add rule ip kube-proxy %s meta l4proto %s dnat to %s:%d\n"
                   % (ec, s.proto, ep[0], ep[1]))
    out.append("add rule ip kube-proxy %s ip daddr %s %s dport %d ip saddr != %s "
               "jump mark-for-masquerade\n" % (sc, s.vip, s.proto, s.port, CLUSTER_CIDR))
    vm = ", ".join("%d : goto %s" % (k, nft_ep_chain(s, ep)) for k, ep in enumerate(s.eps))
    out.append("add rule ip kube-proxy %s numgen random mod %d vmap { %s }\n"
               % (sc, len(s.eps), vm))
    if element:
        out.append("add element ip kube-proxy service-ips { %s . %s . %d : goto %s }\n"
                   % (s.vip, s.proto, s.port, sc))
    return out


def write_nft(path, svcs):
    with open(path, "w") as f:
        f.write(NFT_HEAD)
        for s in svcs:
            f.writelines(nft_svc(s))


def write_nft_change(path, old, new):
    sc = nft_svc_chain(old)
    with open(path, "w") as f:
        f.write("flush chain ip kube-proxy %s\n" % sc)
        for ep in new.eps:
            ec = nft_ep_chain(new, ep)
            f.write("add chain ip kube-proxy %s\n" % ec)
            f.write("add rule ip kube-proxy %s ip saddr %s jump mark-for-masquerade\n" % (ec, ep[0]))
            f.write("add rule ip kube-proxy %s meta l4proto %s dnat to %s:%d\n"
                    % (ec, new.proto, ep[0], ep[1]))
        f.write("add rule ip kube-proxy %s ip daddr %s %s dport %d ip saddr != %s "
                "jump mark-for-masquerade\n" % (sc, new.vip, new.proto, new.port, CLUSTER_CIDR))
        vm = ", ".join("%d : goto %s" % (k, nft_ep_chain(new, ep)) for k, ep in enumerate(new.eps))
        f.write("add rule ip kube-proxy %s numgen random mod %d vmap { %s }\n"
                % (sc, len(new.eps), vm))
        for ep in old.eps:
            if ep not in new.eps:
                f.write("delete chain ip kube-proxy %s\n" % nft_ep_chain(old, ep))


# -------------------------------------------------------------------- IPVS --

def pflag(s):
    return "-u" if s.proto == "udp" else "-t"


def write_ipvs(path, addr_path, svcs):
    with open(path, "w") as f, open(addr_path, "w") as a:
        for s in svcs:
            f.write("-A %s %s:%d -s rr\n" % (pflag(s), s.vip, s.port))
            for ep in s.eps:
                f.write("-a %s %s:%d -r %s:%d -m -w 1\n" % (pflag(s), s.vip, s.port, ep[0], ep[1]))
            a.write("address add %s/32 dev kube-ipvs0\n" % s.vip)


def write_ipvs_change(path, old, new):
    with open(path, "w") as f:
        for ep in new.eps:
            f.write("-a %s %s:%d -r %s:%d -m -w 1\n" % (pflag(new), new.vip, new.port, ep[0], ep[1]))
        for ep in old.eps:
            f.write("-d %s %s:%d -r %s:%d\n" % (pflag(old), old.vip, old.port, ep[0], ep[1]))


# ------------------------------------------------------------------- floor --

def write_floor(path, svcs):
    """One static DNAT rule per probe VIP, to one backend each."""
    first = svcs[0] if svcs[0].proto == "udp" else [s for s in svcs if s.proto == "udp"][0]
    probes = [s for s in svcs if s.proto == "tcp"]
    with open(path, "w") as f:
        f.write("*nat\n")
        for s in [first] + probes:
            f.write("-A PREROUTING -d %s/32 -p %s -m %s --dport %d -j DNAT --to-destination %s:%d\n"
                    % (s.vip, s.proto, s.proto, s.port, s.eps[0][0], s.eps[0][1]))
        f.write("COMMIT\n")


def main():
    args = sys.argv[1:]
    e = 10
    if "--endpoints" in args:
        k = args.index("--endpoints")
        e = int(args[k + 1])
        del args[k:k + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    n, out = int(args[0]), args[1]
    os.makedirs(out, exist_ok=True)
    svcs = services(n, e)
    svc0 = [s for s in svcs if s.name == "svc-0"][0]
    svcs_changed = [changed(s) if s is svc0 else s for s in svcs]
    p = lambda name: os.path.join(out, name)

    with open(p("kvip.batch"), "w") as f:
        f.writelines(kvip_lines(svcs))
    with open(p("kvip-noeps.batch"), "w") as f:
        f.writelines(kvip_lines(svcs, with_eps=False))
    with open(p("kvip-change"), "w") as f:
        f.write("endpoints set svc-0 %s:5353\n" % NEW_EP)
    write_iptables(p("iptables.rules"), svcs)
    write_iptables(p("iptables-change.rules"), svcs_changed)
    # Applied after iptables-change.rules: .254 -> .253.
    write_iptables_partial(p("iptables-change-partial.rules"), changed(svc0),
                           changed(svc0, "10.255.255.253"))
    with open(p("iptables-flush.rules"), "w") as f:
        f.write("*nat\nCOMMIT\n")
    write_nft(p("nft.rules"), svcs)
    write_nft_change(p("nft-change.rules"), svc0, changed(svc0))
    write_ipvs(p("ipvs.rules"), p("ipvs-addr.batch"), svcs)
    write_ipvs_change(p("ipvs-change.rules"), svc0, changed(svc0))
    write_floor(p("floor.rules"), svcs)
    with open(p("done"), "w") as f:
        f.write("%d %d\n" % (n, e))


if __name__ == "__main__":
    main()
