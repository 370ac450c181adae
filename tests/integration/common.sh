# Shared helpers of the integration tests (sourced).
set -u
RS_SRCDIR=${RS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RSTSCOPE=${RSTSCOPE:-$RS_SRCDIR/build/app/rstscope}
DATA=$RS_SRCDIR/tests/data
TMP=$(mktemp -d /tmp/rs-it.XXXXXX)
# EAL runtime files go to the test's own directory, never /var/run/dpdk.
export RUNTIME_DIRECTORY=$TMP/run
mkdir -p "$RUNTIME_DIRECTORY"
trap 'rm -rf "$TMP"' EXIT
PASSED=0
FAILED=0

ok() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
