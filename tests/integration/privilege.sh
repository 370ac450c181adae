#!/usr/bin/env bash
# Least privilege and secrets:
#   1. an offline replay runs as user nobody (no root, no capabilities) and gives the same
#      counts as a root replay;
#   2. the Redis password (from a file, and from RSTSCOPE_REDIS_PASSWORD) appears nowhere:
#      not in stdout/stderr, not in `ps` arguments or environment (/proc/PID/cmdline,
#      /proc/PID/environ), not in any key or value in Redis; a live run is used so the
#      process can be inspected while it runs.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/redis_common.sh"
IT=$RS_SRCDIR/tests/integration

# 1. As nobody. Everything nobody needs is made readable: a copy of the capture and a
#    writable output directory; the binary must be reachable through its directories.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    NB=$(mktemp -d /tmp/rs-nobody.XXXXXX)
    chmod 755 "$NB"
    cp "$DATA/sample.pcap" "$NB/"
    chmod 644 "$NB/sample.pcap"
    chown nobody "$NB"
    if setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all \
        env -u RUNTIME_DIRECTORY TMPDIR="$NB" HOME="$NB" "$RSTSCOPE" --pcap "$NB/sample.pcap" \
        --quiet --status-interval 0 --summary "$NB/s.json" 2>"$TMP/nobody.err"; then
        "$RSTSCOPE" --pcap "$DATA/sample.pcap" --quiet --status-interval 0 --summary "$TMP/root.json" 2>/dev/null
        if python3 - "$NB/s.json" "$TMP/root.json" <<'PY'; then
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for k in ("packets", "resets", "causes", "flows"):
    assert a[k] == b[k], (k, a[k], b[k])
PY
            left=$(find "$NB" -mindepth 1 -maxdepth 1 -name 'rstscope.*')
            [ -z "$left" ] && ok "replay as nobody: same counts as root, runtime dir removed" ||
                bad "replay as nobody left $left"
        else
            bad "replay as nobody: counts differ from root"
        fi
    else
        bad "replay as nobody failed: $(tail -5 "$TMP/nobody.err")"
    fi
    rm -rf "$NB"
else
    echo "SKIP: replay as nobody (needs root, setpriv and user nobody)"
fi

# 2. Secrets.
PW='Pw-4f9c2e71-secret'
PORT=$(free_port)
start_redis "$PORT" --requirepass "$PW" || exit 1
printf '%s\n' "$PW" >"$TMP/pw"
chmod 600 "$TMP/pw"
scan() { # scan WHAT FILE...: fail when any FILE holds the password
    local what=$1
    shift
    if grep -aq -- "$PW" "$@" 2>/dev/null; then bad "password found in $what"; else ok "password not in $what"; fi
}
for src in file env; do
    if [ $src = file ]; then
        args=(--redis-password-file "$TMP/pw")
        envs=()
    else
        args=()
        envs=(RSTSCOPE_REDIS_PASSWORD="$PW")
    fi
    env "${envs[@]}" "$RSTSCOPE" --no-huge -m 512 --no-pci --no-shconf --file-prefix "rspw$$" \
        -l 0,1 --vdev "net_pcap0,rx_pcap=$DATA/sample.pcap,infinite_rx=1" -- --redis \
        "127.0.0.1:$PORT" --sensor "pw-$src" --interval 1 --status-interval 1 \
        "${args[@]}" >"$TMP/$src.out" 2>"$TMP/$src.err" &
    PID=$!
    for _ in $(seq 50); do grep -q "redis: connected" "$TMP/$src.err" && break; sleep 0.1; done
    sleep 1.5
    tr '\0' ' ' <"/proc/$PID/cmdline" >"$TMP/$src.cmdline"
    tr '\0' '\n' <"/proc/$PID/environ" >"$TMP/$src.environ"
    ps -ww -o args= e -p "$PID" >"$TMP/$src.ps"
    kill -TERM "$PID"
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null
    wait "$PID"
    grep -q "redis: connected" "$TMP/$src.err" || bad "$src: never connected: $(tail -3 "$TMP/$src.err")"
    [ $src = env ] && { grep -q '^RSTSCOPE_REDIS_PASSWORD=\*\*\*' "$TMP/$src.environ" &&
        ok "env: the variable is blanked in /proc/PID/environ" ||
        bad "env: /proc/PID/environ: $(grep RSTSCOPE "$TMP/$src.environ")"; }
    scan "$src: stdout/stderr" "$TMP/$src.out" "$TMP/$src.err"
    scan "$src: ps args and environment" "$TMP/$src.cmdline" "$TMP/$src.environ" "$TMP/$src.ps"
done
IT=$IT python3 - "$PORT" "$PW" >"$TMP/dump" <<'PY'
import os, sys
sys.path.insert(0, os.environ["IT"])
from resp import Redis
r = Redis(int(sys.argv[1]), password=sys.argv[2])
keys = r.cmd("KEYS", "*")
assert any("pw-file" in k for k in keys) and any("pw-env" in k for k in keys), keys
for k in keys:
    t = r.cmd("TYPE", k)
    print(k, t)
    if t == "string":
        print(r.cmd("GET", k))
    elif t == "hash":
        print(r.cmd("HGETALL", k))
    elif t == "set":
        print(r.cmd("SMEMBERS", k))
    elif t == "zset":
        print(r.cmd("ZRANGE", k, 0, -1, "WITHSCORES"))
    elif t == "stream":
        print(r.cmd("XRANGE", k, "-", "+"))
print(r.cmd("CLIENT", "LIST"))
PY
[ -s "$TMP/dump" ] && scan "any Redis key, value or client name" "$TMP/dump" || bad "cannot dump Redis"
finish
