/*
 * CUnit suite for lib/data (part 1): case lists from CSV, channel choice, intensity
 * normalisation against hand-computed values, resampling, label and grid checks, and the
 * retina case list. Sampling and augmentation are in test_data_sampling.c, the spatial map
 * and blur in test_augment_spatial.c.
 */
#include "dakd/data.h"
#include "test_data.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *scratch(const char *name) { return dk_test_path(dk_test_tmpdir(), name); }

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Small gray PNGs next to the CSVs, made once. */
static void make_pngs(void) {
    static int done;
    if (done) return;
    dk_volume v;
    CU_ASSERT_FATAL(dk_volume_alloc(&v, 6, 4, 1, 1, 1, DK_U8) == DK_OK);
    uint8_t *p = v.data;
    for (int i = 0; i < 24; i++) p[i] = (uint8_t)(i % 2);
    CU_ASSERT_FATAL(dk_volume_write(&v, scratch("a.png"), NULL) == DK_OK);
    CU_ASSERT_FATAL(dk_volume_write(&v, scratch("b.png"), NULL) == DK_OK);
    dk_volume_free(&v);
    done = 1;
}

/* Read a CSV written from `text`; expect `want`, and every string of `needles` (NULL
 * terminated) in the message. */
static void expect_csv_error(const char *name, const char *text, dk_status want,
                             const char *const *needles) {
    make_pngs();
    write_text(scratch(name), text);
    dk_case_list l;
    dk_status st = dk_cases_read(&l, scratch(name));
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_EQUAL(l.n, 0);
    CU_ASSERT_PTR_NULL(l.cases);
    for (int i = 0; needles[i]; i++) {
        int found = strstr(dk_last_error(), needles[i]) != NULL;
        CU_ASSERT(found);
        if (!found) printf("\n    '%s' not in: %s\n", needles[i], dk_last_error());
    }
}

/* ------------------------------------------------------------------ CSV */

static void test_csv_quotes(void) {
    make_pngs();
    /* BOM, CRLF, a quoted comma, a doubled quote, a line break inside quotes, an empty
     * optional label, a blank line, fov as the mask column and no final newline. */
    write_text(scratch("q.csv"),
               "\xEF\xBB\xBF" "dataset,case,image,label,fov,note\r\n"
               "drive,c1,a.png,b.png,b.png,\"hello, world\"\r\n"
               "\r\n"
               "\"chase\",\"c \"\"2\"\"\",a.png,,,\"two\nlines\"\n"
               "drive,c3,\"a.png\",b.png,,plain");
    dk_case_list l;
    CU_ASSERT_FATAL(dk_cases_read(&l, scratch("q.csv")) == DK_OK);
    CU_ASSERT_EQUAL(l.n, 3);
    CU_ASSERT_EQUAL(l.n_columns, 6);
    CU_ASSERT_STRING_EQUAL(l.columns[0], "dataset");
    CU_ASSERT_STRING_EQUAL(l.cases[0].id, "c1");
    CU_ASSERT_STRING_EQUAL(dk_cases_get(&l, 0, "note"), "hello, world");
    CU_ASSERT_STRING_EQUAL(l.cases[0].image, scratch("a.png"));
    CU_ASSERT_STRING_EQUAL(l.cases[0].mask, scratch("b.png"));
    CU_ASSERT_EQUAL(l.cases[0].line, 2);
    CU_ASSERT_STRING_EQUAL(l.cases[1].id, "c \"2\"");
    CU_ASSERT_STRING_EQUAL(dk_cases_get(&l, 1, "dataset"), "chase");
    CU_ASSERT_STRING_EQUAL(dk_cases_get(&l, 1, "note"), "two\nlines");
    CU_ASSERT_PTR_NULL(l.cases[1].label);
    CU_ASSERT_PTR_NULL(l.cases[1].mask);
    CU_ASSERT_EQUAL(l.cases[1].line, 4);
    CU_ASSERT_EQUAL(l.cases[2].line, 6); /* the quoted line break counts */
    CU_ASSERT_STRING_EQUAL(dk_cases_get(&l, 2, "note"), "plain");
    CU_ASSERT_PTR_NULL(dk_cases_get(&l, 2, "nope"));

    dk_case_list drive, none;
    CU_ASSERT_FATAL(dk_cases_filter(&drive, &l, "dataset", "drive") == DK_OK);
    CU_ASSERT_EQUAL(drive.n, 2);
    CU_ASSERT_STRING_EQUAL(drive.cases[1].id, "c3");
    CU_ASSERT_STRING_EQUAL(drive.cases[1].label, scratch("b.png"));
    CU_ASSERT_FATAL(dk_cases_filter(&none, &drive, "note", "absent") == DK_OK);
    CU_ASSERT_EQUAL(none.n, 0);
    dk_cases_free(&none);
    CU_ASSERT_EQUAL(dk_cases_filter(&none, &drive, "split", "train"), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "'split'"));
    dk_cases_free(&drive);
    dk_cases_free(&l);
    dk_cases_free(&l); /* a freed list is zeroed; freeing again is harmless */
}

/* dk_cases_where: every filter must hold (AND), in any order, rows kept in file order; a value
 * may hold '='; a missing column, a filter without '=' or without a column, and (need_one) no
 * passing row are DK_ERR_ARG naming the CSV and the filter, with `out` zeroed. */
