#!/usr/bin/env bash
# The engine benchmark: dakd against PyTorch on the identical U-Net, both sides in one run,
# each configuration in its own process (so peak RSS is its own), same thread count, and
# PyTorch with OPENBLAS_NUM_THREADS=1 and dakd's OpenBLAS kernel (its transposed
# convolutions call the system OpenBLAS). Prints a Markdown table.
#   tests/bench/run_unet_bench.sh [BUILD_DIR] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
steps=${2:-10}
threads=${THREADS:-2}
bench="$build/tests/bench_unet"
[ -x "$bench" ] || { echo "build $bench first" >&2; exit 1; }
kernel=$("$build/dakd" --version | sed -n 's/^OpenBLAS kernel \([^ ]*\).*/\1/p')
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$kernel}
configs=(
  "train 2 16 8 128" "train 2 8 8 128" "train 3 8 2 64" "train 3 4 2 64"
  "infer 2 16 8 128" "infer 2 16 1 128" "infer 3 8 2 64" "infer 3 8 1 64"
)
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;" \
     "OpenBLAS kernel $OPENBLAS_CORETYPE; $threads threads; median of $steps steps"
echo
echo "| mode | net | batch × size | dakd ms | PyTorch ms | ratio | dakd GFLOP/s | dakd RSS MB | PyTorch RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in "${configs[@]}"; do
    read -r mode dims base batch size <<<"$c"
    args=(--mode "$mode" --dims "$dims" --base "$base" --batch "$batch" --size "$size" --steps "$steps")
    d=$("$bench" "${args[@]}" --threads "$threads")
    t=$(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tests/bench/torch_unet_bench.py "${args[@]}" --threads "$threads")
    dm=$(echo "$d" | field median_ms); tm=$(echo "$t" | field median_ms)
    ratio=$(awk -v a="$dm" -v b="$tm" 'BEGIN { printf "%.2f", a / b }')
    shape="${batch} × ${size}^${dims}"
    echo "| $mode | ${dims}-D base $base | $shape | $dm | $tm | $ratio | $(echo "$d" | field gflops) |" \
         "$(echo "$d" | field rss_mb) | $(echo "$t" | field rss_mb) |"
done
