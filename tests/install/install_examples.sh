#!/usr/bin/env bash
# The installed library as a user meets it: `cmake --install` into a fresh prefix, then
# examples/ built against that prefix only, with find_package(dakd) and with pkg-config,
# shared and static, and run against the command-line tool on a tiny trained model:
#  - the prefix holds libdakd.so.X.Y.Z (soname libdakd.so.X), libdakd.a, the public headers
#    (each compiles alone, as C and as C++, with nothing but the prefix's include folder),
#    dakd.pc, the CMake package and bin/dakd;
#  - libdakd.so exports exactly the functions its export list names (the public headers'),
#    and the shared target brings no include folder or library of a dependency (ITK);
#  - every dependency libdakd.so was linked with is on dakd.pc's static line: the whole
#    archive links with `pkg-config --static --libs dakd` alone;
#  - dice (CMake, pkg-config, static by CMake and by pkg-config) prints the labels, counts
#    and Dice that `dakd eval` writes; predict_one (CMake, pkg-config) writes the file that
#    `dakd predict` writes, voxel for voxel and header for header.
#   install_examples.sh BUILD_DIR SOURCE_DIR WORK_DIR [EXTRA_FLAGS]
# EXTRA_FLAGS go to every compile and link of the examples (the sanitizer build's).
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) work=$3 extra=${4:-}
for tool in cc c++ make pkg-config readelf nm; do
    command -v "$tool" >/dev/null || { echo "SKIP install_examples: no $tool"; exit 77; }
done
rm -rf "$work" && mkdir -p "$work"
cd "$work"
work=$PWD
prefix=$work/prefix
fail() { echo "FAIL: $*"; exit 1; }

# ---- the installed tree
cmake --install "$build" --prefix "$prefix" > install.log
lib=$prefix/lib
ver=$(sed -n 's/^Version: //p' "$lib/pkgconfig/dakd.pc")
major=${ver%%.*}
[ "$(readlink "$lib/libdakd.so")" = "libdakd.so.$major" ] || fail "libdakd.so -> libdakd.so.$major"
[ "$(readlink "$lib/libdakd.so.$major")" = "libdakd.so.$ver" ] || fail "libdakd.so.$major link"
# (grep reads all its input: with pipefail, grep -q could end readelf by SIGPIPE and fail)
readelf -d "$lib/libdakd.so.$ver" | grep "SONAME.*\[libdakd.so.$major\]" > /dev/null || fail "soname"
for f in lib/libdakd.a bin/dakd lib/cmake/dakd/dakdConfig.cmake \
         lib/cmake/dakd/dakdConfigVersion.cmake lib/cmake/dakd/dakdTargets.cmake; do
    [ -e "$prefix/$f" ] || fail "$f not installed"
done
"$prefix/bin/dakd" --version | grep "dakd $ver" > /dev/null || fail "bin/dakd --version"
diff <(cd "$src/lib/include/dakd" && ls) <(cd "$prefix/include/dakd" && ls) ||
    fail "installed headers differ from lib/include/dakd"
