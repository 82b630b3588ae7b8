/* DICOM series, multi-frame files, DICOM SEG, MetaImage and NRRD through the ITK bridge.
 *
 * Oracles: dcm2niix's reference conversion of the GE 4-D series (compared in world
 * coordinates: each dakd voxel is mapped through both grids, so LPS vs LAS storage does
 * not matter), nibabel reading dakd's NIfTI of that series, the label maps dcmqi wrote
 * for its SEG objects (NRRD), TotalSegmentator's label map on its JPEG 2000 series, and
 * pydicom (/usr/bin/python3, tests/tools/pydicom_dump.py) on Debian's pydicom test files.
 * Broken inputs are made here from good files. Tests that need ../shared/data report
 * "SKIP <what>: <reason>"; when it is absent the whole suite exits 77 (skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/volume.h"
#include "test_util.h"

#define PY "/usr/bin/python3"
#define PYDICOM_FILES "/usr/lib/python3/dist-packages/pydicom/data/test_files"

static const char *data; /* ../shared/data/conformance */
static char nib_script[4096], dcm_script[4096];

static const char *conf(const char *rel) { return dk_test_path(data, rel); }

static int read_ok(dk_volume *v, const char *path) {
    dk_status st = dk_volume_read(v, path);
    if (st != DK_OK) printf("\n    %s: %s", path, dk_last_error());
    return st == DK_OK;
}

/* LPS position of voxel (i, j, k) and the (fractional) index of a position. */
static void to_world(const dk_geometry *g, const double ijk[3], double p[3]) {
    for (int r = 0; r < 3; r++) {
        p[r] = g->origin[r];
        for (int c = 0; c < 3; c++) p[r] += g->direction[r][c] * g->spacing[c] * ijk[c];
    }
}

static void to_index(const dk_geometry *g, const double p[3], double ijk[3]) {
    for (int c = 0; c < 3; c++) {
        double s = 0;
        for (int r = 0; r < 3; r++) s += g->direction[r][c] * (p[r] - g->origin[r]);
        ijk[c] = s / g->spacing[c];
    }
}

/* Map every voxel of `a` onto `b`: each must land on a voxel centre of b (within tol_mm)
 * holding the same value at the same time point. Returns the number of mismatches. */
static int64_t world_compare(const dk_volume *a, const dk_volume *b, double tol_mm,
                             int compare_values) {
    int64_t bad = 0;
    if (a->nx * a->ny * a->nz != b->nx * b->ny * b->nz || a->nt != b->nt) return -1;
    for (int64_t k = 0; k < a->nz; k++)
        for (int64_t j = 0; j < a->ny; j++)
            for (int64_t i = 0; i < a->nx; i++) {
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3], q[3];
                to_world(&a->geom, ijk, p);
                to_index(&b->geom, p, q);
                int64_t n[3];
                for (int c = 0; c < 3; c++) {
                    n[c] = (int64_t)llround(q[c]);
                    if (fabs(q[c] - (double)n[c]) * b->geom.spacing[c] > tol_mm) return -2;
                }
                if (n[0] < 0 || n[1] < 0 || n[2] < 0 || n[0] >= b->nx || n[1] >= b->ny ||
                    n[2] >= b->nz)
                    return -3;
                for (int64_t t = 0; compare_values && t < a->nt; t++) {
                    int64_t ia = ((t * a->nz + k) * a->ny + j) * a->nx + i;
                    int64_t ib = ((t * b->nz + n[2]) * b->ny + n[1]) * b->nx + n[0];
                    bad += dk_volume_get(a, ia) != dk_volume_get(b, ib);
                }
            }
    return bad;
}

static void expect_failure(const char *path, dk_status want, const char *needle);

/* ---------------------------------------------------------------- conformance */

static void test_ge_vs_dcm2niix(void) {
    dk_volume v, ref;
    CU_ASSERT_FATAL(read_ok(&v, conf("dcm_qa_nih/In/20180918GE/mr_0004")));
    CU_ASSERT_FATAL(read_ok(&ref, conf("dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii")));
    CU_ASSERT(v.nx == 64 && v.ny == 64 && v.nz == 15 && v.nt == 10);
    CU_ASSERT_EQUAL(v.dtype, DK_I16);
    int64_t bad = world_compare(&v, &ref, 1e-3, 1);
    printf("\n    GE 64x64x15x10 vs dcm2niix: %lld voxel mismatches (negative = grid mismatch)",
           (long long)bad);
    CU_ASSERT_EQUAL(bad, 0);
    dk_volume_free(&v);
    dk_volume_free(&ref);
}

