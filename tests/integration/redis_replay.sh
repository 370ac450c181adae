#!/usr/bin/env bash
# rstscope --redis against real redis-server processes on free loopback ports: a replay's
# counts, stream, top sets and events land exactly; two sensors stay apart; the dashboard's
# queries return data; Redis down, silent or refusing the password never hangs nor breaks the
# analysis; the --redis options reject bad values.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/redis_common.sh"
IT=$RS_SRCDIR/tests/integration

PORT=$(free_port)
start_redis "$PORT" || exit 1

run() { # run NAME ARGS...: replay into Redis; output files under $TMP/NAME.*
    local name=$1
    shift
    "$RSTSCOPE" --quiet --status-interval 0 --summary "$TMP/$name.summary.json" \
        --events "$TMP/$name.events.jsonl" "$@" 2>"$TMP/$name.err"
}

# 1. sample.pcap, one worker, 1 s intervals: everything matches the summary and the events.
if run a --pcap "$DATA/sample.pcap" --redis "127.0.0.1:$PORT" --sensor lab-a --interval 1 &&
    python3 "$IT/check_redis.py" "$PORT" lab-a 1 "$TMP/a.summary.json" "$TMP/a.events.jsonl"; then
    ok "sample.pcap into Redis: tot, stream, top sets, events, meta"
else
    bad "sample.pcap into Redis: $(tail -5 "$TMP/a.err")"
fi
grep -q "final flush done" "$TMP/a.err" && ok "final flush logged" || bad "no final flush line"

# 2. A second sensor (two workers, 10 s intervals) in the same Redis stays apart.
snap_a=$(python3 -c "import sys; sys.path.insert(0,'$IT'); from resp import Redis; r=Redis($PORT); print(sorted(r.cmd('HGETALL','rstscope:{lab-a}:tot')), r.cmd('XLEN','rstscope:{lab-a}:ts'))")
if run b --pcap "$DATA/refused.pcap" --workers 2 --redis "127.0.0.1:$PORT" --sensor lab.b &&
    python3 "$IT/check_redis.py" "$PORT" lab.b 10 "$TMP/b.summary.json" "$TMP/b.events.jsonl"; then
    ok "second sensor lab.b (2 workers)"
else
    bad "second sensor lab.b: $(tail -5 "$TMP/b.err")"
fi
now_a=$(python3 -c "import sys; sys.path.insert(0,'$IT'); from resp import Redis; r=Redis($PORT); print(sorted(r.cmd('HGETALL','rstscope:{lab-a}:tot')), r.cmd('XLEN','rstscope:{lab-a}:ts'))")
sensors=$(python3 -c "import sys; sys.path.insert(0,'$IT'); from resp import Redis; print(sorted(Redis($PORT).cmd('SMEMBERS','rstscope:sensors')))")
if [ "$snap_a" = "$now_a" ] && [ "$sensors" = "['lab-a', 'lab.b']" ]; then
    ok "sensors apart: lab-a unchanged, rstscope:sensors = $sensors"
else
    bad "sensors collide: lab-a before [$snap_a] after [$now_a], sensors $sensors"
fi

# 2b. --exclude: the excluded host's events stay out of Redis as out of the summary and the
# event file (check_redis.py compares all three), and there were some to exclude.
host=$(python3 -c "import json; print(json.loads(open('$TMP/a.events.jsonl').readline())['server_ip'])")
if run x --pcap "$DATA/sample.pcap" --workers 2 --redis "127.0.0.1:$PORT" --sensor lab-x \
    --interval 1 --exclude "probe=$host" &&
    python3 "$IT/check_redis.py" "$PORT" lab-x 1 "$TMP/x.summary.json" "$TMP/x.events.jsonl" &&
    python3 -c "import json,sys; n=sum(json.load(open('$TMP/x.summary.json'))['breakdown']['excluded']['probe'].values()); print('  excluded', n); sys.exit(n == 0)"; then
    ok "--exclude $host: kept out of Redis as out of the summary and events"
else
    bad "--exclude into Redis: $(tail -5 "$TMP/x.err")"
fi

# 3. The dashboard: valid JSON, every query returns data for a replayed sensor (lab.b: its
#    heartbeat, 3 x 10 s, is still alive).
if python3 "$IT/check_dashboard.py" "$RS_SRCDIR/conf/grafana/rstscope.json" "$PORT" lab.b; then
    ok "dashboard queries return data"
else
    bad "dashboard queries"
fi

# 4. Redis not running: the replay finishes, the summary is intact, the loss is logged.
DEAD=$(free_port)
t0=$(date +%s)
if run dead --pcap "$DATA/sample.pcap" --redis "127.0.0.1:$DEAD" --sensor lab-dead &&
    grep -q "cannot reach 127.0.0.1:$DEAD" "$TMP/dead.err" &&
    grep -q "final flush incomplete" "$TMP/dead.err" &&
    cmp -s <(python3 -c "import json;print(json.load(open('$TMP/dead.summary.json'))['causes'])") \
        <(python3 -c "import json;print(json.load(open('$TMP/a.summary.json'))['causes'])"); then
    ok "Redis down at start: replay done in $(($(date +%s) - t0)) s, loss logged"
