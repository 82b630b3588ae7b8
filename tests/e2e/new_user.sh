#!/usr/bin/env bash
# The path of a new user, scripted: an nnU-Net-style folder of phantoms (laid out as such
# users have their data) -> dakd cases -> train -> distill -> predict -> eval, each command
# reading the previous one's outputs as they are (no renaming, no links), then dakd export
# --onnx and ONNX Runtime's logits against dakd's on one input (max |diff| <= 1e-4). Tiny
# networks and few steps: seconds on 2 cores. Exit 77 only when node or onnxruntime-node is
# missing (scripts/bootstrap.sh --test installs it into tests/tools/onnx), after the chain.
# usage: new_user.sh DAKD UNET_LOGITS SOURCE_DIR WORK_DIR
set -u
dakd=$1 logits=$2 src=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
step() { echo "== $*"; "$@" || { echo "FAIL: $* exited $?"; exit 1; }; }

# the user's data: labelled source scans, unlabelled target scans (their labels kept apart
# for the evaluation, as labelsTs)
"$dakd" phantom --out raw --size 16,16,16 --cases 2 > /dev/null || exit 1
mkdir -p Dataset001/imagesTr Dataset001/labelsTr Dataset001/imagesTs Dataset001/labelsTs
for k in 000 001; do
    mv raw/source_${k}_image.nii.gz Dataset001/imagesTr/src${k}_0000.nii.gz
    mv raw/source_${k}_label.nii.gz Dataset001/labelsTr/src${k}.nii.gz
    mv raw/target_${k}_image.nii.gz Dataset001/imagesTs/tgt${k}_0000.nii.gz
    mv raw/target_${k}_label.nii.gz Dataset001/labelsTs/tgt${k}.nii.gz
done
cat > Dataset001/dataset.json << 'JSON'
{"channel_names": {"0": "MR"}, "labels": {"background": 0, "organ": 1, "kidney": 2,
 "vessel": 3}, "numTraining": 2, "file_ending": ".nii.gz"}
JSON

step "$dakd" cases Dataset001 --out Dataset001/cases.csv --domain-pattern '^images(Tr|Ts)'
# the template of pipelines/, made tiny
tiny=(--set data.cases=Dataset001/cases.csv --set data.patch_d=16 --set data.patch_h=16
      --set data.patch_w=16 --set model.teacher_base=8 --set model.teacher_levels=3
      --set model.student_base=4 --set model.student_levels=3 --set train.epochs=2
      --set train.steps_per_epoch=3 --set train.validate_every=1 --set train.checkpoint_every=1
      --set train.threads=2)
step "$dakd" train "$src/pipelines/own_data_3d.ini" "${tiny[@]}" --set output.run_dir=runs/teacher
step "$dakd" distill "$src/pipelines/own_data_3d.ini" "${tiny[@]}" --set output.run_dir=runs/student
step "$dakd" predict --model runs/student/model.safetensors --cases Dataset001/cases.csv \
    --where domain=Ts --out pred
for k in 000 001; do [ -f pred/tgt$k.nii.gz ] || { echo "FAIL: no pred/tgt$k.nii.gz"; exit 1; }; done
step "$dakd" eval --pred pred --cases Dataset001/cases.csv --where domain=Ts --out eval
grep -Eq '"n_cases":[[:space:]]+2,' eval/summary.json || { echo "FAIL: eval/summary.json: $(head -c 600 eval/summary.json)"; exit 1; }
step "$dakd" export --onnx runs/student/model.safetensors student.onnx

ort=${DAKD_ORT_DIR:-$src/tests/tools/onnx} # where onnxruntime-node is installed
if ! (cd "$ort" && node -e "require('onnxruntime-node')") > /dev/null 2>&1; then
    echo "SKIP ONNX Runtime comparison: node or onnxruntime-node is missing (scripts/bootstrap.sh --test)"
    exit 77
fi
/usr/bin/python3 -c "
import random, struct
random.seed(7)
open('x.f32', 'wb').write(struct.pack('<4096f', *[random.gauss(0, 1) for _ in range(4096)]))"
step node "$ort/run_onnx.js" student.onnx x.f32 1,1,16,16,16 onnx.f32
step "$logits" runs/student/model.safetensors x.f32 1,16,16,16 dakd.f32
/usr/bin/python3 -c "
import struct, sys
a = open('onnx.f32', 'rb').read(); b = open('dakd.f32', 'rb').read()
assert len(a) == len(b) == 4 * 4 * 4096, (len(a), len(b))
n = len(a) // 4
d = max(abs(x - y) for x, y in zip(struct.unpack('<%df' % n, a), struct.unpack('<%df' % n, b)))
print('max |logits dakd - ONNX Runtime| = %.3g' % d)
sys.exit(0 if d <= 1e-4 else 1)" || { echo "FAIL: ONNX Runtime's logits differ"; exit 1; }
echo "new_user: cases -> train -> distill -> predict -> eval -> export, ONNX Runtime agrees"