static void test_cases_where(void) {
    make_pngs();
    write_text(scratch("w.csv"), "case,image,site,split,note\n"
                                 "a1,a.png,a,train,x=y\n"
                                 "a2,a.png,a,test,\n"
                                 "b1,a.png,b,train,\n"
                                 "b2,a.png,b,test,x=y\n"
                                 "a3,a.png,a,test,x=y\n");
    dk_case_list l, w;
    CU_ASSERT_FATAL(dk_cases_read(&l, scratch("w.csv")) == DK_OK);
    static const char *const both[] = {"site=a", "split=test", NULL};
    static const char *const swapped[] = {"split=test", "site=a", NULL};
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_FATAL(dk_cases_where(&w, &l, k ? swapped : both, 1) == DK_OK);
        CU_ASSERT_EQUAL(w.n, 2);
        if (w.n == 2) {
            CU_ASSERT_STRING_EQUAL(w.cases[0].id, "a2");
            CU_ASSERT_STRING_EQUAL(w.cases[1].id, "a3");
            CU_ASSERT_EQUAL(w.cases[1].line, 6);
        }
        CU_ASSERT_STRING_EQUAL(w.path, l.path);
        dk_cases_free(&w);
    }
    static const char *const eq_in_value[] = {"note=x=y", "split=test", NULL};
    CU_ASSERT_FATAL(dk_cases_where(&w, &l, eq_in_value, 1) == DK_OK);
    CU_ASSERT(w.n == 2 && !strcmp(w.cases[0].id, "b2") && !strcmp(w.cases[1].id, "a3"));
    dk_cases_free(&w);
    static const char *const empty_value[] = {"note=", NULL}, *const nothing[] = {NULL};
    CU_ASSERT_FATAL(dk_cases_where(&w, &l, empty_value, 1) == DK_OK);
    CU_ASSERT(w.n == 2 && !strcmp(w.cases[0].id, "a2") && !strcmp(w.cases[1].id, "b1"));
    dk_cases_free(&w);
    for (int k = 0; k < 2; k++) { /* no filter: every row */
        CU_ASSERT_FATAL(dk_cases_where(&w, &l, k ? nothing : NULL, 1) == DK_OK);
        CU_ASSERT_EQUAL(w.n, 5);
        dk_cases_free(&w);
    }
    static const char *const none[] = {"site=b", "split=none", NULL};
    CU_ASSERT_FATAL(dk_cases_where(&w, &l, none, 0) == DK_OK); /* allowed to be empty */
    CU_ASSERT_EQUAL(w.n, 0);
    dk_cases_free(&w);
    static const char *const nocol[] = {"site=a", "sit=a", NULL}, *const noeq[] = {"site", NULL};
    static const char *const nocolname[] = {"=a", NULL};
    const char *const *bad[4] = {none, nocol, noeq, nocolname};
    const char *says[4] = {"no case has site = b and split = none", "no column 'sit' to filter on",
                           "filter 'site' is not column=value", "filter '=a' is not column=value"};
    for (int k = 0; k < 4; k++) {
        memset(&w, 0xff, sizeof w);
        CU_ASSERT_EQUAL(dk_cases_where(&w, &l, bad[k], 1), DK_ERR_ARG);
        CU_ASSERT(w.n == 0 && w.cases == NULL && w.path == NULL);
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "w.csv: "));
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), says[k]));
    }
    char text[64];
    CU_ASSERT_STRING_EQUAL(dk_cases_where_text(text, sizeof text, both),
                           "site = a and split = test");
    CU_ASSERT_STRING_EQUAL(dk_cases_where_text(text, sizeof text, NULL), "");
    CU_ASSERT_STRING_EQUAL(dk_cases_where_text(text, 8, both), "site = ");
    dk_cases_free(&l);
}

static void test_csv_errors(void) {
    const char *missing[] = {"m.csv:1:", "'image'", NULL};
    expect_csv_error("m.csv", "case,label\nc1,a.png\n", DK_ERR_FORMAT, missing);
    const char *badpath[] = {"p.csv:3:", "column 'label' (3)", "nothere.png", NULL};
    expect_csv_error("p.csv", "case,image,label\nc1,a.png,b.png\nc2,a.png,nothere.png\n",
                     DK_ERR_IO, badpath);
    const char *dup[] = {"d.csv:4:", "duplicate case id 'c1'", "first on line 2", NULL};
    expect_csv_error("d.csv", "case,image\nc1,a.png\nc2,a.png\nc1,b.png\n", DK_ERR_FORMAT, dup);
    const char *empty[] = {"e.csv:2:", "column 'image' (2): empty path", NULL};
    expect_csv_error("e.csv", "case,image\nc1,\n", DK_ERR_FORMAT, empty);
    const char *fields[] = {"f.csv:3:", "3 fields, the header has 2", NULL};
    expect_csv_error("f.csv", "case,image\nc1,a.png\nc2,a.png,x\n", DK_ERR_FORMAT, fields);
    const char *open[] = {"u.csv:2:", "never closed", NULL};
    expect_csv_error("u.csv", "case,image\n\"c1,a.png\nc2,a.png\n", DK_ERR_FORMAT, open);
    const char *stray[] = {"s.csv:2:", "column 1", "quote inside", NULL};
    expect_csv_error("s.csv", "case,image\nc\"1,a.png\n", DK_ERR_FORMAT, stray);
    const char *twice[] = {"t.csv:1:", "'case' appears twice", NULL};
    expect_csv_error("t.csv", "case,image,case\n", DK_ERR_FORMAT, twice);
    const char *nofile[] = {"absent.csv", NULL};
    dk_case_list l;
    CU_ASSERT_EQUAL(dk_cases_read(&l, scratch("absent.csv")), DK_ERR_IO);
    for (int i = 0; nofile[i]; i++) CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), nofile[i]));
}

/* ------------------------------------------------------------------ channels, norms */

static dk_volume f32_volume(int64_t nx, int64_t ny, int64_t nz, int64_t nc, const float *v) {
    dk_volume x;
    CU_ASSERT_FATAL(dk_volume_alloc(&x, nx, ny, nz, 1, nc, DK_F32) == DK_OK);
    if (v) memcpy(x.data, v, (size_t)(nx * ny * nz * nc) * sizeof(float));
    return x;
}

static void test_channels(void) {
    dk_volume rgb, out;
    CU_ASSERT_FATAL(dk_volume_alloc(&rgb, 2, 1, 1, 1, 3, DK_U8) == DK_OK);
    const uint8_t px[6] = {10, 20, 100, 200, 255, 0}; /* R plane, G plane, B plane */
    memcpy(rgb.data, px, 6);
    rgb.geom.spacing[0] = 0.5;
    CU_ASSERT_FATAL(dk_channels_select(&out, &rgb, DK_CHANNELS_ONE, 1, "rgb") == DK_OK);
    CU_ASSERT_EQUAL(out.nc, 1);
    CU_ASSERT_EQUAL(out.dtype, DK_F32);
    CU_ASSERT_EQUAL(((float *)out.data)[0], 100.0f);
    CU_ASSERT_EQUAL(((float *)out.data)[1], 200.0f);
    CU_ASSERT_EQUAL(out.geom.spacing[0], 0.5);
    dk_volume_free(&out);
    CU_ASSERT_FATAL(dk_channels_select(&out, &rgb, DK_CHANNELS_LUMINANCE, 0, "rgb") == DK_OK);
    CU_ASSERT_DOUBLE_EQUAL(((float *)out.data)[0], 0.299 * 10 + 0.587 * 100 + 0.114 * 255, 1e-4);
    CU_ASSERT_DOUBLE_EQUAL(((float *)out.data)[1], 0.299 * 20 + 0.587 * 200, 1e-4);
    dk_volume_free(&out);
    CU_ASSERT_FATAL(dk_channels_select(&out, &rgb, DK_CHANNELS_ALL, 0, "rgb") == DK_OK);
    CU_ASSERT_EQUAL(out.nc, 3);
    CU_ASSERT_EQUAL(((float *)out.data)[4], 255.0f);
    dk_volume_free(&out);
    CU_ASSERT_EQUAL(dk_channels_select(&out, &rgb, DK_CHANNELS_ONE, 3, "rgb"), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "rgb: channel 3"));
    rgb.nc = 1;
    CU_ASSERT_EQUAL(dk_channels_select(&out, &rgb, DK_CHANNELS_LUMINANCE, 0, "g"), DK_ERR_ARG);
    rgb.nc = 3;
    dk_volume_free(&rgb);
}

