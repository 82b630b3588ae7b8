#!/usr/bin/env bash
# Build the libFuzzer harnesses of tests/fuzz (clang, ASan + UBSan; build-fuzz/), replay every
# committed input under the sanitizers, then run each fuzzer for SECONDS.
#   scripts/fuzz.sh [--merge] [--only NAME[,NAME...]] [SECONDS]     (default 60 s each)
#     --merge   add the new inputs that reach new code to tests/fuzz/corpus/<fuzzer>/
#               (libFuzzer -merge=1); without it the runs work on a copy in build-fuzz/.
#     --only    these fuzzers only (fuzz_nifti, fuzz_png, ...; see tests/fuzz/README.md).
# DICOM: GDCM parses in the fuzzer's own process, so its assertions stop the fuzzer (each is
# a file the structure check should refuse first); with DAKD_FUZZ_DICOM_CHILD=1 it parses in
# the child process, as for a user, and the inputs of tests/fuzz/gdcm_open/ (assertions not
# yet refused) are replayed too: they must end as errors. CI runs that way.
# Exit status 1 when any replay or run crashes, leaks, times out (10 s an input; a slow
# input is replayed once to tell it from a loaded machine, see slow_units) or allocates
# beyond the limits below; the inputs that did are kept in
# build-fuzz/artifacts/<date-time>/<fuzzer>/, one folder a run (copy each into
# tests/fuzz/regressions/<fuzzer>/ once the bug is fixed).
#
# Limits. The readers check every size a header claims against the volume size limit
# (DAKD_MAX_VOLUME_BYTES, lib/io/limit.c) before they allocate. Here that limit is 64 MiB
# and libFuzzer's -malloc_limit_mb is 80: a volume at the limit, and its decode buffer of
# the same size, are legal, but a single allocation beyond the limit plus 16 MiB of slack
# for the libraries' own buffers is reported as a crash ("out-of-memory (malloc(N))") -
# a reader that allocated from a header before checking it. -rss_limit_mb 1536 leaves room
# for two such buffers, the copies a reader makes and ASan's shadow and quarantine.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
merge=0
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --merge) merge=1 ;;
        --only) only=${2:?--only needs fuzzer names}; shift ;;
        -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
        *) seconds=$1 ;;
    esac
    shift
done

fuzzers=(fuzz_nifti fuzz_png fuzz_metaimage fuzz_dicom fuzz_dicom_seg fuzz_config fuzz_study
         fuzz_cases fuzz_safetensors fuzz_model fuzz_labels fuzz_import fuzz_compare)
if [ -n "$only" ]; then IFS=, read -r -a fuzzers <<< "$only"; fi

scripts/bootstrap.sh --fuzz build-fuzz >/dev/null
bin=build-fuzz/tests/fuzz
out=build-fuzz/fuzz-runs
arts=build-fuzz/artifacts/$(date +%Y%m%d-%H%M%S)
rm -rf "$out"
mkdir -p "$out" "$arts"

export DAKD_MAX_VOLUME_BYTES=64MiB
# leaks inside dependencies, each justified there
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
# Fuzzer f with its arguments. ITK's and GDCM's C++ allocations go through libstdc++'s
# operator new, which keeps no frame pointer: only the slow unwinder sees past it to the
# library that leaked (lsan.supp names libraries), so those fuzzers use it.
fuzz() {
    local f=$1
    shift
    case $f in
        fuzz_metaimage | fuzz_dicom | fuzz_dicom_seg)
            ASAN_OPTIONS=fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS} "$bin/$f" "$@" ;;
        *) "$bin/$f" "$@" ;;
    esac
}
# the harnesses write their inputs as files: a memory file system when there is one
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
limits=(-rss_limit_mb=1536 -malloc_limit_mb=80 -timeout=10)

failed=0
# The crash, leak, timeout and out-of-memory inputs libFuzzer wrote for one fuzzer.
artifacts() { find "$arts/$1" -type f ! -name 'slow-unit-*' 2>/dev/null | wc -l; }
# libFuzzer also keeps an input that ran 10 s or more but under its timeout check (which
# fires between 10 and 16 s) as slow-unit-*. On a shared, loaded machine that can be the
# machine, not the input: each is replayed alone under the same limits, and counts as a
# failure only if it fails or takes 10 s or more again. Prints the failures' count.
slow_units() {
    local f=$1 bad=0 s took
    for s in $(find "$arts/$f" -type f -name 'slow-unit-*' 2>/dev/null); do
        local t0=$(date +%s) rc=0
        fuzz "$f" "${limits[@]}" -runs=0 "$s" > "$out/$f.slow.log" 2>&1 || rc=$?
        took=$(( $(date +%s) - t0 ))
        if [ $rc != 0 ] || [ $took -ge 10 ]; then
            bad=$((bad + 1))
            echo "fuzz: $f: $s took 10 s or more, and again $took s on replay (exit $rc)" >&2
        else
            echo "fuzz: $f: $s took 10 s or more once, $took s on replay: not counted" >&2
        fi
    done
    echo $bad
}

# Replay: every regression input and seed, once each.
for f in "${fuzzers[@]}"; do
    [ -x "$bin/$f" ] || { echo "fuzz: no fuzzer $f" >&2; exit 2; }
    mkdir -p "$arts/$f"
    dirs=("tests/fuzz/regressions/$f" "tests/fuzz/corpus/$f")
    if [ "${DAKD_FUZZ_DICOM_CHILD:-0}" = 1 ] && [ -d "tests/fuzz/gdcm_open/$f" ]; then
        dirs+=("tests/fuzz/gdcm_open/$f")
    fi
    if ! fuzz "$f" "${limits[@]}" -runs=0 -artifact_prefix="$arts/$f/" \
            "${dirs[@]}" > "$out/$f.replay.log" 2>&1; then
        echo "fuzz: $f: replaying ${dirs[*]} FAILED" \
             "(build-fuzz/fuzz-runs/$f.replay.log)" >&2
        failed=1
    fi
done
echo "fuzz: replayed every regression input and seed of ${#fuzzers[@]} fuzzers"

printf '%-18s %8s %10s %8s %12s\n' fuzzer seconds execs crashes corpus
for f in "${fuzzers[@]}"; do
    work=build-fuzz/corpus/$f
    mkdir -p "$work"
    cp -n "tests/fuzz/corpus/$f"/* "$work"/ 2>/dev/null || true
    log=$out/$f.log
    start=$(date +%s)
    rc=0
    fuzz "$f" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$arts/$f/" "$work" > "$log" 2>&1 || rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    crashes=$(( $(artifacts "$f") + $(slow_units "$f") ))
    [ $rc != 0 ] && [ "$crashes" = 0 ] && crashes=1 # died without an artifact
    if [ $merge = 1 ]; then
        fuzz "$f" "${limits[@]}" -merge=1 "tests/fuzz/corpus/$f" "$work" \
            > "$out/$f.merge.log" 2>&1 || true
    fi
    printf '%-18s %8s %10s %8s %12s\n' "$f" "$took" "${execs:-?}" "$crashes" \
        "$(find "$work" -type f | wc -l) files"
    if [ $rc != 0 ] || [ "$crashes" != 0 ]; then
        echo "fuzz: $f FAILED (exit $rc): $log; inputs in $arts/$f/" >&2
        grep -m3 -E '^==[0-9]+==ERROR|SUMMARY|fuzz harness:|Assertion|Slow unit' "$log" >&2 || true
        failed=1
    fi
done
exit $failed
