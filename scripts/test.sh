#!/usr/bin/env bash
# Build dakd with warnings as errors and run every CUnit suite under CTest.
#   scripts/test.sh              release build in build/
#   scripts/test.sh --sanitize   ASan + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
mode=()
dir=build
if [ "${1:-}" = "--sanitize" ]; then
    mode=(--sanitize)
    dir=build-asan
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
DAKD_CMAKE_ARGS="-DDAKD_WERROR=ON ${DAKD_CMAKE_ARGS:-}" scripts/bootstrap.sh --test "${mode[@]}" "$dir"
cd "$dir"
# --verbose shows every CUnit suite's own report; pipefail keeps ctest's exit status.
ctest --output-on-failure --verbose -j "${JOBS:-$(nproc)}" 2>&1 | tee ctest.log
