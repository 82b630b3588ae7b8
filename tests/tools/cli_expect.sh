# Shell helpers for the tests that drive the dakd binary (sourced, not run):
#   fail MSG                   count a failure and print it
#   expect RC PATTERN... -- CMD  run CMD, want exit RC and every PATTERN (grep -F) in its
#                              output (kept in out.txt of the current folder)
# The caller ends with: [ $fails = 0 ] || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() {
    local rc=$1; shift
    local pats=()
    while [ "$1" != "--" ]; do pats+=("$1"); shift; done
    shift
    "$@" > out.txt 2>&1
    local got=$?
    [ "$got" = "$rc" ] || fail "$* exited $got, wanted $rc: $(cat out.txt)"
    for p in "${pats[@]}"; do
        grep -qF -- "$p" out.txt || fail "$*: no '$p' in: $(cat out.txt)"
    done
}
