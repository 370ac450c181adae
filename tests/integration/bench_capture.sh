#!/usr/bin/env bash
# The benchmark's capture generator (tests/bench/gen_bench.c): its ground truth is what
# rstscope finds, with one worker and behind the distributor; a seed always writes the same
# file (scripts/bench reuses cached captures by name); frames are cut at the snaplen with
# their wire length kept; bad arguments are refused with the offending value.
. "$(dirname "$0")/common.sh"
GEN_BENCH=${GEN_BENCH:-$RS_SRCDIR/build/tests/gen_bench}

cap=$TMP/bench.pcap
if ! "$GEN_BENCH" "$cap" 4000 5 >"$TMP/truth.json" 2>"$TMP/err"; then
    bad "gen_bench failed: $(tail -3 "$TMP/err")"
    finish
    exit
fi
for workers in 1 2; do
    s=$TMP/summary.$workers.json
    if "$RSTSCOPE" --pcap "$cap" --workers "$workers" --quiet --status-interval 0 \
        --summary "$s" 2>"$TMP/err" &&
        python3 "$RS_SRCDIR/scripts/lib/truth.py" "$s" "$TMP/truth.json"; then
        ok "workers=$workers: every cause as the generator made it"
    else
        bad "workers=$workers: differs from the ground truth $(tail -3 "$TMP/err")"
    fi
done

# Every connection is open at once (the phase-by-phase order): a table of 4000 holds them
# all, one of 2000 overflows.
"$RSTSCOPE" --pcap "$cap" --max-flows 2000 --quiet --status-interval 0 \
    --summary "$TMP/small.json" 2>"$TMP/err" &&
    python3 - "$TMP/summary.1.json" "$TMP/small.json" "$TMP/truth.json" <<'PY' && ok "all flows open at once" ||
import json, sys
full, small, t = (json.load(open(a)) for a in sys.argv[1:4])
assert full["flows"]["created"] == t["connections"], full["flows"]
assert full["flows"]["evicted"] == full["flows"]["dropped"] == 0, full["flows"]
assert small["flows"]["evicted"] + small["flows"]["dropped"] > 0, small["flows"]
assert t["phases"] == 13 and t["resets"] == sum(t["causes"].values()), t
PY
    bad "flows: $(tail -3 "$TMP/err")"

# A table sized to the connections leaves 4000 / 16 = 250 held-event slots for ~2400 resets
# within one hold: the storm fills the pool, each new reset takes the slot of the one nearest
# its verdict, and every cause still comes out as generated. Counted, and said in the report.
if "$RSTSCOPE" --pcap "$cap" --max-flows 4000 --status-interval 0 --summary "$TMP/storm.json" \
    >"$TMP/storm.out" 2>"$TMP/err" &&
    python3 "$RS_SRCDIR/scripts/lib/truth.py" "$TMP/storm.json" "$TMP/truth.json" &&
    cut=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['flows']['rst_pool_full'])" \
        "$TMP/storm.json") && [ "$cut" -gt 0 ] &&
    grep -q "HOLDS CUT  *$cut reset events judged before their hold ran out" "$TMP/storm.out"; then
    ok "reset storm: $cut holds cut short to make room, every cause as generated"
else
    bad "reset storm, 250 held-event slots: ${cut:-?} cut; $(grep -i 'holds cut' "$TMP/storm.out"; tail -3 "$TMP/err")"
fi

"$GEN_BENCH" "$TMP/again.pcap" 4000 5 >"$TMP/again.json" &&
    "$GEN_BENCH" "$TMP/other.pcap" 4000 6 >/dev/null &&
    cmp -s "$cap" "$TMP/again.pcap" && cmp -s "$TMP/truth.json" "$TMP/again.json" &&
    ! cmp -s "$cap" "$TMP/other.pcap" &&
    ok "one seed, one file; another seed, another file" || bad "output not fixed by the seed"

"$GEN_BENCH" "$TMP/snap.pcap" 500 3 --snaplen 96 --phase-ms 10 >"$TMP/snap.json" &&
    python3 - "$TMP/snap.pcap" "$RS_SRCDIR/scripts/lib" <<'PY' && ok "--snaplen cuts frames, keeps wire length" ||
import sys
sys.path.insert(0, sys.argv[2])
from pcapio import read_pcap
link, recs = read_pcap(sys.argv[1])
assert link == 1 and recs
assert all(len(fr) == min(orig, 96) for _, _, fr, orig in recs)
assert max(orig for *_, orig in recs) > 1448 and min(len(fr) for _, _, fr, _ in recs) >= 54
ts = [s * 1000000 + u for s, u, _, _ in recs]
assert ts == sorted(ts) and ts[-1] - ts[0] < 13 * 10000, (ts[0], ts[-1])
PY
    bad "--snaplen 96 --phase-ms 10"

refused=0
for args in "0 5" "abc 5" "10 -1" "10 5 --snaplen 10" "10 5 --phase-ms x" "10 5 --bogus"; do
    # shellcheck disable=SC2086
    if "$GEN_BENCH" "$TMP/bad.pcap" $args >/dev/null 2>"$TMP/err"; then
        bad "gen_bench accepted: $args"
    elif ! grep -q "usage\|bad" "$TMP/err"; then
        bad "gen_bench $args: no clear error: $(cat "$TMP/err")"
    else
        refused=$((refused + 1))
    fi
done
[ "$refused" -eq 6 ] && ok "6 bad argument lists refused, each with a message"
"$GEN_BENCH" /nonexistent/dir/x.pcap 10 5 >/dev/null 2>"$TMP/err" &&
    bad "unwritable output accepted" ||
    { grep -q "/nonexistent/dir/x.pcap" "$TMP/err" && ok "unwritable output named"; } ||
    bad "unwritable output: $(cat "$TMP/err")"
if [ -w /dev/full ]; then
    "$GEN_BENCH" /dev/full 100 5 >/dev/null 2>"$TMP/err" &&
        bad "a failed write passed for a capture" ||
        { grep -q "write failed" "$TMP/err" && ok "a failed write (full disk) fails, named"; } ||
        bad "full disk: $(cat "$TMP/err")"
fi
finish
