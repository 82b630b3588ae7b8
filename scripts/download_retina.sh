#!/usr/bin/env bash
# Fetch the public retinal-vessel data sets from their publishers and lay them out as
# pipelines/retina_drive_to_chase.ini expects (cases.csv with dataset, case, split, image,
# label, fov, label_2nd; every image a PNG).
#
#   scripts/download_retina.sh OUT_DIR [--drive DRIVE.zip]...
#
# CHASE_DB1 (Fraz et al., IEEE TBME 2012; Kingston University, CC BY 4.0) is downloaded from
#   https://researchdata.kingston.ac.uk/96/   (the file CHASEDB1.zip)
# DRIVE (Staal et al., IEEE TMI 2004) is distributed through https://drive.grand-challenge.org
# after registration and login, so it cannot be fetched by a script: download DRIVE.zip (or
# training.zip and test.zip) there yourself and pass each file with --drive.
#
# Layout written (the same as ../shared/data/retina):
#   OUT_DIR/chasedb1/{images,labels,labels_2nd,fov}/Image_01L.png ...  28 cases: 01-07 train,
#           08-14 test (both eyes). Labels: the first observer (1stHO), {0,1}; labels_2nd:
#           the second observer. CHASE_DB1 ships no field-of-view masks: fov/ holds masks
#           made here — red channel > 20, the largest connected region, holes filled.
#   OUT_DIR/drive/{images,labels,fov}/21_training.png ... 20 train (21-40), 20 test (01-20):
#           1st_manual labels {0,1}, the official FOV masks. A test archive without
#           1st_manual leaves the test labels empty (those cases cannot be scored).
#   OUT_DIR/cases.csv
# Needs curl (or wget), unzip and /usr/bin/python3 with numpy, scipy and PIL (Debian:
# python3-numpy python3-scipy python3-pil). Nothing is written into the dakd tree.
set -euo pipefail

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
out=""
drive_zips=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage 0 ;;
        --drive) [ $# -ge 2 ] || usage 1; drive_zips+=("$2"); shift 2 ;;
        -*) echo "download_retina: unknown option $1" >&2; exit 1 ;;
        *) [ -z "$out" ] || usage 1; out=$1; shift ;;
    esac
done
[ -n "$out" ] || usage 1
for z in "${drive_zips[@]}"; do
    [ -f "$z" ] || { echo "download_retina: $z: no such file" >&2; exit 2; }
