/*
 * `dakd predict --dicom-seg`: the labels as a DICOM SEG of the input series. On the dcmqi
 * series of ../shared/data (23x38x3 as single-frame files and as one multi-frame file, the
 * 512x512x3 implicit VR CT) and a small random 3-D model of 4 classes: `dakd convert --seg`
 * reads each SEG back to predict's NIfTI labels voxel for voxel, pydicom reads it and finds
 * the segments, their names, the frames and only the source's SOP instances
 * (tests/tools/pydicom_seg_check.py, which also decodes the frames on its own), `dakd info`
 * says what it is, and dciodvfy (dicom3tools) validates it against the standard's
 * Segmentation IOD with no error. Bad inputs: a NIfTI input, labels files with a bad line, a duplicate or
 * a value beyond the classes, each refused naming the file (and line) with nothing written.
 * Empty maps: one empty frame, read back as zeros.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/volume.h"
#include "predict_fixture.h"
#include "test_util.h"

#define PY         "/usr/bin/python3"
#define SH_OK(...) CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, __VA_ARGS__), 0)

static char dir[4096], model[4200], names[4200], conf[4200], checker[4200];

/* A random 3-D model of 4 classes whose head bias lets every class win somewhere, and a
 * labels file naming classes 1..3 (3D Slicer colour table; A left out on one line). */
static int setup(void) {
    snprintf(dir, sizeof dir, "%s", dk_test_path(dk_test_tmpdir(), "segout"));
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(names, sizeof names, "%s/names.txt", dir);
    if (dk_test_sh(NULL, 0,
                   "mkdir -p '%s' && printf '# dakd test colours\\n0 background 0 0 "
                   "0 0\\n1 liver 221 130 101 255\\n\\n2 left_kidney 185 102 83 255\\n3 spleen "
                   "157 108 162\\n' > '%s'",
                   dir, names))
        return -1;
    return dk_test_random_model(model, "2,16,16");
}

/* Voxel-exact equality of two label maps on one grid; the number of labels of a. */
static int same_labels(const char *a_path, const char *b_path, int *distinct) {
    dk_volume a, b;
    if (dk_volume_read(&a, a_path) != DK_OK) return printf("\n    %s\n", dk_last_error()), 0;
    if (dk_volume_read(&b, b_path) != DK_OK) {
        printf("\n    %s\n", dk_last_error());
        dk_volume_free(&a);
        return 0;
    }
    int64_t n = a.nx * a.ny * a.nz, diff = 0;
    int seen[256] = {0};
    *distinct = 0;
    int ok =
        a.nx == b.nx && a.ny == b.ny && a.nz == b.nz && dk_geometry_equal(&a.geom, &b.geom, 1e-4);
    for (int64_t i = 0; ok && i < n; i++) {
        double x = dk_volume_get(&a, i);
        diff += x != dk_volume_get(&b, i);
        if (x >= 0 && x < 256 && !seen[(int)x]++) ++*distinct;
    }
    if (!ok || diff)
        printf("\n    %s vs %s: grid %s, %lld voxels differ\n", a_path, b_path,
               ok ? "same" : "differs", (long long)diff);
    dk_volume_free(&a);
    dk_volume_free(&b);
    return ok && !diff;
}

/* dciodvfy (dicom3tools), a validator of DICOM objects against the standard's IOD modules,
 * recognises `seg` as a Segmentation and reports no error. Its warnings are allowed: on these
 * files they are about values the SEG copies from the source (a Patient's Name in the
 * retired PN form). */
static void dciodvfy_ok(const char *seg) {
    if (dk_test_sh(NULL, 0, "command -v dciodvfy > /dev/null")) {
        dk_test_skip("dciodvfy", "dciodvfy is not installed (dicom3tools: scripts/bootstrap.sh "
                                 "--test)");
        return;
    }
    char log[1 << 14];
    dk_test_sh(log, sizeof log, "dciodvfy '%s' 2>&1", seg);
    int ok = strstr(log, "Segmentation") && !strstr(log, "Error");
    if (!ok) printf("\n    dciodvfy %s:\n%s\n", seg, log);
    CU_ASSERT(ok);
}

/* predict --dicom-seg on `input` (id `id`), convert --seg back on `series`, pydicom's view of
 * it against `source`; `labelled` = whether a labels file names the segments. */
