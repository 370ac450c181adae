#!/usr/bin/env python3
"""Compare rstscope's --flows records with Zeek's own conn.log results.

usage: zeek_compare.py EXPECTED_TSV FLOWS_DIR KNOWN_MD [--min-agreement 0.95] [--table]

EXPECTED_TSV is the corpus' expected_filled.tsv (one row per Zeek connection record);
FLOWS_DIR holds TRACE.flows.jsonl, rstscope's --flows output for each trace. A 4-tuple can
have several records (Zeek splits retries and late packets into new ones), so rows are matched
as multisets of conn_state per (trace, orig, resp).

In scope: TCP rows with a conn_state in the baseline. Out of scope, listed: rows that are not
TCP (rstscope analyses TCP only), TCP carried inside a tunnel rstscope does not open (Teredo),
and rows whose baseline has no conn_state ('-').

Every disagreement must be explained in KNOWN_MD: a line holding the trace name, the
originator port and both states ("trace ... port ... zeek STATE ... rstscope STATE") - so a
new disagreement fails the test until someone looks at it. Exit 1 when the agreement is below
the target or a disagreement is unexplained.
"""
import collections
import json
import os
import re
import sys

TUNNELLED = {("Teredo.pcap", "2001:0:4137:9e50:8000:f12a:b9c8:2815")}


def norm(ip):
    """Zeek writes IPv6 with leading zeros kept (2001:0:...); compare in one form."""
    import ipaddress
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    expected_tsv, flows_dir, known_md = args[:3]
    target = 0.95
    if "--min-agreement" in sys.argv:
        target = float(sys.argv[sys.argv.index("--min-agreement") + 1])
        args = [a for a in args if a != str(sys.argv[sys.argv.index("--min-agreement") + 1])]
    known = open(known_md).read() if os.path.exists(known_md) else ""

    rows, out_of_scope = [], []
    with open(expected_tsv) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            r = dict(zip(header, line.rstrip("\n").split("\t")))
            if r["proto"] != "tcp":
                out_of_scope.append((r, "not TCP"))
            elif (r["trace"], r["orig_h"]) in TUNNELLED:
                out_of_scope.append((r, "inside a Teredo tunnel"))
            elif r["conn_state"] == "-":
                out_of_scope.append((r, "baseline has no conn_state"))
            else:
                rows.append(r)

    ours = collections.defaultdict(list)  # (trace, orig, oport, resp, rport) -> states
    for trace in sorted({r["trace"] for r in rows}):
        path = os.path.join(flows_dir, trace + ".flows.jsonl")
        for line in open(path):
            j = json.loads(line)
            key = (trace, norm(j["orig_h"]), j["orig_p"], norm(j["resp_h"]), j["resp_p"])
            ours[key].append(j["conn_state"])

    groups = collections.defaultdict(list)
    for r in rows:
        key = (r["trace"], norm(r["orig_h"]), int(r["orig_p"]), norm(r["resp_h"]),
               int(r["resp_p"]))
        groups[key].append(r["conn_state"])

    agree, disagreements = 0, []
    for key, zstates in groups.items():
        mine = collections.Counter(ours.get(key, []))
        if not mine:  # the same connection with the roles the other way round?
            rev = (key[0], key[3], key[4], key[1], key[2])
            if rev in ours:
                mine = collections.Counter(ours[rev])
                for z in zstates:
                    disagreements.append((key, z, "flipped:" + "/".join(sorted(mine))))
                continue
        left = collections.Counter(zstates)
        common = left & mine
        agree += sum(common.values())
        z_rest = list((left - common).elements())
        m_rest = list((mine - common).elements())
        for i, z in enumerate(z_rest):
            disagreements.append((key, z, m_rest[i] if i < len(m_rest) else "none"))

    total = len(rows)
    rate = agree / total if total else 0.0
    unexplained = []
    for key, z, m in disagreements:
        trace, _, oport, _, _ = key
        pat = re.compile(re.escape(trace) + r".*\b" + str(oport) + r"\b.*\b" + re.escape(z) +
                         r"\b.*\b" + re.escape(m.split(":")[-1]) + r"\b")
        if not any(pat.search(line) for line in known.splitlines()):
            unexplained.append((key, z, m))

    if "--table" in sys.argv:
        for key, z, m in disagreements:
            print(f"  differ: {key[0]} {key[1]}:{key[2]} -> {key[3]}:{key[4]} zeek {z} "
                  f"rstscope {m}")
        for r, why in out_of_scope:
            print(f"  out of scope: {r['trace']} {r['orig_h']}:{r['orig_p']} -> "
                  f"{r['resp_h']}:{r['resp_p']} {r['proto']} {r['conn_state']} ({why})")
    print(f"zeek conn_state agreement: {agree}/{total} = {rate:.3f} "
          f"({len(disagreements)} differ, {len(out_of_scope)} out of scope)")
    for key, z, m in unexplained:
        print(f"UNEXPLAINED: {key[0]} {key[1]}:{key[2]} -> {key[3]}:{key[4]} zeek {z} "
              f"rstscope {m} (add it to {os.path.basename(known_md)} with the reason)")
    sys.exit(0 if rate >= target and not unexplained else 1)


if __name__ == "__main__":
    main()