static void test_percentile(void) {
    const float v[5] = {4, 1, 3, 2, 10};
    float w[5];
    /* numpy.percentile([4, 1, 3, 2, 10], p) */
    CU_ASSERT_DOUBLE_EQUAL(dk_percentile(v, 5, 0, w), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dk_percentile(v, 5, 50, w), 3.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dk_percentile(v, 5, 100, w), 10.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dk_percentile(v, 5, 10, w), 1.4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dk_percentile(v, 5, 90, w), 7.6, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(dk_percentile(v, 4, 25, w), 1.75, 1e-12); /* of 4, 1, 3, 2 */
    CU_ASSERT_EQUAL(v[0], 4.0f); /* input untouched */
}

static void test_norm_zscore(void) {
    const float v[4] = {1, 2, 3, 4};
    dk_volume x = f32_volume(4, 1, 1, 1, v);
    dk_norm_opts o;
    dk_norm_defaults(&o);
    CU_ASSERT_FATAL(dk_normalize(&x, NULL, &o, "x") == DK_OK);
    const double sd = sqrt(1.25); /* population std of 1..4 */
    for (int i = 0; i < 4; i++)
        CU_ASSERT_DOUBLE_EQUAL(((float *)x.data)[i], (v[i] - 2.5) / sd, 1e-6);
    dk_volume_free(&x);

    /* Inside a mask: statistics of {1, 2, 3}: mean 2, std sqrt(2/3); outside -> 0. */
    const float w[4] = {1, 2, 3, 100};
    const uint8_t m[4] = {1, 1, 1, 0};
    x = f32_volume(4, 1, 1, 1, w);
    CU_ASSERT_FATAL(dk_normalize(&x, m, &o, "x") == DK_OK);
    float *p = x.data;
    CU_ASSERT_DOUBLE_EQUAL(p[0], -1 / sqrt(2.0 / 3), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(p[1], 0, 1e-6);
    CU_ASSERT_EQUAL(p[3], 0.0f);
    dk_volume_free(&x);
    o.zero_outside_mask = 0;
    x = f32_volume(4, 1, 1, 1, w);
    CU_ASSERT_FATAL(dk_normalize(&x, m, &o, "x") == DK_OK);
    CU_ASSERT_DOUBLE_EQUAL(((float *)x.data)[3], 98 / sqrt(2.0 / 3), 1e-3);
    dk_volume_free(&x);

    /* Two channels are normalised separately; a constant channel becomes 0, not NaN. */
    const float two[4] = {0, 10, 7, 7};
    x = f32_volume(2, 1, 1, 2, two);
    CU_ASSERT_FATAL(dk_normalize(&x, NULL, &o, "x") == DK_OK);
    p = x.data;
    CU_ASSERT_DOUBLE_EQUAL(p[0], -1, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(p[1], 1, 1e-6);
    CU_ASSERT_EQUAL(p[2], 0.0f);
    CU_ASSERT_EQUAL(p[3], 0.0f);
    p[0] = NAN;
    CU_ASSERT_EQUAL(dk_normalize(&x, NULL, &o, "nan.nii"), DK_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "nan.nii: channel 0"));
    dk_volume_free(&x);
}

static void test_norm_percentile_and_window(void) {
    /* 0..100: the 10th and 90th percentiles are 10 and 90; clipped values have mean 50
     * and population std sqrt(sum((c - 50)^2) / 101) computed here by hand. */
    float v[101];
    for (int i = 0; i <= 100; i++) v[i] = (float)i;
    dk_volume x = f32_volume(101, 1, 1, 1, v);
    dk_norm_opts o;
    dk_norm_defaults(&o);
    o.kind = DK_INTENSITY_PERCENTILE_ZSCORE;
    o.lo_pct = 10, o.hi_pct = 90;
    CU_ASSERT_FATAL(dk_normalize(&x, NULL, &o, "x") == DK_OK);
    double ss = 0;
    for (int i = 0; i <= 100; i++) {
        double c = i < 10 ? 10 : i > 90 ? 90 : i;
        ss += (c - 50) * (c - 50);
    }
    double sd = sqrt(ss / 101);
    float *p = x.data;
    CU_ASSERT_DOUBLE_EQUAL(p[0], -40 / sd, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(p[5], -40 / sd, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(p[30], -20 / sd, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(p[100], 40 / sd, 1e-5);
    dk_volume_free(&x);
    o.lo_pct = 60, o.hi_pct = 50;
    x = f32_volume(101, 1, 1, 1, v);
    CU_ASSERT_EQUAL(dk_normalize(&x, NULL, &o, "x"), DK_ERR_ARG);
    dk_volume_free(&x);

    const float hu[6] = {-1000, -160, 40, 140, 240, 3000};
    x = f32_volume(6, 1, 1, 1, hu);
    dk_norm_defaults(&o);
    o.kind = DK_INTENSITY_CT_WINDOW; /* level 40, width 400: [-160, 240] -> [0, 1] */
    CU_ASSERT_FATAL(dk_normalize(&x, NULL, &o, "ct") == DK_OK);
    const double want[6] = {0, 0, 0.5, 0.75, 1, 1};
    for (int i = 0; i < 6; i++) CU_ASSERT_DOUBLE_EQUAL(((float *)x.data)[i], want[i], 1e-7);
    dk_volume_free(&x);
}

/* ------------------------------------------------------------------ resampling */

static void test_resample_identity_and_ramp(void) {
    dk_volume x = f32_volume(7, 5, 3, 2, NULL), y;
    float *p = x.data;
    dk_rng r;
    dk_rng_seed(&r, 5);
    for (int64_t i = 0; i < dk_volume_numel(&x); i++) p[i] = (float)dk_rng_normal(&r);
    x.geom.spacing[0] = 0.7, x.geom.origin[1] = -3;
    dk_resample_target t = {{0}, {7, 5, 3}};
    CU_ASSERT_FATAL(dk_resample(&y, &x, &t, DK_INTERP_LINEAR) == DK_OK);
    CU_ASSERT_EQUAL(memcmp(x.data, y.data, dk_volume_nbytes(&x)), 0);
    CU_ASSERT(dk_geometry_equal(&x.geom, &y.geom, 0));
    dk_volume_free(&y);
    dk_volume_free(&x);

    /* 2x downsample of v = x + 10 y (2-D): the means of voxel pairs, exactly. */
    x = f32_volume(8, 4, 1, 1, NULL);
    p = x.data;
    for (int yy = 0; yy < 4; yy++)
        for (int xx = 0; xx < 8; xx++) p[yy * 8 + xx] = (float)(xx + 10 * yy);
    x.geom.spacing[0] = x.geom.spacing[1] = 0.5;
    x.geom.origin[0] = 2;
    dk_resample_target half = {{0}, {4, 2, 0}};
    CU_ASSERT_FATAL(dk_resample(&y, &x, &half, DK_INTERP_LINEAR) == DK_OK);
    CU_ASSERT(y.nx == 4 && y.ny == 2 && y.nz == 1 && y.ndim == 2);
    p = y.data;
    for (int yy = 0; yy < 2; yy++)
        for (int xx = 0; xx < 4; xx++)
            CU_ASSERT_EQUAL(p[yy * 4 + xx], (float)(2 * xx + 0.5 + 10 * (2 * yy + 0.5)));
    /* spacing doubles, the first edge (origin - s/2) stays: origin + (2s - s)/2 */
    CU_ASSERT_EQUAL(y.geom.spacing[0], 1.0);
    CU_ASSERT_EQUAL(y.geom.origin[0], 2.25);
    CU_ASSERT_EQUAL(y.geom.origin[1], 0.25);
    CU_ASSERT_EQUAL(y.geom.spacing[2], 1.0);
    dk_volume_free(&y);
    dk_volume_free(&x);

    /* 3-D: a ramp along z, 6 slices -> 3, and up again to 6 (clamped at the ends) */
    x = f32_volume(2, 2, 6, 1, NULL);
    for (int i = 0; i < 24; i++) ((float *)x.data)[i] = (float)(i / 4);
    dk_resample_target z3 = {{0}, {0, 0, 3}}, z6 = {{0}, {0, 0, 6}};
    CU_ASSERT_FATAL(dk_resample(&y, &x, &z3, DK_INTERP_LINEAR) == DK_OK);
    dk_volume_free(&x);
    CU_ASSERT(y.nz == 3 && y.ndim == 3 && y.geom.spacing[2] == 2.0);
    for (int i = 0; i < 12; i++) CU_ASSERT_EQUAL(((float *)y.data)[i], 0.5f + 2 * (i / 4));
    CU_ASSERT_FATAL(dk_resample(&x, &y, &z6, DK_INTERP_LINEAR) == DK_OK);
    /* u = i/2 - 0.25 over {0.5, 2.5, 4.5}; u = -0.25 and 2.25 clamp to the end slices */
    const float up[6] = {0.5f, 1.0f, 2.0f, 3.0f, 4.0f, 4.5f};
    for (int i = 0; i < 24; i++) CU_ASSERT_EQUAL(((float *)x.data)[i], up[i / 4]);
    dk_volume_free(&y);
    dk_volume_free(&x);
}

static void test_resample_spacing_and_direction(void) {
    dk_volume x = f32_volume(10, 4, 6, 1, NULL), y;
    x.geom.spacing[0] = 0.7, x.geom.spacing[2] = 2.5;
    /* index axis 0 points along -y (LPS), axis 1 along +x: origin moves along them */
    memset(x.geom.direction, 0, sizeof x.geom.direction);
    x.geom.direction[1][0] = -1, x.geom.direction[0][1] = 1, x.geom.direction[2][2] = 1;
    dk_resample_target t = {{1.4, 0, 1.0}, {0, 0, 0}};
    int64_t n[3];
    double sp[3];
    dk_resample_grid(&x, &t, n, sp);
    CU_ASSERT(n[0] == 5 && n[1] == 4 && n[2] == 15);
    CU_ASSERT(sp[0] == 1.4 && sp[1] == 1.0 && sp[2] == 1.0);
    CU_ASSERT_FATAL(dk_resample(&y, &x, &t, DK_INTERP_LINEAR) == DK_OK);
    CU_ASSERT_DOUBLE_EQUAL(y.geom.origin[1], -0.35, 1e-12); /* -(1.4 - 0.7) / 2 along -y */
    CU_ASSERT_DOUBLE_EQUAL(y.geom.origin[0], 0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(y.geom.origin[2], -0.75, 1e-12); /* (1.0 - 2.5) / 2 */
    CU_ASSERT_EQUAL(y.geom.direction[1][0], -1.0);
    /* the physical extent is kept on every axis */
    for (int a = 0; a < 3; a++) {
        int64_t nin = a == 0 ? 10 : a == 1 ? 4 : 6, nout = a == 0 ? y.nx : a == 1 ? y.ny : y.nz;
        CU_ASSERT_DOUBLE_EQUAL(nin * x.geom.spacing[a], nout * y.geom.spacing[a], 1e-12);
    }
    dk_volume_free(&y);
    t.spacing[0] = 0.9; /* 7 mm / 0.9 = 7.8 -> 8 voxels of 0.875 */
    dk_resample_grid(&x, &t, n, sp);
    CU_ASSERT(n[0] == 8 && sp[0] == 0.875);
    dk_volume_free(&x);
    dk_volume u8;
    CU_ASSERT_FATAL(dk_volume_alloc(&u8, 4, 4, 1, 1, 1, DK_U8) == DK_OK);
    CU_ASSERT_EQUAL(dk_resample(&y, &u8, &t, DK_INTERP_LINEAR), DK_ERR_ARG);
    dk_volume_free(&u8);
}

static void test_resample_nearest_labels(void) {
    dk_volume l, y;
    CU_ASSERT_FATAL(dk_volume_alloc(&l, 9, 7, 5, 1, 1, DK_U8) == DK_OK);
    uint8_t *p = l.data;
    const uint8_t set[4] = {0, 1, 2, 5};
    dk_rng r;
    dk_rng_seed(&r, 9);
    for (int i = 0; i < 9 * 7 * 5; i++) p[i] = set[dk_rng_below(&r, 4)];
    dk_resample_target up = {{0}, {17, 13, 11}}, down = {{0}, {4, 3, 2}}, same = {{0}, {9, 7, 5}};
    const dk_resample_target *ts[3] = {&up, &down, &same};
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_FATAL(dk_resample(&y, &l, ts[k], DK_INTERP_NEAREST) == DK_OK);
        int seen[256] = {0};
        const uint8_t *q = y.data;
        for (int64_t i = 0; i < dk_volume_numel(&y); i++) seen[q[i]] = 1;
        int extra = 0, all = 1;
        for (int v = 0; v < 256; v++) extra += seen[v] && v != 0 && v != 1 && v != 2 && v != 5;
        for (int s = 0; s < 4; s++) all &= seen[set[s]];
        CU_ASSERT_EQUAL(extra, 0);
        if (k != 1) CU_ASSERT(all); /* upsampling and identity keep every label */
        if (k == 2) CU_ASSERT_EQUAL(memcmp(y.data, l.data, 9 * 7 * 5), 0);
        dk_volume_free(&y);
    }
    /* 1-D check of the index rule: 2x upsampling repeats each voxel twice. */
    dk_volume row;
    CU_ASSERT_FATAL(dk_volume_alloc(&row, 3, 1, 1, 1, 1, DK_U8) == DK_OK);
    memcpy(row.data, "\x01\x02\x03", 3);
    dk_resample_target six = {{0}, {6, 0, 0}};
    CU_ASSERT_FATAL(dk_resample(&y, &row, &six, DK_INTERP_NEAREST) == DK_OK);
    CU_ASSERT_EQUAL(memcmp(y.data, "\x01\x01\x02\x02\x03\x03", 6), 0);
    dk_volume_free(&y);
    dk_volume_free(&row);
    dk_volume_free(&l);
}

/* ------------------------------------------------------------------ labels and grids */

static void test_label_check(void) {
    dk_volume l, out;
    CU_ASSERT_FATAL(dk_volume_alloc(&l, 5, 1, 1, 1, 1, DK_I16) == DK_OK);
    int16_t *p = l.data;
    const int16_t vals[5] = {0, 1, 3, 255, 3};
    memcpy(p, vals, sizeof vals);
    CU_ASSERT_EQUAL(dk_label_check(&out, &l, 2, 255, "seg.nii"), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "seg.nii: label value 3 found in 2 voxels"));
    CU_ASSERT_PTR_NULL(out.data);
    CU_ASSERT_FATAL(dk_label_check(&out, &l, 4, 255, "seg.nii") == DK_OK);
    CU_ASSERT_EQUAL(out.dtype, DK_U8);
    CU_ASSERT_EQUAL(((uint8_t *)out.data)[3], 255);
    dk_volume_free(&out);
    CU_ASSERT_EQUAL(dk_label_check(&out, &l, 4, -1, "seg.nii"), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "label value 255 found in 1 voxels"));
    p[0] = -2;
    CU_ASSERT_EQUAL(dk_label_check(&out, &l, 4, 255, "seg.nii"), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "label value -2 found in 1 voxels"));
    dk_volume_free(&l);
    dk_volume f = f32_volume(2, 1, 1, 1, (const float[]){1.0f, 0.5f});
    CU_ASSERT_EQUAL(dk_label_check(&out, &f, 2, 255, "soft.nii"), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "soft.nii: label value 0.5"));
    dk_volume_free(&f);
}

/* [data] label_map: parsed with its errors named; a value mapped before the check; the
 * values of a refused file listed with the fixes. */
static void test_label_map(void) {
    dk_label_map m;
    CU_ASSERT_EQUAL(dk_label_map_parse(&m, "", 2), DK_OK);
    CU_ASSERT_EQUAL(m.n, 0);
    CU_ASSERT_EQUAL(dk_label_map_parse(&m, " 128:1 , 255 : 2", 3), DK_OK);
    CU_ASSERT(m.n == 2 && m.from[0] == 128 && m.to[0] == 1 && m.from[1] == 255 && m.to[1] == 2);
    CU_ASSERT_EQUAL(dk_label_map_parse(&m, "255:255", 2), DK_OK);
    const char *bad[][2] = {{"255", "FROM:TO"},          {"255:1,", "trailing comma"},
                            {"255:x", "FROM:TO"},        {"70000:1", "FROM 70000"},
                            {"255:2", "TO 2 is neither"}, {"3:1,3:0", "3 mapped twice"},
                            {"1:1 2:1", "FROM:TO"}};
    for (int i = 0; i < 7; i++) {
        CU_ASSERT_EQUAL(dk_label_map_parse(&m, bad[i][0], 2), DK_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "[data] label_map = '"));
        if (!strstr(dk_last_error(), bad[i][1]))
            printf("\n    %s: %s\n", bad[i][0], dk_last_error());
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), bad[i][1]));
        CU_ASSERT_EQUAL(m.n, 0);
    }
    dk_volume l, out;
    CU_ASSERT_FATAL(dk_volume_alloc(&l, 6, 1, 1, 1, 1, DK_U8) == DK_OK);
    memcpy(l.data, "\x00\x80\xff\xff\x00\x80", 6);
    CU_ASSERT_EQUAL(dk_label_check(&out, &l, 3, 255, "mask.nii"), DK_ERR_FORMAT);
    const char *msg = dk_last_error();
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "mask.nii: label value 128 found in 2 voxels"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "0 (2 voxels), 128 (2 voxels), 255 (2 voxels)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "[data] classes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "[data] label_map"));
    CU_ASSERT_EQUAL_FATAL(dk_label_map_parse(&m, "128:1,255:2", 3), DK_OK);
    CU_ASSERT_FATAL(dk_label_check_map(&out, &l, 3, 255, &m, "mask.nii") == DK_OK);
    CU_ASSERT_EQUAL(memcmp(out.data, "\x00\x01\x02\x02\x00\x01", 6), 0);
    dk_volume_free(&out);
    dk_volume_free(&l);
}

