/*
 * CUnit suite for the layer kernels of dakd/nn.h (all but convolutions) and dk_loss_ce:
 * forward values against naive references and hand-computed numbers, running statistics,
 * dropout rates, determinism. The gradient checks are in test_layers_grad.c.
 */
#include "test_layers.h"

#include <stdlib.h>
#include <string.h>

#include "dakd/nn.h"
#include "dakd/train.h"

static float *falloc(int64_t n) { return calloc((size_t)n, sizeof(float)); }

static void fill(float *x, int64_t n, double lo, double hi, uint64_t seed) {
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * dk_rng_uniform_double(&r));
}

static double max_diff(const float *a, const double *b, int64_t n) {
    double w = 0;
    for (int64_t i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]));
    return w;
}

/* ------------------------------------------------------------------ max-pool */

/* Naive pool with the first maximum in window order; compares values and argmax. k: the
 * window = stride per axis (d, h, w), NULL = dk_pool_shape_make's. */
static void check_pool_axes(int64_t n, int64_t c, int64_t d, int64_t h, int64_t w, const int *k) {
    dk_pool_shape s;
    if (k)
        dk_pool_shape_make_axes(&s, n, c, d, h, w, k);
    else
        dk_pool_shape_make(&s, n, c, d, h, w);
    CU_ASSERT_EQUAL(s.oh, k ? h / k[1] : h / 2);
    CU_ASSERT_EQUAL(s.ow, k ? w / k[2] : w / 2);
    CU_ASSERT_EQUAL(s.od, k ? d / k[0] : d == 1 ? 1 : d / 2);
    int64_t nin = n * c * d * h * w, nout = n * c * s.od * s.oh * s.ow, bad = 0;
    float *in = falloc(nin), *out = falloc(nout);
    int32_t *am = calloc((size_t)nout, sizeof *am);
    for (int64_t i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) % 13); /* many ties */
    dk_maxpool_forward(out, am, in, &s);
    for (int64_t p = 0; p < n * c; p++)
        for (int64_t z = 0; z < s.od; z++)
            for (int64_t y = 0; y < s.oh; y++)
                for (int64_t x = 0; x < s.ow; x++) {
                    float m = -INFINITY;
                    int64_t arg = -1;
                    for (int dz = 0; dz < s.kd; dz++)
                        for (int dy = 0; dy < s.kh; dy++)
                            for (int dx = 0; dx < s.kw; dx++) {
                                int64_t i = ((z * s.kd + dz) * h + s.kh * y + dy) * w +
                                            s.kw * x + dx;
                                if (in[p * d * h * w + i] > m) m = in[p * d * h * w + i], arg = i;
                            }
                    int64_t o = ((p * s.od + z) * s.oh + y) * s.ow + x;
                    bad += out[o] != m || am[o] != arg;
                }
    CU_ASSERT_EQUAL(bad, 0);
    free(in), free(out), free(am);
}

static void check_pool(int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) {
    check_pool_axes(n, c, d, h, w, NULL);
}

static void test_pool_forward(void) {
    check_pool(2, 3, 1, 6, 8); /* 2-D, even */
    check_pool(1, 2, 1, 5, 7); /* 2-D, odd sizes floor */
    check_pool(2, 2, 4, 6, 4); /* 3-D */
    check_pool(1, 3, 5, 5, 3); /* 3-D, odd everywhere */
    /* per-axis strides: thick slices pooled in-plane only, and each other mix */
    static const int ks[6][3] = {{1, 2, 2}, {2, 1, 2}, {2, 2, 1}, {1, 1, 2}, {2, 1, 1}, {1, 2, 1}};
    for (int i = 0; i < 6; i++) check_pool_axes(2, 2, 5, 6, 7, ks[i]);
    check_pool_axes(1, 2, 1, 6, 5, ks[0]); /* a 2-D network's 1x2x2 */
}

/* A hand example: ties pick the first maximum; backward routes to it and accumulates. */
static void test_pool_hand(void) {
    const float in[2 * 4] = {1, 5, 5, 2, /* row 0 */
                             5, 0, 3, 3};
    float out[2], din[8];
    int32_t am[2];
    dk_pool_shape s;
    dk_pool_shape_make(&s, 1, 1, 1, 2, 4);
    dk_maxpool_forward(out, am, in, &s);
    CU_ASSERT_EQUAL(out[0], 5);
    CU_ASSERT_EQUAL(am[0], 1); /* 5 at index 1 and 4: the first */
    CU_ASSERT_EQUAL(out[1], 5);
    CU_ASSERT_EQUAL(am[1], 2);
    for (int i = 0; i < 8; i++)
        din[i] = 1;
    const float dout[2] = {0.5f, -2};
    dk_maxpool_backward(din, dout, am, &s);
    const float want[8] = {1, 1.5f, -1, 1, 1, 1, 1, 1};
    CU_ASSERT(memcmp(din, want, sizeof want) == 0);
}

