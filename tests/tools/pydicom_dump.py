#!/usr/bin/python3
"""Dump what pydicom sees in DICOM files, for tests/io/test_dicom.c.

usage: pydicom_dump.py OUT_PREFIX FILE...
  One file: its frames. Several files: one series, sorted by ImagePositionPatient along
  the slice normal (row x column of ImageOrientationPatient), as dakd orders them.
Writes OUT_PREFIX.txt ("shape <frames> <rows> <cols>") and OUT_PREFIX.bin: the pixels
after pydicom's modality LUT (RescaleSlope/Intercept) as float64, frame-major, x fastest.
Exit status 2 with a message on stderr when pydicom cannot decode a file.
Pixel handlers: numpy (uncompressed, big endian, deflate), RLE, Pillow (JPEG 2000);
JPEG-LS and 12-bit JPEG need python3-gdcm (pydicom then decodes with GDCM's codecs, the
same ones dakd uses, so those files are also checked against an uncompressed twin).
"""
import sys

import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut


def pixels(path):
    ds = pydicom.dcmread(path)
    arr = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return ds, arr.reshape(frames, int(ds.Rows), int(ds.Columns))


def position(ds):
    iop = np.array([float(x) for x in ds.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    return float(np.dot([float(x) for x in ds.ImagePositionPatient], normal))


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    prefix, files = argv[1], argv[2:]
    try:
        loaded = [pixels(f) for f in files]
    except Exception as e:  # noqa: BLE001 - report any decoder failure to the C side
        sys.stderr.write("pydicom cannot decode %s: %s\n" % (files, e))
        return 2
    if len(loaded) > 1:
        loaded.sort(key=lambda dp: position(dp[0]))
    data = np.concatenate([a for _, a in loaded], axis=0)
    data.tofile(prefix + ".bin")
    with open(prefix + ".txt", "w") as f:
        f.write("shape %d %d %d\n" % data.shape)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
