#!/usr/bin/env bash
# live_af_packet.sh: run the real rstscope binary live (DPDK net_af_packet)
# on one end of a veth pair while real kernel TCP connections cross it, query its DPDK
# telemetry commands (/rstscope/stats, /rstscope/causes, /rstscope/flows) while it runs,
# then check the telemetry answers and its --summary and --events output.
#
#   sudo tests/integration/live_af_packet.sh
#   RSTSCOPE=/path/to/rstscope sudo -E tests/integration/live_af_packet.sh
#
# Topology: netns CLI (10.99.1.1) <-veth-> netns SRV (10.99.1.2); rstscope
# runs inside CLI attached to the client's veth end (af_packet sees both
# directions there).  Traffic:
#   5 x refused       connect to port 8002 where nothing listens
#   5 x client_abort  port 8003: server sends 4000 B and waits, client reads
#                     them and closes with SO_LINGER{1,0}
#   3 x clean         port 8001: request, response, FINs both ways
# Expected: causes.refused == 5, causes.client_abort == 5, all other causes 0,
# rst_packets >= 10, 10 event lines with the right server_port per cause.
#
# Exit: 0 pass, 1 fail, 77 skip (not root / no ip netns / no python3).
# Env:  RSTSCOPE (default build/app/rstscope), RSTSCOPE_LCORES (default 0,1),
#       LIVE_KEEP=1 keeps the temporary directory.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SELF_DIR/../.." && pwd)
RSTSCOPE=${RSTSCOPE:-$ROOT/build/app/rstscope}
LCORES=${RSTSCOPE_LCORES:-0,1}
PY=${PYTHON:-python3}

N_REFUSED=5
N_ABORT=5
N_CLEAN=3
PORT_CLEAN=8001
PORT_REFUSED=8002
PORT_ABORT=8003

NS_CLI="rslive-$$-cli"
NS_SRV="rslive-$$-srv"
IF_CLI="rslive$$c"         # <= 15 characters
IF_SRV="rslive$$s"
IP_CLI=10.99.1.1
IP_SRV=10.99.1.2

skip() { echo "SKIP: $*"; exit 77; }
log()  { echo "# $*"; }

[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, af_packet)"
command -v ip >/dev/null 2>&1 || skip "iproute2 'ip' not found"
ip netns list >/dev/null 2>&1 || skip "'ip netns' unavailable"
command -v "$PY" >/dev/null 2>&1 || skip "python3 not found"
command -v timeout >/dev/null 2>&1 || skip "coreutils timeout not found"

TMP=$(mktemp -d /tmp/rslive.XXXXXX)
PIDS=()
FAILS=0

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    local rc=$? pid ns
    set +e
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ns in "$NS_CLI" "$NS_SRV"; do
        if ip netns list 2>/dev/null | grep -qw -- "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns" 2>/dev/null
        fi
    done
    ip link del "$IF_CLI" 2>/dev/null
    if [[ -n ${LIVE_KEEP:-} ]]; then echo "# kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget() {
    local p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
fatal() {
    echo "FAIL: $*"
    for f in rstscope.out rstscope.err server.log; do
        [[ -s $TMP/$f ]] && { echo "---- $f"; tail -n 40 "$TMP/$f"; }
    done
    exit 1
}

if [[ ! -x $RSTSCOPE ]]; then
    fatal "rstscope binary not found or not executable: $RSTSCOPE (build it, or set RSTSCOPE)"
fi

# ------------------------------------------------------------ traffic driver
cat >"$TMP/traffic.py" <<'PYEOF'
import os, socket, struct, sys, threading, time, select

TIMEOUT = 5.0

def touch(p):
    with open(p, "w") as f:
        f.write("1")

def readline(s):
    buf = b""
    for _ in range(256):
        ch = s.recv(1)
        if not ch or ch == b"\n":
            return buf
        buf += ch
    raise RuntimeError("line too long")

def recv_exact(s, n):
    buf = b""
    for _ in range(10000):
        if len(buf) >= n:
            return buf
        c = s.recv(n - len(buf))
        if not c:
            raise RuntimeError("EOF after %d/%d bytes" % (len(buf), n))
        buf += c
    raise RuntimeError("recv_exact loop bound")

def drain(s):
    for _ in range(10000):
        try:
            if not s.recv(65536):
                return
        except OSError:
            return

def h_clean(c):                 # "GET n" -> n bytes, then wait for client FIN
    n = int(readline(c).split()[1])
    c.sendall(b"c" * n)
    drain(c)

def h_abort(c):                 # "GET n" -> n bytes, then wait (client resets)
    n = int(readline(c).split()[1])
    c.sendall(b"a" * n)
    drain(c)