/* ------------------------------------------------------------------ upsample */

/* PyTorch's source index for align_corners = False, scale 1/f (f = 1 or 2): i0, i1 and
 * lambda1. */
static void src_index(int64_t j, int64_t k, int f, int64_t *i0, int64_t *i1, double *l1) {
    double src = (j + 0.5) / f - 0.5;
    if (src < 0) src = 0;
    *i0 = (int64_t)src;
    *i1 = *i0 + (*i0 < k - 1 ? 1 : 0);
    *l1 = src - (double)*i0;
}

/* k: the factor per axis (d, h, w), NULL = dk_upsample_shape_make's. */
static void check_upsample_axes(int64_t n, int64_t c, int64_t d, int64_t h, int64_t w,
                                const int *k) {
    dk_pool_shape s;
    if (k)
        dk_upsample_shape_make_axes(&s, n, c, d, h, w, k);
    else
        dk_upsample_shape_make(&s, n, c, d, h, w);
    CU_ASSERT_EQUAL(s.od, k ? k[0] * d : d == 1 ? 1 : 2 * d);
    int64_t nin = n * c * d * h * w, nout = n * c * s.od * s.oh * s.ow;
    float *in = falloc(nin), *out = falloc(nout);
    double *ref = calloc((size_t)nout, sizeof *ref);
    fill(in, nin, -3, 3, (uint64_t)(d * 100 + h * 10 + w));
    dk_upsample2_forward(out, in, &s);
    for (int64_t p = 0; p < n * c; p++)
        for (int64_t z = 0; z < s.od; z++)
            for (int64_t y = 0; y < s.oh; y++)
                for (int64_t x = 0; x < s.ow; x++) {
                    int64_t z0 = 0, z1 = 0, y0, y1, x0, x1;
                    double lz = 0, ly, lx;
                    if (s.od > 1) src_index(z, d, s.kd, &z0, &z1, &lz);
                    src_index(y, h, s.kh, &y0, &y1, &ly);
                    src_index(x, w, s.kw, &x0, &x1, &lx);
                    const float *b = in + p * d * h * w;
#define AT(zz, yy, xx) (double)b[((zz)*h + (yy)) * w + (xx)]
                    double v0 = (1 - ly) * ((1 - lx) * AT(z0, y0, x0) + lx * AT(z0, y0, x1)) +
                                ly * ((1 - lx) * AT(z0, y1, x0) + lx * AT(z0, y1, x1));
                    double v1 = (1 - ly) * ((1 - lx) * AT(z1, y0, x0) + lx * AT(z1, y0, x1)) +
                                ly * ((1 - lx) * AT(z1, y1, x0) + lx * AT(z1, y1, x1));
#undef AT
                    ref[((p * s.od + z) * s.oh + y) * s.ow + x] = (1 - lz) * v0 + lz * v1;
                }
    double e = max_diff(out, ref, nout);
    CU_ASSERT(e < 1e-5);
    if (e >= 1e-5)
        printf("\n      upsample %lldx%lldx%lld: max err %g", (long long)d, (long long)h,
               (long long)w, e);
    free(in), free(out), free(ref);
}

static void check_upsample(int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) {
    check_upsample_axes(n, c, d, h, w, NULL);
}

static void test_upsample_forward(void) {
    static const int ks[4][3] = {{1, 2, 2}, {2, 1, 2}, {2, 2, 1}, {1, 1, 2}};
    for (int i = 0; i < 4; i++) check_upsample_axes(2, 2, 3, 4, 5, ks[i]);
    check_upsample_axes(1, 1, 2, 3, 300, ks[2]); /* factor 1 along w, wider than one tile */
    check_upsample(2, 3, 1, 5, 7);
    check_upsample(1, 2, 1, 1, 1);   /* a single pixel copies */
    check_upsample(1, 1, 1, 3, 300); /* wider than one tile */
    check_upsample(2, 2, 3, 4, 5);
    check_upsample(1, 1, 2, 1, 3);
}

