"""The Grafana dashboard is valid JSON, and every query in it returns data from Redis.

usage: check_dashboard.py DASHBOARD.json PORT SENSOR
Each panel target is turned into the command the Redis data source sends (type "command":
command + keyName + min/max/count; type "cli": the query text); the template variable's
query must list SENSOR. Empty results fail.
"""
import json
import shlex
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from resp import Redis, RedisError  # noqa: E402

path, port, sensor = sys.argv[1], int(sys.argv[2]), sys.argv[3]
dash = json.load(open(path))
r = Redis(port)
errors, ran = [], 0


def command_of(t):
    if t.get("type") == "cli" or "command" not in t:
        return shlex.split(t["query"])
    c, key = t["command"].lower(), t.get("keyName", "")
    if c == "xrange":
        args = ["XRANGE", key, t.get("start") or "-", t.get("end") or "+"]
    elif c == "xrevrange":
        args = ["XREVRANGE", key, t.get("end") or "+", t.get("start") or "-"]
    elif c == "zrange":
        return ["ZRANGE", key, t.get("min", "0"), t.get("max", "-1"), "WITHSCORES"]
    elif c in ("hgetall", "ttl", "smembers", "xlen", "get", "type", "hkeys", "scard"):
        return [c.upper(), key]
    elif c == "hget":
        return ["HGET", key, t["field"]]
    else:
        raise ValueError("command %s not handled by this check" % c)
    if t.get("count"):
        args += ["COUNT", str(t["count"])]
    return args


def run(what, args):
    global ran
    args = [a.replace("$sensor", sensor) for a in args]
    ran += 1
    try:
        res = r.cmd(*args)
    except RedisError as e:
        errors.append("%s: %s -> error %s" % (what, " ".join(args), e))
        return None
    empty = res is None or res == [] or res == "" or (isinstance(res, int) and res <= 0)
    if empty:
        errors.append("%s: %s -> no data (%r)" % (what, " ".join(args), res))
    return res


for v in dash.get("templating", {}).get("list", []):
    res = run("variable " + v["name"], shlex.split(v["query"]))
    if res is not None and sensor not in res:
        errors.append("variable %s does not list %s: %s" % (v["name"], sensor, res))
for p in dash["panels"]:
    for t in p.get("targets", []):
        run("panel '%s'" % p["title"], command_of(t))

for e in errors:
    print("  " + e)
print("%s: %d queries, %s" % (path, ran, "all return data" if not errors else "FAILED"))
sys.exit(1 if errors or ran == 0 else 0)