/* A 0/255 label map (255 = ignore in dakd, no foreground) is refused naming the file, its
 * values and the fix, unless [data] label_map says what 255 means. */
static void test_label_0_255(void) {
    dk_volume img = f32_volume(4, 2, 1, 1, (const float[]){1, 2, 3, 4, 5, 6, 7, 8}), lab;
    CU_ASSERT_FATAL(dk_volume_alloc(&lab, 4, 2, 1, 1, 1, DK_U8) == DK_OK);
    memcpy(lab.data, "\x00\xff\xff\x00\x00\x00\xff\x00", 8);
    dk_prep_opts o;
    dk_prep_defaults(&o);
    dk_case_data c;
    CU_ASSERT_EQUAL(dk_case_prepare(&c, &img, &lab, NULL, &o, "k9"), DK_ERR_FORMAT);
    const char *msg = dk_last_error();
    CU_ASSERT_PTR_NOT_NULL(
        strstr(msg, "k9 label: the label map holds 0 (5 voxels), 255 (3 voxels)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "label_map = 255:1"));
    CU_ASSERT_PTR_NULL(c.image.data);
    snprintf(o.label_map, sizeof o.label_map, "255:1");
    CU_ASSERT_FATAL(dk_case_prepare(&c, &img, &lab, NULL, &o, "k9") == DK_OK);
    CU_ASSERT_EQUAL(memcmp(c.label.data, "\x00\x01\x01\x00\x00\x00\x01\x00", 8), 0);
    dk_case_data_free(&c);
    snprintf(o.label_map, sizeof o.label_map, "255:255"); /* ignore, on purpose */
    CU_ASSERT_FATAL(dk_case_prepare(&c, &img, &lab, NULL, &o, "k9") == DK_OK);
    CU_ASSERT_EQUAL(((uint8_t *)c.label.data)[1], 255);
    dk_case_data_free(&c);
    snprintf(o.label_map, sizeof o.label_map, "255:3"); /* not a class of 2 */
    CU_ASSERT_EQUAL(dk_case_prepare(&c, &img, &lab, NULL, &o, "k9"), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "label_map = '255:3'"));
    /* 255 beside foreground stays the ignore label */
    ((uint8_t *)lab.data)[0] = 1;
    o.label_map[0] = '\0';
    CU_ASSERT_FATAL(dk_case_prepare(&c, &img, &lab, NULL, &o, "k9") == DK_OK);
    dk_case_data_free(&c);
    dk_volume_free(&lab);
    dk_volume_free(&img);
}

static void test_grid_mismatch(void) {
    dk_volume img = f32_volume(6, 4, 1, 1, NULL), lab, small;
    CU_ASSERT_FATAL(dk_volume_alloc(&lab, 6, 4, 1, 1, 1, DK_U8) == DK_OK);
    CU_ASSERT_FATAL(dk_volume_alloc(&small, 5, 4, 1, 1, 1, DK_U8) == DK_OK);
    dk_case_data c;
    CU_ASSERT_EQUAL(dk_case_prepare(&c, &img, &small, NULL, NULL, "k7"), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "k7 image is 6x4x1 but k7 label is 5x4x1"));
    lab.geom.origin[0] = 0.5;
    CU_ASSERT_EQUAL(dk_case_prepare(&c, &img, NULL, &lab, NULL, "k7"), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "k7 image and k7 mask"));
    CU_ASSERT_PTR_NULL(c.image.data);
    lab.geom.origin[0] = 0.0001; /* within the default tolerance */
    CU_ASSERT_EQUAL(dk_case_prepare(&c, &img, &lab, &lab, NULL, "k7"), DK_OK);
    CU_ASSERT_STRING_EQUAL(c.id, "k7");
    dk_case_data_free(&c);
    dk_volume_free(&small);
    dk_volume_free(&lab);
    dk_volume_free(&img);
}

