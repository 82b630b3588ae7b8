/*
 * CUnit suite for the metrics of lib/eval: the exact distance transform against brute force,
 * analytic cases (spheres with hand-counted overlap, one-voxel shifts under anisotropic
 * spacing, the empty-mask rules, masks), refusals (non-integer labels, different grids),
 * thread-count independence, summaries; and peers on the same NIfTI files: ITK's
 * LabelOverlapMeasuresImageFilter and plastimatch for the counts and Dice, scipy
 * (tests/tools/eval_oracle.py) for HD, HD95, ASSD and NSD, scipy.stats.wilcoxon for the test.
 */
#include "blobs.h"
#include "dakd/eval.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t idx3(int64_t x, int64_t y, int64_t z, const dk_volume *v) {
    return (z * v->ny + y) * v->nx + x;
}

static void alloc_u8(dk_volume *v, int64_t nx, int64_t ny, int64_t nz, double sx, double sy,
                     double sz) {
    CU_ASSERT_FATAL(dk_volume_alloc(v, nx, ny, nz, 1, 1, DK_U8) == DK_OK);
    v->geom.spacing[0] = sx;
    v->geom.spacing[1] = sy;
    v->geom.spacing[2] = sz;
}

static dk_label_metrics eval1(const dk_volume *p, const dk_volume *r, const dk_volume *mask,
                              int label) {
    dk_label_metrics m;
    dk_metric_opts o;
    dk_metric_defaults(&o);
    dk_status st = dk_eval_case(&m, p, "pred", r, "ref", mask, &label, 1, &o);
    if (st != DK_OK) printf("\n    %s\n", dk_last_error());
    CU_ASSERT_FATAL(st == DK_OK);
    return m;
}

/* ------------------------------------------------------------------ distance transform */

static double brute_sq(const uint8_t *f, int64_t nx, int64_t ny, int64_t nz, const double s[3],
                       int64_t x, int64_t y, int64_t z) {
    double best = INFINITY;
    for (int64_t c = 0; c < nz; c++)
        for (int64_t b = 0; b < ny; b++)
            for (int64_t a = 0; a < nx; a++) {
                if (!f[(c * ny + b) * nx + a]) continue;
                double dx = s[0] * (double)(x - a), dy = s[1] * (double)(y - b);
                double dz = s[2] * (double)(z - c), d = dx * dx + dy * dy + dz * dz;
                best = d < best ? d : best;
            }
    return best;
}

/* Max deviation (relative to max(1, d)) of dk_edt_sq from brute force on a random grid. */
static double edt_vs_brute(int64_t nx, int64_t ny, int64_t nz, const double s[3], double dens,
                           uint64_t seed) {
    int64_t n = nx * ny * nz;
    uint8_t *f = calloc((size_t)n, 1);
    float *out = malloc((size_t)n * sizeof *out);
    CU_ASSERT_FATAL(f && out);
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) f[i] = dk_rng_uniform(&r) < dens ? (uint8_t)(1 + i % 3) : 0;
    CU_ASSERT_FATAL(dk_edt_sq(out, f, nx, ny, nz, s, NULL) == DK_OK);
    double worst = 0;
    for (int64_t z = 0; z < nz; z++)
        for (int64_t y = 0; y < ny; y++)
            for (int64_t x = 0; x < nx; x++) {
                double want = brute_sq(f, nx, ny, nz, s, x, y, z);
                double got = out[(z * ny + y) * nx + x];
                double e = isinf(want) ? (isinf(got) ? 0 : INFINITY)
                                       : fabs(got - want) / fmax(1.0, want);
                worst = e > worst ? e : worst;
            }
    free(f);
    free(out);
    return worst;
}

static void test_edt_brute(void) {
    const double unit[3] = {1, 1, 1}, integer[3] = {1, 2, 3}, aniso[3] = {0.7, 1.3, 2.1};
    /* integer spacing: squared distances are integers, exact in float32 */
    CU_ASSERT_EQUAL(edt_vs_brute(9, 7, 6, unit, 0.05, 1), 0.0);
    CU_ASSERT_EQUAL(edt_vs_brute(11, 5, 8, integer, 0.03, 2), 0.0);
    CU_ASSERT_EQUAL(edt_vs_brute(13, 9, 1, integer, 0.04, 3), 0.0);  /* 2-D */
    CU_ASSERT_EQUAL(edt_vs_brute(37, 1, 1, integer, 0.05, 4), 0.0);  /* 1-D */
    CU_ASSERT_EQUAL(edt_vs_brute(20, 18, 3, integer, 0.005, 5), 0.0); /* sparse */
    CU_ASSERT_EQUAL(edt_vs_brute(6, 6, 6, unit, 0.0, 6), 0.0);       /* no feature: +INF */
    double e = edt_vs_brute(12, 10, 9, aniso, 0.02, 7);
    CU_ASSERT(e < 1e-6);
    if (e >= 1e-6) printf("\n    anisotropic EDT relative error %g\n", e);
}