def server(addr, p_clean, p_abort, ready, stop):
    handlers = {p_clean: h_clean, p_abort: h_abort}
    ls = {}
    for port in handlers:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port)); s.listen(16); s.setblocking(False)
        ls[s] = port
    touch(ready)
    end = time.monotonic() + 120
    def run(h, c):
        try:
            h(c)
        except Exception as e:
            print("handler error: %r" % e, file=sys.stderr)
        finally:
            c.close()
    while time.monotonic() < end and not os.path.exists(stop):
        r, _, _ = select.select(list(ls), [], [], 0.2)
        for l in r:
            try:
                c, _ = l.accept()
            except BlockingIOError:
                continue
            c.setblocking(True); c.settimeout(TIMEOUT)
            threading.Thread(target=run, args=(handlers[ls[l]], c), daemon=True).start()

def connect(addr, port):
    s = socket.socket()
    s.settimeout(TIMEOUT)
    s.connect((addr, port))
    return s

def client(kind, addr, port, count):
    for _ in range(count):
        if kind == "refused":
            try:
                s = connect(addr, port)
            except ConnectionRefusedError:
                pass
            else:
                s.close(); raise RuntimeError("connect to closed port succeeded")
        elif kind == "abort":
            s = connect(addr, port)
            s.sendall(b"GET 4000\n")
            recv_exact(s, 4000)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        elif kind == "clean":
            s = connect(addr, port)
            s.sendall(b"GET 1000\n")
            recv_exact(s, 1000)
            s.shutdown(socket.SHUT_WR)
            if s.recv(1):
                raise RuntimeError("unexpected data")
            s.close()
        time.sleep(0.1)

if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "server":
        server(a[1], int(a[2]), int(a[3]), a[4], a[5])
    else:
        client(a[1], a[2], int(a[3]), int(a[4]))
PYEOF

# ------------------------------------------------------------------ topology
log "namespaces $NS_CLI / $NS_SRV, rstscope=$RSTSCOPE"
ip netns add "$NS_CLI"
ip netns add "$NS_SRV"
ip link add "$IF_CLI" type veth peer name "$IF_SRV"
ip link set "$IF_CLI" netns "$NS_CLI"
ip link set "$IF_SRV" netns "$NS_SRV"
for ns in "$NS_CLI" "$NS_SRV"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 || true
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$NS_CLI" ip addr add "$IP_CLI/24" dev "$IF_CLI"
ip netns exec "$NS_SRV" ip addr add "$IP_SRV/24" dev "$IF_SRV"
if command -v ethtool >/dev/null 2>&1; then
    # wire-sized frames: af_packet frames are 2048 B, GSO super-packets would be truncated
    ip netns exec "$NS_CLI" ethtool -K "$IF_CLI" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "$NS_SRV" ethtool -K "$IF_SRV" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
else
    log "ethtool not found: offloads left on (large segments may be truncated)"
fi
ip netns exec "$NS_CLI" ip link set "$IF_CLI" up
ip netns exec "$NS_SRV" ip link set "$IF_SRV" up

# -------------------------------------------------------------------- server
ip netns exec "$NS_SRV" timeout 150 "$PY" "$TMP/traffic.py" server "$IP_SRV" \
    "$PORT_CLEAN" "$PORT_ABORT" "$TMP/server.ready" "$TMP/server.stop" 2>"$TMP/server.log" &
SRV_PID=$!
PIDS+=("$SRV_PID")
for ((i = 0; i < 100; i++)); do
    [[ -e $TMP/server.ready ]] && break
    kill -0 "$SRV_PID" 2>/dev/null || fatal "traffic server died"
    sleep 0.05
done
[[ -e $TMP/server.ready ]] || fatal "traffic server not ready after 5 s"

# ------------------------------------------------------------------ rstscope
export RUNTIME_DIRECTORY
RUNTIME_DIRECTORY=$(mktemp -d "$TMP/run.XXXXXX")
# env --default-signal=INT: a non-interactive shell starts background jobs with
# SIGINT ignored; make sure rstscope gets the default disposition.
ip netns exec "$NS_CLI" env --default-signal=INT "$RSTSCOPE" \
    --no-huge --no-pci --no-shconf -m 256 --file-prefix "rs-live-$$" -l "$LCORES" \
    --vdev "net_af_packet0,iface=$IF_CLI" --log-level=lib.eal:error \
    -- --summary "$TMP/summary.json" --events "$TMP/events.jsonl" \
    >"$TMP/rstscope.out" 2>"$TMP/rstscope.err" &
RS_PID=$!
PIDS+=("$RS_PID")

