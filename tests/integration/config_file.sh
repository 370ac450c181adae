#!/usr/bin/env bash
# --config FILE (inih): settings from the file are applied, the command line overrides them,
# every error names the file and the line, and the NOC breakdowns (per subnet, exclusions
# counted apart) match the events of a plain run.
. "$(dirname "$0")/common.sh"

# A plain run: the reference.
"$RSTSCOPE" --pcap "$DATA/sample.pcap" --quiet --status-interval 0 --summary "$TMP/ref.json" \
    --events "$TMP/ref.jsonl" 2>"$TMP/ref.err" || bad "plain run failed: $(tail -2 "$TMP/ref.err")"

cat >"$TMP/a.conf" <<CONF
; rstscope test configuration
[output]
summary = $TMP/from-file.json
events = $TMP/from-file.jsonl
quiet = true
status-interval = 0

[analysis]
workers = 2
rst-hold-ms = 400

[subnets]
lab = 10.99.0.0/24
lab-v6 = 2001:db8::/32
elsewhere = 10.1.0.0/16
CONF
if "$RSTSCOPE" --pcap "$DATA/sample.pcap" --config "$TMP/a.conf" 2>"$TMP/a.err" &&
    python3 - "$TMP/ref.json" "$TMP/from-file.json" <<'PY'
import json, sys
ref, got = (json.load(open(p)) for p in sys.argv[1:3])
assert got["workers"] == 2, got["workers"]
assert got["causes"] == ref["causes"], (got["causes"], ref["causes"])
sub = got["breakdown"]["subnets"]
assert sub["lab"] == ref["causes"], sub["lab"]          # every event is in 10.99.0.0/24
assert sum(sub["elsewhere"].values()) == 0 and sum(sub["lab-v6"].values()) == 0
assert sum(sub["lab"].values()) == ref["resets"] > 0
PY
then
    ok "settings and [subnets] from the file (workers=2, per-subnet counts = all causes)"
else
    bad "config file run: $(tail -3 "$TMP/a.err")"
fi

# The command line overrides the file: the summary goes where the command line says.
rm -f "$TMP/from-file.json"
if "$RSTSCOPE" --pcap "$DATA/sample.pcap" --config "$TMP/a.conf" --summary "$TMP/cli.json" \
    --workers 1 2>/dev/null && [ -s "$TMP/cli.json" ] && [ ! -e "$TMP/from-file.json" ] &&
    grep -q '"workers":1,' "$TMP/cli.json"; then
    ok "command line overrides the file"
else
    bad "command line did not override the file"
fi

# Exclusions: events touching the list are counted apart and not written.
cat >"$TMP/x.conf" <<CONF
[output]
quiet = yes
status-interval = 0
[exclude]
health-checker = 10.99.0.1
CONF
if "$RSTSCOPE" --pcap "$DATA/sample.pcap" --config "$TMP/x.conf" --summary "$TMP/x.json" \
    --events "$TMP/x.jsonl" 2>/dev/null &&
    python3 - "$TMP/ref.json" "$TMP/x.json" "$TMP/x.jsonl" <<'PY'
import json, sys
ref, got = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ex = got["breakdown"]["excluded"]["health-checker"]
assert ex == ref["causes"], ex
assert got["resets"] == 0 and sum(got["causes"].values()) == 0, got["causes"]
assert open(sys.argv[3]).read() == ""
PY
then
    ok "[exclude]: all $(grep -c . "$TMP/ref.jsonl") events of 10.99.0.1 counted apart"
else
    bad "exclusion list"
fi

# Errors: file and line.
check_err() { # check_err NAME CONTENT EXPECTED_REGEX
    printf '%b' "$2" >"$TMP/$1.conf"
    if "$RSTSCOPE" --config "$TMP/$1.conf" --check-config >/dev/null 2>"$TMP/$1.err"; then
        bad "$1: accepted"
    elif grep -Eq "$3" "$TMP/$1.err"; then
        ok "$1: $(cat "$TMP/$1.err")"
    else
        bad "$1: got '$(cat "$TMP/$1.err")', want /$3/"
    fi
}
check_err bad-value '[analysis]\nworkers = 2\n\nmax-flows = 3\n' "$TMP/bad-value.conf:4: invalid value '3' for --max-flows"
check_err unknown-key '[analysis]\nworkerz = 2\n' "unknown-key.conf:2: unknown key 'workerz'"
# inih reports a section through its first key: the error names that line.
check_err unknown-section '[output]\nquiet = true\n[nope]\nx = 1\n' "unknown-section.conf:4: unknown section \\[nope\\]"
check_err syntax '[output]\n; comment\nquiet\n' "syntax.conf:3: syntax error"
check_err bool '[output]\nquiet = maybe\n' "bool.conf:2: 'maybe' for quiet: expected true or false"
check_err cidr '[subnets]\ndc-east = 10.1.0.0/33\n' "cidr.conf:2: invalid value 'dc-east=10.1.0.0/33' for --subnet"
check_err redis-only '[redis]\nsensor = s1\n' "need --redis"
if "$RSTSCOPE" --config "$TMP/none.conf" --check-config 2>"$TMP/none.err"; then
    bad "missing file accepted"
else
    grep -q "cannot read --config $TMP/none.conf" "$TMP/none.err" && ok "missing file named" ||
        bad "missing file: $(cat "$TMP/none.err")"
fi
# The shipped example is valid as it stands.
if "$RSTSCOPE" --config "$RS_SRCDIR/conf/rstscope.conf" --check-config >/dev/null 2>"$TMP/ship.err"; then
    ok "conf/rstscope.conf passes --check-config"
else
    bad "conf/rstscope.conf: $(cat "$TMP/ship.err")"
fi
finish
