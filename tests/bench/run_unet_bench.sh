#!/usr/bin/env bash
# The engine benchmark: dakd against PyTorch on the identical U-Net, both sides in one run,
# each configuration in its own process (so peak RSS is its own), same thread count, and
# PyTorch with OPENBLAS_NUM_THREADS=1 and dakd's OpenBLAS kernel (its transposed
# convolutions call the system OpenBLAS). ROUNDS (default 2) interleaved rounds: every round
# runs each configuration in dakd and then in PyTorch; a time is the median over the rounds
# of each round's median step (per-round medians beside it), the ratio the median of the
# rounds' ratios (each pair measured back to back: on a shared machine the speed of both
# drifts between rounds). Prints a Markdown table.
#   tests/bench/run_unet_bench.sh [BUILD_DIR] [STEPS]          (THREADS=, ROUNDS= to change)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
steps=${2:-10}
threads=${THREADS:-2}
rounds=${ROUNDS:-2}
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
     "OpenBLAS kernel $OPENBLAS_CORETYPE; $threads threads; median of $steps steps a round," \
     "$rounds interleaved rounds"
echo
# median of the numbers on stdin
med() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
                                            else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A dms tms dgf drss trss
for ((r = 0; r < rounds; r++)); do
    for i in "${!configs[@]}"; do
        read -r mode dims base batch size <<<"${configs[$i]}"
        args=(--mode "$mode" --dims "$dims" --base "$base" --batch "$batch" --size "$size" --steps "$steps")
        d=$("$bench" "${args[@]}" --threads "$threads")
        t=$(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tests/bench/torch_unet_bench.py "${args[@]}" --threads "$threads")
        dms[$i]+="$(echo "$d" | field median_ms) "; tms[$i]+="$(echo "$t" | field median_ms) "
        dgf[$i]+="$(echo "$d" | field gflops) "
        drss[$i]+="$(echo "$d" | field rss_mb) "; trss[$i]+="$(echo "$t" | field rss_mb) "
    done
done
echo "| mode | net | batch × size | dakd ms | PyTorch ms | ratio | dakd ms per round | PyTorch ms per round | dakd GFLOP/s | dakd RSS MB | PyTorch RSS MB | RSS ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for i in "${!configs[@]}"; do
    read -r mode dims base batch size <<<"${configs[$i]}"
    dm=$(tr ' ' '\n' <<<"${dms[$i]}" | grep . | med); tm=$(tr ' ' '\n' <<<"${tms[$i]}" | grep . | med)
    dr=$(tr ' ' '\n' <<<"${drss[$i]}" | grep . | sort -g | tail -1)
    tr_=$(tr ' ' '\n' <<<"${trss[$i]}" | grep . | sort -g | tail -1)
    ratio=$(paste -d' ' <(tr ' ' '\n' <<<"${dms[$i]}" | grep .) <(tr ' ' '\n' <<<"${tms[$i]}" | grep .) |
            awk '{ print $1 / $2 }' | med | awk '{ printf "%.2f", $1 }')
    rss=$(awk -v a="$dr" -v b="$tr_" 'BEGIN { printf "%.2f", a / b }')
    echo "| $mode | ${dims}-D base $base | ${batch} × ${size}^${dims} | $dm | $tm | $ratio |" \
         "${dms[$i]% } | ${tms[$i]% } | $(tr ' ' '\n' <<<"${dgf[$i]}" | grep . | med) | $dr | $tr_ | $rss |"
done