# up = its AF_PACKET socket exists in the client namespace (bounded: 20 s)
up=0
for ((i = 0; i < 200; i++)); do
    kill -0 "$RS_PID" 2>/dev/null || break
    if ip netns exec "$NS_CLI" ss -0 -p 2>/dev/null | grep -q "pid=$RS_PID,"; then
        up=1
        break
    fi
    sleep 0.1
done
if ! kill -0 "$RS_PID" 2>/dev/null; then
    wait "$RS_PID" && rc=0 || rc=$?
    forget "$RS_PID"
    fatal "rstscope exited during start-up (exit $rc)"
fi
if [[ $up -eq 0 ]]; then
    log "no AF_PACKET socket of pid $RS_PID seen after 20 s; continuing anyway"
fi
sleep 1    # let the port start and its workers begin polling
kill -0 "$RS_PID" 2>/dev/null || fatal "rstscope exited during start-up"
log "rstscope running (pid $RS_PID)"

# ------------------------------------------------------------------- traffic
cli() { ip netns exec "$NS_CLI" timeout 60 "$PY" "$TMP/traffic.py" client "$@"; }
cli clean   "$IP_SRV" "$PORT_CLEAN"   "$N_CLEAN"   || fatal "clean connections failed"
cli refused "$IP_SRV" "$PORT_REFUSED" "$N_REFUSED" || fatal "refused connections failed"
cli abort   "$IP_SRV" "$PORT_ABORT"   "$N_ABORT"   || fatal "client abort connections failed"
cli clean   "$IP_SRV" "$PORT_CLEAN"   1            || fatal "clean connections failed"
log "traffic done: $N_REFUSED refused, $N_ABORT client aborts, $((N_CLEAN + 1)) clean"

# ----------------------------------------------------------- query telemetry
# While rstscope still runs: the commands answer from the workers' live counters.
SOCK="$RUNTIME_DIRECTORY/dpdk/rs-live-$$/dpdk_telemetry.v2"
for ((i = 0; i < 50; i++)); do [[ -S $SOCK ]] && break; sleep 0.1; done
[[ -S $SOCK ]] || fatal "no telemetry socket at $SOCK"
grep -qF "telemetry: $SOCK" "$TMP/rstscope.err" && pass "start-up line names the socket" \
    || fail "start-up line does not name $SOCK"
# Reset events close after the fold delay: poll (bounded, 10 s) until all are counted.
for ((i = 0; i < 50; i++)); do
    ip netns exec "$NS_CLI" "$PY" "$SELF_DIR/telemetry_query.py" "$SOCK" \
        /rstscope/stats /rstscope/causes /rstscope/flows >"$TMP/tel.json" || fatal "telemetry query failed"
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["/rstscope/stats"]["resets"] < int(sys.argv[2]))' \
        "$TMP/tel.json" $((N_REFUSED + N_ABORT)) && break
    sleep 0.2
done
log "telemetry: $(cat "$TMP/tel.json")"
# Debian's client too (it finds the socket from RUNTIME_DIRECTORY and the file prefix). Not
# optional: scripts/setup installs it, and a skip here once hid that a Debian point release
# had moved it from package dpdk to dpdk-dev.
command -v dpdk-telemetry.py >/dev/null 2>&1 ||
    fatal "dpdk-telemetry.py not found (Debian package dpdk-dev; scripts/setup installs it)"
echo /rstscope/causes | ip netns exec "$NS_CLI" env RUNTIME_DIRECTORY="$RUNTIME_DIRECTORY" \
    timeout 10 "$PY" "$(command -v dpdk-telemetry.py)" -f "rs-live-$$" >"$TMP/dpdk_tel.out" 2>&1 || true
log "dpdk-telemetry.py: $(tr -d '\n' <"$TMP/dpdk_tel.out")"


# ------------------------------------------------------------- stop rstscope
kill -INT "$RS_PID"
rc=
for ((i = 0; i < 200; i++)); do        # 20 s
    if ! kill -0 "$RS_PID" 2>/dev/null; then
        wait "$RS_PID" && rc=0 || rc=$?
        break
    fi
    sleep 0.1
done
if [[ -z $rc ]]; then
    kill -KILL "$RS_PID" 2>/dev/null || true
    wait "$RS_PID" 2>/dev/null || true
    forget "$RS_PID"
    fatal "rstscope did not exit within 20 s of SIGINT (killed)"
fi
forget "$RS_PID"
touch "$TMP/server.stop"

echo "---- rstscope stdout (tail)"; tail -n 30 "$TMP/rstscope.out" || true
echo "---- rstscope stderr (tail)"; tail -n 15 "$TMP/rstscope.err" || true
echo "----"