/* A gray or RGB uint8 PNG of 8 x 6 whose voxel i holds f(i, channel). */
static void write_png(const char *name, int nc, int (*f)(int, int)) {
    dk_volume v;
    CU_ASSERT_FATAL(dk_volume_alloc(&v, 8, 6, 1, 1, nc, DK_U8) == DK_OK);
    for (int c = 0; c < nc; c++)
        for (int i = 0; i < 48; i++) ((uint8_t *)v.data)[c * 48 + i] = (uint8_t)f(i, c);
    CU_ASSERT_FATAL(dk_volume_write(&v, scratch(name), NULL) == DK_OK);
    dk_volume_free(&v);
}

static int px_rgb(int i, int c) { return 10 * c + i; }
static int px_label(int i, int c) { return (void)c, i % 8 >= 4; } /* right half is 1 */
static int px_mask(int i, int c) { return (void)c, i >= 16 ? 255 : 0; } /* rows 2.. */
static int px_bad(int i, int c) { return (void)c, i < 3 ? 7 : 0; }
static int px_zero(int i, int c) { return (void)i, (void)c, 0; }

/* The 8 x 6 RGB image, its label and mask, plus `extra` (a gray PNG of px_extra); a case
 * list of `rows` read into *l; *o = defaults with the green channel. */
