#!/usr/bin/env bash
# The demonstration: build dakd, look at generated two-domain phantoms, then run the demo
# study (pipelines/demo.ini): phantoms -> teacher -> source-only student -> distilled
# students and ablations -> oracle -> evaluation -> report, ending with the study table and
# the report's path. A second run skips every stage that is up to date.
#   scripts/demo.sh [OUT_DIR]      (default demo-out; the study runs in OUT_DIR/study)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --target dakd_cli build >/dev/null
out=${1:-demo-out}
mkdir -p "$out"
rm -rf "$out/3d" "$out/2d"
dakd=build/dakd
echo "== $($dakd --version | head -2 | tr '\n' ' ')"
echo "== a 3-D phantom pair (source and target domain) in $out/3d: dakd info"
$dakd phantom --out "$out/3d" --size 96,96,48 --spacing 1,1,2.5 --cases 1 --seed 7 >/dev/null
$dakd info "$out/3d/source_000_image.nii.gz" "$out/3d/target_000_label.nii.gz"
echo "== 2-D phantoms as PNG, converted to NIfTI"
$dakd phantom --out "$out/2d" --size 128,128 --cases 1 --seed 7 --png >/dev/null
$dakd convert "$out/2d/target_000_label.png" "$out/2d/target_000_label.nii.gz"
echo "== a 3-D volume does not fit a PNG: dakd refuses and writes nothing"
if $dakd convert "$out/3d/source_000_label.nii.gz" "$out/3d/refused.png"; then
    echo "unexpected success" >&2; exit 1
fi
[ ! -e "$out/3d/refused.png" ] && echo "(no $out/3d/refused.png written)"
echo "== the demo study: dakd run pipelines/demo.ini (a few minutes on 2 cores; the"
echo "   training log goes to $out/study.log)"
if ! $dakd run pipelines/demo.ini --set study.run_dir="$out/study" 2> "$out/study.log"; then
    tail -n 5 "$out/study.log" >&2
    exit 1
fi
