#!/usr/bin/env bash
# The demo study (pipelines/demo.ini, 20 stages) four ways, wall time of the whole `dakd run`:
# serial with 1 and with 2 threads, [study] jobs = 2 with 1 thread each, and
# `mpirun -np 2 dakd run` with 1 thread per rank. Runs with the same thread count give the
# same model files, which the script checks (serial 1 thread vs jobs = 2 vs -np 2). With
# ROUNDS=k the four runs repeat k times in turn; the table shows the median per way and the
# speed-ups against serial. Prints a Markdown table (docs/scaling.md).
#   [ROUNDS=k] tests/bench/run_study_bench.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(cd "${1:-build}" && pwd)
rounds=${ROUNDS:-1}
dakd=$build/dakd
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d /tmp/dakd-study-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
ways=(serial_t1 serial_t2 jobs2_t1 np2_t1)
once() { # way round -> seconds
    local way=$1 dir=$work/$1.$2 t0 t1
    local cmd=("$dakd" --quiet run pipelines/demo.ini --set "study.run_dir=$dir")
    case $way in
        serial_t1) cmd+=(--set study.threads=1) ;;
        serial_t2) cmd+=(--set study.threads=2) ;;
        jobs2_t1) cmd+=(--set study.threads=1 --set study.jobs=2) ;;
        np2_t1) cmd=(mpirun --oversubscribe -np 2 "${cmd[@]}" --set study.threads=1) ;;
    esac
    t0=$(date +%s.%N)
    "${cmd[@]}" > "$dir.out" 2> "$dir.err" || { tail "$dir.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.1f\n", $2 - $1}'
}
models() { (cd "$1" && find . -name '*.safetensors' ! -name checkpoint.safetensors | sort |
            xargs sha256sum); }
for r in $(seq 1 "$rounds"); do
    for w in "${ways[@]}"; do
        s=$(once "$w" "$r")
        echo "$w $s" >> "$work/times"
        echo "round $r: $w ${s} s (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
    for w in jobs2_t1 np2_t1; do
        cmp -s <(models "$work/serial_t1.$r") <(models "$work/$w.$r") ||
            { echo "$w: model files differ from the serial run's" >&2; exit 1; }
    done
    rm -rf "$work"/*."$r"
done
n=$(grep -c '^\[stage\.' pipelines/demo.ini)
echo "The demo study ($n stages + phantoms), wall s, median of $rounds round(s);"
echo "the 1-thread ways wrote equal model files"
echo
echo "| way | wall s | speed-up vs serial 1 thread | vs serial 2 threads |"
echo "|---|---:|---:|---:|"
/usr/bin/python3 - "$work/times" <<'PY'
import sys, statistics
t = {}
for line in open(sys.argv[1]):
    w, s = line.split(); t.setdefault(w, []).append(float(s))
m = {w: statistics.median(v) for w, v in t.items()}
names = {"serial_t1": "serial, 1 thread", "serial_t2": "serial, 2 threads",
         "jobs2_t1": "[study] jobs = 2, 1 thread each", "np2_t1": "mpirun -np 2, 1 thread each"}
for w in ["serial_t1", "serial_t2", "jobs2_t1", "np2_t1"]:
    s1, s2 = m["serial_t1"] / m[w], m["serial_t2"] / m[w]
    print(f"| {names[w]} | {m[w]:.1f} | {s1:.2f} | {s2:.2f} |")
PY
