/* dk_volume basics: allocation limits, element access, geometry conversions, orientation
 * codes, statistics, the phantom generator, the atomic-output helpers. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dakd/data.h"
#include "dakd/volume.h"
#include "test_util.h"

static void test_alloc_limits(void) {
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_alloc(&v, 0, 4, 4, 1, 1, DK_U8), DK_ERR_ARG);
    CU_ASSERT_PTR_NULL(v.data);
    CU_ASSERT_EQUAL(dk_volume_alloc(&v, -3, 4, 4, 1, 1, DK_U8), DK_ERR_ARG);
    CU_ASSERT_EQUAL(dk_volume_alloc(&v, INT64_MAX / 2, 4, 4, 1, 1, DK_U8), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "too large"));
    CU_ASSERT_EQUAL(dk_volume_alloc(&v, 1 << 20, 1 << 20, 1 << 20, 4, 1, DK_F64), DK_ERR_ARG);
    CU_ASSERT_EQUAL(dk_volume_alloc(&v, 3, 4, 5, 2, 1, DK_I16), DK_OK);
    CU_ASSERT_EQUAL(dk_volume_numel(&v), 120);
    CU_ASSERT_EQUAL(dk_volume_nbytes(&v), 240);
    CU_ASSERT_EQUAL(v.ndim, 3);
    CU_ASSERT_EQUAL(v.geom.spacing[2], 1.0);
    dk_volume_free(&v);
    CU_ASSERT_PTR_NULL(v.data);
    dk_volume_free(&v); /* twice is fine: the struct is zeroed */
    dk_volume_free(NULL);
}

static void test_get_set_rounding(void) {
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 4, 1, 1, 1, 1, DK_U8), DK_OK);
    dk_volume_set(&v, 0, 2.5);  /* half away from zero */
    dk_volume_set(&v, 1, -7);   /* clamped */
    dk_volume_set(&v, 2, 300);  /* clamped */
    dk_volume_set(&v, 3, NAN);  /* NaN -> 0 */
    CU_ASSERT_EQUAL(dk_volume_get(&v, 0), 3);
    CU_ASSERT_EQUAL(dk_volume_get(&v, 1), 0);
    CU_ASSERT_EQUAL(dk_volume_get(&v, 2), 255);
    CU_ASSERT_EQUAL(dk_volume_get(&v, 3), 0);
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 2, 1, 1, 1, 1, DK_I64), DK_OK);
    dk_volume_set(&v, 0, 1e300);
    CU_ASSERT(dk_volume_get(&v, 0) > 9.2e18);
    dk_volume_free(&v);
    CU_ASSERT_STRING_EQUAL(dk_dtype_name(DK_F32), "float32");
    CU_ASSERT_EQUAL(dk_dtype_size(DK_U64), 8);
    CU_ASSERT(dk_dtype_is_integer(DK_I8));
    CU_ASSERT(!dk_dtype_is_integer(DK_F64));
}

