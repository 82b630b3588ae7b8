#!/usr/bin/env bash
# One training step with 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1 thread
# (mpirun -np 2), the same global batch, on 2-D phantoms with the retina study's networks:
# `train` of the teacher (base 16, 4 levels, batch norm) and `distill` of the student (base 4,
# 4 levels) from it with the demo's method (MMD, attention transfer, entropy, EMA teacher,
# dynamic weights, target_bn). Patches 128², batch 8. A step's time is steps.jsonl's "sec"
# (rank 0's wall time of the whole step, the waits for the other rank included); the median
# over the steps after the first two; with ROUNDS=k the three runs are repeated k times in
# turn and each keeps its smallest median (on cores shared with other work, the round it was
# least disturbed); the last column is the median over rounds of each round's own speed-up
# 2x1 vs 1x1 (the runs of a round follow each other, so a host that drifts in speed moves
# both). Then bench_dist: the gradient sum's time per MB. Prints Markdown tables
# (docs/scaling.md).
#   [ROUNDS=k] tests/bench/run_dist_bench.sh [BUILD_DIR] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/train/phantom_cases.sh
build=$(cd "${1:-build}" && pwd)
steps=${2:-12}
rounds=${ROUNDS:-1}
dakd=$build/dakd
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d /tmp/dakd-dist-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
phantom_cases "$dakd" 160 5
{
    data_ini 128
    cat <<INI
[model]
dims = 2
teacher_base = 16
teacher_levels = 4
student_base = 4
student_levels = 4
teacher_checkpoint = teacher/model.safetensors
[train]
epochs = 1
steps_per_epoch = $steps
optimizer = sgd
lr = 0.01
momentum = 0.9
validate_every = 0
INI
    distill_ini
    echo "target_bn = true"
} > run.ini
"$dakd" --quiet train run.ini --set output.run_dir=teacher --set train.steps_per_epoch=2 \
    --set train.threads=2 > /dev/null
median() { # the median "sec" of steps.jsonl after the first two steps, in ms
    sed -n 's/.*"sec":\([0-9.e-]*\).*/\1/p' "$1" | tail -n +3 | sort -g |
        awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
             printf "%.0f", 1000 * m}'
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;" \
     "load average before: $(cut -d' ' -f1-3 /proc/loadavg); median of $((steps - 2)) steps," \
     "smallest of $rounds rounds"
echo
params() { # trainable parameters of a model file (running statistics left out)
    /usr/bin/python3 - "$1" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
print(sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in h.items()
          if k != "__metadata__" and "running" not in k and "num_batches" not in k) // 4)
PY
}
smaller() { awk "BEGIN {print ($1 < $2) ? $1 : $2}"; }
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }
echo "| command | network (parameters) | 1 rank × 1 thread ms | 1 rank × 2 threads ms |" \
     "2 ranks × 1 thread ms | speed-up 2×1 vs 1×1 | 2×1 vs 1×2 | per-round 2×1 vs 1×1:" \
     "median [range] |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for cmd in train distill; do
    a=1e9 b=1e9 c=1e9 per=""
    for ((k = 0; k < rounds; k++)); do
        "$dakd" --quiet $cmd run.ini --set output.run_dir=${cmd}11 --set train.threads=1 >/dev/null
        "$dakd" --quiet $cmd run.ini --set output.run_dir=${cmd}12 --set train.threads=2 >/dev/null
        mpirun -np 2 "$dakd" --quiet $cmd run.ini --set output.run_dir=${cmd}21 \
            --set train.threads=1 > /dev/null
        a=$(smaller "$a" "$(median ${cmd}11/steps.jsonl)")
        b=$(smaller "$b" "$(median ${cmd}12/steps.jsonl)")
        c=$(smaller "$c" "$(median ${cmd}21/steps.jsonl)")
        per="$per $(ratio "$(median ${cmd}11/steps.jsonl)" "$(median ${cmd}21/steps.jsonl)")"
    done
    rounds_col=$(echo $per | tr ' ' '\n' | sort -g | awk '{v[NR] = $1} END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f [%.2f, %.2f]", m, v[1], v[NR]}')
    net="teacher base 16, 4 levels"
    [ $cmd = distill ] && net="student base 4, 4 levels, + teacher forward"
    echo "| $cmd | $net ($(params ${cmd}11/model.safetensors)) | $a | $b | $c |" \
         "$(ratio "$a" "$c") | $(ratio "$b" "$c") | $rounds_col |"
done
echo
mpirun -np 2 "$build/tests/bench_dist" 21
