#!/usr/bin/env bash
# Remote-mirror encapsulations: each bundled capture is wrapped by wrap_pcap.py in every
# layout a remote SPAN delivers (GRE, ERSPAN I/II/III, VXLAN, MPLS L3VPN and pseudowire, MPLS
# carrying ERSPAN), with VLANs on the carrier and IPv4 or IPv6 outside, and replayed through
# the real binary. The wrapped capture must give the same per-cause counts and the same reset
# events as the bare one (compare_runs.py), and mirror copies left out of the sequence must
# be reported as lost, exactly.
. "$(dirname "$0")/common.sh"
WRAP=$RS_SRCDIR/tests/integration/wrap_pcap.py
CMP=$RS_SRCDIR/tests/integration/compare_runs.py

run() { # run PCAP PREFIX [options]: summary and events into PREFIX.*
    local pcap=$1 pre=$2
    shift 2
    # One fixed hash key for all: a replay's default key comes from the capture's bytes, so
    # a bare and a wrapped capture would put a connection on different workers.
    "$RSTSCOPE" --pcap "$pcap" --quiet --status-interval 0 --summary "$pre.summary.json" \
        --events "$pre.events.jsonl" --hash-seed 1 "$@" 2>"$pre.err"
}

# sample.pcap holds every cause of the bundled captures; server_abort.pcap is a second,
# independent recording (IPv6 inner frames are covered by the unit tests).
for pcap in "$DATA"/sample.pcap "$DATA"/server_abort.pcap; do
    name=$(basename "$pcap" .pcap)
    specs=("gre" "erspan1" "erspan2 --outer-vlans 1" "erspan3 --outer6" "vxlan --outer-vlans 2"
        "mpls-ip" "mpls-pw" "mpls-erspan" "gre --outer6 --outer-vlans 1")
    [ "$name" = sample ] || specs=("erspan2 --outer6" "vxlan" "mpls-ip")
    if ! run "$pcap" "$TMP/$name.bare"; then
        bad "$name: bare run failed: $(tail -3 "$TMP/$name.bare.err")"
        continue
    fi
    for spec in "${specs[@]}"; do
        read -r layout opts <<<"$spec"
        tag=$name.${spec// /_}
        # shellcheck disable=SC2086
        if ! python3 "$WRAP" "$layout" "$pcap" "$TMP/$tag.pcap" $opts >"$TMP/$tag.wrap.json"; then
            bad "$tag: wrap_pcap.py failed"
            continue
        fi
        n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wrapped"])' "$TMP/$tag.wrap.json")
        kind=${layout/mpls-ip/mpls}
        kind=${kind/mpls-pw/mpls}
        kind=${kind/mpls-erspan/erspan2}
        if ! run "$TMP/$tag.pcap" "$TMP/$tag"; then
            bad "$tag: rstscope failed: $(tail -3 "$TMP/$tag.err")"
        elif python3 "$CMP" "$TMP/$name.bare.summary.json" "$TMP/$name.bare.events.jsonl" \
            "$TMP/$tag.summary.json" "$TMP/$tag.events.jsonl" --lost 0 --encap "$kind=$n"; then
            ok "$tag: same counts and events as $name.pcap ($n frames tunnelled)"
        else
            bad "$tag: differs from $name.pcap"
        fi
    done
done

# Mirror loss: copies 5, 6 and 20 of the ERSPAN II session never arrive (the frames do: only
# their sequence numbers are skipped, as when the WAN drops other copies). Two workers: one
# session hashes to one worker.
for workers in 1 2; do
    python3 "$WRAP" erspan2 "$DATA/sample.pcap" "$TMP/loss.pcap" --drop-seq 5,6,20 >"$TMP/loss.json"
    run "$DATA/sample.pcap" "$TMP/loss.bare" --workers "$workers"
    if run "$TMP/loss.pcap" "$TMP/loss" --workers "$workers" &&
        python3 "$CMP" "$TMP/loss.bare.summary.json" "$TMP/loss.bare.events.jsonl" \
            "$TMP/loss.summary.json" "$TMP/loss.events.jsonl" --lost 3; then
        ok "erspan2 sequence gaps: 3 copies reported lost (workers=$workers)"
    else
        bad "erspan2 sequence gaps (workers=$workers)"
    fi
done

# The text report shows the tunnels and the loss.
"$RSTSCOPE" --pcap "$TMP/loss.pcap" --status-interval 0 >"$TMP/report.txt" 2>/dev/null
if grep -q 'erspan2' "$TMP/report.txt" && grep -Eq 'mirror loss +3 copies missing' "$TMP/report.txt"; then
    ok "text report names the tunnel and the loss"
else
    bad "text report: $(grep -i mirror "$TMP/report.txt")"
fi
finish
