#!/usr/bin/env bash
# A synthetic capture of many interleaved conversations with known endings: 1, 2 and 3 workers
# (software distributor, symmetric hash) must all agree with the generator's ground truth.
. "$(dirname "$0")/common.sh"

python3 "$RS_SRCDIR/tests/integration/gen_pcap.py" "$TMP/gen.pcap" 3000 7 >"$TMP/truth.json"
for workers in 1 2 3; do
    s=$TMP/summary.$workers.json
    if ! "$RSTSCOPE" --pcap "$TMP/gen.pcap" --workers "$workers" --quiet --status-interval 0 \
        --summary "$s" 2>"$TMP/err"; then
        bad "workers=$workers: rstscope failed: $(tail -3 "$TMP/err")"
        continue
    fi
    if python3 "$RS_SRCDIR/scripts/lib/truth.py" "$s" "$TMP/truth.json"; then
        ok "workers=$workers matches ground truth ($(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["causes"])' "$TMP/truth.json"))"
    else
        bad "workers=$workers"
    fi
done

# --reader: one worker, the capture read on an lcore of its own. The same counts as one
# worker reading it itself.
if "$RSTSCOPE" --pcap "$TMP/gen.pcap" --reader --quiet --status-interval 0 \
    --summary "$TMP/summary.reader.json" 2>"$TMP/err" &&
    python3 - "$TMP/summary.1.json" "$TMP/summary.reader.json" <<'PY'; then
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for k in ("packets", "bytes", "tcp_packets", "resets", "causes", "flows", "duplicates"):
    assert a[k] == b[k], (k, a[k], b[k])
PY
    ok "--reader: the same counts as one worker reading the capture itself"
else
    bad "--reader: counts differ or rstscope failed: $(tail -3 "$TMP/err")"
fi

# The flow hash's key (--hash-seed) decides which worker a connection lands on: one seed
# twice gives the same split (a replay is reproducible: by default its key comes from the
# capture's bytes), another seed another split, and every split agrees with the ground truth.
split() { # KEY PCAP ARGS... -> "CLIENT:PORT WORKER" per event, sorted, in $TMP/split.out; the
    # summary must equal the ground truth and name KEY as the hash's key
    local key=$1 pcap=$2
    shift 2
    "$RSTSCOPE" --pcap "$pcap" --workers 3 --quiet --status-interval 0 \
        --summary "$TMP/split.json" --events "$TMP/split.ev" "$@" 2>"$TMP/err" &&
        python3 "$RS_SRCDIR/scripts/lib/truth.py" "$TMP/split.json" "$TMP/truth.json" >>"$TMP/err" &&
        python3 - "$TMP/split.ev" "$TMP/split.json" "$key" >"$TMP/split.out" <<'PY'
import json, sys
got = json.load(open(sys.argv[2]))
assert got["hash_key"] == sys.argv[3], (got["hash_key"], sys.argv[3])
for line in sorted(open(sys.argv[1])):
    e = json.loads(line)
    print(f'{e["client_ip"]}:{e["client_port"]} {e["server_port"]} {e["worker"]}')
PY
}
G=$TMP/gen.pcap
# The same capture with its first frame one microsecond later: same truth, another digest.
python3 - "$G" "$TMP/gen-1us.pcap" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
usec = struct.unpack_from("<I", b, 24 + 4)[0]
struct.pack_into("<I", b, 24 + 4, usec + 1 if usec < 999999 else usec - 1)
open(sys.argv[2], "wb").write(b)
PY
if split fixed "$G" --hash-seed 1 && cp "$TMP/split.out" "$TMP/seed1a" &&
    split fixed "$G" --hash-seed 1 && cmp -s "$TMP/split.out" "$TMP/seed1a" &&
    split fixed "$G" --hash-seed 0x2 && ! cmp -s "$TMP/split.out" "$TMP/seed1a" &&
    split capture "$G" && cp "$TMP/split.out" "$TMP/default" && split capture "$G" &&
    cmp -s "$TMP/split.out" "$TMP/default" && split capture "$TMP/gen-1us.pcap" &&
    ! cmp -s "$TMP/split.out" "$TMP/default" && split random "$G" --hash-seed random; then
    ok "--hash-seed: one key one worker split, another key another, all match the truth"
else
    bad "--hash-seed: splits differ from what the key says, or a count is wrong: $(tail -3 "$TMP/err")"
fi

# Jumbo frames (GRO-merged captures) arrive in chained mbufs: same flows on every worker
# count, and bytes count whole frames.
python3 "$RS_SRCDIR/tests/integration/gen_pcap.py" "$TMP/jumbo.pcap" 200 9 9000 >/dev/null
for workers in 1 3; do
    "$RSTSCOPE" --pcap "$TMP/jumbo.pcap" --workers "$workers" --quiet --status-interval 0 \
        --summary "$TMP/jumbo.$workers.json" 2>"$TMP/err" || bad "jumbo workers=$workers failed"
done
if python3 - "$TMP/jumbo.pcap" "$TMP/jumbo.1.json" "$TMP/jumbo.3.json" <<'PY'; then
import json, os, sys
one, three = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
frame_bytes = os.path.getsize(sys.argv[1]) - 24 - 16 * one["packets"]
assert one["flows"]["created"] == three["flows"]["created"] == 200, (one["flows"], three["flows"])
assert one["causes"] == three["causes"]
assert one["bytes"] == three["bytes"] == frame_bytes, (one["bytes"], three["bytes"], frame_bytes)
PY
    ok "jumbo frames: same flows and bytes with 1 and 3 workers"
else
    bad "jumbo frames"
fi

# --max-flows equal to the connections, most of which are in the table at once (with tables of
# exactly max_flows / workers, 2 workers evicted 11): a hash never splits them exactly evenly,
# so each worker's table has room beyond its share and nothing is evicted.
for workers in 2 3; do
    s=$TMP/exact.$workers.json
    if "$RSTSCOPE" --pcap "$TMP/gen.pcap" --workers "$workers" --max-flows 3000 --quiet \
        --status-interval 0 --summary "$s" 2>"$TMP/err" &&
        python3 - "$s" <<'PY'; then
import json, sys
f = json.load(open(sys.argv[1]))["flows"]
assert f["created"] == 3000 and f["evicted"] == 0 and f["dropped"] == 0, f
PY
        ok "--max-flows 3000 on $workers workers holds 3000 connections"
    else
        bad "--max-flows 3000 on $workers workers: $(tail -3 "$TMP/err")"
    fi
done

# A table far smaller than the traffic: counted, never a crash, nothing lost silently.
s=$TMP/small.json
if "$RSTSCOPE" --pcap "$TMP/gen.pcap" --max-flows 16 --quiet --status-interval 0 --summary "$s" \
    2>"$TMP/err"; then
    python3 - "$s" <<'PY' && ok "tiny flow table: evictions/drops counted" || bad "tiny flow table"
import json, sys
g = json.load(open(sys.argv[1]))
f = g["flows"]
assert f["evicted"] + f["dropped"] > 0, f
assert g["resets"] == sum(g["causes"].values())
PY
else
    bad "tiny flow table: rstscope failed: $(tail -3 "$TMP/err")"
fi
finish
