#!/usr/bin/env python3
"""Compare two rstscope runs (--summary and --events) of the same traffic.

usage: compare_runs.py BARE_SUMMARY BARE_EVENTS WRAPPED_SUMMARY WRAPPED_EVENTS [--lost N]
                       [--encap KIND=N]

The traffic analysis must be identical: TCP/RST/SYN/FIN counts, every per-cause and
per-overload count, every reset event field for field. --lost N: the wrapped run must report
exactly N mirror copies missing, the bare run none. --encap KIND=N: the wrapped run saw N
frames in tunnels of KIND. Prints one line per difference; exit status 1 when anything differs.
"""
import argparse
import json
import sys

SAME = ("tcp_packets", "rst_packets", "resets", "syn", "synack", "fin", "causes", "overload",
        "low_confidence", "late_rsts", "duplicates", "capture_gaps")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bare_summary")
    ap.add_argument("bare_events")
    ap.add_argument("wrapped_summary")
    ap.add_argument("wrapped_events")
    ap.add_argument("--lost", type=int)
    ap.add_argument("--encap", action="append", default=[])
    a = ap.parse_args()
    bs, ws = json.load(open(a.bare_summary)), json.load(open(a.wrapped_summary))
    be = sorted(open(a.bare_events).read().splitlines())
    we = sorted(open(a.wrapped_events).read().splitlines())
    errors = []
    for k in SAME:
        if bs.get(k) != ws.get(k):
            errors.append(f"{k}: bare {bs.get(k)}, wrapped {ws.get(k)}")
    if bs["resets"] == 0:
        errors.append("no reset in the bare run: the comparison proves nothing")
    if be != we:
        errors.append(f"events differ: {len(be)} bare, {len(we)} wrapped")
        for line in sorted(set(be) ^ set(we))[:6]:
            errors.append(f"  {'bare   ' if line in be else 'wrapped'} {line}")
    if sum(ws["malformed"].values()) != sum(bs["malformed"].values()):
        errors.append(f"malformed: bare {bs['malformed']}, wrapped {ws['malformed']}")
    if a.lost is not None:
        if ws["mirror"]["lost"] != a.lost or bs["mirror"]["lost"] != 0:
            errors.append(f"mirror loss: wrapped {ws['mirror']['lost']}, want {a.lost}")
    for spec in a.encap:
        kind, n = spec.split("=")
        if ws["encap"].get(kind) != int(n):
            errors.append(f"encap.{kind}: {ws['encap'].get(kind)}, want {n}")
    for e in errors:
        print("  " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