/* nibabel on dakd's NIfTI and on dcm2niix's: same voxels in world coordinates. */
static int nib_load(dk_volume *v, const char *path) {
    static int n;
    char prefix[4200], out[4096], line[4096];
    snprintf(prefix, sizeof prefix, "%s/nib_%d", dk_test_tmpdir(), n++);
    if (dk_test_sh(out, sizeof out, PY " '%s' full '%s' '%s'", nib_script, path, prefix)) {
        printf("\n    nib_dump %s: %s", path, out);
        return 0;
    }
    long long shape[4] = {1, 1, 1, 1};
    double a[16] = {0};
    double m[4][4];
    char name[4300];
    snprintf(name, sizeof name, "%s.txt", prefix);
    FILE *f = fopen(name, "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "shape ", 6))
            sscanf(line + 6, "%lld %lld %lld %lld", &shape[0], &shape[1], &shape[2], &shape[3]);
        char *p = line + 7, *end;
        for (int i = 0; !strncmp(line, "affine ", 7) && i < 16; i++, p = end)
            a[i] = strtod(p, &end);
    }
    if (f) fclose(f);
    if (dk_volume_alloc(v, shape[0], shape[1], shape[2], shape[3], 1, DK_F64) != DK_OK) return 0;
    for (int i = 0; i < 16; i++) m[i / 4][i % 4] = a[i];
    dk_geometry_from_nifti_affine(&v->geom, (const double(*)[4])m);
    snprintf(name, sizeof name, "%s.bin", prefix);
    f = fopen(name, "rb");
    size_t got = f ? fread(v->data, sizeof(double), (size_t)dk_volume_numel(v), f) : 0;
    if (f) fclose(f);
    return got == (size_t)dk_volume_numel(v);
}

static void test_ge_convert_nibabel(void) {
    const char *out = dk_test_path(dk_test_tmpdir(), "ge.nii.gz");
    char log[4096];
    int rc = dk_test_sh(log, sizeof log, "'%s' convert '%s' '%s'", dk_test_cli(),
                        conf("dcm_qa_nih/In/20180918GE/mr_0004"), out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    dk_volume mine, theirs;
    CU_ASSERT_FATAL(nib_load(&mine, out));
    CU_ASSERT_FATAL(nib_load(&theirs, conf("dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii")));
    int64_t bad = world_compare(&mine, &theirs, 1e-3, 1);
    printf("\n    nibabel: dakd convert vs dcm2niix: %lld mismatches", (long long)bad);
    CU_ASSERT_EQUAL(bad, 0);
    dk_volume_free(&mine);
    dk_volume_free(&theirs);
}

/* Siemens mosaics (two 216x216 files of 5 tiles each) = dcm2niix's 72x72x5x2 in world
 * coordinates, values included; without the CSA header's slice normal they are refused. */
static void test_siemens_mosaic(void) {
    dk_volume v, ref;
    const char *dir = conf("dcm_qa_nih/In/20180918Si/mr_0003");
    CU_ASSERT_FATAL(read_ok(&v, dir));
    CU_ASSERT_FATAL(read_ok(&ref, conf("dcm_qa_nih/Ref/EPI_PE=AP_3.nii")));
    CU_ASSERT(v.nx == 72 && v.ny == 72 && v.nz == 5 && v.nt == 2);
    int64_t bad = world_compare(&v, &ref, 1e-3, 1);
    printf("\n    Siemens mosaic 72x72x5x2 vs dcm2niix: %lld voxel mismatches", (long long)bad);
    CU_ASSERT_EQUAL(bad, 0);
    dk_volume_free(&v);
    dk_volume_free(&ref);
    const char *no_csa = dk_test_path(dk_test_tmpdir(), "mosaic_no_csa.dcm");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, PY " -c \"import pydicom; d=pydicom.dcmread("
                                     "'%s/epi_pe_ap-00001.dcm'); del d[0x00291010]; "
                                     "d.save_as('%s')\"", dir, no_csa), 0);
    expect_failure(no_csa, DK_ERR_UNSUPPORTED, "Siemens mosaic of 5 images in 216 x 216 pixels: "
                   "the CSA header has no SliceNormalVector");
}

