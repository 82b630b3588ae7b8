#!/usr/bin/python3
"""Dump what nibabel sees in an image, for tests/io/test_nifti_oracle.c.

usage: nib_dump.py MODE IMAGE OUT_PREFIX
  MODE  header: shape and affine only (the data file may be absent)
        full:   also the voxels, nibabel's get_fdata() (scaled, float64)

Writes OUT_PREFIX.txt, one "key value..." line each:
  kind <class name>         e.g. Nifti1Image, Nifti2Pair, Spm2AnalyzeImage, Cifti2Image
  shape <n1> <n2> ...       img.shape
  codes <qform> <sform>     -1 -1 when the format has none (Analyze, CIFTI)
  zooms <z1> <z2> <z3>      header.get_zooms()[:3], for the pixdim-only geometry rule
  affine <16 numbers|none>  img.affine (RAS, row-major), repr precision
  nvox <n>                  voxels written to OUT_PREFIX.bin (full mode)
and in full mode OUT_PREFIX.bin: get_fdata() as float64, Fortran (x fastest) order.
Exit status 0 on success, 2 with a message on stderr when nibabel cannot load the file.
"""
import sys

import nibabel as nib
import numpy as np


def header_of(img):
    hdr = img.header
    # CIFTI images carry their NIfTI-2 header separately.
    nhdr = getattr(img, "nifti_header", None) or hdr
    return hdr, nhdr


def main(argv):
    if len(argv) != 4 or argv[1] not in ("header", "full"):
        sys.stderr.write(__doc__)
        return 2
    mode, path, prefix = argv[1], argv[2], argv[3]
    try:
        img = nib.load(path)
    except Exception as e:  # noqa: BLE001 - report any loader failure to the C side
        sys.stderr.write("nibabel cannot load %s: %s\n" % (path, e))
        return 2
    _, nhdr = header_of(img)
    lines = ["kind %s" % type(img).__name__,
             "shape %s" % " ".join(str(int(n)) for n in img.shape)]
    if "qform_code" in nhdr and "sform_code" in nhdr and not isinstance(img, nib.Cifti2Image):
        lines.append("codes %d %d" % (int(nhdr["qform_code"]), int(nhdr["sform_code"])))
    else:
        lines.append("codes -1 -1")
    zooms = list(nhdr.get_zooms())[:3] + [1.0] * 3
    lines.append("zooms %s" % " ".join(repr(float(z)) for z in zooms[:3]))
    aff = getattr(img, "affine", None)
    if aff is None:
        lines.append("affine none")
    else:
        lines.append("affine %s" % " ".join(repr(float(x)) for x in np.asarray(aff).ravel()))
    if mode == "full":
        data = np.asarray(img.get_fdata(), dtype=np.float64)
        data.ravel(order="F").tofile(prefix + ".bin")
        lines.append("nvox %d" % data.size)
    with open(prefix + ".txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
