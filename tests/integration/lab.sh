#!/usr/bin/env bash
# The lab of real resets (scripts/lab --short): the Linux kernel and netfilter reset connections
# for every cause in network namespaces, a SPAN-like tc mirred port records them; the capture is
# replayed through rstscope and every reset event is scored against the lab's verified labels
# (tests/integration/lab_eval.py: per cause precision and recall >= 0.95, no clean connection
# reported as reset).  See docs/lab.md.
# Exit: 0 pass, 1 fail, 77 skip (not root, no 'ip netns', tools missing).
. "$(dirname "$0")/common.sh"

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, iptables, tcpdump)"
command -v ip >/dev/null 2>&1 || skip "iproute2 'ip' not found"
ip netns list >/dev/null 2>&1 || skip "'ip netns' unavailable"
for t in tc iptables tcpdump ethtool python3; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not found (scripts/setup installs it)"
done

LAB=$TMP/lab
if ! timeout 240 "$RS_SRCDIR/scripts/lab" --short --out "$LAB" >"$TMP/lab.out" 2>&1; then
    tail -n 40 "$TMP/lab.out"
    bad "scripts/lab --short failed"
    finish
    exit 1
fi
grep -E '^\[lab\] (labels|capture:|excluded)' "$TMP/lab.out"
ok "scripts/lab --short: capture and labels"

# Options the labels name for the analyzer (the idle threshold of the idle_timeout scenario).
mapfile -t LAB_OPTS < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["analyzer_options"]))' "$LAB/labels.json")
OPTS=()
for ((i = 0; i < ${#LAB_OPTS[@]}; i += 2)); do
    if "$RSTSCOPE" --help 2>&1 | grep -q -- "${LAB_OPTS[i]}"; then
        OPTS+=("${LAB_OPTS[i]}" "${LAB_OPTS[i + 1]}")
    else
        echo "NOTE: rstscope has no ${LAB_OPTS[i]} option yet; replaying without it"
    fi
done
FLOWS=()
if "$RSTSCOPE" --help 2>&1 | grep -q -- "--flows"; then
    FLOWS=(--flows "$TMP/flows.jsonl")
fi

if "$RSTSCOPE" --pcap "$LAB/lab.pcap" --quiet --status-interval 0 --events "$TMP/ev.jsonl" \
    --summary "$TMP/s.json" "${FLOWS[@]}" "${OPTS[@]}" 2>"$TMP/rs.err"; then
    ok "rstscope replayed the lab capture (${OPTS[*]})"
else
    bad "rstscope failed on the lab capture: $(tail -3 "$TMP/rs.err")"
    finish
    exit 1
fi

EVAL=(python3 "$RS_SRCDIR/tests/integration/lab_eval.py" "$LAB/labels.json" "$TMP/ev.jsonl")
[ ${#FLOWS[@]} -eq 0 ] || EVAL+=(--flows "$TMP/flows.jsonl")
if "${EVAL[@]}"; then
    ok "lab: per-cause precision and recall >= 0.95, no clean connection reset"
else
    bad "lab: classification below target (table above)"
fi

# The lab capture as an ERSPAN III feed (IPv6 carrier) and an MPLS pseudowire: the same
# events and per-cause counts as the bare capture (tests/integration/wrap_pcap.py).
for layout in erspan3 mpls-pw; do
    python3 "$RS_SRCDIR/tests/integration/wrap_pcap.py" "$layout" "$LAB/lab.pcap" \
        "$TMP/lab.$layout.pcap" --outer6 >/dev/null
    if "$RSTSCOPE" --pcap "$TMP/lab.$layout.pcap" --quiet --status-interval 0 \
        --events "$TMP/ev.$layout.jsonl" --summary "$TMP/s.$layout.json" "${OPTS[@]}" \
        2>"$TMP/rs.$layout.err" &&
        python3 "$RS_SRCDIR/tests/integration/compare_runs.py" "$TMP/s.json" "$TMP/ev.jsonl" \
            "$TMP/s.$layout.json" "$TMP/ev.$layout.jsonl" --lost 0; then
        ok "lab capture wrapped in $layout: same counts and events"
    else
        bad "lab capture wrapped in $layout differs (or rstscope failed: $(tail -2 "$TMP/rs.$layout.err"))"
    fi
done
finish
