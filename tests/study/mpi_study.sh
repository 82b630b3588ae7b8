#!/usr/bin/env bash
# A study over MPI ranks (lib/study/study_ranks.c) through the dakd binary: the demo study
# cut to phantoms, teacher, source-only student, KD only, the full method, the target
# evaluation and the report, with short trainings and threads = 1:
#  1. `mpirun -np 2 dakd run` equals the serial run: every model file and stage key bit for
#     bit, the report's Dice equal; a rerun under mpirun finds every stage up to date, and
#     after one stage's stage.json is removed reruns that stage and those after it only;
#     SIGUSR1 to mpirun stops every rank with the command to continue, which then ends with
#     the serial run's model files;
#  2. trainings that fail on whichever rank runs them (DAKD_DIST_FAIL=0:3) stop the whole
#     job with a non-zero exit naming the stage and its log, no rank left waiting;
#  3. `[stage.full] ranks = 2` needs 3 ranks (rank 0 schedules), refused under -np 2 naming
#     the key; under -np 3 it trains data-parallel on ranks 1 and 2 (rank 2 logs to
#     run.rank2.log) under another key than the serial run's, and the evaluation scores it.
# Skipped (77) when mpirun is absent or dakd is built without MPI. Not registered in the
# sanitizer build (Open MPI's own allocations are reported as leaks there).
#   mpi_study.sh DAKD SOURCE_DIR WORK_DIR
set -euo pipefail
dakd=$1 src=$2 work=$3
. "$src/tests/tools/cli_expect.sh"
command -v mpirun >/dev/null || { echo "SKIP mpi_study: mpirun is not installed"; exit 77; }
if "$dakd" --version | grep "built without MPI" > /dev/null; then
    echo "SKIP mpi_study: dakd is built without MPI (DAKD_WITH_MPI=OFF)"; exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$work" && mkdir -p "$work"
mpi() { timeout 300 mpirun --oversubscribe -np "$@"; }
study() { # study DIR [more --set]: the command in ${cmd[@]}
    local dir=$1; shift
    cmd=("$dakd" --quiet run "$src/pipelines/demo.ini" --set "study.run_dir=$work/$dir"
         --set study.threads=1 --set train.epochs=2 --set train.steps_per_epoch=8
         --set "study.stages=phantoms,teacher,student,kd_only,full,eval_target,report"
         --set "stage.eval_target.models=teacher,student,kd_only,full" "$@")
}
run() { # run DIR RANKS [more --set]
    local dir=$1 np=$2; shift 2
    study "$dir" "$@"
    if [ "$np" = 1 ]; then "${cmd[@]}"; else mpi "$np" "${cmd[@]}"; fi
}
models() { (cd "$work/$1" && find . -name '*.safetensors' ! -name checkpoint.safetensors |
            sort | xargs sha256sum); }
keys() { (cd "$work/$1" && for f in $(find . -name stage.json | sort); do
            echo "$f $(grep -m1 -o '"key":[[:space:]]*"[0-9a-f]*"' "$f")"
          done); }
