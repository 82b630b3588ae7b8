#!/usr/bin/python3
"""Check a DICOM SEG written by `dakd predict --dicom-seg` with pydicom, for
tests/eval/test_seg_out.c.

usage: pydicom_seg_check.py SEG SOURCE NAMES LABELS.nii.gz
  SOURCE: the folder of the source series, or its one (multi-frame) file.
  NAMES: the expected SegmentLabel of segments 1, 2, ... joined by '|'.
  LABELS.nii.gz: the label map predict wrote beside it (read with nibabel).
Checks: the SOP class, Modality, BINARY type; the segment count, numbers, names and
algorithm; NumberOfFrames against the functional groups; every referenced SOP instance is
one of the source's (the per-frame source images and the referenced series' instance
list), the series, study, patient and frame of reference are the source's; then the frames,
decoded by pydicom and placed on the source slice whose SOP instance (and frame) they
reference, give the NIfTI's labels voxel for voxel (highest segment where two overlap,
which BINARY segments of one label map never do). Prints "ok ..." and exits 0, or prints
what differs and exits 1.
"""
import os
import sys

import nibabel as nib
import numpy as np
import pydicom


def source_slices(source):
    """(sop uid, frame number or 0) of each slice, ordered along the normal; the first ds."""
    paths = [os.path.join(source, f) for f in sorted(os.listdir(source))] \
        if os.path.isdir(source) else [source]
    items, first = [], None
    for p in paths:
        ds = pydicom.dcmread(p)
        first = first or ds
        if "PerFrameFunctionalGroupsSequence" in ds:
            iop = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
            iop = np.array([float(x) for x in iop.ImageOrientationPatient])
            normal = np.cross(iop[:3], iop[3:])
            for k, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
                ipp = [float(x) for x in fg.PlanePositionSequence[0].ImagePositionPatient]
                items.append((float(np.dot(ipp, normal)), ds.SOPInstanceUID, k + 1))
        else:
            iop = np.array([float(x) for x in ds.ImageOrientationPatient])
            normal = np.cross(iop[:3], iop[3:])
            ipp = [float(x) for x in ds.ImagePositionPatient]
            items.append((float(np.dot(ipp, normal)), ds.SOPInstanceUID, 0))
    items.sort()
    return [(uid, fr) for _, uid, fr in items], first


def main():
    seg_path, source, names, labels_path = sys.argv[1:5]
    names = names.split("|")
    seg = pydicom.dcmread(seg_path)
    slices, src = source_slices(source)
    uids = {uid for uid, _ in slices}
    errs = []

    def want(what, got, exp):
        if got != exp:
            errs.append(f"{what}: {got!r} != {exp!r}")

    want("SOPClassUID", seg.SOPClassUID, "1.2.840.10008.5.1.4.1.1.66.4")
    want("Modality", seg.Modality, "SEG")
    want("SegmentationType", seg.SegmentationType, "BINARY")
    want("segments", len(seg.SegmentSequence), len(names))
    for k, s in enumerate(seg.SegmentSequence):
        want(f"segment {k + 1} number", int(s.SegmentNumber), k + 1)
        want(f"segment {k + 1} label", s.SegmentLabel, names[k] if k < len(names) else None)
        want(f"segment {k + 1} algorithm", (s.SegmentAlgorithmType, s.SegmentAlgorithmName),
             ("AUTOMATIC", "dakd"))
        want(f"segment {k + 1} CIELab values", len(s.RecommendedDisplayCIELabValue), 3)
    nframes = int(seg.NumberOfFrames)
    want("NumberOfFrames vs per-frame groups", len(seg.PerFrameFunctionalGroupsSequence), nframes)
    ref = seg.ReferencedSeriesSequence[0]
    want("referenced series", ref.SeriesInstanceUID, src.SeriesInstanceUID)
    for it in ref.ReferencedInstanceSequence:
        if it.ReferencedSOPInstanceUID not in uids:
            errs.append(f"referenced instance {it.ReferencedSOPInstanceUID} is not the source's")
    for kw in ("StudyInstanceUID", "PatientID", "FrameOfReferenceUID"):
        want(kw, getattr(seg, kw, None), getattr(src, kw, None))
    pix = seg.pixel_array.reshape(nframes, int(seg.Rows), int(seg.Columns))
    lab = np.asanyarray(nib.load(labels_path).dataobj)
    lab = lab.reshape(lab.shape[0], lab.shape[1], -1)
    got = np.zeros_like(lab)
    for k, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
        img = fg.DerivationImageSequence[0].SourceImageSequence[0]
        key = (img.ReferencedSOPInstanceUID, int(getattr(img, "ReferencedFrameNumber", 0) or 0))
        if key not in slices:
            errs.append(f"frame {k + 1} references {key}, not a source image")
            continue
        z = slices.index(key)
        num = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        plane = got[:, :, z]
        plane[(pix[k].T > 0) & (plane < num)] = num
    if not np.array_equal(got, lab):
        errs.append(f"decoded frames differ from the labels at {int((got != lab).sum())} voxels")
    for e in errs:
        print(e)
    if errs:
        return 1
    print(f"ok {len(names)} segments, {nframes} frames, {int((lab > 0).sum())} labelled voxels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
