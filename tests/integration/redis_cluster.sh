#!/usr/bin/env bash
# rstscope against a real Redis Cluster on loopback: 3 masters + 3 replicas (6 redis-server
# processes, `redis-cli --cluster create`). Three sensors whose {hash tags} fall on the three
# masters replay a capture through one seed node: each sensor's keys land on its owning master.
# Then a live run (af_packet on lo) survives the SIGKILL of its master: the replica takes over
# and :tot on the new master equals the --summary.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/redis_common.sh"
IT=$RS_SRCDIR/tests/integration
export IT
command -v redis-cli >/dev/null || { echo "SKIP: redis-cli not installed"; exit 77; }

# A cluster node also listens on its port + 10000 (the cluster bus): both must be free.
cluster_port() {
    python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 45000)
    try:
        for q in (p, p + 10000):
            s = socket.socket()
            s.bind(("127.0.0.1", q))
            s.close()
        print(p)
        break
    except OSError:
        pass
PY
}
PORTS=()
PIDS_BY_PORT=()
for i in 0 1 2 3 4 5; do
    p=$(cluster_port)
    start_redis "$p" --cluster-enabled yes --cluster-config-file "$TMP/redis-$p/nodes.conf" \
        --cluster-node-timeout 1000 --repl-diskless-sync-delay 0 || exit 1
    PORTS+=("$p")
    PIDS_BY_PORT+=("$REDIS_PID")
done
nodes=()
for p in "${PORTS[@]}"; do nodes+=("127.0.0.1:$p"); done
if ! redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$TMP/create" 2>&1; then
    bad "cluster create: $(tail -5 "$TMP/create")"
    finish
    exit
fi
for _ in $(seq 100); do # bounded: 10 s
    redis-cli -p "${PORTS[0]}" cluster info | grep -q 'cluster_state:ok' && break
    sleep 0.1
done
redis-cli -p "${PORTS[0]}" cluster info | grep -q 'cluster_state:ok' && ok "cluster of 6 nodes up" ||
    { bad "cluster not ok"; finish; exit; }
# A replica only fails over once it has synced with its master (otherwise Redis refuses:
# "disconnected from master for longer than allowed"): wait for every replication link.
links_up() {
    local p n=0
    for p in "${PORTS[@]}"; do
        redis-cli -p "$p" info replication | grep -q '^master_link_status:up' && n=$((n + 1))
    done
    [ "$n" -eq 3 ]
}
for _ in $(seq 150); do # bounded: 15 s
    links_up && break
    sleep 0.1
done
links_up && ok "3 replicas synced with their masters" || { bad "replicas not synced"; finish; exit; }