static void test_totalseg_grid(void) {
    dk_volume ct, seg;
    CU_ASSERT_FATAL(read_ok(&ct, conf("totalsegmentator/tests/reference_files/example_ct_dicom")));
    CU_ASSERT_FATAL(read_ok(&seg, conf("totalsegmentator/tests/reference_files/"
                                       "example_seg_dicom.nii.gz")));
    CU_ASSERT(ct.nx == 512 && ct.ny == 512 && ct.nz == 20 && ct.nt == 1);
    CU_ASSERT_EQUAL(ct.dtype, DK_I16); /* 12-bit unsigned, slope 1, intercept -1024 */
    dk_volume_stats s;
    dk_volume_compute_stats(&ct, &s);
    CU_ASSERT(s.min >= -1024 && s.max < 4096 - 1024);
    CU_ASSERT_EQUAL(world_compare(&ct, &seg, 1e-3, 0), 0); /* every voxel on a seg voxel */
    dk_volume_free(&ct);
    dk_volume_free(&seg);
    /* the volume size limit is checked before the decode buffer (20 MB of float) exists */
    dk_volume_set_limit(1u << 20);
    dk_volume v = {0};
    CU_ASSERT_EQUAL(dk_volume_read(&v, conf("totalsegmentator/tests/reference_files/"
                                            "example_ct_dicom")), DK_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "Columns x Rows x slices x frames"));
    dk_volume_set_limit(0);
    dk_volume_free(&v);
}

/* pydicom on a list of files vs a dakd volume (values after rescale, float64). */
static int pydicom_matches(const dk_volume *v, const char *files, const char *name) {
    static int n;
    char prefix[4200], out[4096];
    snprintf(prefix, sizeof prefix, "%s/pyd_%d", dk_test_tmpdir(), n++);
    if (dk_test_sh(out, sizeof out, PY " '%s' '%s' %s", dcm_script, prefix, files)) {
        printf("\n    pydicom_dump %s: %s", name, out);
        return 0;
    }
    int64_t nv = dk_volume_numel(v), bad = 0, first = -1;
    double *x = malloc(sizeof *x * (size_t)nv + 8);
    FILE *f = fopen(strcat(prefix, ".bin"), "rb");
    size_t got = f && x ? fread(x, sizeof *x, (size_t)nv + 1, f) : 0;
    if (f) fclose(f);
    for (int64_t i = 0; got == (size_t)nv && i < nv; i++)
        if (fabs(dk_volume_get(v, i) - x[i]) > 1e-4 * fmax(1, fabs(x[i])) && bad++ == 0) first = i;
    if (got != (size_t)nv) printf("\n    %s: pydicom gives %zu values, dakd %lld", name, got,
                                  (long long)nv);
    if (bad) printf("\n    %s: %lld differ, first #%lld dakd %g pydicom %g", name,
                    (long long)bad, (long long)first, dk_volume_get(v, first), x[first]);
    free(x);
    return got == (size_t)nv && bad == 0;
}

static void test_totalseg_pydicom(void) {
    dk_volume ct;
    const char *dir = conf("totalsegmentator/tests/reference_files/example_ct_dicom");
    char files[4300];
    snprintf(files, sizeof files, "'%s'/*", dir);
    CU_ASSERT_FATAL(read_ok(&ct, dir));
    CU_ASSERT(pydicom_matches(&ct, files, "example_ct_dicom (JPEG 2000)"));
    dk_volume_free(&ct);
}