static void chain_files(dk_case_list *l, dk_prep_opts *o, const char *csv, const char *rows,
                        const char *extra, int (*px_extra)(int, int)) {
    write_png("rgb.png", 3, px_rgb);
    write_png("lab.png", 1, px_label);
    write_png("fov.png", 1, px_mask);
    write_png(extra, 1, px_extra);
    write_text(scratch(csv), rows);
    CU_ASSERT_FATAL(dk_cases_read(l, scratch(csv)) == DK_OK);
    dk_prep_defaults(o);
    o->channels = DK_CHANNELS_ONE, o->channel_index = 1;
}

/* The whole chain from a CSV: read, green channel, z-score in the mask, 2x downsample. */
static void test_case_load_chain(void) {
    dk_case_list l;
    dk_prep_opts o;
    chain_files(&l, &o, "chain.csv", "case,image,label,mask\nok,rgb.png,lab.png,fov.png\n"
                "bad,rgb.png,lab7.png,\n", "lab7.png", px_bad);
    o.target.size[0] = 4, o.target.size[1] = 3;
    dk_case_data c;
    CU_ASSERT_FATAL(dk_case_load(&c, &l, 0, &o) == DK_OK);
    CU_ASSERT(c.image.nx == 4 && c.image.ny == 3 && c.image.nc == 1);
    CU_ASSERT(c.label.nx == 4 && c.mask.ny == 3 && c.image.geom.spacing[0] == 2.0);
    const uint8_t *lab = c.label.data, *m = c.mask.data;
    const float *x = c.image.data;
    for (int i = 0; i < 12; i++) {
        CU_ASSERT_EQUAL(lab[i], i % 4 >= 2); /* nearest keeps the halves */
        CU_ASSERT_EQUAL(m[i], i >= 4);       /* output row r takes input row 2r + 1 */
    }
    /* green = 10 + i; inside the mask (i >= 16) mean 41.5, std sqrt((32^2 - 1) / 12), 0
     * outside; an output voxel is the mean of a 2 x 2 block (i = 16, 17, 24, 25 -> 20.5) */
    double sd = sqrt((32.0 * 32.0 - 1) / 12);
    CU_ASSERT_DOUBLE_EQUAL(x[0], 0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(x[4], (10 + 20.5 - 41.5) / sd, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(x[11], (10 + 42.5 - 41.5) / sd, 1e-5);
    dk_case_data_free(&c);
    CU_ASSERT_EQUAL(dk_case_load(&c, &l, 1, &o), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "lab7.png: label value 7 found in 3 voxels"));
    CU_ASSERT_PTR_NULL(c.image.data);
    dk_cases_free(&l);
}

/* mask_extent: the mask (rows 2..5, all 8 columns) spans 8 voxels along its longest axis,
 * so mask_extent = 4 halves both axes, exactly as the explicit 4 x 3 target above; without a
 * mask, or with an empty one, the case is refused by name. */
static void test_case_load_mask_extent(void) {
    dk_case_list l;
    dk_prep_opts o, ref;
    chain_files(&l, &o, "ext.csv", "case,image,label,mask\nok,rgb.png,lab.png,fov.png\n"
                "nomask,rgb.png,lab.png,\nempty,rgb.png,lab.png,zero.png\n", "zero.png", px_zero);
    ref = o;
    ref.target.size[0] = 4, ref.target.size[1] = 3;
    o.mask_extent = 4;
    dk_case_data c, r;
    CU_ASSERT_FATAL(dk_case_load(&c, &l, 0, &o) == DK_OK);
    CU_ASSERT_FATAL(dk_case_load(&r, &l, 0, &ref) == DK_OK);
    CU_ASSERT(c.image.nx == 4 && c.image.ny == 3 && c.label.nx == 4 && c.mask.ny == 3);
    CU_ASSERT_EQUAL(c.image.geom.spacing[0], 2.0);
    CU_ASSERT_EQUAL(memcmp(c.image.data, r.image.data, 12 * sizeof(float)), 0);
    CU_ASSERT_EQUAL(memcmp(c.label.data, r.label.data, 12), 0);
    dk_case_data_free(&c), dk_case_data_free(&r);
    CU_ASSERT_EQUAL(dk_case_load(&c, &l, 1, &o), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "rgb.png: no mask, and data.mask_extent"));
    CU_ASSERT_EQUAL(dk_case_load(&c, &l, 2, &o), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "rgb.png: the mask is empty"));
    CU_ASSERT_PTR_NULL(c.image.data);
    dk_cases_free(&l);
}

/* ------------------------------------------------------------------ multi-channel cases */

/* A NIfTI of 4 x 3 x 2 (x nt volumes, nc channels) whose element i holds base + i. */
static void write_nii(const char *name, int64_t nx, int64_t nt, int64_t nc, dk_dtype dt,
                      int base) {
    dk_volume v;
    CU_ASSERT_FATAL(dk_volume_alloc(&v, nx, 3, 2, nt, nc, dt) == DK_OK);
    for (int64_t i = 0; i < dk_volume_numel(&v); i++) {
        if (dt == DK_U8) ((uint8_t *)v.data)[i] = (uint8_t)(base + i);
        else ((float *)v.data)[i] = (float)(base + i);
    }
    CU_ASSERT_FATAL(dk_volume_write(&v, scratch(name), NULL) == DK_OK);
    dk_volume_free(&v);
}

/* Channel files image, image_1, ... stacked in column order (any dtype, as float32); a 4-D
 * file's volumes read as channels; files on other grids, or volumes of several channels,
 * refused naming the files; channel columns with a gap or named twice refused by line 1. */
