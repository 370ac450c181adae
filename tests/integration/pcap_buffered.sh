#!/usr/bin/env bash
# A replay reads its capture in 1 MB read()s, net_pcap's pass and the frame count's alike: the
# executable's pcap_open_offline() (app/pcap_open.c) must win over libpcap's for the net_pcap
# plugin. Losing that (a changed link, net_pcap calling another libpcap open) costs the worker
# ~8 % of a large replay, and nothing else would notice.
source "$(dirname "$0")/common.sh"
if ! command -v strace >/dev/null; then
    echo "pcap_buffered: needs strace: skipped"
    exit 77
fi
# Copy under a name of its own, so that only the capture's opens match below.
cap=$TMP/buffered.pcap
cp "$DATA/sample.pcap" "$cap"
# LeakSanitizer (the ASan build) cannot run under ptrace: the other tests check leaks.
if ! ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -e trace=openat,read -o "$TMP/trace" \
    "$RSTSCOPE" --pcap "$cap" --quiet --status-interval 0 >"$TMP/out" 2>&1; then
    bad "replay under strace failed: $(tail -3 "$TMP/out")"
    finish
    exit
fi
# Every fd the capture was opened on, and the size of the first read() asked of each.
sizes=$(python3 - "$cap" "$TMP/trace" <<'PY'
import re, sys
cap, fds = '"%s"' % sys.argv[1], {}
for line in open(sys.argv[2]):
    m = re.search(r"openat\(.*\) = (\d+)$", line)
    if m and cap in line:
        fds[m.group(1)] = 1
        continue
    m = re.search(r"read\((\d+), .*, (\d+)\) += ", line)
    if m and fds.pop(m.group(1), None):
        print(m.group(2))
PY
)
opens=$(grep -c "\"$cap\"" "$TMP/trace" || true)
big=$(grep -cx 1048576 <<<"$sizes" || true)
if [ "$opens" -ge 2 ] && [ "$big" -eq "$opens" ]; then
    ok "$opens opens of the capture, each read in 1 MB blocks"
else
    bad "$opens opens of the capture, $big read in 1 MB blocks; first read sizes: $(echo $sizes)"
fi
finish