for h in "$prefix"/include/dakd/*.h; do
    inc="#include <dakd/$(basename "$h")>"
    echo "$inc" | cc $extra -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
        -I"$prefix/include" -x c - || fail "$inc does not compile alone as C"
    echo "$inc" | c++ $extra -std=c++17 -Wall -Wextra -Werror -fsyntax-only \
        -I"$prefix/include" -x c++ - || fail "$inc does not compile alone as C++"
done
echo "installed: libdakd.so.$ver (soname libdakd.so.$major), libdakd.a," \
     "$(ls "$prefix/include/dakd" | wc -l) headers, dakd.pc, CMake package, bin/dakd"

# ---- exports: the export list's names, nothing else
nm -D --defined-only "$lib/libdakd.so" | awk '{print $3}' | sort > exported.txt
grep -o 'dk_[A-Za-z0-9_]*' "$build/generated/dakd.map" | sort > declared.txt
diff declared.txt exported.txt > exports.diff ||
    { cat exports.diff; fail "libdakd.so exports differ from the public headers' functions"; }
echo "libdakd.so exports $(wc -l < exported.txt) symbols, the public headers' functions"
if grep -qi 'itk\|INTERFACE_LINK_LIBRARIES' "$lib/cmake/dakd/dakdTargets.cmake"; then
    fail "dakd::dakd passes a dependency on to its users"
fi

export PKG_CONFIG_PATH=$lib/pkgconfig
pkg-config --cflags dakd | grep -i itk > /dev/null && fail "pkg-config --cflags dakd names ITK"
# every library libdakd.so was linked with is on the static line: the whole archive links
echo 'int main(void) { return 0; }' > whole.c
cc $extra whole.c -o whole -Wl,--whole-archive -l:libdakd.a -Wl,--no-whole-archive \
    $(pkg-config --static --libs dakd | sed 's/-ldakd\b//') 2> whole.log ||
    { tail -5 whole.log; fail "libdakd.a whole does not link with pkg-config --static's line"; }

# ---- the examples, built against the prefix only
cp -r "$src/examples" ex
make -C ex CFLAGS="-O2 -Wall -Wextra -Werror $extra" all dice_static > make.log 2>&1 ||
    { cat make.log; fail "examples: make (pkg-config)"; }
cmake -S ex -B exb -DCMAKE_PREFIX_PATH="$prefix" -DDAKD_EXAMPLES_STATIC=ON \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $extra" -DCMAKE_CXX_FLAGS="$extra" \
    -DCMAKE_EXE_LINKER_FLAGS="$extra" > cmake.log 2>&1 || { cat cmake.log; fail "examples: cmake"; }
cmake --build exb > build.log 2>&1 || { cat build.log; fail "examples: cmake --build"; }
for exe in ex/dice ex/predict_one exb/dice exb/predict_one; do
    readelf -d "$exe" | grep 'NEEDED.*\[libdakd.so.'"$major"'\]' > /dev/null ||
        fail "$exe: not linked with libdakd.so.$major"
done
for exe in ex/dice_static exb/dice_static; do
    readelf -d "$exe" | grep 'libdakd' > /dev/null && fail "$exe: linked with libdakd.so"
done
echo "examples built: make (pkg-config) and CMake (find_package), shared and static"

# ---- inputs: the demo's 2-D phantoms and a 2-epoch teacher trained on them
dakd=$prefix/bin/dakd
"$dakd" run "$src/pipelines/demo.ini" --set study.run_dir="$work/s" \
    --set study.stages=phantoms > phantoms.log 2>&1 || { cat phantoms.log; fail "phantoms"; }
ph=$work/s/phantoms
# a tiny 2-D teacher: 2 epochs of 2 steps (every other key at its default)
: > train.ini
sets=()
for kv in data.cases="$ph/cases.csv" data.domain_column=domain data.classes=4 \
          data.batch_size=4 data.patch_h=32 data.patch_w=32 model.dims=2 \
          model.teacher_base=4 model.teacher_levels=2 train.epochs=2 train.steps_per_epoch=2 \
          output.run_dir="$work/teacher"; do
    sets+=(--set "$kv")
done
"$dakd" --threads 1 train train.ini "${sets[@]}" > train.log 2>&1 ||
    { tail train.log; fail "dakd train"; }
model=$work/teacher/model.safetensors
image=$ph/target_test_000_image.nii.gz

# ---- predict_one against dakd predict: the same file (gunzipped: header and voxels)
"$dakd" predict --model "$model" --out cli_pred "$image" > predict.log 2>&1 ||
    { cat predict.log; fail "dakd predict"; }
cli_out=$(ls cli_pred/*.nii.gz)
[ "$(echo "$cli_out" | wc -l)" = 1 ] || fail "dakd predict wrote $cli_out"
for exe in ex/predict_one exb/predict_one; do
    out=pred_$(basename "$(dirname "$exe")")
    "$exe" "$model" "$image" "$out" > "$out.log" 2>&1 || { cat "$out.log"; fail "$exe"; }
    cmp <(gzip -dc "$cli_out") <(gzip -dc "$out/$(basename "$cli_out")") ||
        fail "$exe: labels differ from dakd predict's"
done
echo "predict_one (make, CMake) = dakd predict: $(basename "$cli_out"), header and voxels"

# ---- dice against dakd eval, on that prediction and its reference label map
mkdir ref
cp "$ph/target_test_000_label.nii.gz" "ref/$(basename "$cli_out")"
"$dakd" eval --pred cli_pred --ref ref --overlap-only --out ev > eval.log 2>&1 ||
    { cat eval.log; fail "dakd eval"; }
# cases.csv: case,label,tp,fp,fn,...; its dice column found by name
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "dice") d = i; next }
         { printf "%s %s %s %s %s\n", $2, $d, $3, $4, $5 }' ev/cases.csv > eval.txt
[ -s eval.txt ] || fail "dakd eval scored no label"
for exe in ex/dice exb/dice ex/dice_static exb/dice_static; do
    "$exe" "$cli_out" "ref/$(basename "$cli_out")" > dice.out 2> dice.err ||
        { cat dice.err; fail "$exe"; }
    awk '{print $2, $4, $6, $8, $10}' dice.out > dice.txt
    # labels and counts exactly, Dice to the 6 decimals printed
    paste -d' ' eval.txt dice.txt | awk -v exe="$exe" '
        { if ($1 != $6 || $3 != $8 || $4 != $9 || $5 != $10 || ($2 - $7)^2 > 2.5e-13) {
              print exe ": label " $1 " eval " $0; bad = 1 } }
        END { if (NR == 0) bad = 1; exit bad }' || fail "$exe differs from dakd eval"
    [ "$(wc -l < dice.txt)" = "$(wc -l < eval.txt)" ] || fail "$exe: label count"
done
echo "dice (make, CMake, static by both) = dakd eval on $(wc -l < eval.txt) labels:"
cat dice.out