/* Hand values: [0, 4] -> [0, 1, 3, 4] (edges copy, interior 1/4 - 3/4). */
static void test_upsample_hand(void) {
    const float in[2] = {0, 4};
    float out[8];
    dk_pool_shape s;
    dk_upsample_shape_make(&s, 1, 1, 1, 1, 2);
    dk_upsample2_forward(out, in, &s);
    const float want[8] = {0, 1, 3, 4, 0, 1, 3, 4};
    CU_ASSERT(memcmp(out, want, sizeof want) == 0);
}

/* The backward is the exact adjoint: <up(x), y> = <x, up^T(y)>. */
static void test_upsample_adjoint(void) {
    const int64_t dims[6][3] = {{1, 5, 6}, {3, 4, 5}, {3, 4, 5}, {3, 4, 5}, {3, 4, 5}, {2, 3, 300}};
    static const int ks[6][3] = {{0}, {0}, {1, 2, 2}, {2, 1, 2}, {2, 1, 1}, {2, 2, 1}};
    for (int k = 0; k < 6; k++) {
        dk_pool_shape s;
        if (ks[k][0])
            dk_upsample_shape_make_axes(&s, 2, 2, dims[k][0], dims[k][1], dims[k][2], ks[k]);
        else
            dk_upsample_shape_make(&s, 2, 2, dims[k][0], dims[k][1], dims[k][2]);
        int64_t nin = 4 * s.id * s.ih * s.iw, nout = 4 * s.od * s.oh * s.ow;
        float *x = falloc(nin), *gx = falloc(nin), *y = falloc(nout), *ux = falloc(nout);
        fill(x, nin, -1, 1, 3), fill(y, nout, -1, 1, 4);
        dk_upsample2_forward(ux, x, &s);
        dk_upsample2_backward(gx, y, &s);
        double a = 0, b = 0, mag = 0;
        for (int64_t i = 0; i < nout; i++)
            a += (double)ux[i] * y[i], mag += fabs(ux[i] * y[i]);
        for (int64_t i = 0; i < nin; i++)
            b += (double)x[i] * gx[i];
        CU_ASSERT(fabs(a - b) < 1e-6 * mag);
        free(x), free(gx), free(y), free(ux);
    }
}

/* ------------------------------------------------------------------ normalisation */

/* Reference mean and biased var of the values of group g: BN groups are channels over
 * (n, s), IN groups are (n, c) over s. */
static void ref_stats(const float *x, const dk_norm_shape *s, int64_t g, int bn, double *mean,
                      double *var) {
    double sum = 0, sq = 0;
    int64_t m = bn ? s->n * s->s : s->s;
    for (int64_t k = 0; k < m; k++) {
        int64_t b = bn ? k / s->s : g / s->c, ch = bn ? g : g % s->c, j = k % s->s;
        sum += x[(b * s->c + ch) * s->s + j];
    }
    *mean = sum / (double)m;
    for (int64_t k = 0; k < m; k++) {
        int64_t b = bn ? k / s->s : g / s->c, ch = bn ? g : g % s->c, j = k % s->s;
        double v = x[(b * s->c + ch) * s->s + j] - *mean;
        sq += v * v;
    }
    *var = sq / (double)m;
}