static void test_edt_threads(void) {
    int64_t nx = 53, ny = 41, nz = 37, n = nx * ny * nz;
    const double s[3] = {0.8, 1.1, 2.5};
    uint8_t *f = calloc((size_t)n, 1);
    float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
    CU_ASSERT_FATAL(f && a && b);
    dk_rng r;
    dk_rng_seed(&r, 11);
    for (int64_t i = 0; i < n; i++) f[i] = dk_rng_uniform(&r) < 0.002;
    int keep = dk_get_threads();
    dk_set_threads(1);
    CU_ASSERT_FATAL(dk_edt_sq(a, f, nx, ny, nz, s, NULL) == DK_OK);
    dk_set_threads(2);
    void *work = malloc(dk_edt_work_bytes(nx, ny, nz));
    CU_ASSERT_FATAL(dk_edt_sq(b, f, nx, ny, nz, s, work) == DK_OK);
    CU_ASSERT_EQUAL(memcmp(a, b, (size_t)n * 4), 0);
    dk_set_threads(keep);
    free(work);
    free(f);
    free(a);
    free(b);
}

/* ------------------------------------------------------------------ analytic */

static void paint_sphere(dk_volume *v, double cx, double cy, double cz, double rad, int lab) {
    uint8_t *d = v->data;
    for (int64_t z = 0; z < v->nz; z++)
        for (int64_t y = 0; y < v->ny; y++)
            for (int64_t x = 0; x < v->nx; x++) {
                double dx = x - cx, dy = y - cy, dz = z - cz;
                if (dx * dx + dy * dy + dz * dz <= rad * rad) d[idx3(x, y, z, v)] = (uint8_t)lab;
            }
}

/* Dice, IoU, precision, recall, specificity, volumes of two overlapping spheres (3-D) and
 * discs (2-D) against counts made here voxel by voxel. */