static void test_dcmqi_liver(void) {
    dk_volume lab, ref, alone;
    const char *seg = conf("dcmqi/data/segmentations/liver.dcm");
    dk_status st = dk_dicom_seg_read(&lab, seg, conf("dcmqi/data/segmentations/ct-3slice"));
    if (st) printf("\n    %s", dk_last_error());
    CU_ASSERT_EQUAL_FATAL(st, DK_OK);
    CU_ASSERT_FATAL(read_ok(&ref, conf("dcmqi/data/segmentations/liver_seg.nrrd")));
    CU_ASSERT_EQUAL(lab.dtype, DK_U8);
    CU_ASSERT_EQUAL(world_compare(&lab, &ref, 1e-3, 1), 0);
    CU_ASSERT_FATAL(read_ok(&alone, seg)); /* finds ct-3slice/ next to it */
    CU_ASSERT_EQUAL(world_compare(&alone, &ref, 1e-3, 1), 0);
    dk_volume_free(&lab);
    dk_volume_free(&ref);
    dk_volume_free(&alone);
}

/* partial_overlaps.dcm: 5 overlapping segments; dcmqi splits them over three NRRDs of
 * segment numbers. dakd's rule: the highest segment number present at a voxel wins. */
static void test_dcmqi_overlaps(void) {
    dk_volume lab, part[3];
    CU_ASSERT_FATAL(read_ok(&lab, conf("dcmqi/data/segmentations/partial_overlaps.dcm")));
    for (int i = 0; i < 3; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "dcmqi/data/segmentations/partial_overlaps-%d.nrrd", i + 1);
        CU_ASSERT_FATAL(read_ok(&part[i], conf(rel)));
        CU_ASSERT_FATAL(dk_geometry_equal(&lab.geom, &part[i].geom, 1e-4));
    }
    int64_t bad = 0, overlap = 0;
    for (int64_t i = 0; i < dk_volume_numel(&lab); i++) {
        double want = 0;
        int present = 0;
        for (int k = 0; k < 3; k++) {
            double x = dk_volume_get(&part[k], i);
            present += x > 0;
            want = fmax(want, x);
        }
        overlap += present > 1;
        bad += dk_volume_get(&lab, i) != want;
    }
    printf("\n    partial_overlaps: %lld overlapping voxels, %lld differ from the rule",
           (long long)overlap, (long long)bad);
    CU_ASSERT(overlap > 0);
    CU_ASSERT_EQUAL(bad, 0);
    dk_volume_free(&lab);
    for (int i = 0; i < 3; i++) dk_volume_free(&part[i]);
}

static void test_dcmqi_small(void) {
    static const char *sizes[] = {"23x38x3", "24x38x3"};
    for (int s = 0; s < 2; s++) {
        char rel[256];
        dk_volume img, mf, lab, ref;
        snprintf(rel, sizeof rel, "dcmqi/data/segmentations/%s/image", sizes[s]);
        CU_ASSERT_FATAL(read_ok(&img, conf(rel)));
        snprintf(rel, sizeof rel, "dcmqi/data/segmentations/%s/multiframe/mf.dcm", sizes[s]);
        CU_ASSERT_FATAL(read_ok(&mf, conf(rel)));
        CU_ASSERT(img.nx == 23 + s && img.ny == 38 && img.nz == 3);
        CU_ASSERT(dk_geometry_equal(&img.geom, &mf.geom, 1e-6));
        CU_ASSERT(img.dtype == mf.dtype &&
                  !memcmp(img.data, mf.data, dk_volume_nbytes(&img)));
        snprintf(rel, sizeof rel, "dcmqi/data/segmentations/%s/seg/label.seg", sizes[s]);
        CU_ASSERT_FATAL(read_ok(&lab, conf(rel)));
        snprintf(rel, sizeof rel, "dcmqi/data/segmentations/%s/nrrd/label.nrrd", sizes[s]);
        CU_ASSERT_FATAL(read_ok(&ref, conf(rel)));
        CU_ASSERT_EQUAL(world_compare(&lab, &ref, 1e-3, 1), 0);
        dk_volume_free(&img);
        dk_volume_free(&mf);
        dk_volume_free(&lab);
        dk_volume_free(&ref);
    }
}

/* ---------------------------------------------------------------- pydicom's test files */