/* Inputs uniform in [lo, lo + 4]: lo = 1000 checks for cancellation in the variance. */
static void check_norm(int bn, int64_t n, int64_t c, int64_t sp, double lo) {
    dk_norm_shape s = {.n = n, .c = c, .s = sp, .eps = 1e-5f, .momentum = 0.1f};
    int64_t nel = n * c * sp, ng = bn ? c : n * c;
    float *x = falloc(nel), *y = falloc(nel), *g = falloc(c), *b = falloc(c);
    float *mean = falloc(ng), *rstd = falloc(ng), *rm = falloc(c), *rv = falloc(c);
    double *ref = calloc((size_t)nel, sizeof *ref);
    fill(x, nel, lo, lo + 4, 11), fill(g, c, 0.5, 2, 12), fill(b, c, -1, 1, 13);
    for (int64_t i = 0; i < c; i++)
        rm[i] = 0.5f, rv[i] = 2.0f;
    if (bn)
        dk_batchnorm_forward_train(y, mean, rstd, rm, rv, x, g, b, &s);
    else
        dk_instancenorm_forward(y, mean, rstd, x, g, b, &s);
    double worst_stat = 0;
    for (int64_t grp = 0; grp < ng; grp++) {
        double mu, var;
        ref_stats(x, &s, grp, bn, &mu, &var);
        double r = 1 / sqrt(var + 1e-5);
        worst_stat = fmax(worst_stat, fabs(mean[grp] - mu) / fmax(1, mu) + fabs(rstd[grp] - r) / r);
        for (int64_t i = 0; i < nel; i++) {
            int64_t ch = (i / sp) % c, nb = i / (sp * c);
            if ((bn ? ch : nb * c + ch) == grp) ref[i] = (x[i] - mu) * r * g[ch] + b[ch];
        }
        if (!bn) continue;
        int64_t m = n * sp;
        double rm_ref = 0.9 * 0.5 + 0.1 * mu, rv_ref = 0.9 * 2.0 + 0.1 * var * m / (m - 1);
        CU_ASSERT(fabs(rm[grp] - rm_ref) < 1e-6 * fmax(1, rm_ref));
        CU_ASSERT(fabs(rv[grp] - rv_ref) < 1e-6 * fmax(1, rv_ref));
    }
    CU_ASSERT(worst_stat < 1e-5);
    /* x and the mean are floats: xhat carries their rounding, ~1e-7 |x| / std */
    CU_ASSERT(max_diff(y, ref, nel) < 1e-5 + 4e-7 * lo);
    free(x), free(y), free(g), free(b), free(mean), free(rstd), free(rm), free(rv), free(ref);
}

static void test_batchnorm_train(void) {
    check_norm(1, 3, 4, 37, 2);
    check_norm(1, 2, 2, 4 * 5 * 6, 2);
    check_norm(1, 2, 3, 700, 1000);
}

static void test_instancenorm(void) {
    check_norm(0, 3, 4, 37, 2);
    check_norm(0, 2, 2, 4 * 5 * 6, 2);
    check_norm(0, 2, 3, 700, 1000);
}

/* Hand values: one channel holding {1, 2, 3, 4} over n = 2, s = 2: mean 2.5, biased var
 * 1.25, unbiased 5/3; running stats from (0, 1) with momentum 0.1. */
