#!/usr/bin/env bash
# Run dakd's readers, writers and trainer under valgrind's memcheck.
#
#   scripts/valgrind.sh [--dakd PATH] [--work DIR]
#
# Every command below runs as `valgrind --error-exitcode=1 --leak-check=full
# --errors-for-leak-kinds=definite,indirect --trace-children=yes`, so an invalid read or
# write, a use of an uninitialised value, a bad free or a definite or indirect leak makes it
# fail, in dakd or in the child processes it starts (dakd re-executes itself once to set
# OpenBLAS's kernel, and parses DICOM in a forked child). Suppressions: tests/valgrind.supp,
# dependencies only, each with its reason. The commands:
#   info     NIfTI (.nii.gz), PNG, NRRD, MetaImage, a DICOM series folder (GE, with GDCM in
#            its child process) and a DICOM SEG's source series
#   convert  NIfTI -> NRRD, MHA, PNG slice and back; DICOM series -> NIfTI
#   train    a 2-epoch teacher on the demo's phantoms (1 thread), with validation,
#            checkpoints and the best model
#   distill  a 2-epoch student from it: KD, attention, hints, alignment, target
#            batch norm, EMA self-distillation, FDA and pseudo-labels
#   predict  the student on the target test images (sliding window, TTA)
#   eval     the predictions against their labels, with surface metrics and the HTML report
#   export   the student as ONNX
# The phantoms come from the release binary without valgrind. Exit 1 when any command is
# unclean (its log is named), 2 when a command fails outright.
# Needs: valgrind (scripts/bootstrap.sh --test installs it), ../shared/data beside the
# clone for the DICOM inputs (those commands are skipped, saying so, without it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

dakd=build/dakd work=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dakd) dakd=$2; shift ;;
        --work) work=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "valgrind.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
[ -x "$dakd" ] || { echo "valgrind.sh: no dakd binary at $dakd (build it, or --dakd PATH)" >&2; exit 2; }
dakd=$(cd "$(dirname "$dakd")" && pwd)/$(basename "$dakd")
[ -n "$work" ] || work=$(mktemp -d "${TMPDIR:-/tmp}/dakd-valgrind.XXXXXX")
mkdir -p "$work"
cd "$work"
shared=$root/../shared/data/conformance

vg=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --trace-children=yes --suppressions="$root/tests/valgrind.supp" --num-callers=30)
n=0 bad=0
# check NAME ARGS...: dakd ARGS under valgrind, logged to NAME.log
check() {
    local name=$1
    shift
    n=$((n + 1))
    local rc=0 start=$SECONDS
    "${vg[@]}" --log-file="$work/$name.vg.%p" "$dakd" "$@" > "$name.log" 2>&1 || rc=$?
    cat "$work/$name".vg.* >> "$name.log"
    rm -f "$work/$name".vg.*
    local errs
    errs=$(grep -h 'ERROR SUMMARY' "$name.log" | awk '{s += $4} END {print s + 0}')
    printf '%-26s %6ss  exit %-3s  valgrind errors %s\n' "$name" $((SECONDS - start)) "$rc" "$errs"
    if [ "$errs" != 0 ]; then
        bad=1
        echo "valgrind.sh: $name: $errs errors, see $work/$name.log" >&2
    elif [ "$rc" != 0 ]; then
        echo "valgrind.sh: $name failed (exit $rc), see $work/$name.log" >&2
        exit 2
    fi
}

# inputs: the demo's phantoms (2-D, four classes), without valgrind
"$dakd" run "$root/pipelines/demo.ini" --set study.run_dir="$work/s" \
    --set study.stages=phantoms > phantoms.log 2>&1
ph=$work/s/phantoms
cat > train.ini <<EOF
[data]
cases = $ph/cases.csv
domain_column = domain
classes = 4
batch_size = 4
patch_h = 32
patch_w = 32
norm = zscore
[model]
dims = 2
teacher_base = 4
teacher_levels = 2
student_base = 2
student_levels = 2
teacher_checkpoint = $work/teacher/model.safetensors
[train]
epochs = 2
steps_per_epoch = 2
checkpoint_every = 1
[distill]
lambda_at = 0.5
lambda_hint = 0.1
lambda_align = 0.1
target_bn = true
self_distill = ema
fda_p = 0.5
lambda_pl = 0.5
[output]
run_dir = $work/teacher
EOF

echo "valgrind $(valgrind --version | sed 's/valgrind-//'), dakd $("$dakd" --version | head -1), in $work"
check info_nifti info "$ph/source_train_000_image.nii.gz" "$ph/source_train_000_label.nii.gz"
check convert_nrrd convert "$ph/source_train_000_image.nii.gz" conv.nrrd
check convert_mha convert "$ph/source_train_000_label.nii.gz" conv.mha
check convert_png convert "$ph/source_train_000_label.nii.gz" conv.png
check info_converted info conv.nrrd conv.mha conv.png
check convert_back convert conv.nrrd back.nii.gz
if [ -d "$shared/dcm_qa_nih" ]; then
    check info_dicom info "$shared/dcm_qa_nih/In/20180918GE/mr_0004"
    check convert_dicom convert "$shared/dcm_qa_nih/In/20180918GE/mr_0004" dicom.nii.gz
    check info_dicom_seg_series info "$shared/dcmqi/data/segmentations/ct-3slice"
else
    echo "valgrind.sh: no ../shared/data beside the clone: the DICOM commands are skipped"
fi
check train --threads 1 train train.ini
check distill --threads 1 distill train.ini --set output.run_dir="$work/student"
mkdir -p target_test refs
for k in 0 1 2 3; do
    ln -sf "$ph/target_test_00${k}_image.nii.gz" "target_test/target_test_00$k.nii.gz"
    ln -sf "$ph/target_test_00${k}_label.nii.gz" "refs/target_test_00$k.nii.gz"
done
check predict --threads 1 predict --model "$work/student/model.safetensors" \
    --tta --out pred target_test/*.nii.gz
check export export --onnx "$work/student/model.safetensors" student.onnx
check eval eval --pred pred --ref refs --out evaluated
echo "valgrind.sh: $n commands, $([ $bad = 0 ] && echo clean || echo 'NOT clean')"
exit $bad
