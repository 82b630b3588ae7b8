#!/usr/bin/env bash
# Kill `dakd run` with SIGKILL at random moments and check that resuming loses nothing.
#
#   scripts/fault_inject.sh [--quick] [--seed S] [--dakd PATH] [--work DIR] [N]
#
# Runs the demo study (pipelines/demo.ini) once uninterrupted into WORK/ref, then into
# WORK/killed: N times (default 20) it starts the same `dakd run` command, kills it with
# SIGKILL after a random delay, and starts it again; a last run goes to the end. Then every
# model file (*.safetensors but checkpoint.safetensors, compared by SHA-256) and the printed
# study table (its Dice and HD95 columns; wall times and ms per image vary) must equal the
# uninterrupted run's. Prints a summary; exits 1 on any difference, 2 when a run fails
# outright (not killed).
#
# The kill moments are stratified over the uninterrupted run's time line: the study's T
# seconds (the sum of its stages' "done in" times) are cut into N equal slices and kill i
# falls at a uniform random moment u of slice i, that is in stage k, o seconds after stage
# k started. The killed run is watched until it prints stage k's line (or a later one;
# a rerun skips finished stages and resumes a training stage from its last checkpoint) and
# killed o seconds later. So the N kills reach every part of the study in proportion to
# its time, whatever a resume redoes. The moments come from awk's srand(S) (default 1): a
# seed repeats them on one machine.
#
# --quick: 3 kills on the demo study cut to phantoms, teacher, full method, target
# evaluation and report, 2 epochs per training stage with a checkpoint after each: 53 s on
# 2 busy cores, the CTest test fault_inject_quick. The full version (20 kills, about 20
# reruns of the 5-minute demo study) is for a quiet machine.
#
# The environment is kept as it is (the study fixes its thread count); dakd's own OpenBLAS
# choice applies to both the reference and the killed runs alike.
set -euo pipefail
cd "$(dirname "$0")/.."

kills=20 seed=1 quick=0 dakd=build/dakd work=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; kills=3 ;;
        --seed) seed=$2; shift ;;
        --dakd) dakd=$2; shift ;;
        --work) work=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fault_inject: unknown option $1" >&2; exit 2 ;;
        *) kills=$1 ;;
    esac
    shift
done
[[ $kills =~ ^[0-9]+$ ]] || { echo "fault_inject: N must be a number, not '$kills'" >&2; exit 2; }
[ -x "$dakd" ] || { echo "fault_inject: no dakd binary at $dakd (build it, or --dakd PATH)" >&2; exit 2; }
dakd=$(cd "$(dirname "$dakd")" && pwd)/$(basename "$dakd")
[ -n "$work" ] || work=$(mktemp -d "${TMPDIR:-/tmp}/dakd-faults.XXXXXX")
mkdir -p "$work"
work=$(cd "$work" && pwd)

sets=()
if [ $quick = 1 ]; then
    sets=(--set "study.stages=phantoms,teacher,full,eval_target,report"
          --set "stage.eval_target.models=teacher,full"
          --set "train.epochs=2" --set "train.checkpoint_every=1")
fi

# run DIR LOG: the study into DIR (stdout to LOG.out, stderr to LOG.err), in the background;
# its pid in $pid.
run() {
    "$dakd" run pipelines/demo.ini --set "study.run_dir=$1" "${sets[@]}" > "$2.out" 2> "$2.err" &
    pid=$!
}

# The study table's rows (from its "| model" header to the blank line after it) without
# the last two columns, ms per image and train s, which are wall times.
table() {
    awk -F'|' '/^\| model/ { t = 1 } /^$/ { t = 0 }
               t && /^\| / { r = ""; for (i = 2; i <= NF - 3; i++) r = r "|" $i; print r }' "$1"
}
models() { (cd "$1" && find . -name '*.safetensors' ! -name checkpoint.safetensors | sort |
            xargs -r sha256sum); }

rm -rf "$work/ref" "$work/killed"
echo "fault_inject: $kills kills, seed $seed, work folder $work"
t0=$(date +%s.%N)
run "$work/ref" "$work/ref"
wait "$pid" || { echo "fault_inject: the uninterrupted run failed:"; tail -5 "$work/ref.err"; exit 2; }
T=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "uninterrupted run: ${T} s"

# Stage k's "done in" seconds from the uninterrupted run, one per line in stage order.
durations() { sed -n 's/^\[[0-9]*\/[0-9]*\] [^:]*: done in \([0-9.]*\) s$/\1/p' "$1"; }
# The highest stage number the run has printed so far (0 before the first line).
stage_now() { { echo 0; grep -oE '^\[[0-9]+/' "$1" 2>/dev/null; } | tr -d '[/' | sort -n | tail -1; }

mapfile -t plan < <(durations "$work/ref.out" | awk -v s="$seed" -v n="$kills" '
    { d[NR] = $1; T += $1 }
    END { srand(s)
          for (i = 0; i < n; i++) {
              u = (i + rand()) * T / n; k = 1; c = 0
              while (k < NR && c + d[k] <= u) { c += d[k]; k++ }
              printf "%d %.2f\n", k, u - c } }')
[ "${#plan[@]}" = "$kills" ] || { echo "fault_inject: no stage times in $work/ref.out"; exit 2; }
killed=0 finished=0
for i in $(seq 1 "$kills"); do
    read -r k o <<< "${plan[$((i - 1))]}"
    run "$work/killed" "$work/killed.$i"
    while kill -0 "$pid" 2>/dev/null && [ "$(stage_now "$work/killed.$i.out")" -lt "$k" ]; do
        sleep 0.02
    done
    sleep "$o"
    if kill -KILL "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        killed=$((killed + 1))
        state="killed"
    else
        rc=0; wait "$pid" || rc=$?
        [ $rc = 0 ] || { echo "run $i failed (exit $rc) before its kill:"; tail -5 "$work/killed.$i.err"; exit 2; }
        finished=$((finished + 1))
        state="had finished"
    fi
    last=$(grep -E '^\[[0-9]+/[0-9]+\]' "$work/killed.$i.out" | tail -1 || true)
    printf '  kill %2d in stage %2d, %6.2f s after its line: %s (%s)\n' "$i" "$k" "$o" "$state" \
        "${last:-no stage line yet}"
done
run "$work/killed" "$work/killed.final"
wait "$pid" || { echo "fault_inject: the final run failed:"; tail -5 "$work/killed.final.err"; exit 2; }

fail=0
models "$work/ref" > "$work/ref.sha"
models "$work/killed" > "$work/killed.sha"
n=$(wc -l < "$work/ref.sha")
if ! diff "$work/ref.sha" "$work/killed.sha" > "$work/models.diff"; then
    echo "MODEL FILES DIFFER:"; cat "$work/models.diff"; fail=1
fi
if ! diff <(table "$work/ref.out") <(table "$work/killed.final.out") > "$work/table.diff"; then
    echo "TABLE DIFFERS:"; cat "$work/table.diff"; fail=1
fi
[ "$(table "$work/ref.out" | wc -l)" -gt 0 ] || { echo "no table in the uninterrupted run's output"; fail=1; }
echo "fault_inject: $killed runs killed, $finished had finished before their kill; $n model files" \
     "and the table $([ $fail = 0 ] && echo "identical to the uninterrupted run" || echo DIFFER)"
exit $fail