else
    bad "Redis down at start: $(tail -5 "$TMP/dead.err")"
fi

# 5. A server that accepts connections but never answers: bounded by the command timeout.
SILENT=$(free_port)
start_silent "$SILENT"
sleep 0.3
t0=$(date +%s)
if timeout 60 "$RSTSCOPE" --quiet --status-interval 0 --pcap "$DATA/sample.pcap" \
    --redis "127.0.0.1:$SILENT" --sensor lab-silent --summary "$TMP/silent.summary.json" \
    2>"$TMP/silent.err" && grep -q "no answer" "$TMP/silent.err" &&
    grep -q "final flush incomplete" "$TMP/silent.err"; then
    el=$(($(date +%s) - t0))
    if [ "$el" -le 15 ]; then ok "silent server: gave up after $el s"; else bad "silent server took $el s"; fi
else
    bad "silent server: $(tail -5 "$TMP/silent.err")"
fi
kill "$SILENT_PID" 2>/dev/null

# 6. Password: wrong one refused and logged without the secret; right one by file and by env;
#    an ACL user limited to rstscope:* keys.
SECURE=$(free_port)
start_redis "$SECURE" --requirepass 'S3cret-pw' || exit 1
python3 -c "import sys; sys.path.insert(0,'$IT'); from resp import Redis; r=Redis($SECURE, password='S3cret-pw'); print(r.cmd('ACL','SETUSER','sensor','on','>Acl-pw-9','~rstscope:*','+@all'))" >/dev/null
if RSTSCOPE_REDIS_PASSWORD='wrong-pw-123' run wrongpw --pcap "$DATA/sample.pcap" \
    --redis "127.0.0.1:$SECURE" --sensor lab-pw &&
    grep -q "authentication failed" "$TMP/wrongpw.err" && ! grep -q "wrong-pw-123" "$TMP/wrongpw.err"; then
    ok "wrong password: refused, logged without the password"
else
    bad "wrong password: $(tail -5 "$TMP/wrongpw.err")"
fi
printf 'S3cret-pw\n' >"$TMP/pw"
if run pwfile --pcap "$DATA/sample.pcap" --redis "127.0.0.1:$SECURE" --sensor lab-pw \
    --redis-password-file "$TMP/pw" && ! grep -q "S3cret" "$TMP/pwfile.err" &&
    [ "$(python3 -c "import sys; sys.path.insert(0,'$IT'); from resp import Redis; print(Redis($SECURE, password='S3cret-pw').cmd('HGET','rstscope:{lab-pw}:tot','resets'))")" = \
      "$(python3 -c "import json;print(json.load(open('$TMP/pwfile.summary.json'))['resets'])")" ]; then
    ok "password from --redis-password-file"
else
    bad "password file: $(tail -5 "$TMP/pwfile.err")"
fi
if RSTSCOPE_REDIS_PASSWORD='Acl-pw-9' run acl --pcap "$DATA/sample.pcap" --redis "127.0.0.1:$SECURE" \
    --redis-user sensor --sensor lab-acl &&
    [ "$(python3 -c "import sys; sys.path.insert(0,'$IT'); from resp import Redis; print(Redis($SECURE, password='S3cret-pw').cmd('HGET','rstscope:{lab-acl}:tot','resets'))")" = \
      "$(python3 -c "import json;print(json.load(open('$TMP/acl.summary.json'))['resets'])")" ]; then
    ok "ACL user with the password in RSTSCOPE_REDIS_PASSWORD"
else
    bad "ACL user: $(tail -5 "$TMP/acl.err")"
fi

# 7. Option errors: exit 2, the option and the value named.
expect2() { # expect2 PATTERN ARGS...
    local pat=$1
    shift
    "$RSTSCOPE" --pcap "$DATA/sample.pcap" "$@" >"$TMP/opt.out" 2>&1
    local rc=$?
    if [ "$rc" -eq 2 ] && grep -Eq -- "$pat" "$TMP/opt.out"; then
        ok "rejects $*"
    else
        bad "$*: exit $rc, $(head -c 300 "$TMP/opt.out")"
    fi
}
expect2 "invalid value 'localhost' for --redis" --redis localhost
expect2 "invalid value 'h:0' for --redis" --redis h:0
expect2 "invalid value 'h:99999' for --redis" --redis h:99999
expect2 "invalid value 'a b:1' for --redis" --redis 'a b:1'
expect2 "invalid value '\[::1:6379' for --redis" --redis '[::1:6379'
expect2 "invalid value 'x\{y\}' for --sensor" --redis 127.0.0.1:1 --sensor 'x{y}'
expect2 "invalid value '' for --sensor" --redis 127.0.0.1:1 --sensor ''
expect2 "invalid value '0' for --interval" --redis 127.0.0.1:1 --interval 0
expect2 "invalid value '10s' for --interval" --redis 127.0.0.1:1 --interval 10s
expect2 "invalid value '/nonexistent/pw' for --redis-password-file" --redis 127.0.0.1:1 \
    --redis-password-file /nonexistent/pw
expect2 "need --redis" --sensor lab
expect2 "--redis-user needs a password" --redis 127.0.0.1:1 --redis-user bob
finish
