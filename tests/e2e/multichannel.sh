#!/usr/bin/env bash
# Cases of several channels, end to end: an nnU-Net folder of two channels per case
# (CASE_0000, CASE_0001) -> dakd cases (columns image, image_1) -> train a 2-channel teacher
# -> distill it (Fourier style transfer on) -> predict with the student from the case list,
# from the bare channel files, and from a Decathlon-style 4-D file holding the same two
# volumes: the three give the same labels (nibabel compares). Bad inputs: a channel on
# another grid, a 4-D file with more volumes than dataset.json names, a missing channel
# 0000, a one-channel image for a two-channel model; each refused naming the file, with
# nothing written.
# usage: multichannel.sh DAKD SOURCE_DIR WORK_DIR
set -u
dakd=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
py=/usr/bin/python3
$py -c "import nibabel, numpy" 2> /dev/null || { echo "SKIP: nibabel or numpy missing for $py"; exit 77; }
. "$src/tests/tools/cli_expect.sh"
step() { "$@" > out.txt 2>&1 || { echo "FAIL: $* exited $?: $(cat out.txt)"; exit 1; }; }

# two channels per case: the phantom, and a second contrast (its square, which swaps the
# order of organ and kidney); the targets also as one 4-D file each
"$dakd" phantom --out raw --size 16,16,16 --cases 2 > /dev/null || exit 1
mkdir -p D2/imagesTr D2/labelsTr D2/imagesTs D2/labelsTs M4/imagesTs
$py - << 'PY' || exit 1
import nibabel as nib, numpy as np, shutil
for k in ("000", "001"):
    for dom, d, ld in (("source", "imagesTr", "labelsTr"), ("target", "imagesTs", "labelsTs")):
        case = ("src" if dom == "source" else "tgt") + k
        im = nib.load(f"raw/{dom}_{k}_image.nii.gz")
        x = np.asarray(im.dataobj, dtype=np.float32)
        nib.save(im, f"D2/{d}/{case}_0000.nii.gz")
        nib.save(nib.Nifti1Image(x * x, im.affine, im.header), f"D2/{d}/{case}_0001.nii.gz")
        shutil.copy(f"raw/{dom}_{k}_label.nii.gz", f"D2/{ld}/{case}.nii.gz")
        if dom == "target":
            h = im.header.copy()
            nib.save(nib.Nifti1Image(np.stack([x, x * x], axis=-1), im.affine, h),
                     f"M4/imagesTs/{case}.nii.gz")
PY
cat > D2/dataset.json << 'JSON'
{"channel_names": {"0": "T2", "1": "T2sq"}, "labels": {"background": 0, "organ": 1,
 "kidney": 2, "vessel": 3}, "numTraining": 2, "file_ending": ".nii.gz"}
JSON

expect 0 "4 cases (4 labelled, 0 unlabelled), 2 channels" -- \
    "$dakd" cases D2 --out D2/cases.csv --domain-pattern '^images(Tr|Ts)'
grep -qx "case,image,image_1,label,domain,split" D2/cases.csv || fail "header: $(head -1 D2/cases.csv)"
grep -qx "src001,imagesTr/src001_0000.nii.gz,imagesTr/src001_0001.nii.gz,labelsTr/src001.nii.gz,Tr,train" \
    D2/cases.csv || fail "row: $(cat D2/cases.csv)"

tiny=(--set data.cases=D2/cases.csv --set data.patch_d=16 --set data.patch_h=16
      --set data.patch_w=16 --set model.in_channels=2 --set model.teacher_base=8
      --set model.teacher_levels=3 --set model.student_base=4 --set model.student_levels=3
      --set train.epochs=1 --set train.steps_per_epoch=3
      --set train.validate_every=1 --set train.checkpoint_every=1 --set train.threads=2
      --set output.run_dir=runs/teacher)
step "$dakd" train "$src/pipelines/own_data_3d.ini" "${tiny[@]}"
step "$dakd" distill "$src/pipelines/own_data_3d.ini" "${tiny[@]}" --set distill.fda_p=0.5 \
    --set output.run_dir=runs/student