static void round_trip(const char *input, const char *id, const char *series, const char *source,
                       int labelled) {
    char pred[4400], seg[8900], nii[8900], back[4400], log[4096];
    snprintf(pred, sizeof pred, "%s/pred_%s", dir, id);
    snprintf(seg, sizeof seg, "%s/%s.seg.dcm", pred, id);
    snprintf(nii, sizeof nii, "%s/%s.nii.gz", pred, id);
    snprintf(back, sizeof back, "%s/%s_back.nii.gz", dir, id);
    int rc = dk_test_dakd("predict --model %s --out %s --dicom-seg %s%s %s", model, pred,
                  labelled ? "--label-names " : "", labelled ? names : "", input);
    dk_test_expect(rc, 0, NULL);
    CU_ASSERT_FATAL(dk_test_exists(seg) && dk_test_exists(nii));
    dk_test_expect(dk_test_dakd("convert --seg %s %s %s", seg, series, back), 0, NULL);
    int distinct = 0;
    CU_ASSERT(same_labels(nii, back, &distinct));
    CU_ASSERT(distinct >= 2); /* a background and at least one segment were written */
    const char *nm = labelled ? "liver|left_kidney|spleen" : "label 1|label 2|label 3";
    rc = dk_test_sh(log, sizeof log, PY " %s '%s' '%s' '%s' '%s'", checker, seg, source, nm, nii);
    if (rc) printf("\n    pydicom: %s\n", log);
    CU_ASSERT_EQUAL(rc, 0);
    dciodvfy_ok(seg);
    /* info says what it is, with or without the series beside it */
    dk_test_expect(dk_test_dakd("info %s", seg), 2,
                   (const char *[]){"a DICOM SEG of 3 segments", NULL});
    SH_OK("mkdir -p '%s/info_%s' && cp -r '%s' '%s/info_%s/series' && cp '%s' '%s/info_%s/'", dir,
          id, series, dir, id, seg, dir, id);
    dk_test_expect(dk_test_dakd("info %s/info_%s/%s.seg.dcm", dir, id, id), 0,
           (const char *[]){"DICOM SEG 3 segments", NULL});
}

static void test_series_folder(void) {
    char s[4400];
    snprintf(s, sizeof s, "%s/23x38x3/image", conf);
    round_trip(s, "image", s, s, 1);
}

/* A multi-frame source: frames reference it with ReferencedFrameNumber. */
static void test_multiframe_file(void) {
    char f[8900], d[4400];
    snprintf(d, sizeof d, "%s/23x38x3/multiframe", conf);
    snprintf(f, sizeof f, "%s/mf.dcm", d);
    round_trip(f, "mf", d, f, 0);
}

/* A real CT series in implicit VR (its patient and study attributes copied into explicit
 * VR with their dictionary VRs). */
static void test_ct_512(void) {
    char s[4400];
    snprintf(s, sizeof s, "%s/ct-3slice", conf);
    round_trip(s, "ct-3slice", s, s, 1);
}

/* What predict refuses, before writing anything. */
static void test_bad_inputs(void) {
    char nii[4400], bad[4400], series[4400];
    snprintf(series, sizeof series, "%s/23x38x3/image", conf);
    snprintf(nii, sizeof nii, "%s/pred_image/image.nii.gz", dir);
    if (!dk_test_exists(nii))
        dk_test_expect(
            dk_test_dakd("predict --model %s --out %s/pred_image %s", model, dir, series), 0, NULL);
    int rc = dk_test_dakd("predict --model %s --out %s/bad0 --dicom-seg %s", model, dir, nii);
    dk_test_expect(
        rc, 1, (const char *[]){"image.nii.gz: not DICOM", "references the DICOM images", NULL});
    CU_ASSERT(!dk_test_exists(dk_test_path(dir, "bad0")));
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"# c\\n1 liver 1 2 3 255\\n2 kidney 300 0 0 255\\n", "bad.txt:3: R '300'"},
        {"1 liver 1 2 3 255\\n1 kidney 3 4 5 255\\n", "bad.txt:2: value 1 is listed twice"},
        {"1 liver 1 2 3 255\\n4 kidney 3 4 5 255\\n",
         "bad.txt:2: value 4 is outside the labels 0..3"},
        {"1 left kidney 1 2 3 255\\n", "bad.txt:1: 7 fields"},
        {"x liver 1 2 3\\n", "bad.txt:1: value 'x'"},
    };
    snprintf(bad, sizeof bad, "%s/bad.txt", dir);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        SH_OK("printf '%s' > '%s'", cases[k].text, bad);
        rc = dk_test_dakd("predict --model %s --out %s/bad1 --dicom-seg --label-names %s %s", model,
                          dir, bad, series);
        dk_test_expect(rc, 3, (const char *[]){cases[k].needle, NULL});
        CU_ASSERT(!dk_test_exists(dk_test_path(dir, "bad1")));
    }
}

