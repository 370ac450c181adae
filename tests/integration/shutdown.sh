#!/usr/bin/env bash
# Shutdown, restart and blind spots of a live run. The "live" traffic is DPDK's net_pcap with
# infinite_rx=1: it loops a small capture for ever at full speed, so the port is never idle
# (no root, no NIC, no namespace). The capture (gen_flood.py gap) has conversations with
# capture gaps, and --max-flows 16 leaves new connections untracked (table full).
#   1. SIGTERM on a port that never goes quiet: exit 0 within 5 s, final report and summary,
#      Redis :tot equal to the summary (the final counts were flushed);
#   2. the status line names every blind spot (nic, nombuf, ring, table-full, gaps, low-conf);
#   3. SIGINT does the same;
#   4. a second signal exits at once (128+signal) while the first one's shutdown waits for a
#      Redis that never answers;
#   5. SIGKILL, then start again: the dead run's private runtime directory is removed and the
#      new run works; a clean run leaves nothing behind;
#   6. SIGKILL of a run with EAL's shared config (fixed --file-prefix in RUNTIME_DIRECTORY),
#      then a new run with the same prefix starts.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/redis_common.sh"
IT=$RS_SRCDIR/tests/integration
[ "$(nproc)" -ge 2 ] || { echo "SKIP: needs 2 CPUs"; exit 77; }

python3 "$IT/gen_flood.py" gap "$TMP/gap.pcap" 0 40 5 >"$TMP/gap.truth"
EAL=(--no-huge -m 512 --no-pci -l 0,1 --vdev "net_pcap0,rx_pcap=$TMP/gap.pcap,infinite_rx=1")

# wait_exit PID SECONDS: 0 once PID has exited (its status in $EXIT_RC), 1 on timeout.
wait_exit() {
    local pid=$1 n=$(($2 * 10))
    for _ in $(seq "$n"); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            EXIT_RC=$?
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# stop_test PID: a test gone wrong must not leave rstscope running.
kill_left() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

PORT=$(free_port)
start_redis "$PORT" || exit 1

# 1 + 2. SIGTERM under load, with Redis.
"$RSTSCOPE" "${EAL[@]}" --no-shconf --file-prefix "rsd1$$" -- --max-flows 16 \
    --status-interval 1 --summary "$TMP/term.json" --redis "127.0.0.1:$PORT" --sensor sd \
    --interval 1 >"$TMP/term.out" 2>"$TMP/term.err" &
PID=$!
sleep 3
kill -TERM "$PID"
if wait_exit "$PID" 5; then
    if [ "$EXIT_RC" -eq 0 ] && grep -q "reset events" "$TMP/term.out" && [ -s "$TMP/term.json" ]; then
        ok "SIGTERM on a busy port: exit 0, report and summary written"
    else
        bad "SIGTERM: exit $EXIT_RC, $(tail -3 "$TMP/term.err")"
    fi
else
    bad "SIGTERM on a busy port: still running 5 s later (the workers never saw the stop)"
    kill_left "$PID"
fi
if [ -s "$TMP/term.json" ] && IT=$IT python3 - "$PORT" "$TMP/term.json" <<'PY'; then
import json, os, sys
sys.path.insert(0, os.environ["IT"])
from resp import Redis, pairs
r, g = Redis(int(sys.argv[1])), json.load(open(sys.argv[2]))
tot = pairs(r.cmd("HGETALL", "rstscope:{sd}:tot"))
want = dict(g["causes"], packets=g["packets"], resets=g["resets"], rst_packets=g["rst_packets"],
            low_confidence=g["low_confidence"], table_full=g["flows"]["dropped"],
            evicted=g["flows"]["evicted"], capture_gaps=g["capture_gaps"])
errs = ["%s: redis %s, summary %d" % (k, tot.get(k), v) for k, v in want.items()
        if int(tot.get(k, -1)) != v]
assert g["packets"] > 100000 and g["flows"]["dropped"] > 0 and g["capture_gaps"] > 0, g
assert g["low_confidence"] > 0, g
print("\n".join("  " + e for e in errs))
sys.exit(1 if errs else 0)
PY
    ok "SIGTERM: final counts flushed, Redis :tot == summary (incl. table_full, capture_gaps)"
else
    bad "SIGTERM: Redis :tot differs from the summary"
fi
line=$(grep '^\[rstscope\] .*pkts' "$TMP/term.err" | tail -1)
if [[ $line =~ nic\ 0\ nombuf\ 0\ ring\ 0\ table-full\ [1-9][0-9]*\).*gaps\ [1-9][0-9]*\ low-conf\ [1-9] ]]; then
    ok "status line names the blind spots"
