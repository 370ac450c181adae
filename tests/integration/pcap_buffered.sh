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
if ! strace -qq -o /dev/null true >/dev/null 2>&1; then
    echo "pcap_buffered: strace cannot trace here (ptrace denied): skipped"
    exit 77
fi
# Copy under a name of its own, so that only the capture's reads match below.
cap=$TMP/buffered.pcap
cp "$DATA/sample.pcap" "$cap"
# -ff: a file per thread, so that no call is split into "unfinished" and "resumed" lines;
# -y: each fd with its path. LeakSanitizer (the ASan build) cannot run under ptrace: the
# other tests check leaks.
if ! ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -ff -y -qq -e trace=read -o "$TMP/trace" \
    "$RSTSCOPE" --pcap "$cap" --quiet --status-interval 0 >"$TMP/out" 2>&1; then
    bad "replay under strace failed: $(tail -3 "$TMP/out")"
    finish
    exit
fi
# The size every read() of the capture asked for, in any thread. Each open reads the file
# header on main (the frame count's, then net_pcap's): at least two, whatever the count
# thread and the worker read after.
sizes=$(python3 - "$cap" "$TMP"/trace.* <<'PY'
import re, sys
pat = re.compile(r"^read\(\d+<%s>, .*, (\d+)\) += " % re.escape(sys.argv[1]))
for name in sys.argv[2:]:
    for line in open(name, errors="replace"):
        m = pat.match(line)
        if m:
            print(m.group(1))
PY
)
reads=$(grep -c . <<<"$sizes" || true)
big=$(grep -cx 1048576 <<<"$sizes" || true)
if [ "$reads" -ge 2 ] && [ "$big" -eq "$reads" ]; then
    ok "$reads reads of the capture, each asking for 1 MB"
else
    bad "$reads reads of the capture, $big asking for 1 MB; sizes: $(sort <<<"$sizes" | uniq -c | tr -s ' \n' ' ')"
fi
finish
