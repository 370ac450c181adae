#!/usr/bin/env bash
# Live capture (DPDK net_af_packet on the loopback interface) with --redis while Redis is
# killed (SIGKILL) and restarted mid-run: the analysis goes on, the intervals of the outage are
# kept and written when Redis is back, :tot equals the final --summary exactly, the loss and the
# recovery are logged. The restarted Redis starts empty (no persistence), so the check joins the
# stream read just before the kill with the stream after the run.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/redis_common.sh"
IT=$RS_SRCDIR/tests/integration

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (af_packet)"; exit 77; }
[ "$(nproc)" -ge 2 ] || { echo "SKIP: needs 2 CPUs"; exit 77; }

PORT=$(free_port)
CLOSED=$(free_port) # nothing listens there: every connect is refused (a RST from the host)
start_redis "$PORT" || exit 1
FIRST_REDIS=$REDIS_PID

"$RSTSCOPE" --no-huge -m 256 --no-pci --no-shconf --file-prefix "rsrl$$" -l 0,1 \
    --vdev net_af_packet0,iface=lo -- --redis "127.0.0.1:$PORT" --sensor live-restart \
    --interval 1 --status-interval 0 --summary "$TMP/summary.json" >"$TMP/report.txt" \
    2>"$TMP/err" &
RS_PID=$!
for _ in $(seq 100); do grep -q "redis: connected" "$TMP/err" && break; sleep 0.1; done
grep -q "redis: connected" "$TMP/err" || { bad "rstscope did not connect: $(tail -3 "$TMP/err")"; kill -INT $RS_PID; wait $RS_PID; finish; exit; }

# Refused connections for 9 s (bounded count), in the background.
refused_connects "$CLOSED" 9 >"$TMP/traffic" &
TRAFFIC=$!
sleep 2.5
# Mid-interval (flushes happen on whole seconds): read the stream, then kill Redis at once.
IT=$IT python3 - "$PORT" "$FIRST_REDIS" "$TMP/before.json" <<'PY'
import json, os, signal, sys, time
sys.path.insert(0, os.environ.get("IT", "."))
from resp import Redis, pairs
time.sleep((0.5 - time.time() % 1) % 1)
r = Redis(int(sys.argv[1]))
entries = r.cmd("XRANGE", "rstscope:{live-restart}:ts", "-", "+")
os.kill(int(sys.argv[2]), signal.SIGKILL)
json.dump([[e[0], pairs(e[1])] for e in entries], open(sys.argv[3], "w"))
PY
sleep 3
start_redis "$PORT" || exit 1
wait $TRAFFIC
sleep 1.5
kill -INT $RS_PID
for _ in $(seq 300); do kill -0 $RS_PID 2>/dev/null || break; sleep 0.1; done
wait $RS_PID
rc=$?
[ "$rc" -eq 0 ] && ok "rstscope exit 0" || bad "rstscope exit $rc: $(tail -5 "$TMP/err")"
grep -q "connection to 127.0.0.1:$PORT lost" "$TMP/err" && ok "loss logged" || bad "no loss line: $(grep redis "$TMP/err")"
grep -Eq "connected to 127.0.0.1:$PORT after [0-9.]+ s away" "$TMP/err" && ok "recovery logged" ||
    bad "no recovery line: $(grep redis "$TMP/err")"

if IT=$IT python3 - "$PORT" "$TMP/before.json" "$TMP/summary.json" "$(cat "$TMP/traffic")" <<'PY'; then
import json, os, sys
sys.path.insert(0, os.environ["IT"])
from resp import Redis, pairs
r = Redis(int(sys.argv[1]))
before = json.load(open(sys.argv[2]))
summ = json.load(open(sys.argv[3]))
sent = int(sys.argv[4])
K = "rstscope:{live-restart}:"
tot = {k: int(v) for k, v in pairs(r.cmd("HGETALL", K + "tot")).items()}
after = [[e[0], pairs(e[1])] for e in r.cmd("XRANGE", K + "ts", "-", "+")]
errs = []
for c, v in summ["causes"].items():
    if tot.get(c) != v:
        errs.append("tot[%s]=%s summary %s" % (c, tot.get(c), v))
for f in ("resets", "packets", "rst_packets"):
    if tot.get(f) != summ[f]:
        errs.append("tot[%s]=%s summary %s" % (f, tot.get(f), summ[f]))
if summ["causes"]["refused"] < sent:
    errs.append("refused %d < %d connections refused" % (summ["causes"]["refused"], sent))
ids = [int(e[0].split("-")[0]) for e in before + after]
if not before or not after:
    errs.append("stream before %d entries, after %d" % (len(before), len(after)))
if ids != sorted(set(ids)):
    errs.append("stream ids not increasing/unique")
whole = [i for i in ids if i % 1000 == 0]
gaps = [b - a for a, b in zip(whole, whole[1:]) if b - a != 1000]
if gaps:
    errs.append("intervals missing: gaps %s" % gaps[:5])
for f in ["resets", "refused", "packets"]:
    s = sum(int(e[1][f]) for e in before + after)
    if s != tot[f]:
        errs.append("stream sum %s=%d tot %d" % (f, s, tot[f]))
meta = pairs(r.cmd("HGETALL", K + "meta"))
print("refused sent %d, summary %d, tot %d; stream %d entries before the kill + %d after; "
      "intervals dropped %s, reconnects %s" % (sent, summ["causes"]["refused"], tot["refused"],
      len(before), len(after), meta.get("intervals_dropped"), meta.get("redis_reconnects")))
for e in errs:
    print("  " + e)
sys.exit(1 if errs else 0)
PY
    ok "Redis killed and restarted: tot == summary, no interval lost"
else
    bad "Redis killed and restarted: counts differ"
fi
finish