# ------------------------------------------------------------------- checks
if [[ $rc -eq 0 ]]; then pass "rstscope exit code 0"; else fail "rstscope exit code $rc"; fi

"$PY" - "$TMP/summary.json" "$TMP/events.jsonl" "$N_REFUSED" "$N_ABORT" \
    "$PORT_REFUSED" "$PORT_ABORT" "$IP_CLI" "$IP_SRV" <<'PYEOF' || FAILS=$((FAILS + 1))
import json, sys
summ_f, ev_f, n_ref, n_abort, p_ref, p_abort, ip_cli, ip_srv = sys.argv[1:]
n_ref, n_abort, p_ref, p_abort = int(n_ref), int(n_abort), int(p_ref), int(p_abort)
fails = 0
def check(ok, what):
    global fails
    print(("PASS: " if ok else "FAIL: ") + what)
    if not ok:
        fails += 1

ALL = ["refused", "middlebox_refused", "accept_overflow", "server_abort", "client_abort",
       "data_after_close", "after_fin", "stale_connection", "middlebox_injected",
       "out_of_window", "idle_timeout", "keepalive_timeout", "no_flow", "unclassified"]
try:
    s = json.load(open(summ_f))
except Exception as e:
    print("FAIL: summary %s unreadable: %r" % (summ_f, e)); sys.exit(1)
print("# summary:", json.dumps({k: s.get(k) for k in
      ("packets", "tcp_packets", "rst_packets", "resets", "causes", "malformed", "flows")}))
for k in ("packets", "tcp_packets", "rst_packets", "resets", "causes", "malformed", "flows"):
    check(k in s, "summary has key %r" % k)
causes = s.get("causes") or {}
check(sorted(causes) == sorted(ALL) if isinstance(causes, dict) else False,
      "summary.causes lists every cause (got %s)" % sorted(causes))
check(causes.get("refused") == n_ref, "causes.refused == %d (got %r)" % (n_ref, causes.get("refused")))
check(causes.get("client_abort") == n_abort,
      "causes.client_abort == %d (got %r)" % (n_abort, causes.get("client_abort")))
others = {c: causes.get(c) for c in ALL if c not in ("refused", "client_abort")}
check(all(v == 0 for v in others.values()), "all other causes are 0 (got %s)" % others)
check(isinstance(s.get("rst_packets"), int) and s["rst_packets"] >= n_ref + n_abort,
      "rst_packets >= %d (got %r)" % (n_ref + n_abort, s.get("rst_packets")))
check(s.get("resets") == n_ref + n_abort, "resets == %d (got %r)" % (n_ref + n_abort, s.get("resets")))
check(isinstance(s.get("tcp_packets"), int) and isinstance(s.get("packets"), int)
      and s["packets"] >= s["tcp_packets"] >= s.get("rst_packets", 0) > 0,
      "packets >= tcp_packets >= rst_packets > 0")
fl = s.get("flows") or {}
check(isinstance(fl, dict) and all(k in fl for k in ("created", "expired", "evicted")),
      "summary.flows has created/expired/evicted (got %s)" % fl)
# Live, the flow hash is keyed at random unless --hash-seed says otherwise (hash flooding).
check(s.get("hash_key") == "random", "live: hash_key random (got %r)" % s.get("hash_key"))

try:
    lines = [l for l in open(ev_f).read().splitlines() if l.strip()]
    evs = [json.loads(l) for l in lines]
except Exception as e:
    print("FAIL: events %s unreadable: %r" % (ev_f, e)); sys.exit(1)
check(len(evs) == n_ref + n_abort, "events file has %d lines (got %d)" % (n_ref + n_abort, len(evs)))
FIELDS = ("ts", "client_ip", "client_port", "server_ip", "server_port", "direction_known",
          "sender", "origin", "cause", "state", "rst_count")
missing = sorted({f for e in evs for f in FIELDS if f not in e})
check(not missing, "every event has all fields (missing: %s)" % missing)
want = {"refused": (p_ref, "server"), "client_abort": (p_abort, "client")}
for cause, (port, sender) in want.items():
    es = [e for e in evs if e.get("cause") == cause]
    n = n_ref if cause == "refused" else n_abort
    check(len(es) == n, "%d %s events (got %d)" % (n, cause, len(es)))
    bad = [e for e in es if e.get("server_port") != port or e.get("server_ip") != ip_srv
           or e.get("client_ip") != ip_cli]
    check(not bad, "%s events: server %s:%d, client %s (bad: %s)" % (cause, ip_srv, port, ip_cli, bad[:2]))
    def sender_ok(v):
        return v == sender or v == {"client": 0, "server": 1}[sender]
    bad = [e for e in es if not sender_ok(e.get("sender"))]
    check(not bad, "%s events: sender is the %s (bad: %s)" % (cause, sender, [e.get("sender") for e in bad][:3]))
    bad = [e for e in es if e.get("direction_known") not in (True, 1)]
    check(not bad, "%s events: direction_known (bad: %s)" % (cause, [e.get("direction_known") for e in bad][:3]))
    cports = {e.get("client_port") for e in es}
    check(len(cports) == n, "%s events: %d distinct client ports (got %d)" % (cause, n, len(cports)))
