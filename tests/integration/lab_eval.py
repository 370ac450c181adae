#!/usr/bin/env python3
"""Score rstscope's reset events against the lab's ground truth.

  lab_eval.py LABELS EVENTS_JSONL [--flows FLOWS_JSONL] [--min 0.95]

LABELS is scripts/lab's labels.json (or labels.tsv).  Events are matched to
labelled connections by 4-tuple (either orientation, in case the analyzer
took the other end for the client).  Per connection, the set of causes of
its events is the prediction:
  - expected cause among them          -> tp for that cause, else fn
  - every other cause among them       -> fp for that cause
  - any event on a clean connection    -> fp, and the run fails
Events on no labelled connection are "unmatched": each is an fp for its
cause (a lab capture holds nothing but labelled connections, so an event
elsewhere is a wrong answer, not noise).  Events on connections the lab
excluded (scenario did not happen as planned) are listed and not scored.

Exit 1 when a cause with >= 1 labelled connection has precision or recall
below --min (default 0.95), or a clean connection got a reset event; 2 on
bad input; else 0.  Sender and origin agreement is printed for information.
"""

import argparse
import collections
import json
import sys


def load_labels(path):
    if path.endswith(".tsv"):
        rows, params = [], {}
        cols = None
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("#"):
                    for kv in line[1:].split():
                        if "=" in kv:
                            k, v = kv.split("=", 1)
                            params[k] = v
                    continue
                if cols is None:
                    cols = line.split("\t")
                    continue
                d = dict(zip(cols, line.split("\t")))
                for k in ("client_port", "server_port", "id"):
                    d[k] = int(d[k])
                for k in ("cause", "sender", "origin"):
                    d[k] = d.get(k) or None
                rows.append(d)
        return rows, params
    doc = json.load(open(path))
    return doc["connections"], doc.get("params", {})