static void test_batchnorm_hand(void) {
    dk_norm_shape s = {.n = 2, .c = 1, .s = 2, .eps = 1e-5f, .momentum = 0.1f};
    const float x[4] = {1, 2, 3, 4}, g = 2, b = 1;
    float y[4], mean, rstd, rm = 0, rv = 1;
    dk_batchnorm_forward_train(y, &mean, &rstd, &rm, &rv, x, &g, &b, &s);
    CU_ASSERT_DOUBLE_EQUAL(mean, 2.5, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(rstd, 1 / sqrt(1.25 + 1e-5), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(rm, 0.25, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(rv, 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(y[0], 1 + 2 * (-1.5) / sqrt(1.25 + 1e-5), 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(y[3], 1 + 2 * 1.5 / sqrt(1.25 + 1e-5), 1e-5);
}

static void test_batchnorm_eval(void) {
    dk_norm_shape s = {.n = 2, .c = 3, .s = 10, .eps = 1e-5f, .momentum = 0.1f};
    float x[60], y[60], g[3] = {1, 2, 0.5f}, b[3] = {0, -1, 3}, rm[3] = {1, -2, 0.5f},
                        rv[3] = {4, 0.25f, 1};
    fill(x, 60, -3, 3, 21);
    dk_batchnorm_forward_eval(y, x, g, b, rm, rv, &s);
    double ref[60];
    for (int i = 0; i < 60; i++) {
        int ch = (i / 10) % 3;
        ref[i] = (x[i] - rm[ch]) / sqrt(rv[ch] + 1e-5) * g[ch] + b[ch];
    }
    CU_ASSERT(max_diff(y, ref, 60) < 1e-5);
}

/* The fused batch norm + (leaky) ReLU kernels give the same bits as the separate kernels
 * (forward train and eval, running statistics, backward through the mask). */
static void check_bn_relu_fused(float slope) {
    dk_norm_shape s = {.n = 2, .c = 3, .s = 6000, .eps = 1e-5f, .momentum = 0.1f};
    const int64_t n = s.n * s.c * s.s;
    float *x = falloc(n), *dy = falloc(n), *y1 = falloc(n), *y2 = falloc(n), *t = falloc(n);
    float *d1 = falloc(n), *d2 = falloc(n);
    float g[3] = {1, -2, 0.5f}, b[3] = {0.1f, -1, 0.3f}, m1[3], m2[3], r1[3], r2[3];
    float rm1[3] = {0}, rm2[3] = {0}, rv1[3] = {1, 1, 1}, rv2[3] = {1, 1, 1};
    float dg1[3] = {0}, dg2[3] = {0}, db1[3] = {0}, db2[3] = {0};
    fill(x, n, -2, 3, 31);
    fill(dy, n, -1, 1, 32);
    dk_batchnorm_forward_train(y1, m1, r1, rm1, rv1, x, g, b, &s);
    dk_relu_forward(y1, y1, n, slope);
    dk_batchnorm_relu_forward_train(y2, m2, r2, rm2, rv2, x, g, b, slope, &s);
    CU_ASSERT(memcmp(y1, y2, (size_t)n * sizeof *y1) == 0);
    CU_ASSERT(memcmp(rm1, rm2, sizeof rm1) == 0 && memcmp(rv1, rv2, sizeof rv1) == 0);
    dk_relu_backward(t, dy, y1, n, slope); /* t was zero: t = dy * act'(y) */
    dk_batchnorm_backward(d1, dg1, db1, t, x, m1, r1, g, &s);
    dk_batchnorm_relu_backward(d2, dg2, db2, dy, y2, x, m2, r2, g, slope, &s);
    CU_ASSERT(memcmp(d1, d2, (size_t)n * sizeof *d1) == 0);
    CU_ASSERT(memcmp(dg1, dg2, sizeof dg1) == 0 && memcmp(db1, db2, sizeof db1) == 0);
    dk_batchnorm_forward_eval(y1, x, g, b, rm1, rv1, &s);
    dk_relu_forward(y1, y1, n, slope);
    dk_batchnorm_relu_forward_eval(y2, x, g, b, rm2, rv2, slope, &s);
    CU_ASSERT(memcmp(y1, y2, (size_t)n * sizeof *y1) == 0);
    free(x), free(dy), free(y1), free(y2), free(t), free(d1), free(d2);
}

static void test_batchnorm_relu_fused(void) {
    check_bn_relu_fused(0.0f);
    check_bn_relu_fused(0.01f);
}

/* ------------------------------------------------------------------ activations */

static void test_relu(void) {
    float x[5] = {-2, -0.5f, 0, 1.5f, 3}, y[5];
    dk_relu_forward(y, x, 5, 0);
    const float want0[5] = {0, 0, 0, 1.5f, 3};
    CU_ASSERT(memcmp(y, want0, sizeof y) == 0);
    dk_relu_forward(x, x, 5, 0.1f); /* in place */
    const double want1[5] = {-0.2, -0.05, 0, 1.5, 3};
    CU_ASSERT(max_diff(x, want1, 5) < 1e-7);
    float din[5] = {1, 1, 1, 1, 1}, dout[5] = {1, 2, 3, 4, 5};
    dk_relu_backward(din, dout, x, 5, 0.1f); /* y = 0 counts as the negative side */
    const double want2[5] = {1.1, 1.2, 1.3, 5, 6};
    CU_ASSERT(max_diff(din, want2, 5) < 1e-6);
}

static void test_concat(void) {
    const float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    float out[6], da[4] = {0}, db[2] = {0};
    dk_concat_forward(out, a, b, 2, 2, 1, 1); /* a (2, 2, 1), b (2, 1, 1) */
    const float want[6] = {1, 2, 5, 3, 4, 6};
    CU_ASSERT(memcmp(out, want, sizeof want) == 0);
    dk_concat_backward(da, db, want, 2, 2, 1, 1);
    dk_concat_backward(da, NULL, want, 2, 2, 1, 1);
    const float wa[4] = {2, 4, 6, 8}, wb[2] = {5, 6};
    CU_ASSERT(memcmp(da, wa, sizeof wa) == 0);
    CU_ASSERT(memcmp(db, wb, sizeof wb) == 0);
}

static void test_softmax(void) {
    const int64_t n = 2, c = 5, s = 300; /* s spans two tiles */
    const float T = 2.5f;
    float *x = falloc(n * c * s), *p = falloc(n * c * s), *lp = falloc(n * c * s);
    fill(x, n * c * s, -20, 20, 31);
    x[7] = 1000; /* stable with a huge logit */
    dk_softmax_forward(p, x, n, c, s, T);
    dk_log_softmax_forward(lp, x, n, c, s, T);
    double worst_sum = 0, worst_ref = 0, worst_log = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < s; j++) {
            double sum = 0, z = 0, m = -INFINITY;
            for (int64_t k = 0; k < c; k++)
                m = fmax(m, x[(i * c + k) * s + j] / (double)T);
            for (int64_t k = 0; k < c; k++)
                z += exp(x[(i * c + k) * s + j] / (double)T - m);
            for (int64_t k = 0; k < c; k++) {
                int64_t o = (i * c + k) * s + j;
                double ref = exp(x[o] / (double)T - m) / z;
                sum += p[o];
                worst_ref = fmax(worst_ref, fabs(p[o] - ref));
                worst_log = fmax(worst_log, fabs(lp[o] - (x[o] / (double)T - m - log(z))));
            }
            worst_sum = fmax(worst_sum, fabs(sum - 1));
        }
    CU_ASSERT(worst_sum < 1e-6);
    CU_ASSERT(worst_ref < 1e-6);
    CU_ASSERT(worst_log < 1e-4); /* log-softmax of logits up to 400 / T: float rounding */
    free(x), free(p), free(lp);
}

static void test_dropout(void) {
    const int64_t n = 200000;
    const float p = 0.3f;
    float *x = falloc(n), *y = falloc(n), *dx = falloc(n), *dy = falloc(n);
    uint8_t *mask = malloc((size_t)n);
    fill(x, n, 0.5, 1.5, 41), fill(dy, n, 0.5, 1.5, 42);
    dk_rng r;
    dk_rng_seed(&r, 5);
    dk_dropout_forward(y, mask, x, n, p, &r);
    int64_t kept = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        kept += mask[i];
        bad += mask[i] ? fabsf(y[i] - x[i] / 0.7f) > 1e-6f : y[i] != 0;
    }
    double rate = (double)kept / (double)n; /* binomial sd ~ 0.001 */
    CU_ASSERT(fabs(rate - 0.7) < 0.005);
    CU_ASSERT_EQUAL(bad, 0);
    dk_dropout_backward(dx, dy, mask, n, p);
    for (int64_t i = 0; i < n; i++)
        bad += fabsf(dx[i] - (mask[i] ? dy[i] / 0.7f : 0)) > 1e-6f;
    CU_ASSERT_EQUAL(bad, 0);
    dk_dropout_forward(y, mask, x, n, 0, NULL); /* p = 0 copies */
    CU_ASSERT(memcmp(x, y, (size_t)n * sizeof *x) == 0);
    free(x), free(y), free(dx), free(dy), free(mask);
}

/* ------------------------------------------------------------------ cross-entropy */

/* Three voxels, three classes: logits (1, 2, 3) label 2; (0, 0, 0) label 0; (5, -5, 0)
 * ignored. L = (log(e + e^2 + e^3) - 3 + log 3) / 2. */
static void test_ce_hand(void) {
    const float x[9] = {1, 0, 5, /* class 0 over the three voxels */
                        2, 0, -5, 3, 0, 0};
    const uint8_t lab[3] = {2, 0, 255};
    float g[9] = {0};
    double want = (log(exp(1) + exp(2) + exp(3)) - 3 + log(3)) / 2;
    double L = dk_loss_ce(g, x, lab, 1, 3, 3, 4.0f);
    CU_ASSERT_DOUBLE_EQUAL(L, want, 1e-7);
    double z = exp(1) + exp(2) + exp(3);
    /* gradient scale * (softmax - onehot) / V with V = 2 */
    const double gref[9] = {2 * exp(1) / z,       2 * (1.0 / 3 - 1), 0, 2 * exp(2) / z, 2.0 / 3, 0,
                            2 * (exp(3) / z - 1), 2.0 / 3,           0};
    CU_ASSERT(max_diff(g, gref, 9) < 1e-6);
    const uint8_t none[3] = {255, 255, 255};
    float g2[9] = {0};
    CU_ASSERT_EQUAL(dk_loss_ce(g2, x, none, 1, 3, 3, 1.0f), 0.0);
    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(g2[i], 0.0f);
    CU_ASSERT_DOUBLE_EQUAL(dk_loss_ce(NULL, x, lab, 1, 3, 3, 1.0f), want, 1e-7);
}

/* ------------------------------------------------------------------ PyTorch oracle */

/* Our numbers for the pieces tests/tools/torch_layers.py computes, in its order. */
static int64_t our_pieces(float *o, const float *x, const uint8_t *lab) {
    const int64_t n = 2, c = 3, d = 4, h = 6, w = 5, s = d * h * w;
    float *x2 = falloc(n * c * h * w), *st = falloc(16), *buf = falloc(n * c * s);
    for (int64_t p = 0; p < n * c; p++)
        memcpy(x2 + p * h * w, x + p * s, (size_t)(h * w) * 4);
    int64_t k = 0;
    dk_pool_shape u3, u2, p3, p2;
    dk_upsample_shape_make(&u3, n, c, d, h, w);
    dk_upsample_shape_make(&u2, n, c, 1, h, w);
    dk_upsample2_forward(o + k, x, &u3), k += 8 * n * c * s;
    dk_upsample2_forward(o + k, x2, &u2), k += 4 * n * c * h * w;
    dk_norm_shape ns = {.n = n, .c = c, .s = s, .eps = 1e-5f, .momentum = 0.1f};
    const float g[3] = {1.0f, 1.1f, 1.2f}, b[3] = {0, 0.05f, 0.1f};
    float *rm = o + k + n * c * s, *rv = rm + c;
    rm[0] = rm[1] = rm[2] = 0, rv[0] = rv[1] = rv[2] = 1;
    dk_batchnorm_forward_train(o + k, st, st + 4, rm, rv, x, g, b, &ns), k += n * c * s + 2 * c;
    dk_pool_shape_make(&p3, n, c, d, h, w);
    dk_pool_shape_make(&p2, n, c, 1, h, w);
    const dk_pool_shape *ps[2] = {&p3, &p2};
    const float *pin[2] = {x, x2};
    for (int i = 0; i < 2; i++) {
        int64_t m = n * c * ps[i]->od * ps[i]->oh * ps[i]->ow;
        int32_t *am = calloc((size_t)m, sizeof *am);
        dk_maxpool_forward(o + k, am, pin[i], ps[i]);
        for (int64_t j = 0; j < m; j++)
            o[k + m + j] = (float)am[j];
        k += 2 * m;
        free(am);
    }
    dk_log_softmax_forward(o + k, x, n, c, s, 1.5f), k += n * c * s;
    o[k++] = (float)dk_loss_ce(NULL, x, lab, n, c, s, 1.0f);
    free(x2), free(st), free(buf);
    return k;
}

static void test_torch_oracle(void) {
    const int64_t nx = 2 * 3 * 4 * 6 * 5, nl = 2 * 4 * 6 * 5, nres = 8 * nx + 2 * nx + 4096;
    float *x = falloc(nx), *ours = falloc(nres), *theirs = falloc(nres);
    uint8_t lab[2 * 4 * 6 * 5];
    fill(x, nx, -3, 3, 61);
    x[10] = x[11]; /* a tie inside a pooling window */
    for (int64_t i = 0; i < nl; i++)
        lab[i] = (uint8_t)(i % 7 == 0 ? 255 : i % 3);
    const char *dir = dk_test_tmpdir();
    const char *inp = dk_test_path(dir, "torch_layers_in.bin");
    const char *outp = dk_test_path(dir, "torch_layers_out.bin");
    FILE *f = fopen(inp, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite(x, 4, (size_t)nx, f), fwrite(lab, 1, (size_t)nl, f), fclose(f);
    char log[2048];
    int rc = dk_test_sh(log, sizeof log, "/usr/bin/python3 %s/tests/tools/torch_layers.py %s %s",
                        dk_test_source_dir(), inp, outp);
    if (rc == 2 || rc == 127) {
        dk_test_skip("torch oracle", "PyTorch is not importable by /usr/bin/python3");
        free(x), free(ours), free(theirs);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    int64_t k = our_pieces(ours, x, lab);
    f = fopen(outp, "rb");
    CU_ASSERT_FATAL(f != NULL);
    int64_t got = (int64_t)fread(theirs, 4, (size_t)nres, f);
    fclose(f);
    CU_ASSERT_EQUAL(got, k);
    double worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < k && i < got; i++) {
        double e = fabs(ours[i] - theirs[i]) / fmax(1, fabs(theirs[i]));
        if (e > worst) worst = e, at = i;
    }
    printf("\n      %lld numbers vs PyTorch: worst rel err %.2e at %lld", (long long)k, worst,
           (long long)at);
    CU_ASSERT(worst < 2e-6);
    free(x), free(ours), free(theirs);
}

/* ------------------------------------------------------------------ determinism */

/* Outputs and gradients of one pass over a chain of layers, packed into `res`. */
static void run_chain(float *res, const float *x, const float *dy, const uint8_t *lab) {
    const int64_t n = 2, c = 8, d = 8, h = 16, w = 16, nel = n * c * d * h * w;
    dk_norm_shape ns = {.n = n, .c = c, .s = d * h * w, .eps = 1e-5f, .momentum = 0.1f};
    dk_pool_shape ps, us;
    dk_pool_shape_make(&ps, n, c, d, h, w);
    dk_upsample_shape_make(&us, n, c, d / 2, h / 2, w / 2);
    float g[8] = {1, 2, 3, 4, 1, 2, 3, 4}, b[8] = {0}, st[8 * 16];
    int32_t *am = calloc((size_t)nel / 8, sizeof *am);
    memset(res, 0, (size_t)(8 * nel + 64) * sizeof *res);
    float *y = res, *dx = res + nel, *p = res + 2 * nel, *u = res + 3 * nel;
    float *du = res + 4 * nel, *in_ = res + 5 * nel, *sm = res + 6 * nel, *dce = res + 7 * nel;
    float *gs = res + 8 * nel;
    dk_batchnorm_forward_train(y, st, st + 8, st + 16, st + 24, x, g, b, &ns);
    dk_batchnorm_backward(dx, gs, gs + 8, dy, x, st, st + 8, g, &ns);
    dk_instancenorm_forward(in_, st + 32, st + 48, x, g, b, &ns);
    dk_instancenorm_backward(dx, gs + 16, gs + 24, dy, x, st + 32, st + 48, g, &ns);
    dk_maxpool_forward(p, am, x, &ps);
    dk_upsample2_forward(u, p, &us);
    dk_upsample2_backward(du, dy, &us);
    dk_softmax_forward(sm, x, n, c, d * h * w, 1.5f);
    gs[32] = (float)dk_loss_ce(dce, x, lab, n, c, d * h * w, 1.0f);
    free(am);
}

static void test_determinism(void) {
    const int64_t nel = 2 * 8 * 8 * 16 * 16, nres = 8 * nel + 64;
    float *x = falloc(nel), *dy = falloc(nel), *r1 = falloc(nres), *r2 = falloc(nres);
    uint8_t *lab = malloc((size_t)nel / 8);
    fill(x, nel, -2, 5, 51), fill(dy, nel, -1, 1, 52);
    for (int64_t i = 0; i < nel / 8; i++)
        lab[i] = (uint8_t)(i % 9 == 8 ? 255 : i % 8);
    run_chain(r1, x, dy, lab);
    run_chain(r2, x, dy, lab);
    CU_ASSERT(memcmp(r1, r2, (size_t)nres * sizeof *r1) == 0);
    free(x), free(dy), free(r1), free(r2), free(lab);
}

int layers_add_suite(const char *name, const layer_test *t, size_t n) {
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    if (!s) return -1;
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(s, t[i].name, t[i].fn)) return -1;
    return 0;
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    const layer_test t[] = {
        {"maxpool vs naive (2-D, 3-D, odd)", test_pool_forward},
        {"maxpool ties and backward by hand", test_pool_hand},
        {"upsample vs PyTorch formula", test_upsample_forward},
        {"upsample by hand", test_upsample_hand},
        {"upsample backward is the adjoint", test_upsample_adjoint},
        {"batchnorm train and running stats", test_batchnorm_train},
        {"batchnorm by hand", test_batchnorm_hand},
        {"batchnorm eval", test_batchnorm_eval},
        {"instancenorm", test_instancenorm},
        {"batchnorm + relu fused = separate", test_batchnorm_relu_fused},
        {"relu and leaky relu", test_relu},
        {"concat", test_concat},
        {"softmax and log-softmax", test_softmax},
        {"dropout keep rate and scaling", test_dropout},
        {"cross-entropy by hand", test_ce_hand},
        {"same inputs, same bits", test_determinism},
        {"PyTorch oracle (upsample, BN, pool, log-softmax, CE)", test_torch_oracle},
    };
    if (layers_add_suite("layers", t, sizeof t / sizeof t[0]) != 0) return 1;
    if (layers_grad_register() != 0) return 1;
    return dk_test_run();
}