static void test_case_channels(void) {
    write_nii("ch0.nii", 4, 1, 1, DK_U8, 1);       /* 24 voxels: 1..24 */
    write_nii("ch1.nii.gz", 4, 1, 1, DK_F32, 100); /* 100..123 */
    write_nii("ch4d.nii", 4, 2, 1, DK_F32, 200);   /* two volumes: 200..247 */
    write_nii("wide.nii", 5, 1, 1, DK_U8, 0);      /* another grid */
    write_nii("both.nii", 4, 2, 2, DK_U8, 0);      /* volumes and channels */
    write_text(scratch("ch.csv"), "case,image_1,image,image_2\ns,ch1.nii.gz,ch0.nii,ch4d.nii\n"
                                  "w,ch1.nii.gz,ch0.nii,wide.nii\nb,ch1.nii.gz,ch0.nii,both.nii\n");
    dk_case_list l;
    CU_ASSERT_FATAL(dk_cases_read(&l, scratch("ch.csv")) == DK_OK);
    CU_ASSERT_EQUAL(l.cases[0].n_images, 3);
    CU_ASSERT_PTR_EQUAL(l.cases[0].image, l.cases[0].images[0]);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.cases[0].images[1], "ch1.nii.gz"));
    dk_prep_opts o;
    dk_prep_defaults(&o);
    o.norm.kind = DK_INTENSITY_NONE;
    dk_case_data c;
    CU_ASSERT_FATAL(dk_case_load(&c, &l, 0, &o) == DK_OK);
    CU_ASSERT(c.image.nc == 4 && c.image.nt == 1 && c.image.nx == 4 && c.image.dtype == DK_F32);
    const float *x = c.image.data;
    for (int i = 0; i < 24; i++) {
        CU_ASSERT_EQUAL(x[i], 1 + i);
        CU_ASSERT_EQUAL(x[24 + i], 100 + i);
        CU_ASSERT_EQUAL(x[48 + i], 200 + i);
        CU_ASSERT_EQUAL(x[72 + i], 224 + i);
    }
    dk_case_data_free(&c);
    CU_ASSERT_EQUAL(dk_case_load(&c, &l, 1, &o), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "ch0.nii is 4x3x2 but"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "wide.nii is 5x3x2"));
    CU_ASSERT_EQUAL(dk_case_load(&c, &l, 2, &o), DK_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "both.nii: 2 volumes (dim[4]) of 2 channels"));
    CU_ASSERT_PTR_NULL(c.image.data);
    dk_volume h;
    const char *paths[2] = {l.cases[0].images[0], l.cases[0].images[2]};
    CU_ASSERT_FATAL(dk_case_image_header(&h, paths, 2, 1e-3) == DK_OK);
    CU_ASSERT(h.nc == 3 && h.nt == 1 && h.data == NULL);
    dk_volume_free(&h);
    dk_cases_free(&l);
    write_text(scratch("gap.csv"), "case,image,image_2\ns,ch0.nii,ch0.nii\n");
    CU_ASSERT_EQUAL(dk_cases_read(&l, scratch("gap.csv")), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "gap.csv:1: column 'image_1' is missing"));
    write_text(scratch("twice.csv"), "case,image,image_1,image_01\ns,ch0.nii,ch0.nii,ch0.nii\n");
    CU_ASSERT_EQUAL(dk_cases_read(&l, scratch("twice.csv")), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "'image_1' (3) and 'image_01' (4) both"));
    write_text(scratch("empty.csv"), "case,image,image_1\ns,ch0.nii,\n");
    CU_ASSERT_EQUAL(dk_cases_read(&l, scratch("empty.csv")), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "column 'image_1' (3): empty path"));
}

/* ------------------------------------------------------------------ the retina list */

static void test_retina_cases(void) {
    const char *root = dk_test_shared_data();
    if (!root) {
        dk_test_skip("retina cases.csv", "no shared data folder (set DAKD_SHARED_DATA)");
        return;
    }
    const char *csv = dk_test_path(root, "retina/cases.csv");
    if (!dk_test_exists(csv)) {
        dk_test_skip("retina cases.csv", "retina/cases.csv not in the shared data");
        return;
    }
    dk_case_list all, drive, train;
    CU_ASSERT_FATAL(dk_cases_read(&all, csv) == DK_OK);
    CU_ASSERT_EQUAL(all.n, 68);
    CU_ASSERT_FATAL(dk_cases_filter(&drive, &all, "dataset", "drive") == DK_OK);
    CU_ASSERT_FATAL(dk_cases_filter(&train, &drive, "split", "train") == DK_OK);
    CU_ASSERT_EQUAL(drive.n, 40);
    CU_ASSERT_EQUAL(train.n, 20);
    CU_ASSERT_PTR_NOT_NULL(train.cases[0].mask); /* the fov column */
    dk_prep_opts o;
    dk_prep_defaults(&o);
    o.channels = DK_CHANNELS_ONE, o.channel_index = 1; /* green */
    dk_case_data c;
    CU_ASSERT_FATAL(dk_case_load(&c, &train, 0, &o) == DK_OK);
    CU_ASSERT(c.image.nx == 565 && c.image.ny == 584 && c.image.nc == 1);
    const float *x = c.image.data;
    const uint8_t *m = c.mask.data, *l = c.label.data;
    double s = 0, ss = 0;
    int64_t in = 0, fg = 0, outside_nonzero = 0, n = 565 * 584;
    for (int64_t i = 0; i < n; i++) {
        fg += l[i] == 1;
        if (!m[i]) {
            outside_nonzero += x[i] != 0;
            continue;
        }
        in++, s += x[i], ss += (double)x[i] * x[i];
    }
    CU_ASSERT_DOUBLE_EQUAL(s / in, 0, 1e-4);
    CU_ASSERT_DOUBLE_EQUAL(ss / in, 1, 1e-3);
    CU_ASSERT_EQUAL(outside_nonzero, 0);
    CU_ASSERT(fg > 0.05 * n && fg < 0.15 * n); /* vessels ~ 9 % */
    printf("\n    retina: %d cases, DRIVE train %d; %s: FOV %.1f %%, vessels %.1f %%\n", all.n,
           train.n, c.id, 100.0 * in / n, 100.0 * fg / n);
    dk_case_data_free(&c);
    dk_cases_free(&train);
    dk_cases_free(&drive);
    dk_cases_free(&all);
}

/* ================================================================ option schema metadata */

/* The metadata of m as the JSON object a model file's __metadata__ parses into. */
static cJSON *meta_json(const dk_prep_meta *m) {
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; o && m->kv[2 * k]; k++)
        cJSON_AddStringToObject(o, m->kv[2 * k], m->kv[2 * k + 1]);
    return o;
}

