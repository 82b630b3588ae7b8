#!/usr/bin/env bash
# The prostate study file (pipelines/prostate_runmc_to_hk_ucl.ini) on the real PROMISE12
# volumes of ../shared/data/prostate, cut to 2 steps per network and one seed: teacher,
# source-only student, the full method (T = 1, pseudo-labels of the whole UCL training
# volumes) for UCL, HK oracle, the UCL evaluation and the report.
# Asserts what the file promises besides its numbers: the networks planned by nnU-Net's rule
# for 16 x 64 x 64 patches (pools in the model files), the case list's spacing column handed
# to the evaluation (its case list holds each UCL volume's 0.625 in-plane), every prediction
# on its input file's own grid (nibabel: shape and affine; the override must not leak into
# the output header), and the table's HD95 in voxels (about 30 s). Skipped without
# ../shared/data/prostate.
#   prostate_smoke.sh DAKD SOURCE_DIR WORK_DIR
set -euo pipefail
dakd=$1 src=$2 work=$3
. "$src/tests/tools/cli_expect.sh"
[ -f "$src/../shared/data/prostate/cases.csv" ] || {
    echo "SKIP prostate_smoke: no ../shared/data/prostate beside the project"; exit 77; }
/usr/bin/python3 -c 'import nibabel' 2>/dev/null || {
    echo "SKIP prostate_smoke: /usr/bin/python3 has no nibabel"; exit 77; }
rm -rf "$work" && mkdir -p "$work"
cd "$src" # the study file's paths are from the project root
"$dakd" --quiet run pipelines/prostate_runmc_to_hk_ucl.ini --set "study.run_dir=$work/run" \
    --set study.seeds=42 --set study.stages=teacher,student,full_ucl,oracle_hk,eval_ucl,report \
    --set stage.eval_ucl.models=teacher,student,full_ucl,oracle_hk \
    --set train.epochs=1 --set stage.teacher.train.epochs=1 --set stage.student.train.epochs=1 \
    --set stage.oracle_hk.train.epochs=1 \
    --set train.steps_per_epoch=2 > "$work/out.txt" 2> "$work/log.txt" ||
    { tail -n 20 "$work/log.txt"; exit 1; }
grep -q '| HD95 eval_ucl (voxels) |' "$work/out.txt" || fail "the table's HD95 is not in voxels"
grep -qx 'pl_source = volume' "$work/run/full_ucl/seed42/config.ini" ||
    fail "full_ucl does not train on pseudo-label volumes"
grep -q '"pl":[1-9]\|"pl":0\.[0-9]*[1-9]' "$work/run/full_ucl/seed42/steps.jsonl" ||
    fail "full_ucl's steps.jsonl has no pseudo-label loss"
/usr/bin/python3 - "$work/run" "$src/../shared/data/prostate" <<'PY' || fail "models or predictions"
import glob, json, os, struct, sys
import nibabel as nib, numpy as np
run, data = sys.argv[1], sys.argv[2]
def meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))["__metadata__"]
for stage in ["teacher", "student", "full_ucl", "oracle_hk"]:
    m = meta(os.path.join(run, stage, "seed42", "model.safetensors"))
    assert m.get("dakd.config.pool") == "2,2,2;2,2,2;1,2,2", (stage, m.get("dakd.config.pool"))
preds = sorted(glob.glob(os.path.join(run, "eval_ucl", "*", "seed42", "pred", "*.nii.gz")))
assert len(preds) == 4 * 7, f"{len(preds)} predictions, expected 28"
for p in preds:
    a = nib.load(os.path.join(data, "images", os.path.basename(p)))
    b = nib.load(p)
    assert a.shape[:3] == b.shape[:3], f"{p}: shape {b.shape} vs {a.shape}"
    assert np.allclose(a.affine, b.affine), f"{p}: affine differs from its image's"
import csv
spacing = {r["case"]: r["spacing"] for r in csv.DictReader(open(os.path.join(run, "eval_ucl", "cases.csv")))}
assert spacing.get("ucl_31") == "0.625x0.625x1", f"the evaluation's spacing: {spacing}"
print(f"{len(preds)} predictions on their images' grids; pools planned for 16 x 64 x 64")
PY
[ $fails = 0 ] || exit 1
echo "ok: the prostate study file runs; spacing column, grids and units as it says"
