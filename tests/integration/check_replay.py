#!/usr/bin/env python3
"""Compare an rstscope --summary/--events pair with the ground truth in tests/data/expected.json.

usage: check_replay.py EXPECTED_JSON PCAP_NAME SUMMARY EVENTS
Prints one line per mismatch; exit status 1 when anything differs.
"""
import json
import sys

SUMMARY_KEYS = ("packets", "tcp_packets", "rst_packets", "resets")
EVENT_KEYS = ("client_ip", "client_port", "server_ip", "server_port", "sender", "cause",
              "rst_count")


def main():
    expected_path, name, summary_path, events_path = sys.argv[1:5]
    exp = json.load(open(expected_path))["files"][name]
    got = json.load(open(summary_path))
    events = [json.loads(line) for line in open(events_path) if line.strip()]
    errors = []
    for k in SUMMARY_KEYS:
        if got.get(k) != exp[k]:
            errors.append(f"{k}: got {got.get(k)}, expected {exp[k]}")
    for cause, n in exp["causes"].items():
        if got["causes"].get(cause) != n:
            errors.append(f"causes.{cause}: got {got['causes'].get(cause)}, expected {n}")
    if set(got["causes"]) != set(exp["causes"]):
        errors.append(f"cause names differ: {sorted(got['causes'])}")
    if sum(got["causes"].values()) != got["resets"]:
        errors.append("sum of causes != resets")
    if len(events) != got["resets"]:
        errors.append(f"{len(events)} event lines for {got['resets']} resets")
    required = ("ts", "client_ip", "client_port", "server_ip", "server_port", "direction_known",
                "sender", "origin", "cause", "state", "rst_count")
    for ev in events:
        missing = [k for k in required if k not in ev]
        if missing:
            errors.append(f"event lacks {missing}: {ev}")
    key = lambda e: tuple(e[k] for k in EVENT_KEYS) + (round(e["ts"], 6),)
    want = sorted(key(e) for e in exp["events"])
    have = sorted(key(e) for e in events)
    for e in want:
        if e not in have:
            errors.append(f"missing event {e}")
    for e in have:
        if e not in want:
            errors.append(f"unexpected event {e}")
    for line in errors:
        print(f"  {name}: {line}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