# owner SENSOR: port of the master serving the sensor's slot (from CLUSTER SLOTS of node 0).
owner() {
    python3 - "${PORTS[0]}" "$1" <<'PY'
import os, sys
sys.path.insert(0, os.environ["IT"])
from resp import Redis, key_slot
slot = key_slot("rstscope:{%s}:tot" % sys.argv[2])
for lo, hi, master, *_ in Redis(int(sys.argv[1])).cmd("CLUSTER", "SLOTS"):
    if lo <= slot <= hi:
        print(master[1])
PY
}
# Three sensor names, one per master.
declare -A used
SENSORS=()
for i in $(seq 0 200); do
    s="site-$i"
    o=$(owner "$s")
    [ -n "${used[$o]:-}" ] && continue
    used[$o]=1
    SENSORS+=("$s")
    [ ${#SENSORS[@]} -eq 3 ] && break
done

for s in "${SENSORS[@]}"; do
    o=$(owner "$s")
    if "$RSTSCOPE" --pcap "$DATA/sample.pcap" --quiet --status-interval 0 --redis "127.0.0.1:${PORTS[0]}" \
        --sensor "$s" --summary "$TMP/$s.json" 2>"$TMP/$s.err" &&
        python3 - "$o" "$s" "$TMP/$s.json" <<'PY'; then
import json, os, sys
sys.path.insert(0, os.environ["IT"])
from resp import Redis, pairs
r = Redis(int(sys.argv[1]))  # the owner, asked directly: no redirect followed
K = "rstscope:{%s}:" % sys.argv[2]
summ = json.load(open(sys.argv[3]))
tot = {k: int(v) for k, v in pairs(r.cmd("HGETALL", K + "tot")).items()}
ok = all(tot.get(c) == v for c, v in summ["causes"].items()) and tot.get("resets") == summ["resets"]
ok = ok and r.cmd("XLEN", K + "ts") > 0 and r.cmd("XLEN", K + "events") == summ["resets"]
ok = ok and r.cmd("TTL", K + "alive") > 0 and r.cmd("EXISTS", K + "top:servers") == 1
print("%s on master :%s: tot resets %s, summary %s" % (sys.argv[2], sys.argv[1], tot.get("resets"), summ["resets"]))
sys.exit(0 if ok else 1)
PY
        ok "sensor $s: keys on its master :$o ($(grep -o 'connected to [^ ]*' "$TMP/$s.err"))"
    else
        bad "sensor $s (owner :$o): $(tail -3 "$TMP/$s.err")"
    fi
done
# rstscope:sensors lives in its own slot; follow the slot map to its owner.
so=$(python3 -c "
import os,sys; sys.path.insert(0,os.environ['IT']); from resp import Redis,key_slot
s=key_slot('rstscope:sensors')
print([m[1] for lo,hi,m,*_ in Redis(${PORTS[0]}).cmd('CLUSTER','SLOTS') if lo<=s<=hi][0])")
members=$(redis-cli -p "$so" smembers rstscope:sensors | sort | tr '\n' ' ')
want=$(printf '%s\n' "${SENSORS[@]}" | sort | tr '\n' ' ')
[ "$members" = "$want" ] && ok "rstscope:sensors on :$so = $members" || bad "rstscope:sensors = '$members', want '$want'"

# Failover during a live run.
if [ "$(id -u)" -ne 0 ] || [ "$(nproc)" -lt 2 ]; then
    echo "SKIP (part): live failover needs root and 2 CPUs"
    finish
    exit
fi
S=""
for i in $(seq 0 300); do # a sensor whose master is not the seed node
    o=$(owner "live-$i")
    [ "$o" != "${PORTS[0]}" ] && { S="live-$i"; MASTER=$o; break; }
done
CLOSED=$(free_port)
"$RSTSCOPE" --no-huge -m 256 --no-pci --no-shconf --file-prefix "rscl$$" -l 0,1 \
    --vdev net_af_packet0,iface=lo -- --redis "127.0.0.1:${PORTS[0]}" --sensor "$S" \
    --interval 1 --status-interval 0 --summary "$TMP/live.json" >/dev/null 2>"$TMP/live.err" &
RS_PID=$!
for _ in $(seq 100); do grep -q "redis: connected" "$TMP/live.err" && break; sleep 0.1; done
refused_connects "$CLOSED" 8 >"$TMP/traffic" &
TRAFFIC=$!
sleep 2
for i in "${!PORTS[@]}"; do
    [ "${PORTS[$i]}" = "$MASTER" ] && kill -9 "${PIDS_BY_PORT[$i]}"
done
wait $TRAFFIC
for _ in $(seq 100); do # bounded: until the replica is promoted (10 s)
    NEW=$(owner "$S")
    [ -n "$NEW" ] && [ "$NEW" != "$MASTER" ] && break
    sleep 0.1
done
sleep 2
kill -INT $RS_PID
for _ in $(seq 300); do kill -0 $RS_PID 2>/dev/null || break; sleep 0.1; done
wait $RS_PID
if python3 - "$NEW" "$S" "$TMP/live.json" "$(cat "$TMP/traffic")" <<'PY'; then
import json, os, sys
sys.path.insert(0, os.environ["IT"])
from resp import Redis, pairs
r = Redis(int(sys.argv[1]))
K = "rstscope:{%s}:" % sys.argv[2]
summ = json.load(open(sys.argv[3]))
tot = {k: int(v) for k, v in pairs(r.cmd("HGETALL", K + "tot")).items()}
bad = [c for c, v in summ["causes"].items() if tot.get(c) != v]
print("failover: new master :%s, refused sent %s, summary %d, tot %s" % (
    sys.argv[1], sys.argv[4], summ["causes"]["refused"], tot.get("refused")))
sys.exit(1 if bad or summ["causes"]["refused"] < int(sys.argv[4]) or tot.get("resets") != summ["resets"] else 0)
PY
    ok "master :$MASTER killed, replica :$NEW took over, counts complete ($(grep -c 'lost' "$TMP/live.err") loss line)"
else
    bad "failover: $(grep redis "$TMP/live.err" | tail -5)"
fi
finish