done
command -v unzip >/dev/null || { echo "download_retina: needs unzip" >&2; exit 1; }
/usr/bin/python3 -c 'import numpy, scipy.ndimage, PIL' 2>/dev/null ||
    { echo "download_retina: needs python3-numpy python3-scipy python3-pil" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.download.XXXXXX")
trap 'rm -rf "$work"' EXIT

fetch() { # URL FILE
    if command -v curl >/dev/null; then curl -fL --retry 3 -o "$2" "$1"
    elif command -v wget >/dev/null; then wget -O "$2" "$1"
    else echo "download_retina: needs curl or wget" >&2; exit 1; fi
}

chase_zip="$out/CHASEDB1.zip"
if [ ! -s "$chase_zip" ]; then
    echo "== CHASE_DB1 from Kingston University (https://researchdata.kingston.ac.uk/96/)"
    fetch "https://researchdata.kingston.ac.uk/96/1/CHASEDB1.zip" "$work/CHASEDB1.zip"
    mv "$work/CHASEDB1.zip" "$chase_zip"
fi
echo "CHASEDB1.zip sha256 $(sha256sum "$chase_zip" | cut -d' ' -f1)"
mkdir -p "$work/chase"
unzip -q -o "$chase_zip" -d "$work/chase"

if [ ${#drive_zips[@]} -eq 0 ]; then
    echo "== DRIVE: not downloaded (https://drive.grand-challenge.org needs a login)."
    echo "   Download DRIVE.zip there and run again with --drive DRIVE.zip; until then"
    echo "   cases.csv lists CHASE_DB1 only."
fi
mkdir -p "$work/drive"
for z in "${drive_zips[@]}"; do
    echo "$(basename "$z") sha256 $(sha256sum "$z" | cut -d' ' -f1)"
    unzip -q -o "$z" -d "$work/drive"
done

/usr/bin/python3 - "$work" "$out" <<'PY'
import csv, glob, os, sys
import numpy as np
from PIL import Image
from scipy import ndimage

work, out = sys.argv[1], sys.argv[2]
rows = []

def save(arr, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.png"
    Image.fromarray(arr).save(tmp)
    os.replace(tmp, path)

def binary(path):
    a = np.asarray(Image.open(path).convert("L"))
    return (a > 127).astype(np.uint8)

def fov_from_red(rgb):
    m = rgb[..., 0] > 20
    lab, n = ndimage.label(m)
    if n > 1:
        sizes = ndimage.sum(m, lab, range(1, n + 1))
        m = lab == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(m).astype(np.uint8)

def find(pattern):
    hits = sorted(glob.glob(os.path.join(work, "**", pattern), recursive=True))
    return hits[0] if hits else None

# CHASE_DB1: Image_NN{L,R}.jpg with Image_NN{L,R}_1stHO.png and _2ndHO.png
for n in range(1, 15):
    for eye in "LR":
        cid = "Image_%02d%s" % (n, eye)
        img = find(cid + ".jpg")
        if img is None:
            sys.exit("download_retina: %s.jpg not in CHASEDB1.zip" % cid)
        rgb = np.asarray(Image.open(img).convert("RGB"))
        save(rgb, os.path.join(out, "chasedb1/images", cid + ".png"))
        save(binary(find(cid + "_1stHO.png")), os.path.join(out, "chasedb1/labels", cid + ".png"))
        second = find(cid + "_2ndHO.png")
        if second:
            save(binary(second), os.path.join(out, "chasedb1/labels_2nd", cid + ".png"))
        save(fov_from_red(rgb), os.path.join(out, "chasedb1/fov", cid + ".png"))
        rows.append(["chasedb1", cid, "train" if n <= 7 else "test",
                     "chasedb1/images/%s.png" % cid, "chasedb1/labels/%s.png" % cid,
                     "chasedb1/fov/%s.png" % cid,
                     "chasedb1/labels_2nd/%s.png" % cid if second else ""])

# DRIVE: training/images/NN_training.tif, 1st_manual/NN_manual1.gif, mask/NN_training_mask.gif
for split, first, last in (("train", 21, 40), ("test", 1, 20)):
    kind = "training" if split == "train" else "test"
    for n in range(first, last + 1):
        cid = "%02d_%s" % (n, kind)
        img = find(cid + ".tif")
        if img is None:
            continue
        save(np.asarray(Image.open(img).convert("RGB")), os.path.join(out, "drive/images", cid + ".png"))
        manual = find("%02d_manual1.gif" % n)
        if manual:
            save(binary(manual), os.path.join(out, "drive/labels", cid + ".png"))
        save(binary(find(cid + "_mask.gif")), os.path.join(out, "drive/fov", cid + ".png"))
        rows.append(["drive", cid, split, "drive/images/%s.png" % cid,
                     "drive/labels/%s.png" % cid if manual else "", "drive/fov/%s.png" % cid, ""])

rows.sort(key=lambda r: (r[0] != "drive", r[2] != "train", r[1]))
tmp = os.path.join(out, ".cases.csv.tmp")
with open(tmp, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["dataset", "case", "split", "image", "label", "fov", "label_2nd"])
    w.writerows(rows)
os.replace(tmp, os.path.join(out, "cases.csv"))
print("wrote %s/cases.csv: %d cases" % (out, len(rows)))
PY
echo "== run the study: dakd run pipelines/retina_drive_to_chase.ini --set data.cases=$out/cases.csv"