/* An oblique, anisotropic RAS affine survives affine -> geometry -> affine bit for bit. */
static void test_affine_round_trip_exact(void) {
    const double c = cos(0.3), s = sin(0.3);
    double m[4][4] = {{0.9 * c, -1.3 * s, 0, -91.25},
                      {0.9 * s, 1.3 * c, 0.01, 126.5},
                      {0, 0.02, 2.7, -72.1},
                      {0, 0, 0, 1}};
    dk_geometry g;
    dk_geometry_from_nifti_affine(&g, (const double(*)[4])m);
    double back[4][4];
    dk_geometry_to_nifti_affine(&g, back);
    for (int r = 0; r < 4; r++)
        for (int k = 0; k < 4; k++) CU_ASSERT_EQUAL(back[r][k], m[r][k]);
    CU_ASSERT_DOUBLE_EQUAL(g.spacing[0], 0.9, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(g.spacing[2], sqrt(2.7 * 2.7 + 0.01 * 0.01), 1e-12);
    /* LPS origin is RAS origin with x and y negated */
    CU_ASSERT_EQUAL(g.origin[0], 91.25);
    CU_ASSERT_EQUAL(g.origin[1], -126.5);
    CU_ASSERT_EQUAL(g.origin[2], -72.1);
}

static void test_orientation_codes(void) {
    dk_geometry g;
    dk_geometry_identity(&g); /* LPS identity */
    char code[4];
    dk_geometry_orientation_code(&g, code);
    CU_ASSERT_STRING_EQUAL(code, "LPS");
    double ras[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
    dk_geometry_from_nifti_affine(&g, (const double(*)[4])ras);
    dk_geometry_orientation_code(&g, code);
    CU_ASSERT_STRING_EQUAL(code, "RAS");
    double las[4][4] = {{-2, 0, 0, 0}, {0, 0, 3, 0}, {0, -1, 0, 0}, {0, 0, 0, 1}};
    dk_geometry_from_nifti_affine(&g, (const double(*)[4])las); /* i -> L, j -> I, k -> A */
    dk_geometry_orientation_code(&g, code);
    CU_ASSERT_STRING_EQUAL(code, "LIA");
    double degenerate[4][4] = {{0, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
    dk_geometry_from_nifti_affine(&g, (const double(*)[4])degenerate);
    CU_ASSERT_EQUAL(g.spacing[0], 1.0);
    CU_ASSERT(dk_geometry_equal(&g, &g, 0));
    /* a NaN direction (ITK normalises a zero NRRD axis to one): the first axis left, no
     * index -1 (found by tests/fuzz/fuzz_metaimage) */
    dk_geometry_identity(&g);
    for (int r = 0; r < 3; r++) g.direction[r][0] = NAN;
    memset(code, 'x', sizeof code);
    dk_geometry_orientation_code(&g, code);
    CU_ASSERT_STRING_EQUAL(code, "?PS");
}

static void test_stats_labels(void) {
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 10, 10, 1, 1, 1, DK_I16), DK_OK);
    int16_t *d = v.data;
    for (int i = 0; i < 100; i++) d[i] = (int16_t)(i < 50 ? 0 : i < 80 ? 3 : -2);
    dk_volume_stats s;
    dk_volume_compute_stats(&v, &s);
    CU_ASSERT_EQUAL(s.n_labels, 3);
    CU_ASSERT_EQUAL(s.labels[0], -2);
    CU_ASSERT_EQUAL(s.label_counts[0], 20);
    CU_ASSERT_EQUAL(s.labels[2], 3);
    CU_ASSERT_EQUAL(s.label_counts[2], 30);
    CU_ASSERT_EQUAL(s.min, -2);
    CU_ASSERT_EQUAL(s.max, 3);
    for (int i = 0; i < 100; i++) d[i] = (int16_t)(i * 7 % 100); /* 100 distinct values */
    dk_volume_compute_stats(&v, &s);
    CU_ASSERT(s.labels_truncated);
    CU_ASSERT_EQUAL(s.labels[63], 63);
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 4, 1, 1, 1, 1, DK_F32), DK_OK);
    float *f = v.data;
    f[0] = NAN, f[1] = 1, f[2] = 2, f[3] = 6;
    dk_volume_compute_stats(&v, &s);
    CU_ASSERT_EQUAL(s.n_nan, 1);
    CU_ASSERT_DOUBLE_EQUAL(s.mean, 3.0, 1e-12);
    CU_ASSERT_EQUAL(s.n_labels, 0);
    dk_volume_free(&v);
}

