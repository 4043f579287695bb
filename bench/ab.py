#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise an interleaved A/B run (make bench-ab): bench/ab.py OUTDIR

Reads OUTDIR/ab.csv (bench/ab.sh: one row per round and topology) and
OUTDIR/ab.info, writes OUTDIR/ab.md and prints it: per topology the median
[min–max] over the rounds of new UDP flows/s and of CPU (system + softirq
seconds, both CPUs, per 100k flows); then the ratios, each taken within a
round (the two slices seconds apart, so a slow drift of the host's load
cancels out), median [min–max] over the rounds.
"""
import collections
import csv
import os
import statistics
import sys

RATIOS = [("kvip-N", "kvip-1", "flat: N services as fast as 1 (target ≥ 0.90)"),
          ("kvip-1", "floor", "kvip, 1 service, vs one static DNAT rule (target ≥ 0.90)"),
          ("kvip-N", "floor", "kvip, N services, vs one static DNAT rule (target ≥ 0.90)"),
          ("ceiling-N", "ceiling-1", "plain forwarding, N×10 vs 10 destinations"),
          ("floor", "ceiling-1", "conntrack + one DNAT vs plain forwarding"),
          ("kvip-1", "nft-1", "kvip vs kube-proxy's nftables shape, 1 service (target ≥ 1)"),
          ("kvip-N", "nft-N", "the same, N services (target ≥ 1)"),
          ("kvip-1", "ipvs-1", "kvip vs IPVS, 1 service (target ≥ 1)"),
          ("kvip-N", "ipvs-N", "the same, N services (target ≥ 1)"),
          ("nft-N", "nft-1", "nftables, N services vs 1"),
          ("ipvs-N", "ipvs-1", "IPVS, N services vs 1")]


def rng(xs, fmt):
    if not xs:
        return "–"
    s = fmt % statistics.median(xs)
    return s if len(xs) < 2 else "%s [%s–%s]" % (s, fmt % min(xs), fmt % max(xs))


def load(out):
    """Rows of OUTDIR/ab.csv: round -> topology -> row, and the topologies
    in the order of the run."""
    rounds = collections.defaultdict(dict)   # round -> topology -> row
    topos = []                               # in the order of the run
    with open(os.path.join(out, "ab.csv")) as f:
        for r in csv.DictReader(f):
            if r["topology"] not in topos:
                topos.append(r["topology"])
            m = {k: float(v) for k, v in r.items() if k not in ("topology",) and v != ""}
            if m.get("received") and "cpu_sys_jiffies" in m:
                m["cpu_per_100k"] = (m["cpu_sys_jiffies"] + m["cpu_softirq_jiffies"]) / 100 * 1e5 / m["received"]
            if m.get("tcp_elapsed_s"):
                m["tcp_conn_per_s"] = m["tcp_conns"] / m["tcp_elapsed_s"]
            rounds[int(m["round"])][r["topology"]] = m
    return rounds, topos


def ratios_of(rounds, a, b, key="udp_flows_per_s"):
    """a / b within each round that has both, in round order."""
    return [rounds[r][a][key] / rounds[r][b][key] for r in sorted(rounds)
            if a in rounds[r] and b in rounds[r] and rounds[r][b].get(key)]


def main():
    out = sys.argv[1]
    rounds, topos = load(out)
    col = lambda t, k: [rd[t][k] for rd in rounds.values() if t in rd and k in rd[t]]
    tcp = any(col(t, "tcp_conn_per_s") for t in topos)
    ratios = [x for x in RATIOS if x[0] in topos and x[1] in topos]
    n = sorted(rounds)

    lines = []
    info = os.path.join(out, "ab.info")
    if os.path.exists(info):
        lines += ["```"] + [l.rstrip() for l in open(info)] + ["```", ""]
    lines += ["%d rounds; in each, new UDP flows to every topology (in turns of the "
              "window, or one slice each), order rotated and reversed every other round. "
              "Median [min–max] over the rounds." % len(n), ""]
    hdr = ["topology", "UDP flows/s", "CPU s/100k flows"] + (["TCP conn/s"] if tcp else [])
    lines += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for t in topos:
        row = [t, rng(col(t, "udp_flows_per_s"), "%.0f"), rng(col(t, "cpu_per_100k"), "%.2f")]
        if tcp:
            row.append(rng(col(t, "tcp_conn_per_s"), "%.0f"))
        lines.append("| " + " | ".join(row) + " |")

    lines += ["", "Ratios of UDP flows/s within each round (per round, in round order; "
              "then median [min–max]):", "",
              "| ratio | what | median [min–max] | per round |", "|---|---|---|---|"]
    for a, b, what in ratios:
        rs = ratios_of(rounds, a, b)
        lines.append("| %s / %s | %s | %s | %s |" % (
            a, b, what, rng(rs, "%.2f"), " ".join("%.2f" % x for x in rs)))
    if tcp:
        lines += ["", "| TCP ratio | median [min–max] |", "|---|---|"]
        for a, b, _ in ratios:
            rs = ratios_of(rounds, a, b, "tcp_conn_per_s")
            lines.append("| %s / %s | %s |" % (a, b, rng(rs, "%.2f")))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "ab.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
