/*
 * Peers as oracles for the metrics, on the same NIfTI files: ITK's
 * LabelOverlapMeasuresImageFilter (tests/eval/itk_overlap_oracle.cxx, built with ITK) and
 * `plastimatch dice` for counts, Dice and volumes; scipy (tests/tools/eval_oracle.py) for
 * boundary counts, HD, HD95, ASSD, NSD; scipy.stats.wilcoxon for the signed-rank test.
 * A peer that is missing makes its test print why and pass without checking.
 */
#include "blobs.h"
#include "dakd/eval.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PY "/usr/bin/python3"
#define PLASTIMATCH "/usr/bin/plastimatch"

void add_peer_tests(CU_pSuite s);

static const char *scratch(const char *name) { return dk_test_path(dk_test_tmpdir(), name); }

static const char *oracle_py(void) {
    static char p[4096];
    snprintf(p, sizeof p, "%s/tests/tools/eval_oracle.py", dk_test_source_dir());
    return p;
}

static int have_scipy(void) {
    static int state = -1;
    if (state < 0)
        state = dk_test_sh(NULL, 0, PY " -c 'import scipy.ndimage, scipy.stats, nibabel'") == 0;
    return state;
}

/* Random blobs with 4 labels written as <base>_pred.nii.gz and <base>_ref.nii.gz, read back
 * into p and r (so dakd evaluates exactly what the peers read). */
static void write_case(dk_volume *p, dk_volume *r, const char *base, int64_t nx, int64_t ny,
                       int64_t nz, uint64_t seed) {
    const int64_t n[3] = {nx, ny, nz};
    dk_volume a, b;
    CU_ASSERT_FATAL(dk_volume_alloc(&a, nx, ny, nz, 1, 1, DK_U8) == DK_OK);
    CU_ASSERT_FATAL(dk_volume_alloc(&b, nx, ny, nz, 1, 1, DK_U8) == DK_OK);
    const double sp[3] = {0.8, 1.1, 2.5};
    memcpy(a.geom.spacing, sp, sizeof sp);
    memcpy(b.geom.spacing, sp, sizeof sp);
    blob bl[8], q[8];
    dk_rng rng;
    dk_rng_seed(&rng, seed);
    blobs_make(bl, 4, 2, n, nx / 10.0, nx / 4.0, 0.5, &rng);
    blobs_perturb(q, bl, 8, 2.0, 0.15, &rng);
    CU_ASSERT_FATAL(blobs_paint(b.data, bl, 8, n, 0.3, seed) == 0);
    CU_ASSERT_FATAL(blobs_paint(a.data, q, 8, n, 0.3, seed + 99) == 0);
    char pp[256], rp[256];
    snprintf(pp, sizeof pp, "%s_pred.nii.gz", base);
    snprintf(rp, sizeof rp, "%s_ref.nii.gz", base);
    CU_ASSERT_FATAL(dk_volume_write(&a, scratch(pp), NULL) == DK_OK);
    CU_ASSERT_FATAL(dk_volume_write(&b, scratch(rp), NULL) == DK_OK);
    dk_volume_free(&a);
    dk_volume_free(&b);
    CU_ASSERT_FATAL(dk_volume_read(p, scratch(pp)) == DK_OK);
    CU_ASSERT_FATAL(dk_volume_read(r, scratch(rp)) == DK_OK);
}

static const int LABELS[4] = {1, 2, 3, 4};

static void eval4(dk_label_metrics m[4], const dk_volume *p, const dk_volume *r,
                  const dk_volume *mask, double tau) {
    dk_metric_opts o;
    dk_metric_defaults(&o);
    o.nsd_tol_mm = tau;
    dk_status st = dk_eval_case(m, p, "pred", r, "ref", mask, LABELS, 4, &o);
    if (st != DK_OK) printf("\n    %s\n", dk_last_error());
    CU_ASSERT_FATAL(st == DK_OK);
}

/* ------------------------------------------------------------------ ITK */

