#!/usr/bin/env bash
# The command line: help, version, and a clear message plus a non-zero exit for every bad input.
. "$(dirname "$0")/common.sh"

# expect CODE PATTERN -- ARGS...: exit status CODE and PATTERN on stdout+stderr.
expect() {
    local code=$1 pat=$2
    shift 3
    "$RSTSCOPE" "$@" >"$TMP/out" 2>&1
    local rc=$?
    if [ "$rc" -eq "$code" ] && grep -Eq -- "$pat" "$TMP/out"; then
        ok "rstscope $* -> $rc"
    else
        bad "rstscope $*: exit $rc (want $code), output: $(head -c 400 "$TMP/out")"
    fi
}

expect 0 'Usage:' -- --help
expect 0 '^rstscope [0-9]+\.[0-9]+' -- --version
expect 2 "unknown option '--bogus'" -- --bogus
expect 2 "invalid value 'abc' for --workers" -- --pcap "$DATA/sample.pcap" --workers abc
expect 2 "invalid value '0' for --workers" -- --pcap "$DATA/sample.pcap" --workers 0
expect 2 "invalid value '-5' for --max-flows" -- --pcap "$DATA/sample.pcap" --max-flows -5
expect 2 "option '--summary' needs a value" -- --pcap "$DATA/sample.pcap" --summary
expect 2 "option '--flows' needs a value" -- --pcap "$DATA/sample.pcap" --flows
expect 2 "invalid value '99' for --ttl-tolerance" -- --pcap "$DATA/sample.pcap" --ttl-tolerance 99
expect 2 "invalid value '0' for --ipv6-share \\(expected an integer 1\\.\\.100\\)" -- --pcap "$DATA/sample.pcap" --ipv6-share 0
expect 2 "invalid value '-1' for --idle-threshold" -- --pcap "$DATA/sample.pcap" --idle-threshold -1
expect 2 "invalid value '1s' for --rst-hold-ms" -- --pcap "$DATA/sample.pcap" --rst-hold-ms 1s
expect 2 "invalid value '0' for --bench-packets" -- --bench-packets 0
expect 2 "invalid value '64' for --mbuf-size" -- --mbuf-size 64
expect 2 "invalid value '10' for --mbufs" -- --mbufs 10
expect 2 "are for live mode" -- --pcap "$DATA/sample.pcap" --bench-packets 1000
expect 2 "--reader is for --pcap replays" -- --no-huge -- --reader
expect 2 "nothing to read" --
expect 2 "unexpected argument 'stray'" -- --pcap "$DATA/sample.pcap" stray
expect 1 "cannot read capture '/nonexistent.pcap'" -- --pcap /nonexistent.pcap
printf 'this is not a capture' >"$TMP/junk.pcap"
expect 1 "cannot read capture '.*junk.pcap'" -- --pcap "$TMP/junk.pcap"
expect 1 "cannot write flows file '/nonexistent/dir/f.json'" -- --pcap "$DATA/sample.pcap" \
    --flows /nonexistent/dir/f.json
expect 1 "cannot write summary file '/nonexistent/dir/s.json'" -- --pcap "$DATA/sample.pcap" \
    --summary /nonexistent/dir/s.json
expect 2 "do not combine it with EAL options" -- --no-huge -- --pcap "$DATA/sample.pcap"

# Every bounded option, just outside its range, and values that are not numbers at all.
S=(--pcap "$DATA/sample.pcap")
expect 2 "invalid value '65' for --workers" -- "${S[@]}" --workers 65
expect 2 "invalid value '' for --workers" -- "${S[@]}" --workers ''
expect 2 "invalid value '99999999999999999999' for --workers" -- "${S[@]}" --workers 99999999999999999999
expect 2 "invalid value '15' for --max-flows" -- "${S[@]}" --max-flows 15
expect 2 "invalid value '1073741825' for --max-flows" -- "${S[@]}" --max-flows 1073741825
expect 2 "invalid value '0x10' for --max-flows" -- "${S[@]}" --max-flows 0x10
expect 2 "invalid value '60001' for --rst-hold-ms" -- "${S[@]}" --rst-hold-ms 60001
expect 2 "invalid value '604801' for --idle-threshold" -- "${S[@]}" --idle-threshold 604801
expect 2 "invalid value '0' for --idle-timeout" -- "${S[@]}" --idle-timeout 0
expect 2 "invalid value ' 5' for --status-interval" -- "${S[@]}" --status-interval ' 5'
expect 2 "invalid value '86401' for --status-interval" -- "${S[@]}" --status-interval 86401
expect 2 "invalid value '-1' for --ttl-tolerance" -- "${S[@]}" --ttl-tolerance -1
expect 2 "invalid value 'rand' for --hash-seed \\(expected 'random' or a 64-bit number" -- "${S[@]}" --hash-seed rand
expect 2 "invalid value '-1' for --hash-seed" -- "${S[@]}" --hash-seed -1
expect 2 "invalid value '0x' for --hash-seed" -- "${S[@]}" --hash-seed 0x
expect 2 "invalid value '18446744073709551616' for --hash-seed" -- "${S[@]}" --hash-seed 18446744073709551616
expect 2 "invalid value '0x1g' for --hash-seed" -- "${S[@]}" --hash-seed 0x1g
# Redis options: each bad value named, and none of them accepted without --redis.
R=(--redis 127.0.0.1:1)
expect 2 "invalid value 'nohost' for --redis" -- "${S[@]}" --redis nohost
expect 2 "invalid value '127.0.0.1:70000' for --redis" -- "${S[@]}" --redis 127.0.0.1:70000
expect 2 "invalid value 'relative.sock' for --redis" -- "${S[@]}" --redis relative.sock
expect 2 "invalid value '0' for --interval" -- "${S[@]}" "${R[@]}" --interval 0
expect 2 "invalid value '3601' for --interval" -- "${S[@]}" "${R[@]}" --interval 3601
expect 2 "invalid value '59' for --redis-retention" -- "${S[@]}" "${R[@]}" --redis-retention 59
expect 2 "invalid value 'bad name' for --sensor" -- "${S[@]}" "${R[@]}" --sensor 'bad name'
expect 2 "invalid value 'a\{b' for --sensor" -- "${S[@]}" "${R[@]}" --sensor 'a{b'
expect 2 "invalid value '' for --sensor" -- "${S[@]}" "${R[@]}" --sensor ''
expect 2 "invalid value 'a b' for --redis-user" -- "${S[@]}" "${R[@]}" --redis-user 'a b'
expect 2 "--redis-user needs a password" -- "${S[@]}" "${R[@]}" --redis-user sensor
expect 2 "invalid value '/nonexistent/pw' for --redis-password-file" -- "${S[@]}" "${R[@]}" \
    --redis-password-file /nonexistent/pw
