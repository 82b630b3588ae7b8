#!/usr/bin/env bash
# dakd cases on every layout it reads (nnU-Net, Decathlon, plain folders, DICOM studies) and on
# the bad inputs of each kind: unmatched files, mixed grids, 0/255 labels, an unreadable file,
# a missing channel; every problem named with its file, the documented exit code, nothing
# written. DICOM needs ../shared/data (DAKD_SHARED_DATA); without it that part is skipped (77).
# usage: cases_import.sh DAKD SOURCE_DIR WORK_DIR
set -u
dakd=$1 src=$2 work=$3
shared=${DAKD_SHARED_DATA:-$src/../shared/data}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
skipped=0
. "$src/tests/tools/cli_expect.sh"
have() { [ -e "$1" ] || fail "$1 was not written"; }
absent() { [ ! -e "$1" ] || fail "$1 was written"; }

"$dakd" phantom --out ph --size 16,16,8 --cases 2 > /dev/null || exit 1
"$dakd" phantom --out ph2 --size 12,16,8 --cases 1 --domain source > /dev/null || exit 1

# ---- nnU-Net v2: imagesTr/labelsTr/imagesTs, dataset.json
mkdir -p nn/imagesTr nn/labelsTr nn/imagesTs
for k in 000 001; do
    cp ph/source_${k}_image.nii.gz nn/imagesTr/src${k}_0000.nii.gz
    cp ph/source_${k}_label.nii.gz nn/labelsTr/src${k}.nii.gz
    cp ph/target_${k}_image.nii.gz nn/imagesTs/tgt${k}_0000.nii.gz
done
cat > nn/dataset.json << 'EOF'
{"channel_names": {"0": "MR"}, "labels": {"background": 0, "organ": 1, "kidney": 2,
 "vessel": 3}, "numTraining": 2, "file_ending": ".nii.gz"}
EOF
expect 0 "nnunet layout" "4 cases (2 labelled, 2 unlabelled)" "[data] classes = 4" -- \
    "$dakd" cases nn --out nn/cases.csv --domain-pattern '^images(Tr|Ts)'
have nn/cases.csv
grep -qx "case,image,label,domain,split" nn/cases.csv || fail "nnU-Net header: $(head -1 nn/cases.csv)"
grep -qx "src001,imagesTr/src001_0000.nii.gz,labelsTr/src001.nii.gz,Tr,train" nn/cases.csv ||
    fail "nnU-Net row: $(cat nn/cases.csv)"
grep -qx "tgt000,imagesTs/tgt000_0000.nii.gz,,Ts,test" nn/cases.csv ||
    fail "nnU-Net unlabelled row: $(cat nn/cases.csv)"
# an existing output is refused without --force, replaced with it; an input never
expect 1 "exists (--force replaces it)" -- "$dakd" cases nn --out nn/cases.csv
expect 0 "4 cases" -- "$dakd" cases nn --out nn/cases.csv --force --domain src
expect 1 "replace" "nn/labelsTr/src000.nii.gz" -- \
    "$dakd" cases nn --out nn/labelsTr/src000.nii.gz --force
cmp -s nn/labelsTr/src000.nii.gz ph/source_000_label.nii.gz || fail "an input was overwritten"
# the bad nnU-Net folder: a label without image, an image without label, a missing
# channel, a name without the channel suffix; all named at once
cp -r nn nnbad && rm -f nnbad/cases.csv
cp ph/source_000_label.nii.gz nnbad/labelsTr/orphan.nii.gz
cp ph/source_000_image.nii.gz nnbad/imagesTr/nolabel_0000.nii.gz
cp ph/source_000_image.nii.gz nnbad/imagesTr/src000_0002.nii.gz
cp ph/source_000_image.nii.gz nnbad/imagesTr/plain.nii.gz
expect 2 "labelsTr/orphan.nii.gz: label without an image" \
    "case 'nolabel' has no label" "case 'src000' has no file for channel 0001" \
    "imagesTr/plain.nii.gz: not named CASE_XXXX.nii.gz" "problems in nnbad; nothing written" -- \
    "$dakd" cases nnbad --out nnbad/cases.csv
absent nnbad/cases.csv

# label values in dataset.json that are no label (1e76, -3, 2.5) do not count as classes
cp -r nn nnodd && rm -f nnodd/cases.csv
cat > nnodd/dataset.json << 'EOF'
{"channel_names": {"0": "MR"}, "labels": {"background": 0, "organ": 1e76, "kidney": [2, -3],
 "vessel": 3, "half": 2.5}, "numTraining": 2, "file_ending": ".nii.gz"}
EOF
expect 0 "4 cases" "[data] classes = 4" -- "$dakd" cases nnodd --out nnodd/cases.csv

# ---- Medical Segmentation Decathlon
mkdir -p msd/imagesTr msd/labelsTr msd/imagesTs
cp ph/source_000_image.nii.gz msd/imagesTr/la_003.nii.gz
cp ph/source_000_label.nii.gz msd/labelsTr/la_003.nii.gz
cp ph/target_000_image.nii.gz msd/imagesTs/la_001.nii.gz
cat > msd/dataset.json << 'EOF'
{"name": "Phantom", "modality": {"0": "MRI"},
 "labels": {"0": "background", "1": "organ", "2": "kidney", "3": "vessel"},
 "numTraining": 1, "numTest": 1,
 "training": [{"image": "./imagesTr/la_003.nii.gz", "label": "./labelsTr/la_003.nii.gz"}],
 "test": ["./imagesTs/la_001.nii.gz"]}