static void test_itk_overlap(void) {
#ifndef DK_ITK_ORACLE
    dk_test_skip("ITK overlap filter", "built without ITK (DAKD_WITH_ITK=OFF)");
#else
    dk_volume p, r;
    write_case(&p, &r, "itk", 50, 46, 24, 21);
    dk_label_metrics m[4];
    eval4(m, &p, &r, NULL, 1.0);
    static char out[8192];
    int rc = dk_test_sh(out, sizeof out, "'%s' overlap '%s' '%s'", DK_ITK_ORACLE,
                        scratch("itk_pred.nii.gz"), scratch("itk_ref.nii.gz"));
    CU_ASSERT_FATAL(rc == 0);
    int seen = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned lab;
        unsigned long src, tgt, inter;
        double dice, vs, vsrc, vtgt;
        if (sscanf(line, "%u %lu %lu %lu %lf %lf %lf %lf", &lab, &src, &tgt, &inter, &dice, &vs,
                   &vsrc, &vtgt) != 8 || lab < 1 || lab > 4)
            continue;
        const dk_label_metrics *k = &m[lab - 1];
        seen++;
        CU_ASSERT_EQUAL(k->n_pred, (int64_t)src);
        CU_ASSERT_EQUAL(k->n_ref, (int64_t)tgt);
        CU_ASSERT_EQUAL(k->tp, (int64_t)inter);
        CU_ASSERT_DOUBLE_EQUAL(k->dice, dice, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(k->vol_pred_mm3, vsrc, 1e-6 * vsrc);
        CU_ASSERT_DOUBLE_EQUAL(k->vol_ref_mm3, vtgt, 1e-6 * vtgt);
        /* ITK's volume similarity is 2(S − T)/(S + T); the convention's is 1 − |S − T|/(S + T) */
        CU_ASSERT_DOUBLE_EQUAL(k->vol_sim, 1 - fabs(vs) / 2, 1e-12);
        if (fabs(k->dice - dice) > 1e-6)
            printf("\n    label %u: dice %.17g, ITK %.17g\n", lab, k->dice, dice);
    }
    CU_ASSERT_EQUAL(seen, 4);
    dk_volume_free(&p);
    dk_volume_free(&r);
#endif
}

/* ------------------------------------------------------------------ plastimatch */

/* One binary file per label: (v == lab). */
static void write_binary(const dk_volume *v, int lab, const char *path) {
    dk_volume b;
    CU_ASSERT_FATAL(dk_volume_alloc(&b, v->nx, v->ny, v->nz, 1, 1, DK_U8) == DK_OK);
    b.geom = v->geom;
    const uint8_t *s = v->data;
    uint8_t *d = b.data;
    for (int64_t i = 0; i < dk_volume_numel(v); i++) d[i] = s[i] == lab;
    CU_ASSERT_FATAL(dk_volume_write(&b, path, NULL) == DK_OK);
    dk_volume_free(&b);
}

static long long field_ll(const char *out, const char *key) {
    const char *p = strstr(out, key);
    return p ? atoll(p + strlen(key)) : -1;
}

static void test_plastimatch_overlap(void) {
    if (!dk_test_exists(PLASTIMATCH)) {
        dk_test_skip("plastimatch dice", PLASTIMATCH " is not installed");
        return;
    }
    dk_volume p, r;
    write_case(&p, &r, "plm", 40, 36, 20, 33);
    dk_label_metrics m[4];
    eval4(m, &p, &r, NULL, 1.0);
    for (int k = 0; k < 4; k++) {
        char pn[64], rn[64];
        snprintf(pn, sizeof pn, "plm_pred_%d.nii.gz", k + 1);
        snprintf(rn, sizeof rn, "plm_ref_%d.nii.gz", k + 1);
        write_binary(&p, k + 1, scratch(pn));
        write_binary(&r, k + 1, scratch(rn));
        static char out[8192];
        int rc = dk_test_sh(out, sizeof out, PLASTIMATCH " dice '%s' '%s'", scratch(rn),
                            scratch(pn));
        CU_ASSERT_FATAL(rc == 0);
        const char *d = strstr(out, "DICE:");
        CU_ASSERT_FATAL(d != NULL);
        double dice = atof(d + 5);
        CU_ASSERT_EQUAL(field_ll(out, "TP:"), m[k].tp);
        CU_ASSERT_EQUAL(field_ll(out, "TN:"), m[k].tn);
        CU_ASSERT_EQUAL(field_ll(out, "FP:"), m[k].fp);
        CU_ASSERT_EQUAL(field_ll(out, "FN:"), m[k].fn);
        CU_ASSERT_DOUBLE_EQUAL(m[k].dice, dice, 1e-6); /* printed with 6 decimals */
    }
    dk_volume_free(&p);
    dk_volume_free(&r);
}

