"""Compare an rstscope --summary with a generator's ground truth (gen_pcap.py, gen_bench), for
the integration tests and the benchmark. Standard library only.

A truth names the packets, the resets and the count of each cause it made; it may also name
"malformed" and "ipv6" packets. Every cause the truth does not name must be 0."""
import json
import sys


def truth_errors(got, truth):
    """The differences between a summary and a truth (both parsed), one string each."""
    errs = []
    pairs = [("packets", "packets"), ("resets", "resets"), ("malformed_packets", "malformed"),
             ("ipv6", "ipv6")]
    for mine, theirs in pairs:
        if theirs in truth and got.get(mine) != truth[theirs]:
            errs.append(f"{mine}: {got.get(mine)}, truth {truth[theirs]}")
    causes = got.get("causes", {})
    for c, n in truth["causes"].items():
        if causes.get(c, 0) != n:
            errs.append(f"{c}: {causes.get(c, 0)}, truth {n}")
    for c, n in causes.items():
        if n and c not in truth["causes"]:
            errs.append(f"{c}: {n}, truth 0")
    return errs


def main():
    """usage: truth.py SUMMARY TRUTH: the differences, one per line; exit status 1 if any."""
    with open(sys.argv[1]) as f:
        got = json.load(f)
    with open(sys.argv[2]) as f:
        truth = json.load(f)
    errs = truth_errors(got, truth)
    print("\n".join("  " + e for e in errs))
    sys.exit(1 if errs else 0)


if __name__ == "__main__":
    main()
