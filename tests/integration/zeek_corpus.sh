#!/usr/bin/env bash
# Real traces from Zeek's test suite (../shared/corpus/zeek, outside the repository): every
# trace replays through the real binary without error, every frame is counted, no frame is
# malformed, and the RST packets equal what tcpdump counted (traces_manifest.tsv). Several
# link types (Ethernet, Linux cooked, BSD loopback) and pcapng are among them.
# Then Zeek's conn_state for every connection (expected_filled.tsv) against --flows.
# Skipped (exit 77) when the corpus is not beside the checkout.
. "$(dirname "$0")/common.sh"

CORPUS=${RS_ZEEK_CORPUS:-$RS_SRCDIR/../shared/corpus/zeek}
if [ ! -f "$CORPUS/traces_manifest.tsv" ]; then
    echo "SKIP: no Zeek corpus at $CORPUS"
    exit 77
fi

mkdir -p "$TMP/flows"
while IFS=$'\t' read -r trace _ _ _ _ packets rsts _; do
    [ "$trace" = trace ] && continue
    s=$TMP/$trace.json
    if ! "$RSTSCOPE" --pcap "$CORPUS/traces/$trace" --workers 2 --quiet --status-interval 0 \
        --summary "$s" --flows "$TMP/flows/$trace.flows.jsonl" 2>"$TMP/err"; then
        bad "$trace: rstscope failed: $(tail -2 "$TMP/err")"
        continue
    fi
    if msg=$(python3 - "$s" "$packets" "$rsts" <<'PY'
import json, sys
g, packets, rsts = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
errs = []
if g["packets"] != packets:
    errs.append(f"packets {g['packets']} != {packets}")
if g["rst_packets"] != rsts:
    errs.append(f"rst_packets {g['rst_packets']} != {rsts}")
if g["malformed_packets"]:
    errs.append(f"malformed {g['malformed']}")
if not 1 <= g["resets"] <= g["rst_packets"] or sum(g["causes"].values()) != g["resets"]:
    errs.append(f"resets {g['resets']} causes {g['causes']}")
print("; ".join(errs))
sys.exit(1 if errs else 0)
PY
    ); then
        ok "$trace: $packets frames, $rsts RSTs"
    else
        bad "$trace: $msg"
    fi
done <"$CORPUS/traces_manifest.tsv"

# Zeek's own conn_state per connection against rstscope's --flows records: at least 95 % agree,
# and every disagreement is explained in docs/zeek-compatibility.md.
if out=$(python3 "$RS_SRCDIR/tests/integration/zeek_compare.py" "$CORPUS/expected_filled.tsv" \
    "$TMP/flows" "$RS_SRCDIR/docs/zeek-compatibility.md" --table); then
    ok "$(echo "$out" | tail -1)"
else
    bad "zeek conn_state comparison"
    echo "$out" | grep -v "out of scope"
fi
finish
