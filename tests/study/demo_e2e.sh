#!/usr/bin/env bash
# End-to-end: the demo study (pipelines/demo.ini) shortened to the stages that carry its
# claim — phantoms, teacher, source-only student, full-method student, target evaluation,
# report — run through the dakd binary; asserts that the distilled student's target test
# Dice is above the source-only student's, and that a rerun skips every stage.
#   demo_e2e.sh DAKD SOURCE_DIR WORK_DIR
set -euo pipefail
dakd=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
sets=(--set "study.run_dir=$work/study"
      --set "study.stages=phantoms,teacher,student,full,eval_target,report"
      --set "stage.eval_target.models=teacher,student,full")
cd "$src"
"$dakd" run pipelines/demo.ini "${sets[@]}" > "$work/out.txt" 2> "$work/log.txt" || {
    tail -n 20 "$work/log.txt"; exit 1; }
cat "$work/out.txt"
/usr/bin/python3 - "$work/study" <<'PY'
import json, sys, glob
path = glob.glob(sys.argv[1] + "/report/report.json")[0]
rows = {r["stage"]: r for r in json.load(open(path))["rows"]}
def dice(stage):
    ev = rows[stage]["evals"]["eval_target"]
    return ev["dice_mean"] if "dice_mean" in ev else ev["dice"]["mean"]
so, full = dice("student"), dice("full")
print(f"target test Dice: source-only student {so:.4f}, full method {full:.4f}, margin {full - so:+.4f}")
assert full - so >= 0.03, "the distilled student does not beat the source-only student"
PY
"$dakd" run pipelines/demo.ini "${sets[@]}" > "$work/out2.txt" 2> "$work/log2.txt"
if grep -q "running" "$work/log2.txt"; then
    echo "a rerun of an unchanged study ran a stage again:"; grep running "$work/log2.txt"; exit 1
fi
echo "rerun: every stage up to date"
