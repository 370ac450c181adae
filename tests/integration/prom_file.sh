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
# IPv6 address pool: 100 IPv6 handshakes, one after the other, in a 256-entry table (one
# worker: a pool of 64 pairs). The first 64 stay established; the other 36 are refused, 3
# packets each; summary, report and Prometheus all say so.
python3 - "$TMP/v6.pcap" <<'PY'
import os, struct, sys
sys.path.insert(0, os.path.join(os.environ["RS_SRCDIR"], "scripts", "lib"))
from pcapio import pcap_header, pcap_record
out = open(sys.argv[1], "wb")
out.write(pcap_header())
cli = bytes.fromhex("20010db8000000000000000000000001")
eth = bytes.fromhex("020000000002020000000001") + b"\x86\xdd"
t = 0
for i in range(100):
    srv = bytes.fromhex("20010db80000000000000000000002") + bytes([i])
    for src, dst, sp, dp, seq, ack, fl in ((cli, srv, 40000 + i, 443, 1000, 0, 0x02),
                                           (srv, cli, 443, 40000 + i, 5000, 1001, 0x12),
                                           (cli, srv, 40000 + i, 443, 1001, 5001, 0x10)):
        tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, fl, 64240, 0, 0)
        ip6 = struct.pack("!IHBB", 0x60000000, len(tcp), 6, 64) + src + dst
        out.write(pcap_record(1700000000, t, eth + ip6 + tcp))
        t += 100
PY
if "$RSTSCOPE" --pcap "$TMP/v6.pcap" --max-flows 256 --status-interval 0 --prom-file "$TMP/v6.prom" \
    --summary "$TMP/v6.json" >"$TMP/v6.out" 2>"$TMP/err4" &&
    python3 -c "import json,sys; f=json.load(open('$TMP/v6.json'))['flows']; sys.exit((f['ipv6_pool_full'], f['created']) != (108, 64))" &&
    grep -q "^rstscope_ipv6_pool_full_total 108$" "$TMP/v6.prom" &&
    grep -q "NOT TRACKED .*108 IPv6 packets found the IPv6 address pool" "$TMP/v6.out"; then
    ok "IPv6 pool full: 36 of 100 connections refused, in the summary, the report and Prometheus"
else
    bad "IPv6 pool full: $(grep -i -e ipv6 -e tracked "$TMP/v6.out" "$TMP/v6.prom"; tail -2 "$TMP/err4")"
fi
# --ipv6-share 100: the whole table may be IPv6, nothing is refused.
if "$RSTSCOPE" --pcap "$TMP/v6.pcap" --max-flows 256 --ipv6-share 100 --status-interval 0 --quiet \
    --summary "$TMP/v6b.json" 2>"$TMP/err5" &&
    python3 -c "import json,sys; f=json.load(open('$TMP/v6b.json'))['flows']; sys.exit((f['ipv6_pool_full'], f['created']) != (0, 100))"; then
    ok "--ipv6-share 100: all 100 IPv6 connections tracked"
else
    bad "--ipv6-share 100: $(tail -2 "$TMP/err5")"
fi
# An unwritable directory is reported, not fatal to the analysis.
if "$RSTSCOPE" --pcap "$DATA/refused.pcap" --quiet --status-interval 0 \
    --prom-file /nonexistent-dir/rs.prom 2>"$TMP/err2" && grep -q "writing '/nonexistent-dir/rs.prom' failed" "$TMP/err2"; then
    ok "unwritable prom path reported"
else
    bad "unwritable prom path: $(cat "$TMP/err2")"
fi
finish