dice() { /usr/bin/python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["rows"]:
    e = r["evals"]["eval_target"]; print(r["stage"], e.get("dice_mean", e.get("dice")))' \
    "$work/$1/report/report.json"; }

# 1. two ranks equal one
run serial 1 > "$work/serial.out"
run mpi2 2 > "$work/mpi2.out"
cmp <(models serial) <(models mpi2) || fail "-np 2: model files differ from the serial run's"
n=$(models serial | wc -l)
[ "$n" -ge 5 ] || fail "the serial run wrote $n model files"
cmp <(keys serial) <(keys mpi2) || fail "-np 2: stage keys differ from the serial run's"
cmp <(dice serial) <(dice mpi2) || fail "-np 2: the report's Dice differ"
grep -q 'log: .*/full/run.log' "$work/mpi2.out" || fail "-np 2 did not name the stage logs"
echo "ok: -np 2 equals the serial run ($(models mpi2 | wc -l) model files, keys, report)"
run mpi2 2 > "$work/rerun.out"
! grep running "$work/rerun.out" || fail "a rerun under mpirun ran a stage again"
rm "$work/mpi2/kd_only/stage.json"
run mpi2 2 > "$work/rerun2.out"
ran=$(grep -o '[a-z_]*: running' "$work/rerun2.out" | cut -d: -f1 | sort | tr '\n' ' ')
[ "$ran" = "eval_target kd_only report " ] ||
    fail "after kd_only's stage.json was removed, ran: $ran"
cmp <(models serial) <(models mpi2) || fail "the rerun changed a model file"
echo "ok: reruns under mpirun skip what is up to date and rerun kd_only, eval, report"

# 1b. SIGUSR1 to mpirun mid-study (mpirun passes it on at once; SIGTERM it holds back 1 s and
# follows with SIGKILL): every rank stops, running trainings write their checkpoints, rank 0
# says how to continue (with mpirun -np 2), and the same command ends with the serial run's
# model files
study intr
timeout 300 mpirun --oversubscribe -np 2 "${cmd[@]}" > "$work/intr.out" 2> "$work/intr.err" &
pid=$!
for _ in $(seq 300); do [ -e "$work/intr/teacher/checkpoint.safetensors" ] && break; sleep 0.1; done
kill -USR1 "$(pgrep -P $pid mpirun)"
code=0
wait $pid || code=$?
[ "$code" = 138 ] || fail "SIGUSR1 under mpirun: exit $code, wanted 138"
grep -q 'interrupted by SIGUSR1' "$work/intr.err" && grep -q '^  mpirun -np 2 ' "$work/intr.err" ||
    fail "SIGUSR1: no interrupt notice with the mpirun -np 2 command: $(cat "$work/intr.err")"
run intr 2 > "$work/intr2.out"
cmp <(models serial) <(models intr) || fail "resumed after SIGUSR1: model files differ"
echo "ok: SIGUSR1 stops the study under mpirun (exit 138); the same command ends equal to serial"

# 2. a failing training stops every rank
set +e
DAKD_DIST_FAIL=0:3 run fail2 2 > "$work/fail.out" 2> "$work/fail.err"
code=$?
set -e
[ "$code" -ne 0 ] && [ "$code" -ne 124 ] || fail "a failing stage: exit $code (124: a rank hung)"
grep -q 'stage [a-z_]* failed.*DAKD_DIST_FAIL.*log: ' "$work/fail.err" ||
    fail "the failure does not name the stage, its cause and log: $(cat "$work/fail.err")"
echo "ok: a failing stage stops every rank (exit $code) and names the stage and its log"

# 3. a data-parallel stage inside the study
set +e
run np2ranks 2 --set stage.full.ranks=2 > /dev/null 2> "$work/ranks.err"
code=$?
set -e
[ "$code" = 1 ] && grep -q 'ranks = 2 needs 2 ranks besides rank 0.*mpirun -np 3' \
    "$work/ranks.err" || fail "ranks = 2 under -np 2: exit $code, $(cat "$work/ranks.err")"
run mpi3 3 --set stage.full.ranks=2 > "$work/mpi3.out"
[ -s "$work/mpi3/full/run.rank2.log" ] || [ -e "$work/mpi3/full/run.rank2.log" ] ||
    fail "ranks = 2: no run.rank2.log from the group's second rank"
[ -s "$work/mpi3/full/model.safetensors" ] || fail "ranks = 2: no model"
k1=$(keys serial | grep '/full/') k3=$(keys mpi3 | grep '/full/')
[ "$k1" != "$k3" ] || fail "ranks = 2 has the serial run's key"
cmp <(keys serial | grep -v -e /full/ -e /eval_target/ -e /report/) \
    <(keys mpi3 | grep -v -e /full/ -e /eval_target/ -e /report/) ||
    fail "-np 3: the other stages' keys differ"
dice mpi3 | grep -q '^full 0\.' || fail "ranks = 2: the evaluation has no Dice for full"
echo "ok: [stage.full] ranks = 2 trains on ranks 1-2 under -np 3 ($(dice mpi3 | grep ^full))"
[ $fails = 0 ] || exit 1