static void check_hand_counts(int64_t nx, int64_t ny, int64_t nz) {
    dk_volume p, r;
    alloc_u8(&p, nx, ny, nz, 0.9, 1.2, nz > 1 ? 2.0 : 1.0);
    alloc_u8(&r, nx, ny, nz, 0.9, 1.2, nz > 1 ? 2.0 : 1.0);
    double cz = nz > 1 ? 10 : 0;
    paint_sphere(&r, 12, 13, cz, 7.5, 2);
    paint_sphere(&p, 15, 12, cz + (nz > 1 ? 1 : 0), 6.5, 2);
    int64_t tp = 0, np = 0, nr = 0, n = dk_volume_numel(&p);
    const uint8_t *a = p.data, *b = r.data;
    for (int64_t i = 0; i < n; i++) {
        np += a[i] == 2;
        nr += b[i] == 2;
        tp += a[i] == 2 && b[i] == 2;
    }
    dk_label_metrics m = eval1(&p, &r, NULL, 2);
    CU_ASSERT_EQUAL(m.tp, tp);
    CU_ASSERT_EQUAL(m.fp, np - tp);
    CU_ASSERT_EQUAL(m.fn, nr - tp);
    CU_ASSERT_EQUAL(m.tn, n - np - nr + tp);
    CU_ASSERT_DOUBLE_EQUAL(m.dice, 2.0 * tp / (double)(np + nr), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.iou, tp / (double)(np + nr - tp), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.precision, tp / (double)np, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.recall, tp / (double)nr, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.specificity, (n - np - nr + tp) / (double)(n - nr), 1e-15);
    double v = 0.9 * 1.2 * (nz > 1 ? 2.0 : 1.0);
    CU_ASSERT_DOUBLE_EQUAL(m.vol_pred_mm3, np * v, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(m.vol_ref_mm3, nr * v, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(m.vol_sim, 1 - fabs((double)(np - nr)) / (double)(np + nr), 1e-15);
    CU_ASSERT(tp > 0 && tp < np && tp < nr); /* a real partial overlap */
    CU_ASSERT(m.hd > 0 && m.hd95 <= m.hd && m.assd <= m.hd95 + 1e-12);
    CU_ASSERT(!m.flagged && !m.both_empty);
    dk_volume_free(&p);
    dk_volume_free(&r);
}

static void test_hand_counts(void) {
    check_hand_counts(28, 27, 21); /* spheres */
    check_hand_counts(30, 29, 1);  /* discs */
}

/* A cube moved by one voxel along one axis: HD = that axis' spacing, Dice unchanged by
 * spacing. */
static void test_shift_and_spacing(void) {
    const double s[3] = {1, 1, 2.5};
    for (int axis = 0; axis < 3; axis++) {
        dk_volume p, r;
        alloc_u8(&p, 20, 20, 20, s[0], s[1], s[2]);
        alloc_u8(&r, 20, 20, 20, s[0], s[1], s[2]);
        for (int64_t z = 6; z < 13; z++)
            for (int64_t y = 6; y < 13; y++)
                for (int64_t x = 6; x < 13; x++) {
                    ((uint8_t *)r.data)[idx3(x, y, z, &r)] = 1;
                    int64_t q[3] = {x, y, z};
                    q[axis]++;
                    ((uint8_t *)p.data)[idx3(q[0], q[1], q[2], &p)] = 1;
                }
        dk_label_metrics m = eval1(&p, &r, NULL, 1);
        CU_ASSERT_EQUAL(m.hd, s[axis]);
        CU_ASSERT_DOUBLE_EQUAL(m.dice, 2.0 * 6 / 14.0, 1e-15); /* 7³ cubes overlapping 6·7² */
        /* other spacing: Dice the same, distances not */
        for (int a = 0; a < 3; a++) p.geom.spacing[a] = r.geom.spacing[a] = 0.5 + a;
        dk_label_metrics m2 = eval1(&p, &r, NULL, 1);
        CU_ASSERT_EQUAL(m2.dice, m.dice);
        CU_ASSERT_EQUAL(m2.hd, 0.5 + axis);
        dk_volume_free(&p);
        dk_volume_free(&r);
    }
}

static void test_empty_rules(void) {
    dk_volume p, r;
    alloc_u8(&p, 10, 9, 8, 1, 1, 1);
    alloc_u8(&r, 10, 9, 8, 1, 1, 1);
    ((uint8_t *)p.data)[idx3(3, 3, 3, &p)] = 1; /* label 1 only in pred */
    ((uint8_t *)r.data)[idx3(5, 5, 5, &r)] = 2; /* label 2 only in ref */
    int labels[3] = {1, 2, 3};
    dk_label_metrics m[3];
    CU_ASSERT_FATAL(dk_eval_case(m, &p, "p", &r, "r", NULL, labels, 3, NULL) == DK_OK);
    /* R empty, P not */
    CU_ASSERT(m[0].flagged && !m[0].both_empty);
    CU_ASSERT_EQUAL(m[0].dice, 0);
    CU_ASSERT_EQUAL(m[0].iou, 0);
    CU_ASSERT_EQUAL(m[0].precision, 0);
    CU_ASSERT(isnan(m[0].recall));
    CU_ASSERT_EQUAL(m[0].vol_sim, 0);
    CU_ASSERT(isnan(m[0].hd) && isnan(m[0].hd95) && isnan(m[0].assd) && isnan(m[0].nsd));
    CU_ASSERT_EQUAL(m[0].n_bpred, 1);
    CU_ASSERT_EQUAL(m[0].n_bref, 0);
    /* P empty, R not */
    CU_ASSERT(m[1].flagged);
    CU_ASSERT(isnan(m[1].precision));
    CU_ASSERT_EQUAL(m[1].recall, 0);
    CU_ASSERT(isnan(m[1].hd95));
    /* both empty */
    CU_ASSERT(m[2].both_empty && !m[2].flagged);
    CU_ASSERT(m[2].dice == 1 && m[2].iou == 1 && m[2].precision == 1 && m[2].recall == 1);
    CU_ASSERT(m[2].vol_sim == 1 && m[2].hd == 0 && m[2].hd95 == 0 && m[2].assd == 0);
    CU_ASSERT_EQUAL(m[2].nsd, 1);
    /* specificity NaN when the label fills every counted voxel */
    memset(p.data, 4, 720);
    memset(r.data, 4, 720);
    dk_label_metrics f = eval1(&p, &r, NULL, 4);
    CU_ASSERT(isnan(f.specificity));
    CU_ASSERT_EQUAL(f.dice, 1);
    CU_ASSERT_EQUAL(f.hd, 0);
    dk_volume_free(&p);
    dk_volume_free(&r);
}

static void test_mask_restricts(void) {
    dk_volume p, r, mask;
    alloc_u8(&p, 16, 12, 10, 1, 1, 1);
    alloc_u8(&r, 16, 12, 10, 1, 1, 1);
    CU_ASSERT_FATAL(dk_volume_alloc(&mask, 16, 12, 10, 1, 1, DK_I16) == DK_OK);
    paint_sphere(&r, 7, 6, 5, 4, 1);
    paint_sphere(&p, 9, 6, 5, 4, 1);
    int64_t n = dk_volume_numel(&p), tp = 0, fp = 0, fn = 0, in = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t x = i % 16;
        if (x >= 8) continue; /* the mask keeps x < 8 */
        ((int16_t *)mask.data)[i] = 7;
        in++;
        int a = ((uint8_t *)p.data)[i] == 1, b = ((uint8_t *)r.data)[i] == 1;
        tp += a && b;
        fp += a && !b;
        fn += b && !a;
    }
    dk_label_metrics m = eval1(&p, &r, &mask, 1), u = eval1(&p, &r, NULL, 1);
    CU_ASSERT_EQUAL(m.tp, tp);
    CU_ASSERT_EQUAL(m.fp, fp);
    CU_ASSERT_EQUAL(m.fn, fn);
    CU_ASSERT_EQUAL(m.tn, in - tp - fp - fn);
    CU_ASSERT(m.tp != u.tp || m.fp != u.fp);
    CU_ASSERT(m.n_bref != u.n_bref); /* the mask edge is a boundary */
    dk_volume_free(&p);
    dk_volume_free(&r);
    dk_volume_free(&mask);
}

static void expect_error(dk_status st, dk_status want, const char *const *needles) {
    CU_ASSERT_EQUAL(st, want);
    for (int i = 0; needles[i]; i++) {
        int found = strstr(dk_last_error(), needles[i]) != NULL;
        CU_ASSERT(found);
        if (!found) printf("\n    '%s' not in: %s\n", needles[i], dk_last_error());
    }
}

static void test_refusals(void) {
    dk_volume p, r, f;
    alloc_u8(&p, 8, 7, 6, 1, 1, 2.5);
    alloc_u8(&r, 8, 7, 6, 1, 1, 2.5);
    CU_ASSERT_FATAL(dk_volume_alloc(&f, 8, 7, 6, 1, 1, DK_F32) == DK_OK);
    f.geom = p.geom;
    ((float *)f.data)[idx3(2, 3, 4, &f)] = 1.5f;
    int l = 1;
    dk_label_metrics m;
    dk_status st = dk_eval_case(&m, &f, "soft_pred.nii.gz", &r, "ref.nii.gz", NULL, &l, 1, NULL);
    expect_error(st, DK_ERR_FORMAT,
                 (const char *[]){"soft_pred.nii.gz", "x=2, y=3, z=4", "1.5", NULL});
    ((float *)f.data)[idx3(2, 3, 4, &f)] = 2.0f; /* integral floats are labels */
    CU_ASSERT_EQUAL(dk_eval_case(&m, &f, "a", &r, "b", NULL, &l, 1, NULL), DK_OK);
    ((float *)f.data)[5] = -1.0f;
    st = dk_eval_case(&m, &r, "r.nii", &f, "neg.nii", NULL, &l, 1, NULL);
    expect_error(st, DK_ERR_FORMAT, (const char *[]){"neg.nii", "voxel 5", NULL});
    /* different grids: size, spacing, origin; both names in the message; a data error */
    dk_volume q;
    alloc_u8(&q, 8, 7, 5, 1, 1, 2.5);
    st = dk_eval_case(&m, &p, "case1_pred.nii.gz", &q, "case1.nii.gz", NULL, &l, 1, NULL);
    expect_error(st, DK_ERR_FORMAT,
                 (const char *[]){"case1_pred.nii.gz", "case1.nii.gz", "8x7x6", "8x7x5", NULL});
    r.geom.spacing[2] = 3.0;
    st = dk_eval_case(&m, &p, "case2_pred.nii.gz", &r, "case2.nii.gz", NULL, &l, 1, NULL);
    expect_error(st, DK_ERR_FORMAT,
                 (const char *[]){"case2_pred.nii.gz", "case2.nii.gz", "spacing", NULL});
    r.geom.spacing[2] = 2.5;
    r.geom.origin[0] = 4.0;
    st = dk_eval_case(&m, &p, "p3", &r, "r3", NULL, &l, 1, NULL);
    expect_error(st, DK_ERR_FORMAT, (const char *[]){"p3", "r3", "origin", NULL});
    r.geom.origin[0] = 1e-6; /* within tolerance */
    CU_ASSERT_EQUAL(dk_eval_case(&m, &p, "p", &r, "r", NULL, &l, 1, NULL), DK_OK);
    int bad = -2;
    CU_ASSERT_EQUAL(dk_eval_case(&m, &p, "p", &r, "r", NULL, &bad, 1, NULL), DK_ERR_ARG);
    dk_volume_free(&p);
    dk_volume_free(&r);
    dk_volume_free(&f);
    dk_volume_free(&q);
}

/* Random blobs with 4 labels on an anisotropic grid; pred a perturbed copy. */
static void make_case(dk_volume *p, dk_volume *r, int64_t nx, int64_t ny, int64_t nz,
                      uint64_t seed) {
    const int64_t n[3] = {nx, ny, nz};
    alloc_u8(p, nx, ny, nz, 0.8, 1.1, 2.5);
    alloc_u8(r, nx, ny, nz, 0.8, 1.1, 2.5);
    blob b[8], q[8];
    dk_rng rng;
    dk_rng_seed(&rng, seed);
    blobs_make(b, 4, 2, n, nx / 10.0, nx / 4.0, 0.5, &rng);
    blobs_perturb(q, b, 8, 2.0, 0.15, &rng);
    CU_ASSERT_FATAL(blobs_paint(r->data, b, 8, n, 0.3, seed) == 0);
    CU_ASSERT_FATAL(blobs_paint(p->data, q, 8, n, 0.3, seed + 99) == 0);
}

static void test_threads(void) {
    dk_volume p, r;
    make_case(&p, &r, 48, 44, 30, 5);
    int labels[5] = {0, 1, 2, 3, 4};
    dk_label_metrics a[5], b[5];
    int keep = dk_get_threads();
    dk_set_threads(1);
    CU_ASSERT_FATAL(dk_eval_case(a, &p, "p", &r, "r", NULL, labels, 5, NULL) == DK_OK);
    dk_set_threads(2);
    CU_ASSERT_FATAL(dk_eval_case(b, &p, "p", &r, "r", NULL, labels, 5, NULL) == DK_OK);
    dk_set_threads(keep);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    for (int k = 1; k < 5; k++) CU_ASSERT(a[k].hd > 0 && a[k].dice > 0.3 && a[k].dice < 1);
    dk_volume_free(&p);
    dk_volume_free(&r);
}

/* distance_unit = voxels on a phantom with 2 mm voxels: every distance in mm is exactly
 * twice the voxel one (the spacing is a power of two), NSD's tolerance is in voxels (2
 * voxels under voxels = 4 mm under mm), volumes are voxel counts; overlaps are unchanged. */
static void test_voxel_units(void) {
    dk_volume p, r;
    make_case(&p, &r, 40, 36, 20, 9);
    for (int a = 0; a < 3; a++) p.geom.spacing[a] = r.geom.spacing[a] = 2;
    int labels[4] = {1, 2, 3, 4};
    dk_label_metrics mm[4], vx[4];
    dk_metric_opts o;
    dk_metric_defaults(&o);
    o.nsd_tol_mm = 4;
    CU_ASSERT_FATAL(dk_eval_case(mm, &p, "p", &r, "r", NULL, labels, 4, &o) == DK_OK);
    o.unit = DK_UNIT_VOXELS, o.nsd_tol_mm = 2;
    CU_ASSERT_FATAL(dk_eval_case(vx, &p, "p", &r, "r", NULL, labels, 4, &o) == DK_OK);
    for (int k = 0; k < 4; k++) {
        CU_ASSERT(vx[k].hd95 > 0 && isfinite(vx[k].hd95));
        CU_ASSERT_EQUAL(mm[k].hd95, 2 * vx[k].hd95);
        CU_ASSERT_EQUAL(mm[k].hd, 2 * vx[k].hd);
        CU_ASSERT_DOUBLE_EQUAL(mm[k].assd, 2 * vx[k].assd, 1e-12 * mm[k].assd);
        CU_ASSERT_EQUAL(mm[k].nsd, vx[k].nsd);
        CU_ASSERT_EQUAL(mm[k].dice, vx[k].dice);
        CU_ASSERT_EQUAL(vx[k].vol_pred_mm3, (double)vx[k].n_pred);
        CU_ASSERT_EQUAL(mm[k].vol_ref_mm3, 8.0 * (double)vx[k].n_ref);
    }
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    CU_ASSERT_STRING_EQUAL(dk_metric_column_name(&cols[nc - 2], DK_UNIT_VOXELS), "vol_pred_voxels");
    CU_ASSERT_STRING_EQUAL(dk_metric_column_name(&cols[nc - 2], DK_UNIT_MM), "vol_pred_mm3");
    CU_ASSERT_STRING_EQUAL(dk_metric_column_name(&cols[7], DK_UNIT_VOXELS), "hd95");
    dk_volume_free(&p);
    dk_volume_free(&r);
}

static void test_summary(void) {
    double v[7] = {4, NAN, 1, 3, 2, NAN, 10};
    dk_metric_summary s;
    dk_metric_summarize(&s, v, 7, 2);
    CU_ASSERT_EQUAL(s.n, 5);
    CU_ASSERT_EQUAL(s.nan, 2);
    CU_ASSERT_EQUAL(s.flagged, 2);
    CU_ASSERT_DOUBLE_EQUAL(s.mean, 4.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(s.std, sqrt(50.0 / 4.0), 1e-14); /* ddof = 1 */
    CU_ASSERT_EQUAL(s.median, 3);
    CU_ASSERT_EQUAL(s.q1, 2);
    CU_ASSERT_EQUAL(s.q3, 4);
    CU_ASSERT_EQUAL(s.min, 1);
    CU_ASSERT_EQUAL(s.max, 10);
    double one = 7;
    dk_metric_summarize(&s, &one, 1, 0);
    CU_ASSERT(s.n == 1 && s.std == 0 && s.median == 7);
    double nan1 = NAN;
    dk_metric_summarize(&s, &nan1, 1, 1);
    CU_ASSERT(s.n == 0 && s.nan == 1 && isnan(s.mean));
    const double sorted[4] = {1, 2, 3, 4}; /* np.percentile([1,2,3,4], [25, 95, 0, 100]) */
    CU_ASSERT_DOUBLE_EQUAL(dk_percentile_sorted(sorted, 4, 25), 1.75, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_percentile_sorted(sorted, 4, 95), 3.85, 1e-15);
    CU_ASSERT_EQUAL(dk_percentile_sorted(sorted, 4, 0), 1);
    CU_ASSERT_EQUAL(dk_percentile_sorted(sorted, 4, 100), 4);
    int n;
    const dk_metric_column *c = dk_metric_columns(&n);
    CU_ASSERT_EQUAL(n, 12);
    CU_ASSERT_STRING_EQUAL(c[7].name, "hd95");
    CU_ASSERT_EQUAL(c[7].offset, offsetof(dk_label_metrics, hd95));
    CU_ASSERT_EQUAL(c[7].higher_better, 0);
}

/* test_metrics_peers.c */
void add_peer_tests(CU_pSuite s);

int main(void) {
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "EDT equals brute force (exact for integer spacing)", test_edt_brute);
    CU_add_test(s, "EDT: 1 and 2 threads bitwise equal", test_edt_threads);
    CU_add_test(s, "spheres and discs: counts by hand", test_hand_counts);
    CU_add_test(s, "one-voxel shift: HD = spacing; spacing keeps Dice", test_shift_and_spacing);
    CU_add_test(s, "empty-mask rules", test_empty_rules);
    CU_add_test(s, "mask restricts counts and boundaries", test_mask_restricts);
    CU_add_test(s, "non-integer, negative labels and grid mismatch refused", test_refusals);
    CU_add_test(s, "metrics: 1 and 2 threads bitwise equal", test_threads);
    CU_add_test(s, "distance_unit = voxels: 2 mm voxels give half the mm distances",
                test_voxel_units);
    CU_add_test(s, "summaries and numpy percentiles", test_summary);
    add_peer_tests(s);
    return dk_test_run();
}
