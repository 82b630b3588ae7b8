#!/usr/bin/python3
"""The qform and sform of NIfTI files through nibabel, for tests/io/test_nifti_oracle.c.

usage: nib_xforms.py make OUT CASE    write a 4x5x3 NIfTI-1 image with the transforms of CASE:
         differ  qform_code 1 (scanner, rotated 0.3 rad about z, pixdim 2 3 4) and
                 sform_code 2 (aligned: another rotation, origin and scaling)
         noq     qform_code 0, sform_code 2
         nos     qform_code 1, sform_code 0
       nib_xforms.py same A B          exit 0 when A and B have the same codes and, for each
                                       code > 0, the same transform (1e-5 relative)
       nib_xforms.py agree B           exit 0 when B's qform and sform are one transform
Prints what it compared.
"""
import sys

import nibabel as nib
import numpy as np


def rot_z(t):
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def make(out, case):
    img = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(4, 5, 3), None)
    q = np.eye(4)
    q[:3, :3] = rot_z(0.3) @ np.diag([2.0, 3.0, 4.0])
    q[:3, 3] = [-10.0, 20.5, 7.25]
    s = np.eye(4)
    s[:3, :3] = rot_z(-0.2) @ np.diag([2.1, 2.9, 4.2])
    s[:3, 3] = [3.0, -4.5, 12.0]
    img.set_qform(q, code=0 if case == "noq" else 1)
    img.set_sform(s, code=0 if case == "nos" else 2)
    if case == "noq":
        img.header.set_qform(None, code=0)
    nib.save(img, out)


def xforms(path):
    h = nib.load(path).header
    return h.get_qform(coded=True), h.get_sform(coded=True)


def close(a, b):
    return np.allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(a).max())


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
        return 0
    if sys.argv[1] == "agree":
        (q, qc), (s, sc) = xforms(sys.argv[2])
        print("codes", qc, sc, "\nqform", q, "\nsform", s)
        return 0 if q is not None and s is not None and close(q, s) else 1
    ok = True
    for name, (a, ac), (b, bc) in zip(("qform", "sform"), xforms(sys.argv[2]),
                                      xforms(sys.argv[3])):
        same = ac == bc and (a is None or close(a, b))
        print(name, "codes", ac, bc, "same" if same else "DIFFER", "\n", a, "\n", b)
        ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
