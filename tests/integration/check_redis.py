"""Compare what one sensor wrote to Redis with rstscope's own --summary and --events output.

usage: check_redis.py PORT SENSOR INTERVAL_S SUMMARY.json EVENTS.jsonl
Checks: :tot equals the summary; the :ts stream has one entry per capture-time interval from
the first to the last frame, whose per-cause counts match the events' capture times and sum to
:tot; the top sets count the events' servers/clients/ports; :events holds every event; :meta,
:alive and rstscope:sensors are set. Exit 1 with a list of differences.
"""
import collections
import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from resp import Redis, pairs  # noqa: E402

port, sensor, iv_s, summary_path, events_path = sys.argv[1:6]
iv = int(iv_s) * 1000
summ = json.load(open(summary_path))
events = [json.loads(l) for l in open(events_path) if l.strip()]
r = Redis(int(port))
K = "rstscope:{%s}:" % sensor
errors = []


def expect(cond, msg):
    if not cond:
        errors.append(msg)


tot = {k: int(v) for k, v in pairs(r.cmd("HGETALL", K + "tot")).items()}
want = dict(summ["causes"])
want.update(summ["overload"])
for f in ("resets", "low_confidence", "packets", "tcp_packets", "rst_packets", "syn"):
    want[f] = summ[f]
for k, v in want.items():
    expect(tot.get(k) == v, "tot[%s] = %s, summary says %s" % (k, tot.get(k), v))

# Stream: contiguous capture-time intervals, per-cause counts from the events' times.
entries = r.cmd("XRANGE", K + "ts", "-", "+")
ids = [int(e[0].split("-")[0]) for e in entries]
first_us = round(summ["capture"]["first_ts"] * 1e6)
last_us = round(summ["capture"]["last_ts"] * 1e6)
want_ids = [(b + 1) * iv for b in range(first_us // 1000 // iv, last_us // 1000 // iv + 1)]
expect(ids == want_ids, "stream ids %s, expected %s" % (ids[:5], want_ids[:5]))
per = collections.defaultdict(collections.Counter)
for ev in events:
    ts_us = round(float(ev["ts"]) * 1e6)
    per[(ts_us // 1000 // iv + 1) * iv][ev["cause"]] += 1
sums = collections.Counter()
for eid, e in zip(ids, entries):
    fields = {k: int(v) for k, v in pairs(e[1]).items()}
    for cause in summ["causes"]:
        expect(fields.get(cause, -1) == per[eid][cause],
               "entry %d %s = %s, events say %d" % (eid, cause, fields.get(cause), per[eid][cause]))
    for k, v in fields.items():
        sums[k] += v
for k in list(summ["causes"]) + ["resets", "packets", "rst_packets"]:
    expect(sums[k] == tot.get(k), "stream sum of %s = %d, tot = %s" % (k, sums[k], tot.get(k)))


def zset(name):
    flat = r.cmd("ZRANGE", K + "top:" + name, 0, -1, "WITHSCORES")
    return {m: int(float(s)) for m, s in pairs(flat).items()}


def member(ip, port=None):
    host = "[%s]" % ip if ":" in ip and port is not None else ip
    return host if port is None else "%s:%s" % (host, port)


top_want = {
    "servers": collections.Counter(member(e["server_ip"], e["server_port"]) for e in events),
    "clients": collections.Counter(member(e["client_ip"]) for e in events),
    "ports": collections.Counter(str(e["server_port"]) for e in events),
}
for name, cnt in top_want.items():
    got = zset(name)
    top = dict(cnt.most_common(20)) if len(cnt) <= 20 else None
    if top is not None:
        expect(got == top, "top:%s = %s, events say %s" % (name, got, top))
    else:
        expect(len(got) == 20, "top:%s has %d members, want 20" % (name, len(got)))

ev_entries = r.cmd("XRANGE", K + "events", "-", "+")
got_ev = collections.Counter()
for e in ev_entries:
    f = pairs(e[1])
    got_ev[(f["ts"], f["client_ip"], f["client_port"], f["server_ip"], f["server_port"],
            f["cause"])] += 1
want_ev = collections.Counter((e["ts"] if isinstance(e["ts"], str) else "%.6f" % e["ts"],
                               e["client_ip"], str(e["client_port"]), e["server_ip"],
                               str(e["server_port"]), e["cause"]) for e in events[:256])
expect(got_ev == want_ev, "events stream differs: got %d entries, want %d"
       % (sum(got_ev.values()), sum(want_ev.values())))

meta = pairs(r.cmd("HGETALL", K + "meta"))
expect(meta.get("version") == summ["version"], "meta version %s" % meta.get("version"))
expect(meta.get("late_events") == "0", "late_events %s" % meta.get("late_events"))
ttl = r.cmd("TTL", K + "alive")
expect(ttl > 0, "alive TTL %s" % ttl)
expect(sensor in r.cmd("SMEMBERS", "rstscope:sensors"), "sensor not in rstscope:sensors")

for e in errors:
    print("  " + e)
print("%s: %d stream entries, %d events, tot resets %s: %s" % (
    sensor, len(entries), len(ev_entries), tot.get("resets"), "ok" if not errors else "DIFFERS"))
sys.exit(1 if errors else 0)