static void test_phantom(void) {
    dk_phantom_opts o = {48, 40, 24, {1, 1, 2}, 0};
    dk_rng r1, r2;
    dk_rng_seed(&r1, 42);
    dk_rng_seed(&r2, 42);
    dk_volume a, la, b, lb;
    CU_ASSERT_EQUAL_FATAL(dk_phantom_generate(&a, &la, &o, &r1), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_phantom_generate(&b, &lb, &o, &r2), DK_OK);
    CU_ASSERT_EQUAL(memcmp(a.data, b.data, dk_volume_nbytes(&a)), 0); /* same seed */
    dk_volume_stats s;
    dk_volume_compute_stats(&la, &s);
    CU_ASSERT_EQUAL(s.n_labels, 4); /* background, organ, kidney, vessel */
    CU_ASSERT_EQUAL(la.geom.spacing[2], 2.0);
    CU_ASSERT(dk_geometry_equal(&a.geom, &la.geom, 0));
    /* the target domain changes the look of the same labels: the organ is darker there
     * (0.62 vs 0.75, each times a bias field within 1 +- 0.06 over the organ) */
    dk_volume t, lt;
    dk_rng_seed(&r1, 42);
    o.domain = 1;
    CU_ASSERT_EQUAL_FATAL(dk_phantom_generate(&t, &lt, &o, &r1), DK_OK);
    CU_ASSERT_EQUAL(memcmp(la.data, lt.data, dk_volume_nbytes(&la)), 0);
    double organ_src = 0, organ_tgt = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < dk_volume_numel(&la); i++)
        if (((uint8_t *)la.data)[i] == 1) {
            organ_src += ((float *)a.data)[i], organ_tgt += ((float *)t.data)[i], n++;
        }
    CU_ASSERT(n > 100);
    CU_ASSERT(organ_src / n > organ_tgt / n + 0.05);
    dk_volume_free(&t), dk_volume_free(&lt);
    o.domain = 2;
    CU_ASSERT_EQUAL(dk_phantom_generate(&t, &lt, &o, &r1), DK_ERR_ARG);
    CU_ASSERT_PTR_NULL(t.data);
    dk_volume_free(&a), dk_volume_free(&la), dk_volume_free(&b), dk_volume_free(&lb);
}

static void test_atomic_commit(void) {
    const char *dir = dk_test_tmpdir();
    const char *final = dk_test_path(dir, "atomic.bin");
    char tmp[4096];
    CU_ASSERT_EQUAL_FATAL(dk_tmp_path_for(tmp, sizeof tmp, final), DK_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(tmp, "/.atomic.bin."));
    FILE *f = fopen(tmp, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("payload", f);
    fclose(f);
    CU_ASSERT_EQUAL(dk_commit_file(tmp, final), DK_OK);
    CU_ASSERT(dk_test_exists(final));
    CU_ASSERT(!dk_test_exists(tmp));
    /* renaming into a missing folder fails, names the target and removes the temp */
    f = fopen(tmp, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    const char *bad = dk_test_path(dir, "no-such-dir/x.bin");
    CU_ASSERT_EQUAL(dk_commit_file(tmp, bad), DK_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "no-such-dir/x.bin"));
    CU_ASSERT(!dk_test_exists(tmp));
    char small[8];
    CU_ASSERT_EQUAL(dk_tmp_path_for(small, sizeof small, final), DK_ERR_ARG);
}

static void test_unknown_extension(void) {
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_read(&v, "scan.xyz"), DK_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "scan.xyz"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("volume", NULL, NULL);
    CU_add_test(s, "allocation limits", test_alloc_limits);
    CU_add_test(s, "get/set rounding and clamping", test_get_set_rounding);
    CU_add_test(s, "oblique affine round trip is exact", test_affine_round_trip_exact);
    CU_add_test(s, "orientation codes", test_orientation_codes);
    CU_add_test(s, "statistics and label values", test_stats_labels);
    CU_add_test(s, "phantom generator", test_phantom);
    CU_add_test(s, "atomic commit", test_atomic_commit);
    CU_add_test(s, "unknown extension", test_unknown_extension);
    return dk_test_run();
}
