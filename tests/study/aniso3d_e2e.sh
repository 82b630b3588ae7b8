#!/usr/bin/env bash
# A 3-D study on phantoms with anisotropic voxels (0.8 x 0.8 x 3.2 mm, 12 slices of 32²),
# through the dakd binary: phantoms, teacher, source-only student, full method, target
# evaluation, report, with `[model] *_pool = auto` and `*_kernel = auto` (nnU-Net's planner,
# dakd/nn.h). Asserts that both networks were planned anisotropic (pools 1,2,2 while the
# slices are thick, 1x3x3 kernels there, in their model files), that every prediction
# lies on its image's grid (nibabel: shape and affine), and that a patch the strides do
# not divide is refused naming the axis (about 5 s).
#   aniso3d_e2e.sh DAKD SOURCE_DIR WORK_DIR
set -euo pipefail
dakd=$1 src=$2 work=$3
. "$src/tests/tools/cli_expect.sh"
/usr/bin/python3 -c 'import nibabel' 2>/dev/null || {
    echo "SKIP aniso3d_e2e: /usr/bin/python3 has no nibabel"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
sets=(--set "study.run_dir=$work/study" --set study.threads=1
      --set phantoms.dims=3 --set phantoms.size=32,32,12 --set phantoms.spacing=0.8,0.8,3.2
      --set data.spacing_x=0.8 --set data.spacing_y=0.8 --set data.spacing_z=3.2
      --set data.patch_d=8 --set data.patch_h=32 --set data.patch_w=32 --set data.batch_size=4
      --set train.epochs=2 --set train.steps_per_epoch=6
      --set "study.stages=phantoms,teacher,student,full,eval_target,report"
      --set "stage.eval_target.models=teacher,student,full")
auto=(--set model.teacher_pool=auto --set model.student_pool=auto
      --set model.teacher_kernel=auto --set model.student_kernel=auto)
"$dakd" --quiet run "$src/pipelines/demo.ini" "${sets[@]}" "${auto[@]}" > out.txt 2> log.txt ||
    { tail -n 20 log.txt; exit 1; }
/usr/bin/python3 - "$work/study" <<'PY' || fail "the planned networks or the predictions"
import glob, json, os, struct, sys
import nibabel as nib, numpy as np
run = sys.argv[1]
def meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))["__metadata__"]
for stage, f in [("teacher", "best.safetensors"), ("student", "model.safetensors"),
                 ("full", "model.safetensors")]:
    m = meta(os.path.join(run, stage, f))
    pool, kernel = m.get("dakd.config.pool"), m.get("dakd.config.kernel")
    print(f"{stage}: pool {pool}, kernel {kernel}")
    assert pool == "1,2,2;1,2,2", f"{stage}: pool {pool}"
    assert kernel and kernel.startswith("1,3,3;"), f"{stage}: kernel {kernel}"
imgs = sorted(glob.glob(os.path.join(run, "eval_target", "images", "*.nii.gz")))
assert imgs, "no evaluation images"
for model in ["teacher", "student", "full"]:
    for p in imgs:
        q = os.path.join(run, "eval_target", model, "pred", os.path.basename(p))
        a, b = nib.load(p), nib.load(q)
        assert a.shape[:3] == b.shape[:3], f"{q}: shape {b.shape} vs {a.shape}"
        assert np.allclose(a.affine, b.affine, atol=1e-5), f"{q}: affine differs"
        assert np.allclose(nib.affines.voxel_sizes(b.affine), [0.8, 0.8, 3.2], atol=1e-5)
print(f"{3 * len(imgs)} predictions on their images' grids (0.8 x 0.8 x 3.2 mm)")
PY
set +e # expect reads the exit status itself
expect 1 "patch_h = 34" "_pool strides along h" -- "$dakd" --quiet run "$src/pipelines/demo.ini" \
    "${sets[@]}" --set "study.run_dir=$work/bad" --set data.patch_h=34 \
    --set "model.teacher_pool=1,2,2;1,2,2" --set "model.student_pool=1,2,2;1,2,2" \
    --set "study.stages=phantoms,teacher"
set -e
[ ! -e "$work/bad/teacher/model.safetensors" ] || fail "a refused patch left a model"
[ $fails = 0 ] || exit 1
echo "ok: a 3-D study with anisotropic voxels plans, trains, predicts on grid; bad patch refused"
