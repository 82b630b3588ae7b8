#!/usr/bin/env bash
# scripts/download_retina.sh without the network: archives are rebuilt from the copy in
# ../shared/data/retina with the publishers' file names and formats (CHASEDB1.zip: JPEG
# images, _1stHO/_2ndHO PNG labels; DRIVE.zip: training|test/images/*.tif, 1st_manual/*.gif,
# mask/*_mask.gif), CHASEDB1.zip is placed where the script looks before it downloads, and
# the script's layout is checked against the copy: the same cases and splits, DRIVE images,
# labels and FOV masks and CHASE_DB1 labels identical, CHASE_DB1 FOV masks (made by the
# script) agreeing with the copy's on >= 99 % of the pixels. Exit 77 (skipped) without the
# shared data, unzip or the Python modules.
#   download_layout.sh SOURCE_DIR WORK_DIR [SHARED_DATA]
set -euo pipefail
src=$1 work=$2 shared=${3:-${DAKD_SHARED_DATA:-$src/../shared/data}}
retina="$shared/retina"
skip() { echo "skipped: $*"; exit 77; }
[ -f "$retina/cases.csv" ] || skip "no $retina/cases.csv (set DAKD_SHARED_DATA)"
command -v unzip >/dev/null || skip "unzip is not installed"
/usr/bin/python3 -c 'import numpy, scipy.ndimage, PIL' 2>/dev/null ||
    skip "/usr/bin/python3 lacks numpy, scipy or PIL"
rm -rf "$work" && mkdir -p "$work/out"

/usr/bin/python3 - "$retina" "$work" <<'PY'
import csv, io, os, sys, zipfile
import numpy as np
from PIL import Image
retina, work = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(os.path.join(retina, "cases.csv"))))
def put(z, name, img, fmt, **kw):
    b = io.BytesIO(); img.save(b, fmt, **kw); z.writestr(name, b.getvalue())
def load(rel): return Image.open(os.path.join(retina, rel))
def binary(rel): return Image.fromarray(np.asarray(load(rel)).astype(np.uint8) * 255)
with zipfile.ZipFile(os.path.join(work, "out", "CHASEDB1.zip"), "w") as z:
    for r in rows:
        if r["dataset"] != "chasedb1": continue
        c = r["case"]
        put(z, c + ".jpg", load(r["image"]).convert("RGB"), "JPEG", quality=95)
        put(z, c + "_1stHO.png", binary(r["label"]), "PNG")
        put(z, c + "_2ndHO.png", binary(r["label_2nd"]), "PNG")
with zipfile.ZipFile(os.path.join(work, "DRIVE.zip"), "w") as z:
    for r in rows:
        if r["dataset"] != "drive": continue
        c, kind = r["case"], "training" if r["split"] == "train" else "test"
        n = c.split("_")[0]
        put(z, "DRIVE/%s/images/%s.tif" % (kind, c), load(r["image"]).convert("RGB"), "TIFF")
        put(z, "DRIVE/%s/1st_manual/%s_manual1.gif" % (kind, n), binary(r["label"]), "GIF")
        put(z, "DRIVE/%s/mask/%s_mask.gif" % (kind, c), binary(r["fov"]), "GIF")
PY

bash "$src/scripts/download_retina.sh" "$work/out" --drive "$work/DRIVE.zip" > "$work/log.txt" 2>&1 ||
    { cat "$work/log.txt"; exit 1; }
tail -n 2 "$work/log.txt"

/usr/bin/python3 - "$retina" "$work/out" <<'PY'
import csv, os, sys
import numpy as np
from PIL import Image
retina, out = sys.argv[1], sys.argv[2]
ref = {(r["dataset"], r["case"]): r for r in csv.DictReader(open(os.path.join(retina, "cases.csv")))}
got = {(r["dataset"], r["case"]): r for r in csv.DictReader(open(os.path.join(out, "cases.csv")))}
assert sorted(got) == sorted(ref), "case sets differ: %s" % sorted(set(got) ^ set(ref))
def arr(root, rel): return np.asarray(Image.open(os.path.join(root, rel)))
worst = 1.0
for key, r in sorted(ref.items()):
    g = got[key]
    assert g["split"] == r["split"], "%s: split %s, expected %s" % (key, g["split"], r["split"])
    assert (arr(out, g["label"]) == arr(retina, r["label"])).all(), "%s: label differs" % (key,)
    if key[0] == "drive":
        assert (arr(out, g["image"]) == np.asarray(Image.open(os.path.join(retina, r["image"])).convert("RGB"))).all(), \
            "%s: image differs" % (key,)
        assert (arr(out, g["fov"]) == arr(retina, r["fov"])).all(), "%s: FOV mask differs" % (key,)
    else:
        assert (arr(out, g["label_2nd"]) == arr(retina, r["label_2nd"])).all(), "%s: 2nd label differs" % (key,)
        agree = float((arr(out, g["fov"]) == (arr(retina, r["fov"]) > 0)).mean())
        worst = min(worst, agree)
assert worst >= 0.99, "CHASE_DB1 FOV masks agree on only %.4f of the pixels" % worst
print("layout: %d cases as in %s; DRIVE images, labels and FOV masks and CHASE_DB1 labels "
      "identical; CHASE_DB1 FOV masks agree on >= %.4f of the pixels" % (len(got), retina, worst))
PY
