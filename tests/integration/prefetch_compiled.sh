#!/usr/bin/env bash
# The engine's burst prefetches are in the shipped binary. GCC 12 once deleted the flow entry
# prefetch without a word (a helper holding only __builtin_prefetch looked pure to it), and
# a random-order 1M-flow run cost 1.5 times as much until a profile gave it away.
# usage: prefetch_compiled.sh BINARY
set -euo pipefail
bin="$1"
if [ "$(uname -m)" != x86_64 ] || ! command -v objdump >/dev/null; then
    echo "prefetch_compiled: needs x86-64 and objdump: skipped"
    exit 77
fi
dis=$(objdump -d --no-show-raw-insn "$bin")
# Prefetch instructions in the functions whose names match the awk alternative $1.
prefetches() {
    printf '%s\n' "$dis" | awk "/<($1)>:\$/,/^\$/" | grep -cE '\sprefetch(t[012]|nta|w)\s' || true
}
# Stage 1's slot (1) and the SYN's host-table entry (1), stage 2's entry (3: every line of
# it, in each of the 2 loops that run stage 2), stage 3's IPv6 pair (2 sites). GCC 12 lays
# the function out so; another compiler may merge the stage 2 loops: then recount.
want=10
n=$(prefetches engine_input_burst_keys)
if [ "$n" -lt "$want" ]; then
    echo "prefetch_compiled: engine_input_burst_keys in $bin has $n prefetch instructions," \
        "expected at least $want: the compiler dropped some" \
        "(see lib/engine.c, prefetch_entry; lib/host_table.h, host_table_prefetch)"
    exit 1
fi
echo "prefetch_compiled: $n prefetch instructions in engine_input_burst_keys"
# A reset storm's cut fetches the entry of the event cut next (make_rst_room(), every line of
# it: 3), wherever GCC puts that code: inlined into open_or_fold_rst() (GCC 12), or in
# take_rst_slot() or make_rst_room() out of line. It was deleted the same way from 2026-11-24
# (ba40122) to 2026-11-25 and cost ~5 % at 1M flows.
want=3
n=$(prefetches 'open_or_fold_rst|take_rst_slot|make_rst_room')
if [ "$n" -lt "$want" ]; then
    echo "prefetch_compiled: the storm cut's entry prefetch is gone from $bin ($n prefetch" \
        "instructions where $want were expected; see lib/engine.c, hold_prefetch)"
    exit 1
fi
echo "prefetch_compiled: $n prefetch instructions where reset storms cut holds short"