/* No foreground: one empty frame of segment 1 (NumberOfFrames >= 1), read back as zeros;
 * a value beyond the segments and a map off the series' grid are refused. */
static void test_empty_and_misfit(void) {
    char series[4400], seg[4400];
    snprintf(series, sizeof series, "%s/23x38x3/image", conf);
    snprintf(seg, sizeof seg, "%s/empty.seg.dcm", dir);
    dk_volume src, v, back;
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&src, series), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, src.nx, src.ny, src.nz, 1, 1, DK_U8), DK_OK);
    v.geom = src.geom;
    CU_ASSERT_EQUAL(dk_dicom_seg_write(seg, &v, series, 2, NULL), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_dicom_seg_read(&back, seg, series), DK_OK);
    int64_t nz = 0, n = v.nx * v.ny * v.nz;
    for (int64_t i = 0; i < n; i++)
        nz += dk_volume_get(&back, i) != 0;
    CU_ASSERT(back.nx == v.nx && back.ny == v.ny && back.nz == v.nz && nz == 0);
    dk_volume_free(&back);
    dciodvfy_ok(seg);
    char log[4096];
    CU_ASSERT_EQUAL(dk_test_sh(log, sizeof log,
                               PY " -c \"import pydicom; d = pydicom.dcmread("
                                  "'%s'); print(d.NumberOfFrames, len(d.SegmentSequence), "
                                  "int(d.pixel_array.sum()))\"",
                               seg),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "1 2 0"));
    dk_volume_set(&v, 5, 3);
    CU_ASSERT_EQUAL(dk_dicom_seg_write(seg, &v, series, 2, NULL), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "holds 3, not a label 0..2"));
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, src.nx, src.ny + 1, src.nz, 1, 1, DK_U8), DK_OK);
    CU_ASSERT_EQUAL(dk_dicom_seg_write(seg, &v, series, 2, NULL), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "not on the series' grid"));
    dk_volume_free(&v);
    dk_volume_free(&src);
}

/* Names from the file, defaults for what it leaves out; the colour stays the file's. */
static void test_labels_lookup(void) {
    dk_label_table t;
    CU_ASSERT_EQUAL_FATAL(dk_labels_read(&t, names, 3), DK_OK);
    CU_ASSERT_EQUAL(t.n, 4);
    dk_label_info a = dk_labels_get(&t, 2), b = dk_labels_get(&t, 9), c = dk_labels_get(NULL, 1);
    CU_ASSERT(!strcmp(a.name, "left_kidney") && a.rgb[0] == 185 && a.rgb[2] == 83);
    CU_ASSERT(!strcmp(b.name, "label 9") && !strcmp(c.name, "label 1"));
    CU_ASSERT(memcmp(b.rgb, c.rgb, 3) != 0);
    dk_labels_free(&t);
    CU_ASSERT_EQUAL(dk_labels_read(&t, dk_test_path(dir, "missing.txt"), 3), DK_ERR_IO);
}

int main(void) {
    const char *shared = dk_test_shared_data();
    char log[4096];
    if (!shared) {
        printf("SKIP test_seg_out: ../shared/data not found (set DAKD_SHARED_DATA)\n");
        return 77;
    }
    if (dk_test_sh(log, sizeof log, PY " -c 'import pydicom, nibabel, numpy'") != 0) {
        printf("SKIP test_seg_out: pydicom/nibabel not importable by " PY ": %s\n", log);
        return 77;
    }
    snprintf(conf, sizeof conf, "%s/conformance/dcmqi/data/segmentations", shared);
    snprintf(checker, sizeof checker, "%s/tests/tools/pydicom_seg_check.py", dk_test_source_dir());
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("predict --dicom-seg", setup, NULL);
    if (!s ||
        !CU_add_test(s, "series folder: convert --seg and pydicom agree", test_series_folder) ||
        !CU_add_test(s, "multi-frame source file", test_multiframe_file) ||
        !CU_add_test(s, "512x512 implicit VR CT", test_ct_512) ||
        !CU_add_test(s, "bad inputs refused, nothing written", test_bad_inputs) ||
        !CU_add_test(s, "empty map, value and grid checks", test_empty_and_misfit) ||
        !CU_add_test(s, "labels file lookup", test_labels_lookup))
        return 1;
    return dk_test_run();
}