/* The defaults write the bytes models have always carried, keys in the same order. */
static void test_prep_meta_format(void) {
    dk_data_opts d;
    dk_data_defaults(&d);
    dk_prep_meta m;
    dk_prep_meta_write(&m, &d);
    const char *want[] = {"channels", "all", "channel_index", "0", "norm", "zscore",
                          "norm_lo_pct", "0.5", "norm_hi_pct", "99.5", "ct_level", "40",
                          "ct_width", "400", "zero_outside_mask", "1", "norm_in_mask", "1",
                          "spacing", "0,0,0", "size", "0,0,0", "patch", "1,256,256",
                          "classes", "2", "mask_extent", "0"};
    int n = (int)(sizeof want / sizeof want[0]) / 2;
    CU_ASSERT_EQUAL_FATAL(m.n, n);
    for (int k = 0; k < n; k++) {
        char key[64];
        snprintf(key, sizeof key, "dakd.data.%s", want[2 * k]);
        CU_ASSERT_STRING_EQUAL(m.kv[2 * k], key);
        CU_ASSERT_STRING_EQUAL(m.kv[2 * k + 1], want[2 * k + 1]);
    }
    CU_ASSERT_PTR_NULL(m.kv[2 * n]);
    d.prep.target.spacing[0] = 0.1 + 0.2, d.prep.norm.level = -1e300 / 3;
    dk_prep_meta_write(&m, &d);
    CU_ASSERT_STRING_EQUAL(m.kv[19], "0.30000000000000004,0,0"); /* %.17g */
    CU_ASSERT_STRING_EQUAL(m.kv[11], "-3.3333333333333335e+299");
}

/* A non-default struct written and read back is the same struct. */
static void test_prep_meta_round_trip(void) {
    dk_data_opts d, r;
    dk_data_defaults(&d);
    dk_prep_opts *p = &d.prep;
    p->channels = DK_CHANNELS_ONE, p->channel_index = 2;
    p->norm.kind = DK_INTENSITY_CT_WINDOW, p->norm.lo_pct = 1.5, p->norm.hi_pct = 98.25;
    p->norm.level = -1000.1, p->norm.width = 0.1, p->norm.zero_outside_mask = 0;
    p->norm_in_mask = 0, p->mask_extent = 123.456, p->classes = 5;
    p->target.spacing[0] = 0.7, p->target.spacing[1] = 0.1 + 0.2, p->target.spacing[2] = 2.5;
    p->target.size[0] = 10, p->target.size[2] = 3;
    d.patch[0] = 1, d.patch[1] = 64, d.patch[2] = 96;
    dk_prep_meta m;
    dk_prep_meta_write(&m, &d);
    cJSON *j = meta_json(&m);
    CU_ASSERT_EQUAL_FATAL(dk_prep_meta_read(&r, j, "m.safetensors"), DK_OK);
    CU_ASSERT_EQUAL(memcmp(&r.prep, &d.prep, sizeof d.prep), 0);
    CU_ASSERT_EQUAL(memcmp(r.patch, d.patch, sizeof d.patch), 0);
    /* mask_extent is optional: models from before it read back 0 */
    cJSON_DeleteItemFromObjectCaseSensitive(j, "dakd.data.mask_extent");
    CU_ASSERT_EQUAL_FATAL(dk_prep_meta_read(&r, j, "m.safetensors"), DK_OK);
    CU_ASSERT_EQUAL(r.prep.mask_extent, 0);
    CU_ASSERT_EQUAL(r.prep.norm.width, 0.1);
    cJSON_Delete(j);
}

/* Replace `key`'s value in a default model's metadata by `v` (NULL: drop the key) and
 * expect the read to fail naming the key (and `v`). */
static void expect_meta_refused(const char *key, const char *v, const char *frag) {
    dk_data_opts d;
    dk_data_defaults(&d);
    dk_prep_meta m;
    dk_prep_meta_write(&m, &d);
    cJSON *j = meta_json(&m);
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    if (v) cJSON_AddStringToObject(j, key, v);
    CU_ASSERT_EQUAL(dk_prep_meta_read(&d, j, "m.safetensors"), DK_ERR_FORMAT);
    const char *e = dk_last_error();
    int ok = strstr(e, "m.safetensors") && strstr(e, key) && (!v || strstr(e, v)) &&
             strstr(e, frag);
    if (!ok) printf("\n  %s = %s: '%s'\n", key, v ? v : "(none)", e);
    CU_ASSERT(ok);
    cJSON_Delete(j);
}

static void test_prep_meta_refused(void) {
    static const char *const cases[][3] = {
        {"dakd.data.norm", "zscored", "one of none|zscore|"},
        {"dakd.data.channels", "green", "one of all|one|luminance"},
        {"dakd.data.channel_index", "1.5", "an integer"},
        {"dakd.data.channel_index", "", "an integer"},
        {"dakd.data.norm_lo_pct", "0.5x", "a number"},
        {"dakd.data.ct_width", "nan", "a number"},
        {"dakd.data.zero_outside_mask", "2", "0 or 1"},
        {"dakd.data.spacing", "1,2", "3 numbers"},
        {"dakd.data.spacing", "1,2,3,4", "3 numbers"},
        {"dakd.data.patch", "1,-64,64", "3 numbers"},
        {"dakd.data.classes", "1", "an integer in [2, 32]"},
        {"dakd.data.mask_extent", "-1", "a number"},
        {"dakd.data.classes", NULL, "lacks"}, /* NULL: the key is missing */
        {"dakd.data.size", NULL, "lacks"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_meta_refused(cases[i][0], cases[i][1], cases[i][2]);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("data_prep", NULL, NULL);
    CU_add_test(s, "CSV quotes, CRLF, BOM, filter", test_csv_quotes);
    CU_add_test(s, "case list filters: AND, missing column, no match", test_cases_where);
    CU_add_test(s, "CSV errors name file, line, column", test_csv_errors);
    CU_add_test(s, "channel choice", test_channels);
    CU_add_test(s, "percentiles as numpy", test_percentile);
    CU_add_test(s, "z-score, masked, per channel", test_norm_zscore);
    CU_add_test(s, "percentile clip + z-score, CT window", test_norm_percentile_and_window);
    CU_add_test(s, "resample: identity exact, 2x ramp", test_resample_identity_and_ramp);
    CU_add_test(s, "resample: spacing, extent, direction", test_resample_spacing_and_direction);
    CU_add_test(s, "resample: nearest keeps labels", test_resample_nearest_labels);
    CU_add_test(s, "label values checked", test_label_check);
    CU_add_test(s, "label_map: parsed, applied, suggested", test_label_map);
    CU_add_test(s, "0/255 label maps refused unless label_map names 255", test_label_0_255);
    CU_add_test(s, "image/label grid mismatch", test_grid_mismatch);
    CU_add_test(s, "CSV to preprocessed case, label error names file", test_case_load_chain);
    CU_add_test(s, "mask_extent scales by the mask's bounding box; no mask is refused",
                test_case_load_mask_extent);
    CU_add_test(s, "multi-channel cases: files stacked, 4-D as channels", test_case_channels);
    CU_add_test(s, "retina cases.csv loads", test_retina_cases);
    CU_add_test(s, "model metadata: the bytes and order of the defaults", test_prep_meta_format);
    CU_add_test(s, "model metadata: written and read back", test_prep_meta_round_trip);
    CU_add_test(s, "model metadata: bad values refused naming the key", test_prep_meta_refused);
    add_sampling_tests();
    add_spatial_tests();
    add_spacing_tests();
    return dk_test_run();
}