/* ------------------------------------------------------------------ scipy surface */

/* dakd against eval_oracle.py surface on files base_pred / base_ref (and a mask). */
static void compare_surface(const char *base, const dk_volume *p, const dk_volume *r,
                            const dk_volume *mask, const char *mask_path, double tau) {
    dk_label_metrics m[4];
    eval4(m, p, r, mask, tau);
    char pp[256], rp[256];
    snprintf(pp, sizeof pp, "%s_pred.nii.gz", base);
    snprintf(rp, sizeof rp, "%s_ref.nii.gz", base);
    static char out[8192];
    int rc = dk_test_sh(out, sizeof out, PY " '%s' surface '%s' '%s' 1,2,3,4 %.17g %s",
                        oracle_py(), scratch(pp), scratch(rp), tau, mask_path ? mask_path : "");
    if (rc != 0) printf("\n    oracle: %s\n", out);
    CU_ASSERT_FATAL(rc == 0);
    int seen = 0;
    double worst = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        int lab;
        long long nbp, nbr;
        double hd, hd95, assd, nsd;
        if (sscanf(line, "%d %lld %lld %lf %lf %lf %lf", &lab, &nbp, &nbr, &hd, &hd95, &assd,
                   &nsd) != 7 || lab < 1 || lab > 4)
            continue;
        const dk_label_metrics *k = &m[lab - 1];
        seen++;
        CU_ASSERT_EQUAL(k->n_bpred, nbp);
        CU_ASSERT_EQUAL(k->n_bref, nbr);
        CU_ASSERT(isnan(hd) == isnan(k->hd));
        if (isnan(hd)) continue;
        double e = fmax(fmax(fabs(k->hd - hd), fabs(k->hd95 - hd95)), fabs(k->assd - assd));
        worst = fmax(worst, e);
        CU_ASSERT(e <= 1e-4);
        CU_ASSERT_DOUBLE_EQUAL(k->nsd, nsd, 1e-12);
        if (e > 1e-4 || fabs(k->nsd - nsd) > 1e-12)
            printf("\n    %s label %d: dakd %.9g %.9g %.9g %.9g scipy %.9g %.9g %.9g %.9g\n",
                   base, lab, k->hd, k->hd95, k->assd, k->nsd, hd, hd95, assd, nsd);
    }
    CU_ASSERT_EQUAL(seen, 4);
    printf("(%s: max |dakd − scipy| %.3g mm) ", base, worst);
}

static void test_scipy_surface(void) {
    if (!have_scipy()) {
        dk_test_skip("scipy surface distances", PY " lacks scipy or nibabel");
        return;
    }
    dk_volume p, r;
    write_case(&p, &r, "s3d", 56, 50, 26, 41);
    compare_surface("s3d", &p, &r, NULL, NULL, 2.0);
    dk_volume_free(&p);
    dk_volume_free(&r);

    write_case(&p, &r, "s2d", 90, 84, 1, 42);
    compare_surface("s2d", &p, &r, NULL, NULL, 1.0);

    /* a mask that cuts through the blobs: a slab in y and the lower z slices removed */
    dk_volume p3, r3, mask;
    write_case(&p3, &r3, "smask", 48, 44, 22, 43);
    CU_ASSERT_FATAL(dk_volume_alloc(&mask, 48, 44, 22, 1, 1, DK_U8) == DK_OK);
    mask.geom = r3.geom;
    uint8_t *mk = mask.data;
    for (int64_t i = 0; i < dk_volume_numel(&mask); i++) {
        int64_t y = (i / 48) % 44, z = i / (48 * 44);
        mk[i] = y >= 8 && y < 36 && z >= 3;
    }
    CU_ASSERT_FATAL(dk_volume_write(&mask, scratch("smask_mask.nii.gz"), NULL) == DK_OK);
    compare_surface("smask", &p3, &r3, &mask, scratch("smask_mask.nii.gz"), 1.5);
    dk_volume_free(&p);
    dk_volume_free(&r);
    dk_volume_free(&p3);
    dk_volume_free(&r3);
    dk_volume_free(&mask);
}

