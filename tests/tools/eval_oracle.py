#!/usr/bin/python3
"""Reference values for dakd's metric tests, computed with numpy / scipy only.

  eval_oracle.py surface PRED REF LABELS TAU [MASK]
      one line per label: "label n_bpred n_bref hd hd95 assd nsd" (%.17g), where for
      S = (labels == l) & mask the boundary is S ^ binary_erosion(S, face-connected
      structure, border_value=0) (MedPy's rule), distances come from
      scipy.ndimage.distance_transform_edt(~boundary, sampling=spacing), the pooled set is
      both directions together and HD95 = np.percentile(pooled, 95). A grid with one slice
      is 2-D (4-connected). Labels where either set is empty print "nan" distances.
  eval_oracle.py wilcoxon FILE
      FILE holds one number per line; prints "W p" of scipy.stats.wilcoxon(d) with its
      defaults (%.17g).
"""
import sys
import warnings

import nibabel as nib
import numpy as np
from scipy import ndimage, stats


def load(path):
    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    while len(zooms) < 3:
        zooms.append(1.0)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    if data.ndim == 2:
        zooms = zooms[:2]
    return data, zooms


def boundary(s):
    st = ndimage.generate_binary_structure(s.ndim, 1)
    return s ^ ndimage.binary_erosion(s, structure=st, border_value=0)


def surface(pred_path, ref_path, labels, tau, mask_path=None):
    pred, sp = load(pred_path)
    ref, _ = load(ref_path)
    mask = np.ones(pred.shape, bool)
    if mask_path:
        mask = load(mask_path)[0] != 0
    for lab in labels:
        p = (pred == lab) & mask
        r = (ref == lab) & mask
        bp, br = boundary(p), boundary(r)
        if not p.any() or not r.any():
            print(lab, int(bp.sum()), int(br.sum()), "nan nan nan nan")
            continue
        d_p = ndimage.distance_transform_edt(~br, sampling=sp)[bp]
        d_r = ndimage.distance_transform_edt(~bp, sampling=sp)[br]
        pooled = np.concatenate([d_p, d_r])
        vals = [pooled.max(), np.percentile(pooled, 95), pooled.mean(), np.mean(pooled <= tau)]
        print(lab, int(bp.sum()), int(br.sum()), " ".join("%.17g" % v for v in vals))


def wilcoxon(path):
    d = np.loadtxt(path, ndmin=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.wilcoxon(d)
    print("%.17g %.17g" % (res.statistic, res.pvalue))


def main(argv):
    if len(argv) in (6, 7) and argv[1] == "surface":
        labels = [int(x) for x in argv[4].split(",")]
        surface(argv[2], argv[3], labels, float(argv[5]), argv[6] if len(argv) > 6 else None)
    elif len(argv) == 3 and argv[1] == "wilcoxon":
        wilcoxon(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
