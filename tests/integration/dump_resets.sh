#!/usr/bin/env bash
# --dump-resets: the dump of a replayed capture, opened by tshark, holds every reset
# connection's RST with the packets that came just before it (the last DUMP_KEEP = 4 up to
# and including the RST, as in the original capture) and nothing of connections never reset;
# the summary's dump counters match what tshark reads; the size cap (rotation over
# --dump-files) and the rate cap hold on a RST flood.
. "$(dirname "$0")/common.sh"
command -v tshark >/dev/null || { echo "SKIP: tshark not installed (scripts/setup)"; exit 77; }

FIELDS=(-T fields -E separator=, -e frame.time_epoch -e ip.src -e tcp.srcport -e ip.dst
    -e tcp.dstport -e tcp.flags.reset)
tshark -r "$DATA/sample.pcap" -Y tcp "${FIELDS[@]}" >"$TMP/orig.csv" 2>/dev/null

for workers in 1 2; do
    D=$TMP/dump$workers
    mkdir -p "$D"
    if ! "$RSTSCOPE" --pcap "$DATA/sample.pcap" --workers "$workers" --quiet --status-interval 0 \
        --dump-resets "$D" --summary "$TMP/s.json" --events "$TMP/e.jsonl" 2>"$TMP/err"; then
        bad "workers=$workers: run failed: $(tail -3 "$TMP/err")"
        continue
    fi
    cat "$D"/rstscope-resets.*.pcap >/dev/null 2>&1 || { bad "workers=$workers: no dump file"; continue; }
    : >"$TMP/dump.csv"
    for f in "$D"/rstscope-resets.*.pcap; do
        tshark -r "$f" "${FIELDS[@]}" >>"$TMP/dump.csv" 2>"$TMP/tshark.err" ||
            bad "workers=$workers: tshark cannot read $f: $(head -2 "$TMP/tshark.err")"
    done
    if python3 - "$TMP/orig.csv" "$TMP/dump.csv" "$TMP/s.json" "$TMP/e.jsonl" <<'PY'; then
import collections, json, sys
def rows(path):
    out = []
    for line in open(path):
        t, s, sp, d, dp, r = line.strip().split(",")
        conn = tuple(sorted([(s, int(sp)), (d, int(dp))]))
        out.append((round(float(t), 6), conn, r in ("1", "True")))
    return sorted(out)
orig, dump = rows(sys.argv[1]), rows(sys.argv[2])
summ = json.load(open(sys.argv[3]))
events = [json.loads(l) for l in open(sys.argv[4]) if l.strip()]
fails = []
by_conn = collections.defaultdict(list)
for t, c, r in orig:
    by_conn[c].append((t, r))
reset_conns = {c for c, ps in by_conn.items() if any(r for _, r in ps)}
ev_conns = {tuple(sorted([(e["client_ip"], e["client_port"]), (e["server_ip"], e["server_port"])]))
            for e in events}
dumped = collections.defaultdict(list)
for t, c, r in dump:
    dumped[c].append((t, r))
# Expected: for each RST, the packets since the previous RST of the connection, the last 4.
want = collections.defaultdict(list)
for c, ps in by_conn.items():
    since = []
    for p in ps:
        since.append(p)
        if p[1]:
            want[c] += since[-4:]
            since = []
missing = sorted(c for c in ev_conns if not any(r for _, r in dumped.get(c, [])))
if missing: fails.append("events whose RST is not in the dump: %s" % missing[:3])
clean = sorted(c for c in dumped if c not in reset_conns)
if clean: fails.append("connections without RST in the dump: %s" % clean[:3])
diff = sorted(c for c in reset_conns if sorted(dumped.get(c, [])) != sorted(want[c]))
if diff: fails.append("dumped packets differ from the last 4 up to each RST: %s" % diff[:2])
d = summ.get("dump") or {}
if d.get("dump_packets") != len(dump): fails.append("summary dump_packets %r, tshark %d" % (d.get("dump_packets"), len(dump)))
if d.get("dump_dropped") != 0: fails.append("dump_dropped %r" % d.get("dump_dropped"))
print("# %d reset connections (%d with events), %d clean, %d frames dumped"
      % (len(reset_conns), len(ev_conns), len(by_conn) - len(reset_conns), len(dump)))
for f in fails: print("# " + f)
sys.exit(1 if fails or not ev_conns else 0)
PY
        ok "workers=$workers: every reset connection's RST and last packets dumped, nothing else"
    else
        bad "workers=$workers: dump content"
    fi
done

# Caps on a RST flood: 20000 RSTs to unused tuples over 2 s of capture time.
python3 "$RS_SRCDIR/tests/integration/gen_flood.py" rst "$TMP/flood.pcap" 20000 20 7 2 >/dev/null
mkdir -p "$TMP/size" "$TMP/rate"
# Size: 1 MB over 2 files, no rate limit: the files rotate, none exceeds 512 KiB.
if "$RSTSCOPE" --pcap "$TMP/flood.pcap" --quiet --status-interval 0 --dump-resets "$TMP/size" \
    --dump-max-mb 1 --dump-files 2 --dump-rate 10000000 --summary "$TMP/size.json" 2>"$TMP/err"; then
    total=$(cat "$TMP"/size/*.pcap | wc -c)
    biggest=$(stat -c %s "$TMP"/size/*.pcap | sort -n | tail -1)
    nfiles=$(ls "$TMP"/size/*.pcap | wc -l)
    written=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dump"]["dump_packets"])' "$TMP/size.json")
    echo "# size cap: $nfiles files, $total bytes, biggest $biggest, $written frames written"
    [[ $nfiles -eq 2 && $biggest -le 524288 && $written -gt 20000 ]] &&
        ok "size cap: 2 files of <= 512 KiB after rotation ($written frames written)" ||
        bad "size cap: $nfiles files, biggest $biggest bytes, $written frames"
    tshark -r "$TMP/size/rstscope-resets.1.pcap" -c 1 >/dev/null 2>&1 && ok "rotated file opens in tshark" ||
        bad "rotated file does not open in tshark"
else
    bad "size run failed: $(tail -3 "$TMP/err")"
fi
# Rate: 1000 frames/s of capture time over a ~2 s flood: at most ~3000 written, rest counted.
if "$RSTSCOPE" --pcap "$TMP/flood.pcap" --quiet --status-interval 0 --dump-resets "$TMP/rate" \
    --dump-rate 1000 --summary "$TMP/rate.json" 2>"$TMP/err"; then
    read -r w dr span < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["dump"]["dump_packets"], s["dump"]["dump_dropped"], s["capture"]["last_ts"]-s["capture"]["first_ts"])' "$TMP/rate.json")
    n=$(tshark -r "$TMP/rate/rstscope-resets.0.pcap" 2>/dev/null | wc -l)
    echo "# rate cap: $w written ($n read by tshark), $dr dropped, capture span ${span}s"
    lim=$(python3 -c "import sys; print(int(1000 * ($span + 1)) + 1)")
    [[ $w -le $lim && $w -eq $n && $dr -gt 0 ]] &&
        ok "rate cap: $w <= $lim frames written, $dr counted as dropped" ||
        bad "rate cap: $w written (limit $lim), tshark $n, dropped $dr"
else
    bad "rate run failed: $(tail -3 "$TMP/err")"
fi
finish