/* ------------------------------------------------------------------ Wilcoxon */

static void check_wilcoxon(const char *name, const double *d, int n) {
    char file[64];
    snprintf(file, sizeof file, "wil_%s.txt", name);
    FILE *f = fopen(scratch(file), "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < n; i++)
        if (!isnan(d[i])) fprintf(f, "%.17g\n", d[i]); /* scipy would propagate NaN */
    fclose(f);
    char out[512];
    int rc = dk_test_sh(out, sizeof out, PY " '%s' wilcoxon '%s'", oracle_py(), scratch(file));
    CU_ASSERT_FATAL(rc == 0);
    double ws, ps, w, p;
    int used;
    CU_ASSERT_FATAL(sscanf(out, "%lf %lf", &ws, &ps) == 2);
    dk_wilcoxon(d, n, &w, &p, &used);
    CU_ASSERT_DOUBLE_EQUAL(w, ws, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(p, ps, 1e-9);
    CU_ASSERT(used > 0 && used <= n);
    if (fabs(w - ws) > 1e-9 || fabs(p - ps) > 1e-9)
        printf("\n    %s: dakd W=%.17g p=%.17g, scipy W=%.17g p=%.17g\n", name, w, p, ws, ps);
}

static void test_wilcoxon(void) {
    if (!have_scipy()) {
        dk_test_skip("scipy.stats.wilcoxon", PY " lacks scipy");
        return;
    }
    dk_rng r;
    dk_rng_seed(&r, 77);
    double d[120];
    for (int i = 0; i < 12; i++) d[i] = dk_rng_normal(&r) + 0.4;
    check_wilcoxon("exact12", d, 12); /* exact, no ties */
    for (int i = 0; i < 50; i++) d[i] = dk_rng_normal(&r) + 0.2;
    check_wilcoxon("exact50", d, 50); /* the last exact size */
    d[50] = 0.77;
    check_wilcoxon("approx51", d, 51); /* the first approximate size */
    for (int i = 0; i < 20; i++) d[i] = round(10 * (dk_rng_normal(&r) + 0.3)) / 10 + (i % 7 == 3 ? 0.05 : 0);
    for (int i = 0; i < 20; i++) if (d[i] == 0) d[i] = 0.1;
    check_wilcoxon("exact_ties20", d, 20); /* exact with tied half ranks (scipy truncates W+) */
    for (int i = 0; i < 30; i++) d[i] = round(4 * dk_rng_normal(&r)) / 4;
    d[3] = d[17] = 0;
    check_wilcoxon("zeros30", d, 30); /* zeros: normal approximation */
    for (int i = 0; i < 110; i++) d[i] = round(2 * (dk_rng_normal(&r) - 0.15)) / 2;
    check_wilcoxon("ties110", d, 110); /* large with many ties and zeros */
    for (int i = 0; i < 15; i++) d[i] = dk_rng_normal(&r);
    d[4] = NAN;
    check_wilcoxon("nan15", d, 15); /* NaN pairs dropped */
    double w, p;
    int used;
    double zeros[3] = {0, 0, NAN};
    dk_wilcoxon(zeros, 3, &w, &p, &used);
    CU_ASSERT(used == 0 && isnan(p));
}

/* ------------------------------------------------------------------ bootstrap */

/* dk_bootstrap_mean_ci: cases whose bootstrap distribution is known by hand, then the
 * interval of scipy.stats.bootstrap (percentile, 10 000 resamples) within the Monte Carlo
 * error of two different random streams (a tenth of the standard error of the mean). */
static void test_bootstrap(void) {
    double lo, hi, x[60];
    for (int i = 0; i < 7; i++) x[i] = 0.25;
    dk_bootstrap_mean_ci(&lo, &hi, x, 1, 7, 1000, 0.95, 1); /* constant: the value */
    CU_ASSERT(lo == 0.25 && hi == 0.25);
    /* {0, 1}: the resampled mean is 0, 1/2, 1 with probability 1/4, 1/2, 1/4, so the 2.5th
     * and 97.5th percentiles of 10 000 draws are 0 and 1 */
    x[0] = 0, x[1] = 1;
    dk_bootstrap_mean_ci(&lo, &hi, x, 1, 2, 10000, 0.95, 1);
    CU_ASSERT(lo == 0 && hi == 1);
    /* the same over seeds: two seed rows 0 0 0 and 1 1 1 (cases agree, seeds do not) */
    double rows[6] = {0, 0, 0, 1, 1, 1};
    dk_bootstrap_mean_ci(&lo, &hi, rows, 2, 3, 10000, 0.95, 1);
    CU_ASSERT(lo == 0 && hi == 1);
    /* level 0: both ends are the median of the resampled means, 1/2 */
    dk_bootstrap_mean_ci(&lo, &hi, rows, 2, 3, 10001, 0, 1);
    CU_ASSERT(lo == 0.5 && hi == 0.5);
    /* the same seed repeats bit for bit; no case or seed gives NaN */
    double lo2, hi2;
    dk_rng r;
    dk_rng_seed(&r, 5);
    for (int i = 0; i < 14; i++) x[i] = 0.8 + 0.05 * dk_rng_normal(&r);
    dk_bootstrap_mean_ci(&lo, &hi, x, 1, 14, 10000, 0.95, 9);
    dk_bootstrap_mean_ci(&lo2, &hi2, x, 1, 14, 10000, 0.95, 9);
    CU_ASSERT(lo == lo2 && hi == hi2 && lo < hi);
    dk_bootstrap_mean_ci(&lo2, &hi2, x, 0, 14, 10000, 0.95, 9);
    CU_ASSERT(isnan(lo2) && isnan(hi2));
    if (!have_scipy()) {
        dk_test_skip("scipy.stats.bootstrap", PY " lacks scipy");
        return;
    }
    char cmd[4096], out[256];
    int k = snprintf(cmd, sizeof cmd, PY " -c 'import numpy as np; from scipy.stats import "
                     "bootstrap; x = np.array([");
    for (int i = 0; i < 14; i++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, "%.17g,", x[i]);
    snprintf(cmd + k, sizeof cmd - (size_t)k, "]); ci = bootstrap((x,), np.mean, method="
             "\"percentile\", n_resamples=10000, random_state=0).confidence_interval; "
             "print(repr(ci.low), repr(ci.high), repr(x.std(ddof=1) / len(x) ** 0.5))'");
    CU_ASSERT_FATAL(dk_test_sh(out, sizeof out, "%s", cmd) == 0);
    double slo, shi, se;
    CU_ASSERT_FATAL(sscanf(out, "%lf %lf %lf", &slo, &shi, &se) == 3);
    CU_ASSERT(fabs(lo - slo) < 0.1 * se && fabs(hi - shi) < 0.1 * se);
    if (!(fabs(lo - slo) < 0.1 * se && fabs(hi - shi) < 0.1 * se))
        printf("\n    dakd [%.6f, %.6f], scipy [%.6f, %.6f], se %.6f\n", lo, hi, slo, shi, se);
}

void add_peer_tests(CU_pSuite s) {
    CU_add_test(s, "peer: ITK LabelOverlapMeasures counts, Dice, volumes", test_itk_overlap);
    CU_add_test(s, "peer: plastimatch dice TP/TN/FP/FN, Dice", test_plastimatch_overlap);
    CU_add_test(s, "peer: scipy HD, HD95, ASSD, NSD (3-D, 2-D, masked)", test_scipy_surface);
    CU_add_test(s, "peer: scipy.stats.wilcoxon W and p", test_wilcoxon);
    CU_add_test(s, "bootstrap interval: hand cases; scipy.stats.bootstrap", test_bootstrap);
}