def load_jsonl(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise SystemExit("lab_eval: %s:%d: bad JSON: %s" % (path, n, e))
    return out


def tup(d, a, b, c, e):
    return (d.get(a), int(d.get(b) or 0), d.get(c), int(d.get(e) or 0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labels")
    ap.add_argument("events")
    ap.add_argument("--flows")
    ap.add_argument("--min", type=float, default=0.95)
    a = ap.parse_args()
    try:
        labels, params = load_labels(a.labels)
        events = load_jsonl(a.events)
    except (OSError, ValueError, KeyError) as e:
        print("lab_eval: cannot read input: %s" % e, file=sys.stderr)
        return 2

    index = {}
    for lab in labels:
        index[(lab["client_ip"], lab["client_port"], lab["server_ip"], lab["server_port"])] = lab
    by_conn = collections.defaultdict(list)     # label id -> [(event, flipped)]
    unmatched = []
    for ev in events:
        k = tup(ev, "client_ip", "client_port", "server_ip", "server_port")
        rk = (k[2], k[3], k[0], k[1])
        if k in index:
            by_conn[index[k]["id"]].append((ev, False))
        elif rk in index:
            by_conn[index[rk]["id"]].append((ev, True))
        else:
            unmatched.append(ev)

    causes = []
    for lab in labels:
        if lab["cause"] and lab["cause"] not in causes:
            causes.append(lab["cause"])
    for ev in events:
        c = ev.get("cause")
        if c not in causes:
            causes.append(c)
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    labelled = collections.Counter()
    sender_ok, sender_n = collections.Counter(), collections.Counter()
    origin_ok, origin_n = collections.Counter(), collections.Counter()
    confusion = collections.Counter()
    clean_hit, excluded_hit, multi = [], [], 0
    n_clean = n_excl = 0
    for lab in labels:
        evs = by_conn.get(lab["id"], [])
        if lab.get("status", "ok") != "ok":
            n_excl += 1
            excluded_hit += [(lab, ev) for ev, _f in evs]
            continue
        want = lab["cause"]
        got = collections.OrderedDict()
        for ev, flipped in evs:
            got.setdefault(ev.get("cause"), (ev, flipped))
        if len(evs) > 1:
            multi += 1
        if want is None:
            n_clean += 1
            for c, (ev, _f) in got.items():
                fp[c] += 1
                confusion[("clean", c)] += 1
                clean_hit.append((lab, ev))
            continue
        labelled[want] += 1
        if want in got:
            tp[want] += 1
            ev, flipped = got[want]
            if lab.get("sender"):
                s = ev.get("sender")
                if flipped and s in ("client", "server"):
                    s = "server" if s == "client" else "client"
                sender_n[want] += 1
                sender_ok[want] += s == lab["sender"]
            if lab.get("origin"):
                origin_n[want] += 1
                origin_ok[want] += ev.get("origin") == lab["origin"]
        else:
            fn[want] += 1
            confusion[(want, " + ".join(map(str, got)) if got else "(no event)")] += 1
        for c in got:
            if c != want:
                fp[c] += 1
                if want in got:
                    confusion[(want, "extra " + str(c))] += 1
    for ev in unmatched:
        fp[ev.get("cause")] += 1
        confusion[("(unlabelled tuple)", ev.get("cause"))] += 1

    print("lab_eval: %d labelled connections (%d with a reset cause, %d clean, %d excluded), "
          "%d events (%d unmatched)" % (len(labels), sum(labelled.values()), n_clean, n_excl,
                                        len(events), len(unmatched)))
    if params:
        print("lab parameters: %s" % json.dumps(params, sort_keys=True))
    print()
    hdr = "%-20s %8s %5s %5s %5s %9s %7s %9s %9s  %s" % (
        "cause", "labelled", "tp", "fp", "fn", "precision", "recall", "sender", "origin", "")
    print(hdr)
    print("-" * len(hdr))
    failing = []
    for c in causes:
        p_den = tp[c] + fp[c]
        r_den = labelled[c]
        prec = tp[c] / p_den if p_den else (1.0 if not r_den else 0.0)
        rec = tp[c] / r_den if r_den else 1.0
        bad = r_den and (prec < a.min or rec < a.min)
        if bad:
            failing.append(c)
        note = "FAIL" if bad else ("" if r_den else "(not labelled)")
        print("%-20s %8d %5d %5d %5d %9.3f %7.3f %9s %9s  %s" % (
            c, r_den, tp[c], fp[c], fn[c], prec, rec,
            "%d/%d" % (sender_ok[c], sender_n[c]) if sender_n[c] else "-",
            "%d/%d" % (origin_ok[c], origin_n[c]) if origin_n[c] else "-", note))
    print()
    if confusion:
        print("confusion (expected -> reported: connections)")
        for (w, g), n in sorted(confusion.items(), key=lambda kv: (-kv[1], str(kv[0]))):
            print("  %-20s -> %-28s %d" % (w, g, n))
        print()
    if multi:
        print("%d labelled connections got more than one event" % multi)
    if unmatched:
        print("unmatched events (no labelled connection has this 4-tuple):")
        for ev in unmatched[:20]:
            print("  %s:%s -> %s:%s sender=%s cause=%s" % (ev.get("client_ip"), ev.get("client_port"),
                                                          ev.get("server_ip"), ev.get("server_port"),
                                                          ev.get("sender"), ev.get("cause")))
        if len(unmatched) > 20:
            print("  ... %d more" % (len(unmatched) - 20))
    if excluded_hit:
        print("%d events on excluded connections (not scored)" % len(excluded_hit))
    for lab, ev in clean_hit:
        print("CLEAN CONNECTION REPORTED AS RESET: #%s %s/%s %s:%s -> %s:%s cause=%s" % (
            lab["id"], lab["scenario"], lab["variant"], lab["client_ip"], lab["client_port"],
            lab["server_ip"], lab["server_port"], ev.get("cause")))

    flows_bad = 0
    if a.flows:
        flows = load_jsonl(a.flows)
        fidx = {}
        for f in flows:
            k = tup(f, "orig_h", "orig_p", "resp_h", "resp_p")
            fidx[k] = f
            fidx[(k[2], k[3], k[0], k[1])] = f
        states = collections.defaultdict(collections.Counter)
        missing = 0
        for lab in labels:
            if lab.get("status", "ok") != "ok":
                continue
            f = fidx.get((lab["client_ip"], lab["client_port"], lab["server_ip"], lab["server_port"]))
            if f is None:
                missing += 1
                continue
            states[lab["cause"] or "clean"][f.get("conn_state")] += 1
            if lab["cause"] is None and f.get("cause") not in (None, "", "none"):
                flows_bad += 1
                print("CLEAN CONNECTION'S FLOW HAS A CAUSE: #%s %s:%s cause=%s" % (
                    lab["id"], lab["client_ip"], lab["client_port"], f.get("cause")))
        print("flows: %d records, %d labelled connections without one" % (len(flows), missing))
        for c, cnt in states.items():
            print("  %-20s conn_state %s" % (c, ", ".join("%s=%d" % kv for kv in cnt.most_common())))

    ok = not failing and not clean_hit and not flows_bad
    print()
    print("RESULT: %s%s" % ("PASS" if ok else "FAIL",
                           "" if ok else " (%s)" % ", ".join(
                               (["below %.2f: %s" % (a.min, ", ".join(failing))] if failing else []) +
                               (["%d clean connections reported as reset" % len(clean_hit)] if clean_hit
                                else []) +
                               (["%d clean flows with a cause" % flows_bad] if flows_bad else []))))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