static void test_pydicom_files(void) {
    /* Every file here must give pydicom's values after rescale. The JPEG-LS and 12-bit
     * JPEG files decode in pydicom only through python3-gdcm (GDCM's codecs, as dakd):
     * the JPEG-LS one is also checked against its uncompressed twin below. */
    static const char *files[] = {
        "CT_small.dcm",           "MR_small.dcm",           "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",  "MR_small_expb.dcm",      "MR_small_RLE.dcm",
        "MR_small_padded.dcm",    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
        "JPEG2000.dcm",           "693_J2KI.dcm",           "image_dfl.dcm",
        "JPEG-lossy.dcm",         "JPGExtended.dcm"};
    int n = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *path = dk_test_path(PYDICOM_FILES, files[i]);
        if (!dk_test_exists(path)) {
            dk_test_skip(files[i], "not in this python3-pydicom");
            continue;
        }
        dk_volume v;
        dk_status st = dk_volume_read(&v, path);
        if (st) printf("\n    %s: %s", files[i], dk_last_error());
        CU_ASSERT_EQUAL_FATAL(st, DK_OK);
        char quoted[4200];
        snprintf(quoted, sizeof quoted, "'%s'", path);
        CU_ASSERT(pydicom_matches(&v, quoted, files[i]));
        printf("\n    %-30s %lldx%lldx%lld %s", files[i], (long long)v.nx, (long long)v.ny,
               (long long)v.nz, dk_dtype_name(v.dtype));
        dk_volume_free(&v);
        n++;
    }
    CU_ASSERT(n >= 10);
}

static void test_compressed_twins(void) {
    static const char *twins[] = {"MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm"};
    dk_volume ref;
    CU_ASSERT_FATAL(read_ok(&ref, dk_test_path(PYDICOM_FILES, "MR_small.dcm")));
    for (size_t i = 0; i < sizeof twins / sizeof twins[0]; i++) {
        dk_volume v;
        CU_ASSERT_FATAL(read_ok(&v, dk_test_path(PYDICOM_FILES, twins[i])));
        CU_ASSERT(v.dtype == ref.dtype && !memcmp(v.data, ref.data, dk_volume_nbytes(&ref)));
        CU_ASSERT(dk_geometry_equal(&v.geom, &ref.geom, 1e-9));
        dk_volume_free(&v);
    }
    dk_volume_free(&ref);
}

/* ---------------------------------------------------------------- broken inputs */

static void expect_failure(const char *path, dk_status want, const char *needle) {
    dk_volume v;
    dk_status st = dk_volume_read(&v, path);
    printf("\n    %s -> %s", strrchr(path, '/') + 1, dk_last_error());
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NULL(v.data);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), needle));
}

static void test_bad_files(void) {
    const char *dir = dk_test_tmpdir();
    const char *ct = dk_test_path(PYDICOM_FILES, "CT_small.dcm");
    const char *txt = dk_test_path(dir, "not_dicom.dcm");
    FILE *f = fopen(txt, "w");
    fputs("this is not a DICOM file\n", f);
    fclose(f);
    expect_failure(txt, DK_ERR_FORMAT, txt);
    const char *cut_pixels = dk_test_path(dir, "cut_pixels.dcm");
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "head -c 30000 '%s' > '%s'", ct, cut_pixels), 0);
    expect_failure(cut_pixels, DK_ERR_FORMAT, cut_pixels);
    const char *cut_header = dk_test_path(dir, "cut_header.dcm");
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "head -c 700 '%s' > '%s'", ct, cut_header), 0);
    expect_failure(cut_header, DK_ERR_FORMAT, cut_header);
    const char *empty = dk_test_path(dir, "empty_dir");
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "mkdir -p '%s' && cp '%s' '%s'", empty, txt, empty), 0);
    expect_failure(empty, DK_ERR_IO, "no DICOM images");
    /* In a folder a file that is not DICOM and a DICOM file cut short are passed over and
     * listed (the cut one as unreadable); the image beside them still loads */
    const char *mixed = dk_test_path(dir, "mixed_dir");
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "mkdir -p '%s' && cp '%s' '%s' '%s' '%s'", mixed, txt,
                               ct, cut_pixels, mixed), 0);
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_read(&v, mixed), DK_OK);
    CU_ASSERT(v.nx == 128 && v.ny == 128 && v.nz == 1);
    dk_volume_free(&v);
    dk_dicom_series *ser;
    dk_dicom_skipped *sk;
    int n, nsk;
    CU_ASSERT_EQUAL_FATAL(dk_dicom_list_series(&ser, &n, &sk, &nsk, mixed), DK_OK);
    CU_ASSERT(n == 1 && ser[0].nfiles == 1);
    CU_ASSERT_EQUAL_FATAL(nsk, 2);
    CU_ASSERT(strstr(sk[0].path, "cut_pixels.dcm") && sk[0].unreadable);
    CU_ASSERT_PTR_NOT_NULL(strstr(sk[0].reason, "cut_pixels.dcm: file cut short"));
    CU_ASSERT(strstr(sk[1].path, "not_dicom.dcm") && !sk[1].unreadable);
    free(ser);
    free(sk);
}

