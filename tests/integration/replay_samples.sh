#!/usr/bin/env bash
# Replays every bundled capture (recorded from real Linux TCP, see tests/data/README.md)
# through the real rstscope binary and DPDK's net_pcap device, and compares per-cause counts
# and every reset event with the recorded ground truth. Single worker and two workers.
. "$(dirname "$0")/common.sh"

for pcap in "$DATA"/*.pcap; do
    name=$(basename "$pcap")
    for workers in 1 2; do
        out=$TMP/$name.$workers
        if ! "$RSTSCOPE" --pcap "$pcap" --workers "$workers" --quiet --status-interval 0 \
            --summary "$out.summary.json" --events "$out.events.jsonl" 2>"$out.err"; then
            bad "$name workers=$workers: rstscope failed: $(tail -3 "$out.err")"
            continue
        fi
        if python3 "$RS_SRCDIR/tests/integration/check_replay.py" "$DATA/expected.json" "$name" \
            "$out.summary.json" "$out.events.jsonl"; then
            ok "$name workers=$workers"
        else
            bad "$name workers=$workers"
        fi
    done
done

# pcapng input: the same frames in the newer format give the same answer.
python3 "$RS_SRCDIR/tests/integration/to_pcapng.py" "$DATA/sample.pcap" "$TMP/sample.pcapng"
if "$RSTSCOPE" --pcap "$TMP/sample.pcapng" --quiet --status-interval 0 \
    --summary "$TMP/ng.summary.json" --events "$TMP/ng.events.jsonl" 2>"$TMP/ng.err" &&
    python3 "$RS_SRCDIR/tests/integration/check_replay.py" "$DATA/expected.json" sample.pcap \
        "$TMP/ng.summary.json" "$TMP/ng.events.jsonl"; then
    ok "sample as pcapng"
else
    bad "sample as pcapng: $(tail -3 "$TMP/ng.err")"
fi

# The text report names every cause with its count.
"$RSTSCOPE" --pcap "$DATA/sample.pcap" --status-interval 0 >"$TMP/report.txt" 2>/dev/null
if grep -Eq '^ +refused +3 ' "$TMP/report.txt" && grep -Eq '^ +reset events +12$' "$TMP/report.txt"; then
    ok "text report lists causes"
else
    bad "text report: $(cat "$TMP/report.txt")"
fi
finish
