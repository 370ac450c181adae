#!/usr/bin/env bash
# --by-vlan: reset events counted per VLAN id of the decisive RST. sample.pcap is re-tagged
# (802.1Q) per connection: connection k of the capture gets VLAN 100 + k % 3, except every
# fourth reset connection, whose RSTs alone carry VLAN 4000 (the flow itself is not keyed by
# VLAN: the event must take the tag of its decisive RST), and non-TCP frames stay untagged.
# The expected per-VLAN, per-cause counts come from an untagged run's events; the summary's
# breakdown.vlans, the events' "vlan" field and the Prometheus series must match them.
. "$(dirname "$0")/common.sh"

"$RSTSCOPE" --pcap "$DATA/sample.pcap" --quiet --status-interval 0 --events "$TMP/plain.jsonl" \
    2>"$TMP/err" || { bad "untagged run failed: $(tail -3 "$TMP/err")"; finish; exit; }

python3 - "$DATA/sample.pcap" "$TMP/vlan.pcap" "$TMP/plain.jsonl" "$TMP/want.json" <<'PY'
import collections, json, socket, struct, sys
src, dst, plain, want_f = sys.argv[1:]
raw = open(src, "rb").read()
magic = raw[:4]
end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
assert struct.unpack(end + "I", raw[20:24])[0] == 1, "sample.pcap must be Ethernet"
frames, off = [], 24
while off + 16 <= len(raw):
    ts1, ts2, cap, ln = struct.unpack(end + "IIII", raw[off:off + 16])
    frames.append((ts1, ts2, ln, raw[off + 16:off + 16 + cap]))
    off += 16 + cap
def conn_of(fr):
    if fr[12:14] != b"\x08\x00" or fr[23] != 6:
        return None, False
    ihl = (fr[14] & 15) * 4
    t = 14 + ihl
    sp, dp = struct.unpack("!HH", fr[t:t + 4])
    s, d = socket.inet_ntoa(fr[26:30]), socket.inet_ntoa(fr[30:34])
    return tuple(sorted([(s, sp), (d, dp)])), bool(fr[t + 13] & 4)
events = [json.loads(l) for l in open(plain) if l.strip()]
cause = {tuple(sorted([(e["client_ip"], e["client_port"]), (e["server_ip"], e["server_port"])])):
         e["cause"] for e in events}
order = []
for *_, fr in frames:
    c, _ = conn_of(fr)
    if c and c not in order:
        order.append(c)
reset_order = [c for c in order if c in cause]
rst_only = {c for i, c in enumerate(reset_order) if i % 4 == 0}
out = [raw[:24]]
for ts1, ts2, ln, fr in frames:
    c, is_rst = conn_of(fr)
    if c is not None:
        vlan = 4000 if (c in rst_only and is_rst) else 100 + order.index(c) % 3
        fr = fr[:12] + b"\x81\x00" + struct.pack("!H", vlan) + fr[12:]
        ln += 4
    out.append(struct.pack(end + "IIII", ts1, ts2, len(fr), ln) + fr)
open(dst, "wb").write(b"".join(out))
want = collections.defaultdict(lambda: collections.Counter())
for c, cs in cause.items():
    want[str(4000 if c in rst_only else 100 + order.index(c) % 3)][cs] += 1
json.dump({v: dict(n) for v, n in want.items()}, open(want_f, "w"))
print("# %d connections, %d reset (%d with RST-only VLAN 4000), %d events"
      % (len(order), len(reset_order), len(rst_only), len(events)))
PY

for workers in 1 2; do
    if ! "$RSTSCOPE" --pcap "$TMP/vlan.pcap" --workers "$workers" --status-interval 0 --by-vlan \
        --summary "$TMP/s.json" --events "$TMP/e.jsonl" --prom-file "$TMP/rs.prom" \
        >"$TMP/out" 2>"$TMP/err"; then
        bad "workers=$workers: run failed: $(tail -3 "$TMP/err")"
        continue
    fi
    if python3 - "$TMP/want.json" "$TMP/s.json" "$TMP/e.jsonl" "$TMP/rs.prom" "$TMP/out" <<'PY'; then
import collections, json, re, sys
want = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))
events = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
prom, out = open(sys.argv[4]).read(), open(sys.argv[5]).read()
fails = []
got = {v: {c: n for c, n in cs.items() if n} for v, cs in s["breakdown"]["vlans"].items()}
if got != want: fails.append("summary breakdown.vlans %s != expected %s" % (got, want))
ev = collections.defaultdict(collections.Counter)
for e in events: ev[str(e["vlan"])][e["cause"]] += 1
if {v: dict(n) for v, n in ev.items()} != want: fails.append("events' vlan field: %s" % dict(ev))
pm = collections.defaultdict(dict)
for v, c, n in re.findall(r'^rstscope_vlan_resets_total\{vlan="(\d+)",cause="(\w+)"\} (\d+)$', prom, re.M):
    if int(n): pm[v][c] = int(n)
if dict(pm) != want: fails.append("prometheus rstscope_vlan_resets_total: %s" % dict(pm))
if sum(sum(c.values()) for c in want.values()) != s["resets"]: fails.append("vlan counts do not sum to resets")
if "by vlan" not in out or "vlan 4000" not in out: fails.append("report has no 'by vlan' table")
print("# per vlan: %s" % json.dumps(got, sort_keys=True))
for f in fails: print("# " + f)
sys.exit(1 if fails else 0)
PY
        ok "workers=$workers: per-VLAN counts in summary, events, Prometheus and report"
    else
        bad "workers=$workers: per-VLAN counts"
    fi
done
# Without --by-vlan the summary has no vlans member (the breakdown is opt-in).
"$RSTSCOPE" --pcap "$TMP/vlan.pcap" --quiet --status-interval 0 --summary "$TMP/n.json" 2>/dev/null &&
    python3 -c 'import json,sys; sys.exit("vlans" in json.load(open(sys.argv[1])).get("breakdown", {}))' "$TMP/n.json" &&
    ok "no vlans breakdown without --by-vlan" || bad "vlans breakdown present without --by-vlan"
finish