static void test_bad_series(void) {
    const char *dir = dk_test_tmpdir();
    const char *src = conf("totalsegmentator/tests/reference_files/example_ct_dicom");
    const char *gap = dk_test_path(dir, "missing_slice");
    /* drop the 10th file by name: the series then has a 4 mm step among 2 mm ones */
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "mkdir -p '%s' && ls '%s' | sed -n '1,9p;11,$p' | "
                               "while read f; do cp \"%s/$f\" '%s'; done", gap, src, src, gap), 0);
    expect_failure(gap, DK_ERR_FORMAT, "missing slice between");
    const char *ge = conf("dcm_qa_nih/In/20180918GE/mr_0004");
    const char *ge_gap = dk_test_path(dir, "ge_missing");
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "mkdir -p '%s' && cp '%s'/*.dcm '%s' && "
                               "rm '%s'/*-00077.dcm", ge_gap, ge, ge_gap, ge_gap), 0);
    expect_failure(ge_gap, DK_ERR_FORMAT, "images at z=");
    const char *mixed = dk_test_path(dir, "mixed_orientation");
    const char *ct3 = conf("dcmqi/data/segmentations/ct-3slice");
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "mkdir -p '%s' && cp '%s'/*.dcm '%s' && " PY " -c \""
                               "import pydicom; p='%s/02.dcm'; d=pydicom.dcmread(p); "
                               "d.ImageOrientationPatient=[1,0,0,0,0.9950042,-0.0998334]; "
                               "d.save_as(p)\"", mixed, ct3, mixed, mixed), 0);
    expect_failure(mixed, DK_ERR_FORMAT, "mixed orientations");
    const char *lonely = dk_test_path(dir, "lonely_seg");
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "mkdir -p '%s/a' && cp '%s' '%s/a/'", lonely,
                               conf("dcmqi/data/segmentations/liver.dcm"), lonely), 0);
    expect_failure(dk_test_path(lonely, "a/liver.dcm"), DK_ERR_IO,
                   "1.2.392.200103.20080913.113635.1.2009.6.22.21.43.10.23430.1");
}

/* Per-slice rescale: slice 2 of ct-3slice gets slope 0.5, intercept -1000.25. */
static void test_per_slice_rescale(void) {
    const char *d = dk_test_path(dk_test_tmpdir(), "rescaled");
    const char *ct3 = conf("dcmqi/data/segmentations/ct-3slice");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p '%s' && cp '%s'/*.dcm '%s' && " PY
                                     " -c \"import pydicom; p='%s/02.dcm'; d=pydicom.dcmread(p);"
                                     " d.RescaleSlope=0.5; d.RescaleIntercept=-1000.25; "
                                     "d.save_as(p)\"", d, ct3, d, d), 0);
    dk_volume v;
    CU_ASSERT_FATAL(read_ok(&v, d));
    CU_ASSERT_EQUAL(v.dtype, DK_F32);
    char files[4300];
    snprintf(files, sizeof files, "'%s'/*.dcm", d);
    CU_ASSERT(pydicom_matches(&v, files, "ct-3slice, slice 2 rescaled"));
    dk_volume_free(&v);
}

/* A failed dakd convert exits non-zero and leaves no file (temporary or final). */
static void test_cli_no_partial_output(void) {
    const char *dir = dk_test_path(dk_test_tmpdir(), "cli_out");
    char log[4096];
    dk_test_sh(NULL, 0, "mkdir -p '%s'", dir);
    int rc = dk_test_sh(log, sizeof log, "'%s' convert '%s' '%s/x.nii.gz'", dk_test_cli(),
                        dk_test_path(dk_test_tmpdir(), "missing_slice"), dir);
    CU_ASSERT_EQUAL(rc, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "missing slice"));
    rc = dk_test_sh(log, sizeof log, "'%s' convert '%s' '%s/y.nrrd'", dk_test_cli(),
                    dk_test_path(dk_test_tmpdir(), "cut_pixels.dcm"), dir);
    CU_ASSERT_EQUAL(rc, 3);
    CU_ASSERT_EQUAL(dk_test_sh(log, sizeof log, "ls -A '%s' | wc -l", dir), 0);
    CU_ASSERT_EQUAL(atoi(log), 0);
}