# one-channel training of a two-channel list is refused by the trainer, naming the case
expect 1 "case 'src000' has 2 channels, [model] in_channels = 1" -- \
    "$dakd" train "$src/pipelines/own_data_3d.ini" "${tiny[@]}" --set model.in_channels=1 \
    --set output.run_dir=runs/one

m=runs/student/model.safetensors
step "$dakd" predict --model $m --cases D2/cases.csv --where domain=Ts --out p_csv
step "$dakd" predict --model $m D2/imagesTs/tgt000_0001.nii.gz D2/imagesTs/tgt000_0000.nii.gz \
    D2/imagesTs/tgt001_0000.nii.gz D2/imagesTs/tgt001_0001.nii.gz --out p_bare
step "$dakd" predict --model $m M4/imagesTs/tgt000.nii.gz M4/imagesTs/tgt001.nii.gz --out p_4d
$py - << 'PY' || fail "the three predictions differ"
import nibabel as nib, numpy as np
for c in ("tgt000", "tgt001"):
    a = [nib.load(f"{d}/{c}.nii.gz") for d in ("p_csv", "p_bare", "p_4d")]
    ref = nib.load(f"D2/imagesTs/{c}_0000.nii.gz")
    for v in a:
        assert v.shape == ref.shape and np.allclose(v.affine, ref.affine), (c, v.shape)
        assert np.array_equal(np.asarray(v.dataobj), np.asarray(a[0].dataobj)), c
    print(c, "labels", np.unique(np.asarray(a[0].dataobj)))
PY

# ---- bad inputs
expect 1 "tgt000_0001.nii.gz: case 'tgt000' has files for channels up to 0001 but none for channel 0000" -- \
    "$dakd" predict --model $m D2/imagesTs/tgt000_0001.nii.gz --out p_bad
expect 3 "tgt000_0000.nii.gz: 1 channels, but the model" "takes 2" -- \
    "$dakd" predict --model $m D2/imagesTs/tgt000_0000.nii.gz D2/imagesTs/tgt001_0000.nii.gz \
    D2/imagesTs/tgt001_0001.nii.gz --out p_bad2
[ ! -e p_bad ] && [ ! -e p_bad2/tgt001.nii.gz ] || fail "a refused prediction wrote output"
# a channel on another grid: named with channel 0000's file; nothing written
cp -r D2 Dbad && rm Dbad/cases.csv
"$dakd" phantom --out raw12 --size 12,16,16 --cases 1 --domain source > /dev/null || exit 1
cp raw12/source_000_image.nii.gz Dbad/imagesTr/src001_0001.nii.gz
expect 3 "src001_0000.nii.gz is 16x16x16 but" "src001_0001.nii.gz is 12x16x16" "nothing written" -- \
    "$dakd" cases Dbad --out Dbad/cases.csv
[ ! -e Dbad/cases.csv ] || fail "Dbad/cases.csv was written"
# Decathlon: 4-D images whose volumes are the modalities; three volumes where two are named
cat > M4/dataset.json << 'JSON'
{"name": "Phantom", "modality": {"0": "T2", "1": "T2sq"},
 "labels": {"0": "background", "1": "organ", "2": "kidney", "3": "vessel"},
 "training": [], "test": ["./imagesTs/tgt000.nii.gz", "./imagesTs/tgt001.nii.gz"]}
JSON
expect 0 "2 cases (0 labelled, 2 unlabelled), 2 channels" -- "$dakd" cases M4 --out m4.csv
$py -c "
import nibabel as nib, numpy as np
im = nib.load('M4/imagesTs/tgt001.nii.gz'); x = np.asarray(im.dataobj)
nib.save(nib.Nifti1Image(np.concatenate([x, x[..., :1]], axis=-1), im.affine), 'M4/imagesTs/tgt001.nii.gz')"
expect 3 "tgt001.nii.gz: case 'tgt001' has 3 channels, dataset.json names 2" "nothing written" -- \
    "$dakd" cases M4 --out m4b.csv
[ ! -e m4b.csv ] || fail "m4b.csv was written"

[ $fails = 0 ] || { echo "$fails failures"; exit 1; }
echo "multichannel: cases, train and three ways to predict agree on 2-channel cases"