else
    bad "status line: '$line'"
fi
grep -q "NOT TRACKED" "$TMP/term.out" && ok "report: NOT TRACKED line for the table-full drops" ||
    bad "report has no NOT TRACKED line: $(grep flows "$TMP/term.out")"

# 3. SIGINT.
"$RSTSCOPE" "${EAL[@]}" --no-shconf --file-prefix "rsd3$$" -- --max-flows 16 \
    --status-interval 0 --quiet --summary "$TMP/int.json" 2>"$TMP/int.err" &
PID=$!
sleep 2
kill -INT "$PID"
if wait_exit "$PID" 5 && [ "$EXIT_RC" -eq 0 ] &&
    python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["packets"] > 0' "$TMP/int.json"; then
    ok "SIGINT: exit 0, summary written"
else
    bad "SIGINT: exit ${EXIT_RC:-?}, $(tail -3 "$TMP/int.err")"
    kill_left "$PID"
fi

# 4. Second signal: the first one's shutdown waits (up to 5 s) on a Redis that never answers.
SILENT=$(free_port)
start_silent "$SILENT"
sleep 0.3
"$RSTSCOPE" "${EAL[@]}" --no-shconf --file-prefix "rsd4$$" -- --max-flows 16 \
    --status-interval 0 --quiet --redis "127.0.0.1:$SILENT" --sensor sd4 2>"$TMP/two.err" &
PID=$!
sleep 2
kill -TERM "$PID"
sleep 1
if kill -0 "$PID" 2>/dev/null; then
    t0=$(date +%s%N)
    kill -TERM "$PID"
    if wait_exit "$PID" 2; then
        ms=$((($(date +%s%N) - t0) / 1000000))
        [ "$EXIT_RC" -eq 143 ] && ok "second SIGTERM: exit 143 after ${ms} ms" ||
            bad "second SIGTERM: exit $EXIT_RC"
    else
        bad "second SIGTERM: still running 2 s later"
        kill_left "$PID"
    fi
else
    wait "$PID"
    bad "second signal: the first shutdown did not wait for the silent Redis (exit $?)"
fi

# 5. SIGKILL, then start again, with the default private runtime directory under TMPDIR.
RT=$TMP/tmpdir
mkdir -p "$RT"
(
    unset RUNTIME_DIRECTORY
    export TMPDIR=$RT
    "$RSTSCOPE" "${EAL[@]}" --no-shconf --file-prefix "rsd5$$" -- --max-flows 16 \
        --status-interval 0 --quiet 2>"$TMP/kill.err" &
    PID=$!
    sleep 2
    kill -9 "$PID"
    wait "$PID" 2>/dev/null
    stale=$(ls "$RT")
    [ -n "$stale" ] && echo "left by the killed run: $stale" || echo "the killed run left nothing"
    if "$RSTSCOPE" --pcap "$DATA/sample.pcap" --quiet --status-interval 0 \
        --summary "$TMP/after.json" 2>"$TMP/after.err"; then
        left=$(ls "$RT")
        [ -z "$left" ] && echo OK || echo "LEFT: $left"
    else
        echo "FAILED: $(tail -3 "$TMP/after.err")"
    fi
) >"$TMP/kill.log"
if grep -q "^left by the killed run: rstscope\.[0-9]*\." "$TMP/kill.log" && grep -q '^OK$' "$TMP/kill.log"; then
    ok "SIGKILL then restart: stale runtime directory removed, replay ok, nothing left"
else
    bad "SIGKILL then restart: $(cat "$TMP/kill.log")"
fi

# 6. SIGKILL with EAL's shared config (its lock file), then the same prefix again.
"$RSTSCOPE" "${EAL[@]}" --file-prefix "rsd6$$" -- --max-flows 16 --status-interval 0 \
    --quiet 2>"$TMP/shconf1.err" &
PID=$!
sleep 2
kill -9 "$PID"
wait "$PID" 2>/dev/null
"$RSTSCOPE" "${EAL[@]}" --file-prefix "rsd6$$" -- --max-flows 16 --status-interval 0 \
    --quiet --summary "$TMP/shconf.json" 2>"$TMP/shconf2.err" &
PID=$!
sleep 2
kill -TERM "$PID"
if wait_exit "$PID" 5 && [ "$EXIT_RC" -eq 0 ] && [ -s "$TMP/shconf.json" ]; then
    ok "SIGKILL with a shared EAL config: the same --file-prefix starts again"
else
    bad "restart after SIGKILL with shared config: exit ${EXIT_RC:-?}, $(tail -3 "$TMP/shconf2.err")"
    kill_left "$PID"
fi
finish
