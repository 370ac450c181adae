# Helpers for the Redis tests (sourced after common.sh): real redis-server processes on free
# loopback ports, each with its own directory, no persistence, stopped by PID at exit.
command -v redis-server >/dev/null || { echo "SKIP: redis-server not installed"; exit 77; }
REDIS_PIDS=()
redis_cleanup() {
    local pid
    for pid in "${REDIS_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${REDIS_PIDS[@]}"; do # bounded wait: 50 x 0.1 s, then SIGKILL
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap redis_cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_redis PORT [redis-server args...]: start, wait until it answers (at most 5 s).
# Sets REDIS_PID.
start_redis() {
    local port=$1 dir=$TMP/redis-$1
    shift
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --logfile "$dir/log" "$@" &
    REDIS_PID=$!
    REDIS_PIDS+=("$REDIS_PID")
    for _ in $(seq 50); do
        if python3 - "$port" <<'PY' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5)
s.sendall(b"PING\r\n")
r = s.recv(64)
sys.exit(0 if r.startswith(b"+PONG") or r.startswith(b"-NOAUTH") else 1)
PY
        sleep 0.1
    done
    echo "redis-server on port $port did not start: $(tail -5 "$dir/log")"
    return 1
}

stop_redis() { # stop_redis PID: SIGTERM, bounded wait, SIGKILL
    local pid=$1
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
}

# start_silent PORT: a server that accepts connections and never answers (at most 60 s).
# Sets SILENT_PID; stopped with the Redis servers at exit.
start_silent() {
    python3 - "$1" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
conns, end = [], time.time() + 60
s.settimeout(0.5)
while time.time() < end:  # accept and hold, never answer (bounded: 60 s)
    try:
        conns.append(s.accept()[0])
    except socket.timeout:
        pass
PY
    SILENT_PID=$!
    REDIS_PIDS+=("$SILENT_PID")
}

# refused_connects PORT SECONDS >FILE &: connect to a closed loopback port every 20 ms for
# SECONDS (at most 2000 tries) and print how many were refused.
refused_connects() {
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
n, end = 0, time.time() + float(sys.argv[2])
while time.time() < end and n < 2000:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
    except ConnectionRefusedError:
        n += 1
    time.sleep(0.02)
print(n)
PY
}
