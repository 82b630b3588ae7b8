#!/usr/bin/env bash
# Write the seed corpora of tests/fuzz/corpus/<fuzzer>/ (committed; rerun only to remake
# them): small valid files of every kind each reader takes, from `dakd phantom`, `dakd
# convert` and a tiny `dakd run`, from ../shared/data's conformance files, from pydicom's and
# nibabel's test files (Debian packages), and written by nibabel and PIL here. Inputs of the
# harnesses with a mode byte or two files carry the prefix fuzz_util.h describes.
#   tests/fuzz/make_corpus.sh [BUILD_DIR]      (a normal build with its dakd; default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dakd=$root/${1:-build}/dakd
shared=$root/../shared/data/conformance
pydicom=/usr/lib/python3/dist-packages/pydicom/data/test_files
nibdata=/usr/lib/python3/dist-packages/nibabel/tests/data
corpus=$root/tests/fuzz/corpus
[ -x "$dakd" ] || { echo "make_corpus: no $dakd (build first)" >&2; exit 1; }
for d in "$shared" "$pydicom" "$nibdata"; do
    [ -d "$d" ] || { echo "make_corpus: missing $d" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# seed FUZZER NAME MODE FILE [SECOND]: MODE byte (or "-" for none), then FILE; with SECOND,
# the 16-bit little-endian length of FILE first and SECOND after it.
seed() {
    local f=$1 name=$2 mode=$3 a=$4 b=${5:-}
    mkdir -p "$corpus/$f"
    {
        [ "$mode" = - ] || printf "\\x$(printf %02x "$mode")"
        if [ -n "$b" ]; then
            local n
            n=$(stat -c %s "$a")
            [ "$n" -lt 65536 ] || { echo "make_corpus: $a is too long to split" >&2; exit 1; }
            printf "\\x$(printf %02x $((n & 255)))\\x$(printf %02x $((n >> 8)))"
        fi
        cat "$a"
        [ -z "$b" ] || cat "$b"
    } > "$corpus/$f/$name"
}

rm -rf "$corpus"

# ---- volumes from the phantom generator, in every format dakd writes
"$dakd" phantom --out "$tmp/p3" --size 12,10,4 --cases 1 --domain source >/dev/null
"$dakd" phantom --out "$tmp/p2" --size 16,12 --cases 1 --domain target --png >/dev/null
img3=$tmp/p3/source_000_image.nii.gz
lab3=$tmp/p3/source_000_label.nii.gz
gunzip -c "$img3" > "$tmp/img3.nii"
gunzip -c "$lab3" > "$tmp/lab3.nii"
"$dakd" convert "$img3" "$tmp/img3.hdr" >/dev/null
seed fuzz_nifti phantom_image.nii 0 "$tmp/img3.nii"
seed fuzz_nifti phantom_label.nii 0 "$tmp/lab3.nii"
seed fuzz_nifti phantom_image.nii.gz 1 "$img3"
seed fuzz_nifti phantom_label_gzipped_here 2 "$tmp/lab3.nii"
seed fuzz_nifti phantom_image.hdr_img 3 "$tmp/img3.hdr" "$tmp/img3.img"
seed fuzz_nifti nibabel_standard.nii.gz 1 "$nibdata/standard.nii.gz"
seed fuzz_nifti nibabel_nifti2.nii.gz 1 "$nibdata/example_nifti2.nii.gz"
# headers whose .img is missing or short, and nibabel's own variety of types and headers
: > "$tmp/empty"
seed fuzz_nifti nibabel_analyze.hdr 3 "$nibdata/analyze.hdr" "$tmp/empty"
seed fuzz_nifti nibabel_nifti2.hdr 3 "$nibdata/nifti2.hdr" "$tmp/empty"
/usr/bin/python3 - "$tmp" <<'PY'
import sys
import numpy as np
import nibabel as nib
out = sys.argv[1]
rng = np.random.default_rng(1)
aff = np.diag([0.8, 0.9, 2.5, 1.0]); aff[:3, 3] = [-10, 5, 3]
def save(img, name):
    nib.save(img, f"{out}/{name}")
save(nib.Nifti1Image(rng.integers(0, 5, (5, 4, 3)).astype(np.uint64), aff, dtype=np.uint64),
     "u64.nii")
save(nib.Nifti1Image(rng.integers(-9, 9, (5, 4, 3, 2)).astype(np.int64), aff, dtype=np.int64),
     "i64_4d.nii")
img = nib.Nifti1Image(rng.normal(size=(6, 5, 2)).astype(np.float64), aff)
img.header.set_qform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
save(img, "f64_qform.nii")
img = nib.Nifti1Image(rng.integers(0, 200, (4, 4, 2)).astype(np.int16), aff)
img.header.set_slope_inter(0.5, -3)
save(img, "i16_scaled.nii")
rgb = np.zeros((4, 3, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
save(nib.Nifti1Image(rgb, aff), "rgb24.nii")
save(nib.Nifti2Image(rng.integers(0, 3, (4, 3, 2)).astype(np.uint8), aff), "n2.nii")
save(nib.Nifti1Pair(rng.integers(0, 3, (4, 3, 2)).astype(np.int32), aff), "pair_i32.hdr")
save(nib.AnalyzeImage(rng.integers(0, 3, (4, 3, 2)).astype(np.uint8), aff), "analyze.hdr")
PY
for f in u64 i64_4d f64_qform i16_scaled rgb24 n2; do
    seed fuzz_nifti "nibabel_$f.nii" 0 "$tmp/$f.nii"
done
seed fuzz_nifti nibabel_pair_i32.hdr_img 3 "$tmp/pair_i32.hdr" "$tmp/pair_i32.img"
seed fuzz_nifti nibabel_analyze.hdr_img 3 "$tmp/analyze.hdr" "$tmp/analyze.img"

# ---- PNG: the phantom's, and every colour type and depth, written by PIL
seed fuzz_png phantom_image.png - "$tmp/p2/target_000_image.png"
seed fuzz_png phantom_label.png - "$tmp/p2/target_000_label.png"
/usr/bin/python3 - "$tmp" <<'PY'
import sys
import numpy as np
from PIL import Image
out = sys.argv[1]
rng = np.random.default_rng(2)
rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
Image.fromarray(rgb, "RGB").save(f"{out}/rgb.png")
Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA").save(f"{out}/rgba.png")
Image.fromarray(rgb[..., 0], "L").save(f"{out}/gray.png")
Image.fromarray(rgb[..., :2].copy(), "LA").save(f"{out}/gray_alpha.png")
Image.fromarray(rgb[..., 0] > 128).save(f"{out}/bits1.png")
Image.fromarray(rgb.astype(np.uint16)[..., 0] * 250, "I;16").save(f"{out}/gray16.png")
pal = Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=4)
pal.save(f"{out}/palette.png")
pal.save(f"{out}/palette_trns.png", transparency=0)
Image.fromarray(rgb[..., 0] // 64, "L").convert("P").save(f"{out}/palette_gray.png", bits=2)
PY
for f in rgb rgba gray gray_alpha bits1 gray16 palette palette_trns palette_gray; do
    seed fuzz_png "pil_$f.png" - "$tmp/$f.png"
done

# ---- MetaImage and NRRD: attached (.mha, .nrrd) and detached (.mhd, .nhdr + x.raw)
"$dakd" convert "$lab3" "$tmp/lab3.mha" >/dev/null
"$dakd" convert "$img3" "$tmp/img3.nrrd" >/dev/null
seed fuzz_metaimage phantom_label.mha 0 "$tmp/lab3.mha"
seed fuzz_metaimage phantom_image.nrrd 1 "$tmp/img3.nrrd"
segs=$shared/dcmqi/data/segmentations
seed fuzz_metaimage dcmqi_label.nrrd 1 "$segs/23x38x3/nrrd/label.nrrd"
seed fuzz_metaimage dcmqi_sparse_seg.nrrd 1 "$segs/sparse_labelmap_noppv_seg.nrrd"
head -c 120 /dev/zero > "$tmp/x.raw"  # 5 x 4 x 3 int16
cat > "$tmp/x.mhd" <<'MHD'
ObjectType = Image
NDims = 3
BinaryData = True
BinaryDataByteOrderMSB = False
CompressedData = False
TransformMatrix = 1 0 0 0 1 0 0 0 1
Offset = -2 3.5 0
ElementSpacing = 0.5 0.5 2
DimSize = 5 4 3
ElementType = MET_SHORT
ElementDataFile = x.raw
MHD
cat > "$tmp/x.nhdr" <<'NHDR'
NRRD0004
type: short
dimension: 3
space: left-posterior-superior
sizes: 5 4 3
space directions: (0.5,0,0) (0,0.5,0) (0,0,2)
kinds: domain domain domain
endian: little
encoding: raw
space origin: (-2,3.5,0)
data file: x.raw
NHDR
seed fuzz_metaimage detached.mhd_raw 2 "$tmp/x.mhd" "$tmp/x.raw"
seed fuzz_metaimage detached.nhdr_raw 3 "$tmp/x.nhdr" "$tmp/x.raw"

# ---- DICOM: one file, and a folder of two
seg=$shared/dcmqi/data/segmentations/23x38x3
seed fuzz_dicom dcmqi_ct_slice.dcm 0 "$seg/image/IMG0001.dcm"
seed fuzz_dicom dcmqi_multiframe.dcm 0 "$seg/multiframe/mf.dcm"
seed fuzz_dicom dcmqi_seg.dcm 0 "$seg/seg/label.seg"
seed fuzz_dicom ge_mr_slice.dcm 0 \
    "$shared/dcm_qa_nih/In/20180918GE/mr_0004/axial_epi_fmri_interleaved_i_to_s-00001.dcm"
seed fuzz_dicom siemens_mosaic.dcm 0 "$shared/dcm_qa_nih/In/20180918Si/mr_0003/epi_pe_ap-00001.dcm"
for f in MR_small MR_small_bigendian MR_small_implicit MR_small_RLE MR_small_jp2klossless \
         MR_small_jpeg_ls_lossless JPGExtended JPEG2000 rtdose_1frame SC_rgb_small_odd \
         ExplVR_BigEndNoMeta no_meta_group_length image_dfl UN_sequence; do
    seed fuzz_dicom "pydicom_$f.dcm" 0 "$pydicom/$f.dcm"
done
seed fuzz_dicom dcmqi_two_slices.dir 1 "$seg/image/IMG0001.dcm" "$seg/image/IMG0002.dcm"
seed fuzz_dicom dcmqi_slice_and_seg.dir 1 "$seg/image/IMG0003.dcm" "$seg/seg/label.seg"

# ---- DICOM SEG onto tests/fuzz/data/seg_series (dcmqi's 23 x 38 x 3 series)
seed fuzz_dicom_seg dcmqi_label.seg - "$seg/seg/label.seg"
seed fuzz_dicom_seg dcmqi_24_label.seg - "$shared/dcmqi/data/segmentations/24x38x3/seg/label.seg"

# ---- configs and study files
for f in train_example demo retina_drive_to_chase; do
    seed fuzz_config "$f.ini" - "$root/pipelines/$f.ini"
    seed fuzz_study "$f.ini" - "$root/pipelines/$f.ini"
done
printf '[data]\ncases = c.csv\nsource = ;x\n' > "$tmp/semicolon.ini"
seed fuzz_config semicolon.ini - "$tmp/semicolon.ini"

# ---- case lists beside img.nii.gz, lab.nii.gz, mask.png (fuzz_cases.c)
printf '%s\n' case,image,label,mask,domain,split a,img.nii.gz,lab.nii.gz,mask.png,src,train \
    b,img.nii.gz,,,tgt,test > "$tmp/c1.csv"
# a BOM, CRLF line ends, quoted fields with a comma and doubled quotes
printf '\xef\xbb\xbf' > "$tmp/c2.csv"
printf '%s\r\n' case,image,label '"a,1",img.nii.gz,"lab.nii.gz"' \
    '"b ""q""",./img.nii.gz,' >> "$tmp/c2.csv"
printf 'image,case\nimg.nii.gz,x\n' > "$tmp/c3.csv"
# channel columns: image_1.. (any order among the others), one named twice, one missing
printf '%s\n' case,image,image_1,label,image_2 a,img.nii.gz,lab.nii.gz,lab.nii.gz,mask.png \
    'b,img.nii.gz,"img.nii.gz",,mask.png' > "$tmp/c4.csv"
printf 'case,image_1,image,image_01\na,img.nii.gz,img.nii.gz,img.nii.gz\n' > "$tmp/c5.csv"
printf 'case,image,image_2,mask\na,img.nii.gz,img.nii.gz,mask.png\n' > "$tmp/c6.csv"
for f in c1 c2 c3 c4 c5 c6; do seed fuzz_cases "$f.csv" - "$tmp/$f.csv"; done
sed -n '1,4p' "$root/../shared/data/retina/cases.csv" > "$tmp/retina.csv"
seed fuzz_cases retina_head.csv - "$tmp/retina.csv"

# ---- labels files: a 3D Slicer colour table (fuzz_labels.c; mode 0: values 0..3)
printf '%s\n' '# dakd test colours' '0 background 0 0 0 0' '1 liver 221 130 101 255' \
    '2 spleen 157 108 162' '3 left_kidney 185 102 83 255' > "$tmp/names.txt"
seed fuzz_labels slicer.txt 0 "$tmp/names.txt"

# ---- dataset.json of a Decathlon task (mode 0) and an nnU-Net raw dataset (mode 1) beside
# the files fuzz_import.c lays out
cat > "$tmp/msd.json" <<'JSON'
{"name": "seed", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "organ"},
 "numTraining": 1, "numTest": 0,
 "training": [{"image": "./imagesTr/a.nii", "label": "./labelsTr/a.nii"}], "test": []}
JSON
cat > "$tmp/nnunet.json" <<'JSON'
{"channel_names": {"0": "CT"}, "labels": {"background": 0, "organ": 1},
 "numTraining": 1, "file_ending": ".nii"}
JSON
seed fuzz_import msd.json 0 "$tmp/msd.json"
seed fuzz_import nnunet.json 1 "$tmp/nnunet.json"

# ---- model files: a tiny teacher trained for two steps on 2-D phantoms; its model file
# matches fuzz_safetensors' fixed U-Net (2-D, 1 -> 4 classes, base 4, 2 levels, batch norm)
cat > "$tmp/tiny.ini" <<'INI'
[study]
run_dir = run
stages = phantoms, teacher
[phantoms]
dims = 2
size = 16,16
source_train = 2
source_val = 1
source_test = 0
target_train = 1
target_val = 0
target_test = 0
[data]
patch_h = 16
patch_w = 16
batch_size = 2
[model]
teacher_base = 4
teacher_levels = 2
[train]
epochs = 1
steps_per_epoch = 2
[stage.teacher]
kind = train
mode = teacher
INI
(cd "$tmp" && "$dakd" run tiny.ini >/dev/null 2>&1)
model=$(find "$tmp/run/teacher" -name '*.safetensors' ! -name 'checkpoint*' | head -1)
seed fuzz_model teacher.safetensors - "$model"
seed fuzz_safetensors teacher.safetensors - "$model"
seed fuzz_safetensors checkpoint.safetensors - "$tmp/run/teacher/checkpoint.safetensors"

# ---- eval --compare (fuzz_compare.c): cases.csv of three evaluations of two phantom cases
# (the target phantom's labels scored as predictions of the source's, in two pairings; the
# third in voxels); mode 0 two eval folders, mode 1 a study model folder of two seeds
"$dakd" phantom --out "$tmp/cs" --size 12,10,4 --cases 2 --domain source >/dev/null
"$dakd" phantom --out "$tmp/ct" --size 12,10,4 --cases 2 --domain target >/dev/null
mkdir -p "$tmp/cp1" "$tmp/cp2"
for k in 0 1; do
    cp "$tmp/ct/target_00${k}_label.nii.gz" "$tmp/cp1/source_00${k}.nii.gz"
    cp "$tmp/ct/target_00$((1 - k))_label.nii.gz" "$tmp/cp2/source_00${k}.nii.gz"
done
"$dakd" --quiet eval --pred "$tmp/cp1" --ref "$tmp/cs" --out "$tmp/ce1" >/dev/null 2>&1
"$dakd" --quiet eval --pred "$tmp/cp2" --ref "$tmp/cs" --out "$tmp/ce2" >/dev/null 2>&1
"$dakd" --quiet eval --pred "$tmp/cp2" --ref "$tmp/cs" --distance-unit voxels \
    --out "$tmp/ce3" >/dev/null 2>&1
head -2 "$tmp/ce1/cases.csv" > "$tmp/ce_one_row.csv"
seed fuzz_compare two_runs 0 "$tmp/ce1/cases.csv" "$tmp/ce2/cases.csv"
seed fuzz_compare two_seeds 1 "$tmp/ce1/cases.csv" "$tmp/ce2/cases.csv"
seed fuzz_compare mm_against_voxels 0 "$tmp/ce1/cases.csv" "$tmp/ce3/cases.csv"
seed fuzz_compare seeds_rows_differ 1 "$tmp/ce1/cases.csv" "$tmp/ce_one_row.csv"

du -sh "$corpus"
for d in "$corpus"/*; do
    echo "$(basename "$d"): $(ls "$d" | wc -l) files, $(du -sh "$d" | cut -f1)"
done