/* Two series in one folder: listed, ambiguity refused, chosen by index or UID. */
static void test_series_choice(void) {
    const char *d = dk_test_path(dk_test_tmpdir(), "two_series");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p '%s' && cp '%s'/IMG0001.dcm '%s/a1.dcm'"
                                     " && cp '%s'/IMG0002.dcm '%s/a2.dcm' && cp '%s'/* '%s/'",
                                     d, conf("dcmqi/data/segmentations/24x38x3/image"), d,
                                     conf("dcmqi/data/segmentations/24x38x3/image"), d,
                                     conf("dcmqi/data/segmentations/23x38x3/image"), d), 0);
    dk_dicom_series *s;
    int n;
    CU_ASSERT_EQUAL_FATAL(dk_dicom_list_series(&s, &n, NULL, NULL, d), DK_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    /* name order: IMG000* (23x38x3) before a1/a2 (two slices of 24x38x3) */
    CU_ASSERT(s[0].nx == 23 && s[0].nz == 3 && s[1].nx == 24 && s[1].nz == 2);
    CU_ASSERT_STRING_EQUAL(s[1].modality, "CT");
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_read(&v, d), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), s[0].uid));
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), s[1].uid));
    dk_read_opts by_index = {NULL, 0}, by_uid = {s[1].uid, -1}, bad = {NULL, 7};
    CU_ASSERT_EQUAL(dk_volume_read_opts(&v, d, &by_index), DK_OK);
    CU_ASSERT(v.nx == 23 && v.nz == 3);
    dk_volume_free(&v);
    CU_ASSERT_EQUAL(dk_volume_read_opts(&v, d, &by_uid), DK_OK);
    CU_ASSERT(v.nx == 24 && v.nz == 2);
    dk_volume_free(&v);
    CU_ASSERT_EQUAL(dk_volume_read_opts(&v, d, &bad), DK_ERR_ARG);
    char log[8192];
    CU_ASSERT_EQUAL(dk_test_sh(log, sizeof log, "'%s' info '%s'", dk_test_cli(), d), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "2 DICOM series"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, s[0].uid));
    free(s);
}

/* ---------------------------------------------------------------- MetaImage / NRRD */