other = [e for e in evs if e.get("cause") not in want]
check(not other, "no events of other causes (got %s)" % other[:3])
sys.exit(1 if fails else 0)
PYEOF

# DPDK telemetry answers taken while rstscope ran (README "Operating rstscope").
"$PY" - "$TMP/tel.json" "$TMP/summary.json" "$TMP/dpdk_tel.out" "$N_REFUSED" "$N_ABORT" \
    "$((N_CLEAN + 1))" <<'PYEOF' || FAILS=$((FAILS + 1))
import json, sys
tel_f, summ_f, dt_f, n_ref, n_abort, n_clean = sys.argv[1:]
n_ref, n_abort, n_clean = int(n_ref), int(n_abort), int(n_clean)
fails = 0
def check(ok, what):
    global fails
    print(("PASS: " if ok else "FAIL: ") + what)
    fails += not ok
t = json.load(open(tel_f))
st, ca, fl = t.get("/rstscope/stats") or {}, t.get("/rstscope/causes") or {}, t.get("/rstscope/flows") or {}
s = json.load(open(summ_f))
check(st.get("mode") == "live" and st.get("workers") == 1, "stats: mode live, 1 worker (got %s, %s)" % (st.get("mode"), st.get("workers")))
check(st.get("resets") == n_ref + n_abort, "stats.resets == %d (got %r)" % (n_ref + n_abort, st.get("resets")))
check(ca.get("refused") == n_ref, "causes.refused == %d (got %r)" % (n_ref, ca.get("refused")))
check(ca.get("client_abort") == n_abort, "causes.client_abort == %d (got %r)" % (n_abort, ca.get("client_abort")))
others = {k: v for k, v in ca.items() if k not in ("refused", "client_abort", "total") and v}
check(not others, "no other cause counted (got %s)" % others)
check(ca.get("total") == n_ref + n_abort, "causes.total == %d (got %r)" % (n_ref + n_abort, ca.get("total")))
# Every connection made a flow; the final summary can only have grown since the query.
nconn = n_ref + n_abort + n_clean
check(fl.get("created", 0) >= nconn, "flows.created >= %d connections (got %r)" % (nconn, fl.get("created")))
check(fl.get("capacity", 0) > 0 and fl.get("dropped") == 0, "flows: capacity %r, dropped %r" % (fl.get("capacity"), fl.get("dropped")))
check(isinstance(fl.get("active_per_worker"), list) and len(fl["active_per_worker"]) == 1
      and sum(fl["active_per_worker"]) == fl.get("active"), "flows.active_per_worker sums to active (%r)" % fl.get("active_per_worker"))
check(0 < st.get("tcp_packets", 0) <= s.get("tcp_packets", 0) and st.get("rst_packets", 0) <= s.get("rst_packets", 0),
      "telemetry packets <= final summary (tel %r/%r, summary %r/%r)" % (st.get("tcp_packets"), st.get("rst_packets"), s.get("tcp_packets"), s.get("rst_packets")))
check(s.get("causes", {}).get("refused") == ca.get("refused") and s.get("causes", {}).get("client_abort") == ca.get("client_abort"),
      "telemetry causes equal the final summary's")
dt = open(dt_f).read()
try:
    got = json.loads(dt[dt.index("{"):]).get("/rstscope/causes", {})
except Exception as e:
    got = {"error": repr(e)}
check(got.get("refused") == n_ref and got.get("client_abort") == n_abort,
      "dpdk-telemetry.py /rstscope/causes agrees (got %s)" % {k: got.get(k) for k in ("refused", "client_abort")})
sys.exit(1 if fails else 0)
PYEOF

if [[ $FAILS -ne 0 ]]; then
    echo "---- events.jsonl"; cat "$TMP/events.jsonl" 2>/dev/null || true
    echo "---- summary.json"; cat "$TMP/summary.json" 2>/dev/null || true
    echo "RESULT: FAIL"
    exit 1
fi
echo "RESULT: PASS"
exit 0
