#!/usr/bin/env bash
# The demonstration: build dakd, generate two-domain phantoms, describe them, convert.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --target dakd_cli build >/dev/null
out=${1:-demo-out}
rm -rf "$out"
mkdir -p "$out"
dakd=build/dakd
echo "== $($dakd --version)"
echo "== generating 3-D phantoms (source and target domain) in $out/"
$dakd phantom --out "$out/3d" --size 96,96,48 --spacing 1,1,2.5 --cases 1 --seed 7
echo "== dakd info"
$dakd info "$out/3d/source_000_image.nii.gz" "$out/3d/target_000_label.nii.gz"
echo "== 2-D phantoms, converted to PNG and back"
$dakd phantom --out "$out/2d" --size 128,128 --cases 1 --seed 7 --png
$dakd convert "$out/2d/target_000_label.png" "$out/2d/target_000_label.nii.gz"
$dakd info "$out/2d/target_000_label.nii.gz"
echo "== a 3-D volume does not fit a PNG: dakd refuses and writes nothing"
if $dakd convert "$out/3d/source_000_label.nii.gz" "$out/3d/refused.png"; then
    echo "unexpected success" >&2; exit 1
fi
[ ! -e "$out/3d/refused.png" ] && echo "(no $out/3d/refused.png written)"
echo "== done: outputs in $out/"