static void test_itk_round_trips(void) {
    static const char *names[] = {"rt.mha", "rt.mhd", "rt.nrrd", "rt.nhdr", "rt_gz.nrrd"};
    const double c = cos(0.3), s = sin(0.3);
    const double dir[3][3] = {{c, 0, s}, {0, 1, 0}, {-s, 0, c}};
    for (int shape = 0; shape < 3; shape++) { /* scalar 3-D int16, 4-D float, 3-channel */
        dk_volume v;
        int64_t nt = shape == 1 ? 3 : 1, nc = shape == 2 ? 3 : 1;
        dk_dtype t = shape == 0 ? DK_I16 : shape == 1 ? DK_F32 : DK_U8;
        CU_ASSERT_FATAL(dk_volume_alloc(&v, 7, 5, 4, nt, nc, t) == DK_OK);
        for (int64_t i = 0; i < dk_volume_numel(&v); i++) dk_volume_set(&v, i, (i * 37) % 251 - 20);
        memcpy(v.geom.direction, dir, sizeof dir);
        v.geom.spacing[0] = 0.8, v.geom.spacing[1] = 1.25, v.geom.spacing[2] = 3.5;
        v.geom.origin[0] = -12.5, v.geom.origin[1] = 7.75, v.geom.origin[2] = 100.125;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            const char *p = dk_test_path(dk_test_tmpdir(), names[k]);
            dk_write_opts o = {0, strstr(names[k], "gz") ? 6 : 0};
            dk_volume b;
            CU_ASSERT_EQUAL_FATAL(dk_volume_write(&v, p, &o), DK_OK);
            CU_ASSERT_FATAL(read_ok(&b, p));
            CU_ASSERT(b.nx == 7 && b.ny == 5 && b.nz == 4 && b.nt == nt && b.nc == nc);
            CU_ASSERT(b.dtype == v.dtype && !memcmp(b.data, v.data, dk_volume_nbytes(&v)));
            CU_ASSERT(dk_geometry_equal(&b.geom, &v.geom, 1e-9));
            if (b.dtype != v.dtype || memcmp(b.data, v.data, dk_volume_nbytes(&v)))
                printf("\n    %s shape %d: %s vs %s", names[k], shape, dk_dtype_name(b.dtype),
                       dk_dtype_name(v.dtype));
            dk_volume_free(&b);
        }
        dk_volume_free(&v);
    }
    char log[4096];
    CU_ASSERT_EQUAL(dk_test_sh(log, sizeof log, "ls -A '%s' | grep -c tmp", dk_test_tmpdir()), 1);
}

int main(void) {
    const char *shared = dk_test_shared_data();
    char out[4096];
    if (!shared) {
        printf("SKIP test_dicom: ../shared/data not found (set DAKD_SHARED_DATA)\n");
        return 77;
    }
    if (dk_test_sh(out, sizeof out, PY " -c 'import pydicom, nibabel'") != 0) {
        printf("SKIP test_dicom: pydicom/nibabel not importable by " PY ": %s\n", out);
        return 77;
    }
    static char conf_dir[4096];
    snprintf(conf_dir, sizeof conf_dir, "%s/conformance", shared);
    data = conf_dir;
    snprintf(nib_script, sizeof nib_script, "%s/tests/tools/nib_dump.py", dk_test_source_dir());
    snprintf(dcm_script, sizeof dcm_script, "%s/tests/tools/pydicom_dump.py",
             dk_test_source_dir());
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite c = CU_add_suite("DICOM conformance", NULL, NULL);
    CU_add_test(c, "GE 4-D series = dcm2niix (world coords)", test_ge_vs_dcm2niix);
    CU_add_test(c, "dakd convert GE, nibabel vs dcm2niix", test_ge_convert_nibabel);
    CU_add_test(c, "Siemens mosaic = dcm2niix, refused without its normal", test_siemens_mosaic);
    CU_add_test(c, "TotalSegmentator J2K CT on its label grid", test_totalseg_grid);
    CU_add_test(c, "TotalSegmentator J2K CT = pydicom", test_totalseg_pydicom);
    CU_add_test(c, "dcmqi liver SEG = liver_seg.nrrd", test_dcmqi_liver);
    CU_add_test(c, "dcmqi overlapping segments", test_dcmqi_overlaps);
    CU_add_test(c, "dcmqi 23/24x38x3 single vs multi-frame, SEG", test_dcmqi_small);
    CU_pSuite p = CU_add_suite("pydicom oracle", NULL, NULL);
    CU_add_test(p, "pydicom test files", test_pydicom_files);
    CU_add_test(p, "compressed twins of MR_small", test_compressed_twins);
    CU_add_test(p, "per-slice rescale", test_per_slice_rescale);
    CU_pSuite b = CU_add_suite("bad input", NULL, NULL);
    CU_add_test(b, "non-DICOM, truncated, empty folder", test_bad_files);
    CU_add_test(b, "missing slice, 4-D gap, mixed orientation, lonely SEG", test_bad_series);
    CU_add_test(b, "dakd convert leaves nothing on failure", test_cli_no_partial_output);
    CU_pSuite s = CU_add_suite("series and formats", NULL, NULL);
    CU_add_test(s, "several series in a folder", test_series_choice);
    CU_add_test(s, "MHA/MHD/NRRD/NHDR round trips", test_itk_round_trips);
    return dk_test_run();
}
