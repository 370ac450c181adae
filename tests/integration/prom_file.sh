#!/usr/bin/env bash
# --prom-file: the node-exporter textfile parses as Prometheus text format (every sample has
# HELP/TYPE, names and labels are valid), its counters equal the run's summary and events
# (rstscope_resets_total by cause and origin), and no temporary file is left behind.
. "$(dirname "$0")/common.sh"

for workers in 1 2; do
    rm -f "$TMP/rs.prom"
    if ! "$RSTSCOPE" --pcap "$DATA/sample.pcap" --workers "$workers" --quiet --status-interval 0 \
        --prom-file "$TMP/rs.prom" --prom-interval 1 --summary "$TMP/s.json" \
        --events "$TMP/e.jsonl" 2>"$TMP/err"; then
        bad "run failed: $(tail -3 "$TMP/err")"
        continue
    fi
    if python3 - "$TMP/rs.prom" "$TMP/s.json" "$TMP/e.jsonl" <<'PY'
import collections, json, re, sys
text = open(sys.argv[1]).read()
summary = json.load(open(sys.argv[2]))
events = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)\})? ([0-9]+(\.[0-9]+)?)$')
typed, samples = {}, collections.defaultdict(dict)
for line in text.splitlines():
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        assert kind in ("counter", "gauge"), line
        typed[name] = kind
        continue
    if line.startswith("# HELP ") or not line:
        continue
    m = sample.match(line)
    assert m, f"not a sample: {line!r}"
    name = m.group(1)
    assert name in typed, f"{name} without TYPE"
    assert typed[name] != "counter" or name.endswith("_total"), name
    labels = tuple(sorted(re.findall(r'([a-zA-Z_]+)="([^"]*)"', m.group(3) or "")))
    samples[name][labels] = float(m.group(5))
resets = samples["rstscope_resets_total"]
by_cause = collections.Counter()
by_origin = collections.Counter()
for labels, v in resets.items():
    d = dict(labels)
    by_cause[d["cause"]] += v
    by_origin[d["origin"]] += v
for cause, n in summary["causes"].items():
    assert by_cause[cause] == n, (cause, by_cause[cause], n)
    assert samples["rstscope_reset_events_total"][(("cause", cause),)] == n
ev_origin = collections.Counter(e["origin"] for e in events)
for origin, n in by_origin.items():
    assert ev_origin.get(origin, 0) == n, (origin, n, ev_origin)
assert sum(by_cause.values()) == summary["resets"] > 0
assert samples["rstscope_packets_total"][()] == summary["packets"]
assert samples["rstscope_rst_packets_total"][()] == summary["rst_packets"]
print(f"  {len(text.splitlines())} lines, {int(sum(by_cause.values()))} resets, origins {dict(by_origin)}")
PY
    then
        ok "prom file parses and matches the summary and events (workers=$workers)"
    else
        bad "prom file (workers=$workers): $(head -5 "$TMP/rs.prom")"
    fi
    if ls "$TMP"/rs.prom.tmp >/dev/null 2>&1; then bad "temporary file left"; else ok "no temporary file left"; fi
done
# Without --events there is no event ring: the per-origin series come from the workers' own
# counters and still add up to every cause counted.
if "$RSTSCOPE" --pcap "$DATA/sample.pcap" --workers 2 --quiet --status-interval 0 \
    --prom-file "$TMP/rs2.prom" --summary "$TMP/s2.json" 2>"$TMP/err3" &&
    python3 - "$TMP/rs2.prom" "$TMP/s2.json" <<'PY'
import json, re, sys
summary = json.load(open(sys.argv[2]))
total = sum(float(m.group(1)) for m in
            re.finditer(r'^rstscope_resets_total\{[^}]*\} ([0-9.]+)$', open(sys.argv[1]).read(), re.M))
assert total == summary["resets"] > 0, (total, summary["resets"])
PY
then
    ok "per-origin series add up to the resets without an event ring"
else
    bad "per-origin series without --events: $(tail -3 "$TMP/err3")"
fi
# An unwritable directory is reported, not fatal to the analysis.
if "$RSTSCOPE" --pcap "$DATA/refused.pcap" --quiet --status-interval 0 \
    --prom-file /nonexistent-dir/rs.prom 2>"$TMP/err2" && grep -q "writing '/nonexistent-dir/rs.prom' failed" "$TMP/err2"; then
    ok "unwritable prom path reported"
else
    bad "unwritable prom path: $(cat "$TMP/err2")"
fi
finish