EOF
expect 0 "msd layout" "2 cases (1 labelled, 1 unlabelled)" "classes = 4" -- \
    "$dakd" cases msd --out msd.csv --domain site1
grep -qx "la_003,msd/imagesTr/la_003.nii.gz,msd/labelsTr/la_003.nii.gz,site1,train" msd.csv ||
    fail "MSD row: $(cat msd.csv)"
# Decathlon labels declare 2 classes: label value 3 is out of range
sed -i 's/, "2": "kidney", "3": "vessel"//' msd/dataset.json
expect 3 "msd/labelsTr/la_003.nii.gz" "label value" "nothing written" -- \
    "$dakd" cases msd --out msd2.csv
absent msd2.csv

# ---- plain folders, the pairing rule printed; a phantom folder holds both
expect 0 "same name first, then name with id, then id with id" "4 cases (4 labelled" -- \
    "$dakd" cases --images ph --labels ph --out ph.csv --domain-pattern '^(source|target)_' \
    --split train
grep -qx "target_001,ph/target_001_image.nii.gz,ph/target_001_label.nii.gz,target,train" ph.csv ||
    fail "folders row: $(cat ph.csv)"
mkdir -p im lb
cp ph/source_000_image.nii.gz im/a_0000.nii.gz
cp ph/source_001_image.nii.gz im/b.nii.gz
cp ph/source_000_label.nii.gz lb/a_seg.nii.gz
cp ph/source_001_label.nii.gz lb/b_gt.nii.gz
expect 0 "2 cases (2 labelled" -- "$dakd" cases --images im --labels lb --out ab.csv
grep -qx "b,im/b.nii.gz,lb/b_gt.nii.gz" ab.csv || fail "pairing: $(cat ab.csv)"
expect 0 "2 cases (0 labelled, 2 unlabelled)" -- "$dakd" cases --images im --out unl.csv
grep -qx "case,image" unl.csv || fail "unlabelled header: $(head -1 unl.csv)"
# unmatched files: each named, exit 2 (I/O), nothing written
cp ph/source_001_label.nii.gz lb/c_label.nii.gz
cp ph/source_001_image.nii.gz im/d_image.nii.gz
expect 2 "lb/c_label.nii.gz: label without an image" "im/d_image.nii.gz: image without a label" \
    "2 problems" -- "$dakd" cases --images im --labels lb --out bad.csv
absent bad.csv
rm lb/c_label.nii.gz im/d_image.nii.gz
# mixed grids, 0/255 labels and an unreadable file at once: three lines, exit of the first
cp ph2/source_000_label.nii.gz lb/b_gt.nii.gz                     # 12x16x8 vs 16x16x8
/usr/bin/python3 - "$work" << 'EOF' || fail "could not write the 0/255 label"
import gzip, struct, sys
# the a_seg label map with every foreground voxel set to 255 (a mask saved as 0/255)
p = sys.argv[1] + "/lb/a_seg.nii.gz"
b = bytearray(gzip.open(p).read())
off = int(struct.unpack_from("<f", b, 108)[0])
datatype = struct.unpack_from("<h", b, 70)[0]
assert datatype == 2, datatype  # uint8
for i in range(off, len(b)):
    if b[i]: b[i] = 255
gzip.open(p, "wb").write(bytes(b))
EOF
cp ph/source_000_image.nii.gz im/e.nii.gz && cp ph/source_000_label.nii.gz lb/e_label.nii.gz
head -c 300 ph/source_000_image.nii.gz > im/e.nii.gz            # cut short: unreadable
expect 3 "b_gt.nii.gz" "lb/a_seg.nii.gz: label value 255" "label_map" "im/e.nii.gz" \
    "3 problems" -- "$dakd" cases --images im --labels lb --out bad.csv --classes 4
absent bad.csv
expect 1 "--domain and --domain-pattern" -- \
    "$dakd" cases --images im --out x.csv --domain a --domain-pattern b
expect 1 "bad value 'spss'" -- "$dakd" cases --images im --out x.csv --layout spss
expect 1 "does not match" -- "$dakd" cases --images ph --out x.csv --domain-pattern '^zzz'
expect 0 "usage: dakd cases" "nnU-Net v2 raw dataset" -- "$dakd" cases --help

# ---- DICOM studies: one series per sub-folder; labels paired by folder name
dcm=$shared/conformance/dcmqi/data/segmentations
if [ -d "$dcm/ct-3slice" ]; then
    mkdir -p dicom/liver dlab two
    cp "$dcm"/ct-3slice/* dicom/liver/
    cp "$dcm/liver_seg.nrrd" dlab/liver_seg.nrrd
    expect 0 "dicom layout" "1 cases (1 labelled" -- \
        "$dakd" cases dicom --labels dlab --out dicom.csv --domain ct
    grep -q "^liver,dicom/liver,dlab/liver_seg.nrrd,ct$" dicom.csv || fail "DICOM row: $(cat dicom.csv)"
    # a folder of two series is not one case
    mkdir -p dicom/mixed
    cp "$dcm"/ct-3slice/* dicom/mixed/
    cp "$shared"/conformance/dcm_qa_nih/In/20180918GE/mr_0004/*.dcm dicom/mixed/
    expect 3 "dicom/mixed: 2 image series" "nothing written" -- \
        "$dakd" cases dicom --out dicom2.csv
    absent dicom2.csv
else
    echo "SKIP DICOM studies: $dcm is missing (DAKD_SHARED_DATA)"
    skipped=1
fi

[ $fails = 0 ] || { echo "$fails failures"; exit 1; }
[ $skipped = 0 ] || exit 77
echo "cases_import: every layout and bad input as expected"