: >"$TMP/empty-pw"
expect 2 "invalid value '.*empty-pw' for --redis-password-file \(empty first line\)" -- \
    "${S[@]}" "${R[@]}" --redis-password-file "$TMP/empty-pw"
expect 2 "need --redis" -- "${S[@]}" --sensor lab
expect 2 "need --redis" -- "${S[@]}" --interval 5
expect 2 "option '--redis' needs a value" -- "${S[@]}" --redis
cp "$DATA/sample.pcap" "$TMP/a,b.pcap"
expect 2 "must not contain ','" -- --pcap "$TMP/a,b.pcap"
expect 1 "cannot read capture '$TMP'" -- --pcap "$TMP"

# Nothing half-configured: a run that fails at start-up leaves no output file behind (an
# empty summary would read as "nothing happened"), and does not touch an existing one.
rm -f "$TMP/hc.events" "$TMP/hc.flows"
expect 1 "cannot write summary file '/nonexistent/s.json'" -- "${S[@]}" --events "$TMP/hc.events" \
    --flows "$TMP/hc.flows" --summary /nonexistent/s.json
[ ! -e "$TMP/hc.events" ] && [ ! -e "$TMP/hc.flows" ] && ok "failed start-up: no output file left" ||
    bad "failed start-up left $(ls "$TMP"/hc.* 2>/dev/null)"
expect 1 "EAL initialisation failed|no DPDK port" -- --no-huge --no-pci --no-shconf --file-prefix "rsce$$" \
    -l 0,1 -- --summary "$TMP/hc.summary"
[ ! -e "$TMP/hc.summary" ] && ok "failed EAL start-up: no summary left" || bad "failed EAL start-up left a summary"

# Hostile frames: every frame counted, malformed ones by reason, nothing tracked, no crash.
nframes=$(python3 - "$TMP/bad.pcap" <<'PY'
import random, struct, sys
random.seed(3)
frames = []
good = bytes.fromhex("020000000002020000000001080045000028000040004006000a0a0000010a000002"
                     "c35000500000000100000000500220000000000000")
for cut in range(len(good)):          # every truncation of a TCP SYN
    frames.append(good[:cut])
for _ in range(2000):                 # random garbage behind real Ethernet/IP headers
    n = random.randrange(14, 120)
    frames.append(good[:14] + bytes(random.randrange(256) for _ in range(n)))
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, fr in enumerate(frames):
        f.write(struct.pack("<IIII", 1700000000 + i // 1000, i % 1000, len(fr), len(fr)) + fr)
print(len(frames))
PY
)
if "$RSTSCOPE" --pcap "$TMP/bad.pcap" --quiet --status-interval 0 --summary "$TMP/bad.json" 2>"$TMP/err"; then
    python3 - "$TMP/bad.json" "$nframes" <<'PY' && ok "hostile frames counted" || bad "hostile frames: $(cat "$TMP/bad.json")"
import json, sys
g = json.load(open(sys.argv[1]))
frames = int(sys.argv[2])
accounted = g["tcp_packets"] + g["non_ip"] + g["non_tcp"] + g["fragments"] + g["malformed_packets"]
assert g["packets"] == frames, g["packets"]
assert accounted == frames, accounted
assert g["malformed"]["l2_truncated"] == 14, g["malformed"]
assert g["malformed_packets"] > 40
assert sum(g["malformed"].values()) >= g["malformed_packets"]
PY
else
    bad "hostile frames: rstscope failed: $(tail -3 "$TMP/err")"
fi
finish
