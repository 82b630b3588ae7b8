#!/usr/bin/env bash
# Install the Debian 12 packages dakd needs (only those missing), then configure and build.
#   scripts/bootstrap.sh [--test] [--sanitize] [BUILD_DIR]
#     --test      also install what the test suites use (nibabel and pydicom as oracles,
#                 mricron-data, dcm2niix, python3-onnx; onnxruntime-node from npm)
#     --sanitize  build with AddressSanitizer + UndefinedBehaviorSanitizer (default dir build-asan)
#     --fuzz      build the libFuzzer harnesses of tests/fuzz with clang (default dir build-fuzz;
#                 scripts/fuzz.sh runs them)
#     --target T  build only target T (e.g. dakd_cli, the command-line tool)
# Environment: DAKD_CMAKE_ARGS adds CMake options; JOBS sets build parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
sanitize=0
fuzz=0
build_dir=""
target=()
next_is_target=0
for arg in "$@"; do
    if [ $next_is_target = 1 ]; then target=(--target "$arg"); next_is_target=0; continue; fi
    case "$arg" in
        --target) next_is_target=1 ;;
        --test) want_tests=1 ;;
        --sanitize) sanitize=1 ;;
        --fuzz) fuzz=1 ;;
        -*) echo "bootstrap: unknown option $arg" >&2; exit 1 ;;
        *) build_dir="$arg" ;;
    esac
done
if [ -z "$build_dir" ]; then
    build_dir=build
    [ $sanitize = 1 ] && build_dir=build-asan
    [ $fuzz = 1 ] && build_dir=build-fuzz
fi

build_pkgs=(build-essential cmake pkg-config git libopenblas-dev libnifti2-dev libpng-dev
            zlib1g-dev libinih-dev libcjson-dev libcunit1-dev libinsighttoolkit5-dev
            libssl-dev libfftw3-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev
            libdeflate-dev libopenmpi-dev openmpi-bin)
# pydicom is the DICOM oracle; python3-gdcm lets it decode JPEG-LS and 12-bit JPEG; dcm2niix
# is the reference converter for tests/bench/bench_dicom_load; PyTorch is the oracle for the
# network engine (tests/nn/test_parity.c, test_params.c) and the peer in its benchmark;
# valgrind runs the commands a user runs under memcheck (scripts/valgrind.sh, in CI);
# dicom3tools' dciodvfy validates the DICOM SEG objects predict writes (tests/eval/test_seg_out.c).
test_pkgs=(python3 python3-numpy python3-nibabel mricron-data python3-pydicom python3-pil
           python3-gdcm dcm2niix python3-torch python3-scipy plastimatch chromium
           fonts-dejavu-core unzip valgrind python3-onnx dicom3tools)
# The fuzzers: clang with its libFuzzer and sanitizer runtimes, and its OpenMP.
fuzz_pkgs=(clang libclang-rt-dev libomp-dev)

pkgs=("${build_pkgs[@]}")
[ $want_tests = 1 ] && pkgs+=("${test_pkgs[@]}")
[ $fuzz = 1 ] && pkgs+=("${fuzz_pkgs[@]}")
# ONNX Runtime for the export test comes from npm (below); Debian's node and npm when no npm
# is on the PATH (a NodeSource nodejs brings its own).
[ $want_tests = 1 ] && ! command -v npm >/dev/null && pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    sudo_cmd=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        sudo_cmd=(sudo)
    fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# onnxruntime-node at the version tests/tools/onnx/package-lock.json pins, into its
# node_modules (git-ignored), when that version is not there yet. Its CPU runtime ships in the
# npm package; ONNXRUNTIME_NODE_INSTALL=skip stops its install script fetching CUDA providers.
if [ $want_tests = 1 ]; then
    ort=tests/tools/onnx
    if ! (cd $ort && node -e "process.exit(require('onnxruntime-node/package.json').version ===
                               require('./package.json').dependencies['onnxruntime-node'] ? 0 : 1)"
          ) 2>/dev/null; then
        echo "bootstrap: installing onnxruntime-node into $ort"
        (cd $ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
    fi
fi

cmake_args=(-DCMAKE_BUILD_TYPE=Release)
[ $sanitize = 1 ] && cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDAKD_SANITIZE=ON)
# clang for the C code, g++ for the ITK bridge (CMakeLists.txt, DAKD_FUZZ); no test suites
if [ $fuzz = 1 ]; then
    cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang
                -DCMAKE_CXX_COMPILER=g++ -DDAKD_FUZZ=ON -DDAKD_BUILD_TESTS=OFF)
    [ ${#target[@]} -gt 0 ] || target=(--target dakd_fuzzers)
fi
# shellcheck disable=SC2206
extra=(${DAKD_CMAKE_ARGS:-})
cmake -S . -B "$build_dir" "${cmake_args[@]}" "${extra[@]}" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" "${target[@]}"
