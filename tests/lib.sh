# Sourced by every tests/t_*.sh. Each check prints one "PASS name" or "FAIL name: why" line;
# tests/run counts them.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# ENTK_BIN / ENTK_TOOLS: run the suite on other builds of the same sources (make asan-test)
BIN=${ENTK_BIN:-$ROOT/bin}
TOOLS=${ENTK_TOOLS:-$ROOT/tests/tools}
export PATH="$BIN:$TOOLS:$PATH"
SHARED=${ENTK_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/entk-test.XXXXXX")
export ENTK_CACHE_DIR="$T/cache"
trap 'rm -rf "$T"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# check NAME CMD...: passes if CMD exits 0
check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 3 | tr '\n' ' ')"; fi
}

# check_fails NAME CODE PATTERN CMD...: CMD must exit with CODE and print exactly one stderr line
# matching PATTERN (grep -E)
check_fails() {
    local name=$1 code=$2 pat=$3; shift 3
    local err rc
    "$@" >"$T/stdout" 2>"$T/stderr"
    rc=$?
    err=$(cat "$T/stderr")
    if [ "$rc" -ne "$code" ]; then fail "$name" "exit $rc, expected $code; stderr: $err"; return; fi
    if [ "$(grep -c . "$T/stderr")" -ne 1 ]; then fail "$name" "expected one stderr line, got: $err"; return; fi
    if ! grep -Eq -e "$pat" "$T/stderr"; then fail "$name" "stderr '$err' does not match /$pat/"; return; fi
    pass "$name"
}

# peer_results FILE N: one PASS/FAIL per "ok FILE ..." / "FAIL FILE ..." line a peer script wrote to
# FILE, and a check that it compared exactly N results
peer_results() {
    local out=$1 n=$2 status file rest
    while read -r status file rest; do
        [ "$status" = ok ] && pass "functorch agrees: $file $rest" || fail "functorch agrees: $file" "$rest"
    done < <(grep -E '^(ok|FAIL) ' "$out")
    [ "$(grep -cE '^(ok|FAIL) ' "$out")" -eq "$n" ] && pass "all $n Grams compared" || fail "all $n Grams compared" "$(tail -n 3 "$out")"
}
