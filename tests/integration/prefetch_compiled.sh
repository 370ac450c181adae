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
# Stage 1's slot (1) and the SYN's host-table entry (1), stage 2's entry (3: every line of
# it, in each of the 2 loops that run stage 2), stage 3's IPv6 pair (2 sites). GCC 12 lays
# the function out so; another compiler may merge the stage 2 loops: then recount.
want=10
n=$(objdump -d --no-show-raw-insn "$bin" | awk '/<engine_input_burst_keys>:$/,/^$/' |
    grep -cE '\sprefetch(t[012]|nta|w)\s' || true)
if [ "$n" -lt "$want" ]; then
    echo "prefetch_compiled: engine_input_burst_keys in $bin has $n prefetch instructions," \
        "expected at least $want: the compiler dropped some" \
        "(see lib/engine.c, prefetch_entry; lib/host_table.h, host_table_prefetch)"
    exit 1
fi
echo "prefetch_compiled: $n prefetch instructions in engine_input_burst_keys"
