/*
 * CUnit suite for the convolution kernels (lib/nn/conv.c, convt.c): forward and backward
 * against naive loops in double (2-D and 3-D, k 1/3, stride 1/2, odd and even sizes, shapes
 * large enough to be cut into several column chunks; the direct path's block edges), the
 * central finite-difference check, the same bits at 1-3 threads, and the accumulate contract
 * (backward twice doubles; din NULL skips only din).
 */
#include "dakd/nn.h"
#include "gradcheck.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static float *fbuf(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static double *dbuf(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* Largest |a - ref| relative to 1 + |ref|. */
static double max_err(const float *a, const double *ref, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - ref[i]) / (1.0 + fabs(ref[i]));
        if (e > worst) worst = e;
    }
    return worst;
}

/* The float32 error to allow on a sum of `terms` products of values in [-1, 1]: rounding
 * grows about like sqrt(terms), relative to the sum's size. A wrong index gives O(1). */
static int ok(double err, int64_t terms) { return err < 1e-6 + 5e-7 * sqrt((double)terms); }

typedef struct {
    int64_t n, cin, cout, d, h, w;
    int k, stride, bias;
} conv_case;

static int64_t in_numel(const dk_conv_shape *s) { return s->n * s->cin * s->id * s->ih * s->iw; }
static int64_t out_numel(const dk_conv_shape *s) {
    return s->n * s->cout * s->od * s->oh * s->ow;
}
static int64_t w_numel(const dk_conv_shape *s) {
    return s->cout * s->cin * s->kd * s->kh * s->kw;
}

/* Visit every (output, input, weight) index triple of the convolution: the oracle loops. */
typedef void (*conv_visit)(void *ctx, int64_t o, int64_t i, int64_t wi);

static void conv_naive(const dk_conv_shape *s, conv_visit f, void *ctx) {
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t co = 0; co < s->cout; co++)
            for (int64_t oz = 0; oz < s->od; oz++)
                for (int64_t oy = 0; oy < s->oh; oy++)
                    for (int64_t ox = 0; ox < s->ow; ox++) {
                        int64_t o = (((n * s->cout + co) * s->od + oz) * s->oh + oy) * s->ow + ox;
                        for (int64_t ci = 0; ci < s->cin; ci++)
                            for (int kz = 0; kz < s->kd; kz++)
                                for (int ky = 0; ky < s->kh; ky++)
                                    for (int kx = 0; kx < s->kw; kx++) {
                                        int64_t iz = oz * s->sd - s->pd + kz;
                                        int64_t iy = oy * s->sh - s->ph + ky;
                                        int64_t ix = ox * s->sw - s->pw + kx;
                                        if (iz < 0 || iz >= s->id || iy < 0 || iy >= s->ih ||
                                            ix < 0 || ix >= s->iw)
                                            continue;
                                        int64_t i =
                                            (((n * s->cin + ci) * s->id + iz) * s->ih + iy) *
                                                s->iw +
                                            ix;
                                        int64_t wi =
                                            (((co * s->cin + ci) * s->kd + kz) * s->kh + ky) *
                                                s->kw +
                                            kx;
                                        f(ctx, o, i, wi);
                                    }
                    }
}

/* The oracle's buffers: float inputs, double results. */
typedef struct {
    const float *in, *w, *dout;
    double *out, *din, *dw;
} oracle;

static void visit_fwd(void *ctx, int64_t o, int64_t i, int64_t wi) {
    oracle *q = ctx;
    q->out[o] += (double)q->w[wi] * q->in[i];
}

static void visit_bwd(void *ctx, int64_t o, int64_t i, int64_t wi) {
    oracle *q = ctx;
    q->din[i] += (double)q->w[wi] * q->dout[o];
    q->dw[wi] += (double)q->in[i] * q->dout[o];
}

/* ------------------------------------------------------------------ conv vs naive */

static const conv_case k_cases[] = {
    /* n cin cout  d   h   w  k s bias */
    {2, 3, 5, 1, 7, 9, 3, 1, 1},     /* 2-D odd sizes */
    {3, 2, 4, 1, 8, 6, 3, 2, 0},     /* 2-D even, stride 2 */
    {2, 3, 4, 1, 9, 7, 3, 2, 1},     /* 2-D odd, stride 2 */
    {2, 5, 3, 1, 6, 5, 1, 1, 1},     /* 2-D pointwise */
    {2, 4, 3, 1, 7, 8, 1, 2, 0},     /* 2-D k1 stride 2 */
    {2, 2, 3, 5, 6, 7, 3, 1, 1},     /* 3-D */
    {2, 3, 2, 6, 5, 4, 3, 2, 0},     /* 3-D stride 2 */
    {2, 3, 4, 3, 4, 5, 1, 1, 1},     /* 3-D pointwise */
    {1, 1, 3, 1, 1, 1, 3, 1, 1},     /* 1x1 image, all taps but one in the padding */
    {1, 64, 4, 1, 100, 40, 3, 1, 0}, /* 2-D, several column chunks */
    {1, 4, 64, 1, 100, 40, 3, 1, 1}, /* chunks sized by cout (stride-1 din columns) */
    {2, 128, 3, 1, 200, 40, 3, 2, 1}, /* 2-D stride 2, two chunks */
    {1, 32, 4, 24, 24, 24, 3, 1, 1}, /* 3-D, chunks that straddle depth planes */
};

/* Forward and backward (din, dw, db) of one shape against the double oracle. */
static void check_conv_shape(const dk_conv_shape *sp, int bias) {
    const dk_conv_shape s = *sp;
    int64_t ni = in_numel(&s), no = out_numel(&s), nw = w_numel(&s);
    float *in = fbuf(ni), *w = fbuf(nw), *b = fbuf(s.cout), *out = fbuf(no), *dout = fbuf(no);
    float *din = fbuf(ni), *dw = fbuf(nw), *db = fbuf(s.cout);
    float *work = fbuf((int64_t)dk_conv_work_floats(&s));
    double *rout = dbuf(no), *rdin = dbuf(ni), *rdw = dbuf(nw), *rdb = dbuf(s.cout);
    dk_gc_fill(in, ni, -1, 1, 1);
    dk_gc_fill(w, nw, -1, 1, 2);
    dk_gc_fill(b, s.cout, -1, 1, 3);
    dk_gc_fill(dout, no, -1, 1, 4);
    oracle q = {in, w, dout, rout, rdin, rdw};
    int64_t plane = s.od * s.oh * s.ow;
    for (int64_t o = 0; o < no; o++) {
        int64_t co = (o / plane) % s.cout;
        if (bias) rout[o] = b[co];
        rdb[co] += dout[o];
    }
    conv_naive(&s, visit_fwd, &q);
    conv_naive(&s, visit_bwd, &q);
    dk_conv_forward(out, in, w, bias ? b : NULL, &s, work);
    dk_conv_backward(din, dw, bias ? db : NULL, dout, in, w, &s, work);
    double e_out = max_err(out, rout, no), e_din = max_err(din, rdin, ni);
    double e_dw = max_err(dw, rdw, nw), e_db = bias ? max_err(db, rdb, s.cout) : 0;
    printf("\n      n%lld c%lld->%lld %lldx%lldx%lld k%dx%dx%d s%d: out %.1e din %.1e dw %.1e "
           "db %.1e", (long long)s.n, (long long)s.cin, (long long)s.cout, (long long)s.id,
           (long long)s.ih, (long long)s.iw, s.kd, s.kh, s.kw, s.sh, e_out, e_din, e_dw, e_db);
    int64_t kv = s.kd * s.kh * s.kw, pos = s.n * s.od * s.oh * s.ow;
    CU_ASSERT(ok(e_out, s.cin * kv));
    CU_ASSERT(ok(e_din, s.cout * kv));
    CU_ASSERT(ok(e_dw, pos));
    CU_ASSERT(ok(e_db, pos));
    free(in), free(w), free(b), free(out), free(dout), free(din), free(dw), free(db);
    free(work), free(rout), free(rdin), free(rdw), free(rdb);
}

/* 1, 2 and 3 threads: jobs split across samples and row chunks, and weight gradients
 * combined from one or two per-thread partials. */
static const int k_threads[] = {1, 2, 3};

static void check_conv_case(const conv_case *c) {
    dk_conv_shape s;
    dk_conv_shape_make(&s, c->n, c->cin, c->cout, c->d, c->h, c->w, c->k, c->stride);
    check_conv_shape(&s, c->bias);
}

/* Kernels per axis (stride 1, padding k/2 per axis): the 1x3x3 of thick slices and the other
 * mixes, one large enough for several column chunks, one of depth 1 in 3-D. */
static const int k_axes[6][3] = {{1, 3, 3}, {3, 1, 3}, {3, 3, 1}, {1, 1, 3}, {1, 3, 3}, {3, 3, 3}};
static const int64_t k_axes_size[6][3] = {{5, 6, 7}, {4, 5, 6}, {4, 5, 6}, {3, 4, 5},
                                          {12, 40, 40}, {1, 6, 5}};

static void test_conv_vs_naive(void) {
    for (int t = 0; t < 3; t++) {
        dk_set_threads(k_threads[t]);
        printf("\n    %d thread(s):", k_threads[t]);
        for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++)
            check_conv_case(&k_cases[i]);
        for (int i = 0; i < 6; i++) {
            dk_conv_shape s;
            const int64_t *z = k_axes_size[i];
            dk_conv_shape_make_axes(&s, 2, i == 4 ? 16 : 3, 4, z[0], z[1], z[2], k_axes[i]);
            check_conv_shape(&s, i % 2);
        }
    }
    dk_set_threads(0);
}

/* The direct path (conv_direct.c: stride 1, rows >= 16 wide, <= 32 channels, AVX2 + FMA):
 * partial 16-wide blocks (w 17, 31, 33), output channels split into blocks of 1..6 (cout
 * 1..13, 32), input channels beyond a group of 8 (cin 9, 17, 32), kernels per axis with kw 1 and 3, a plane of
 * depth 1 with kd 3, and a 2-D sample whose rows are cut into chunks for the threads. With
 * DAKD_CONV=gemm (the suite's second run) the same shapes take vol2col + sgemm. */
typedef struct {
    int64_t n, cin, cout, d, h, w;
    int k[3];
} direct_case;

static const direct_case k_direct[] = {
    {2, 3, 5, 1, 7, 17, {1, 3, 3}},   {1, 9, 13, 1, 20, 33, {1, 3, 3}},
    {1, 17, 7, 4, 5, 31, {3, 3, 3}},  {2, 2, 1, 3, 3, 16, {3, 3, 3}},
    {1, 4, 11, 3, 6, 24, {3, 3, 1}},  {1, 5, 6, 4, 4, 20, {3, 1, 3}},
    {1, 6, 4, 1, 9, 18, {1, 1, 3}},   {1, 3, 8, 1, 5, 19, {3, 3, 3}},
    {1, 8, 12, 2, 64, 48, {1, 3, 3}}, {1, 1, 10, 1, 40, 64, {1, 3, 3}},
    {1, 32, 32, 2, 5, 16, {3, 3, 3}}, /* the widest layer the direct path takes */
};

static void test_conv_direct(void) {
    printf("\n    convolution: %s", dk_conv_path());
    for (int t = 0; t < 3; t++) {
        dk_set_threads(k_threads[t]);
        printf("\n    %d thread(s):", k_threads[t]);
        for (size_t i = 0; i < sizeof k_direct / sizeof k_direct[0]; i++) {
            const direct_case *c = &k_direct[i];
            dk_conv_shape s;
            dk_conv_shape_make_axes(&s, c->n, c->cin, c->cout, c->d, c->h, c->w, c->k);
            check_conv_shape(&s, (int)(i % 2));
        }
    }
    dk_set_threads(0);
}

/* On the direct path, outputs, input and weight gradients of the shapes above are the same
 * bits at 1, 2 and 3 threads (every output sums its taps in one order, whatever the job split);
 * vol2col + sgemm promises that only for one thread count (its chunks follow the threads). */
static void test_conv_threads_bits(void) {
    if (!strstr(dk_conv_path(), "direct")) {
        printf("\n    not on the direct path: nothing to compare");
        return;
    }
    for (size_t i = 0; i < sizeof k_direct / sizeof k_direct[0]; i++) {
        const direct_case *c = &k_direct[i];
        dk_conv_shape s;
        dk_conv_shape_make_axes(&s, c->n, c->cin, c->cout, c->d, c->h, c->w, c->k);
        int64_t ni = in_numel(&s), no = out_numel(&s), nw = w_numel(&s);
        float *in = fbuf(ni), *w = fbuf(nw), *dout = fbuf(no), *ref_o = fbuf(no),
              *ref_d = fbuf(ni), *ref_w = fbuf(nw);
        dk_gc_fill(in, ni, -1, 1, 5);
        dk_gc_fill(w, nw, -1, 1, 6);
        dk_gc_fill(dout, no, -1, 1, 7);
        for (int t = 0; t < 3; t++) {
            dk_set_threads(k_threads[t]);
            float *out = fbuf(no), *din = fbuf(ni), *dw = fbuf(nw);
            float *work = fbuf((int64_t)dk_conv_work_floats(&s));
            dk_conv_forward(out, in, w, NULL, &s, work);
            dk_conv_backward(din, dw, NULL, dout, in, w, &s, work);
            if (t == 0) {
                memcpy(ref_o, out, (size_t)no * sizeof *out);
                memcpy(ref_d, din, (size_t)ni * sizeof *din);
                memcpy(ref_w, dw, (size_t)nw * sizeof *dw);
            } else {
                CU_ASSERT_EQUAL(memcmp(out, ref_o, (size_t)no * sizeof *out), 0);
                CU_ASSERT_EQUAL(memcmp(din, ref_d, (size_t)ni * sizeof *din), 0);
                CU_ASSERT_EQUAL(memcmp(dw, ref_w, (size_t)nw * sizeof *dw), 0);
            }
            free(out), free(din), free(dw), free(work);
        }
        free(in), free(w), free(dout), free(ref_o), free(ref_d), free(ref_w);
    }
    dk_set_threads(0);
}

static void test_conv_shapes(void) {
    dk_conv_shape s;
    dk_conv_shape_make(&s, 1, 1, 1, 1, 9, 8, 3, 2);
    CU_ASSERT(s.kd == 1 && s.sd == 1 && s.pd == 0 && s.od == 1);
    CU_ASSERT(s.oh == 5 && s.ow == 4); /* (9 + 2 - 3)/2 + 1, (8 + 2 - 3)/2 + 1 as PyTorch */
    dk_conv_shape_make(&s, 1, 1, 1, 7, 9, 8, 3, 2);
    CU_ASSERT(s.kd == 3 && s.sd == 2 && s.pd == 1 && s.od == 4);
    dk_conv_shape_make(&s, 1, 4, 4, 6, 6, 6, 1, 1);
    /* pointwise: GEMM on the input itself; scratch only for the dw partials of threads 1.. */
    dk_set_threads(1);
    CU_ASSERT(dk_conv_work_floats(&s) == 0);
    dk_set_threads(3);
    CU_ASSERT(dk_conv_work_floats(&s) == 2 * 16);
    dk_set_threads(0);
    dk_convt_shape s2;
    dk_convt_shape_make(&s2, 1, 2, 3, 1, 5, 7);
    CU_ASSERT(s2.kd == 1 && s2.od == 1 && s2.oh == 10 && s2.ow == 14);
    dk_convt_shape_make(&s2, 1, 2, 3, 4, 5, 7);
    CU_ASSERT(s2.kd == 2 && s2.od == 8);
}

/* ------------------------------------------------------------------ convT vs naive */

/* out[n, co, z*kd + a, y*kh + b, x*kw + c] = bias[co] + sum_ci in[n, ci, z, y, x]
 * w[ci, co, a, b, c], and the matching backward, in double. */
static void convt_naive(const dk_convt_shape *s, oracle *q, const float *bias, double *rdb) {
    int64_t pin = s->id * s->ih * s->iw, pout = s->od * s->oh * s->ow;
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t co = 0; co < s->cout; co++)
            for (int64_t o = 0; o < pout; o++) {
                int64_t oz = o / (s->oh * s->ow), oy = o / s->ow % s->oh, ox = o % s->ow;
                int64_t oi = (n * s->cout + co) * pout + o;
                int64_t a = oz % s->kd, kv = s->kd * s->kh * s->kw;
                int64_t p = ((oz / s->kd) * s->ih + oy / s->kh) * s->iw + ox / s->kw;
                int64_t tap = (a * s->kh + oy % s->kh) * s->kw + ox % s->kw;
                q->out[oi] = bias ? bias[co] : 0.0;
                rdb[co] += q->dout[oi];
                for (int64_t ci = 0; ci < s->cin; ci++) {
                    int64_t ii = (n * s->cin + ci) * pin + p;
                    int64_t wi = (ci * s->cout + co) * kv + tap;
                    q->out[oi] += (double)q->w[wi] * q->in[ii];
                    q->din[ii] += (double)q->w[wi] * q->dout[oi];
                    q->dw[wi] += (double)q->in[ii] * q->dout[oi];
                }
            }
}

/* k: kernel = stride per axis (d, h, w), NULL = dk_convt_shape_make's. */
static void check_convt_axes(int64_t n, int64_t cin, int64_t cout, int64_t d, int64_t h,
                             int64_t w_, int bias, const int *k) {
    dk_convt_shape s;
    if (k)
        dk_convt_shape_make_axes(&s, n, cin, cout, d, h, w_, k);
    else
        dk_convt_shape_make(&s, n, cin, cout, d, h, w_);
    int64_t ni = n * cin * d * h * w_, no = n * cout * s.od * s.oh * s.ow;
    int64_t kv = s.kd * s.kh * s.kw, nw = cin * cout * kv;
    float *in = fbuf(ni), *w = fbuf(nw), *b = fbuf(cout), *out = fbuf(no), *dout = fbuf(no);
    float *din = fbuf(ni), *dw = fbuf(nw), *db = fbuf(cout);
    float *work = fbuf((int64_t)dk_convt_work_floats(&s));
    double *rout = dbuf(no), *rdin = dbuf(ni), *rdw = dbuf(nw), *rdb = dbuf(cout);
    dk_gc_fill(in, ni, -1, 1, 5);
    dk_gc_fill(w, nw, -1, 1, 6);
    dk_gc_fill(b, cout, -1, 1, 7);
    dk_gc_fill(dout, no, -1, 1, 8);
    oracle q = {in, w, dout, rout, rdin, rdw};
    convt_naive(&s, &q, bias ? b : NULL, rdb);
    dk_convt_forward(out, in, w, bias ? b : NULL, &s, work);
    dk_convt_backward(din, dw, bias ? db : NULL, dout, in, w, &s, work);
    double e_out = max_err(out, rout, no), e_din = max_err(din, rdin, ni);
    double e_dw = max_err(dw, rdw, nw), e_db = bias ? max_err(db, rdb, cout) : 0;
    printf("\n      convT n%lld c%lld->%lld %lldx%lldx%lld k%dx%dx%d: out %.1e din %.1e dw %.1e "
           "db %.1e", (long long)n, (long long)cin, (long long)cout, (long long)d, (long long)h,
           (long long)w_, s.kd, s.kh, s.kw, e_out, e_din, e_dw, e_db);
    CU_ASSERT(ok(e_out, cin) && ok(e_din, cout * kv) && ok(e_dw, ni / cin));
    CU_ASSERT(ok(e_db, no / cout));
    free(in), free(w), free(b), free(out), free(dout), free(din), free(dw), free(db);
    free(work), free(rout), free(rdin), free(rdw), free(rdb);
}

static void check_convt_case(int64_t n, int64_t cin, int64_t cout, int64_t d, int64_t h,
                             int64_t w_, int bias) {
    check_convt_axes(n, cin, cout, d, h, w_, bias, NULL);
}

static void test_convt_vs_naive(void) {
    static const int ks[5][3] = {{1, 2, 2}, {2, 1, 2}, {2, 2, 1}, {1, 1, 2}, {2, 1, 1}};
    for (int t = 0; t < 3; t++) {
        dk_set_threads(k_threads[t]);
        printf("\n    %d thread(s):", k_threads[t]);
        for (int i = 0; i < 5; i++) check_convt_axes(2, 3, 4, 3, 4, 5, i % 2, ks[i]);
        check_convt_axes(1, 4, 64, 16, 12, 16, 1, ks[0]); /* chunks straddle depth planes */
        check_convt_case(2, 3, 4, 1, 5, 7, 1);      /* 2-D, odd sizes */
        check_convt_case(3, 2, 3, 1, 4, 4, 0);      /* 2-D, no bias */
        check_convt_case(2, 3, 2, 3, 4, 5, 1);      /* 3-D */
        check_convt_case(1, 16, 128, 1, 80, 64, 1); /* 2-D, several chunks */
        check_convt_case(1, 4, 64, 16, 12, 16, 0);  /* 3-D, chunks straddle depth planes */
    }
    dk_set_threads(0);
}

/* ------------------------------------------------------------------ gradient checks */

/* One layer under the finite-difference check: conv (transposed = 0) or convT. */
typedef struct {
    int transposed;
    dk_conv_shape cs;
    dk_convt_shape ts;
    float *in, *w, *b, *out, *dout, *din, *dw, *db, *work;
} layer;

static void layer_forward(void *ctx) {
    layer *l = ctx;
    if (l->transposed)
        dk_convt_forward(l->out, l->in, l->w, l->b, &l->ts, l->work);
    else
        dk_conv_forward(l->out, l->in, l->w, l->b, &l->cs, l->work);
}

static void layer_backward(void *ctx) {
    layer *l = ctx;
    if (l->transposed)
        dk_convt_backward(l->din, l->dw, l->db, l->dout, l->in, l->w, &l->ts, l->work);
    else
        dk_conv_backward(l->din, l->dw, l->db, l->dout, l->in, l->w, &l->cs, l->work);
}

/* Allocate and fill a layer; conv when k > 0, convT when k == 0. */
static void layer_init(layer *l, int64_t n, int64_t cin, int64_t cout, int64_t d, int64_t h,
                       int64_t w, int k, int stride, int64_t *ni, int64_t *no, int64_t *nw) {
    memset(l, 0, sizeof *l);
    size_t work;
    if (k > 0) {
        dk_conv_shape_make(&l->cs, n, cin, cout, d, h, w, k, stride);
        *no = out_numel(&l->cs);
        *nw = w_numel(&l->cs);
        work = dk_conv_work_floats(&l->cs);
    } else {
        l->transposed = 1;
        dk_convt_shape_make(&l->ts, n, cin, cout, d, h, w);
        *no = n * cout * l->ts.od * l->ts.oh * l->ts.ow;
        *nw = cin * cout * 4 * l->ts.kd;
        work = dk_convt_work_floats(&l->ts);
    }
    *ni = n * cin * d * h * w;
    l->in = fbuf(*ni), l->din = fbuf(*ni), l->w = fbuf(*nw), l->dw = fbuf(*nw);
    l->b = fbuf(cout), l->db = fbuf(cout), l->out = fbuf(*no), l->dout = fbuf(*no);
    l->work = fbuf((int64_t)work);
    dk_gc_fill(l->in, *ni, -1, 1, 11);
    dk_gc_fill(l->w, *nw, -1, 1, 12);
    dk_gc_fill(l->b, cout, -1, 1, 13);
}

static void layer_free(layer *l) {
    free(l->in), free(l->din), free(l->w), free(l->dw), free(l->b), free(l->db);
    free(l->out), free(l->dout), free(l->work);
}

static int gradcheck_layer(const char *label, int64_t n, int64_t cin, int64_t cout, int64_t d,
                           int64_t h, int64_t w, int k, int stride) {
    layer l;
    int64_t ni, no, nw;
    layer_init(&l, n, cin, cout, d, h, w, k, stride, &ni, &no, &nw);
    dk_gc_var vars[] = {{"din", l.in, l.din, ni}, {"dw", l.w, l.dw, nw}, {"db", l.b, l.db, cout}};
    dk_gradcheck g = {.label = label, .forward = layer_forward, .backward = layer_backward,
                      .ctx = &l, .out = l.out, .dout = l.dout, .nout = no, .vars = vars,
                      .nvars = 3, .seed = 99};
    int fails = dk_gradcheck_run(&g);
    layer_free(&l);
    return fails;
}

static void test_gradcheck_conv2d(void) {
    CU_ASSERT_EQUAL(gradcheck_layer("conv2d k3s1", 2, 3, 4, 1, 6, 5, 3, 1), 0);
    CU_ASSERT_EQUAL(gradcheck_layer("conv2d k3s2", 2, 3, 2, 1, 7, 6, 3, 2), 0);
    CU_ASSERT_EQUAL(gradcheck_layer("conv2d k1s1", 2, 4, 3, 1, 5, 4, 1, 1), 0);
    CU_ASSERT_EQUAL(gradcheck_layer("conv2d k1s2", 2, 3, 2, 1, 5, 6, 1, 2), 0);
}

static void test_gradcheck_conv3d(void) {
    CU_ASSERT_EQUAL(gradcheck_layer("conv3d k3s1", 2, 2, 3, 4, 5, 3, 3, 1), 0);
    CU_ASSERT_EQUAL(gradcheck_layer("conv3d k3s2", 1, 2, 3, 5, 4, 6, 3, 2), 0);
    CU_ASSERT_EQUAL(gradcheck_layer("conv3d k1s1", 2, 3, 2, 3, 4, 3, 1, 1), 0);
}

static void test_gradcheck_convt(void) {
    CU_ASSERT_EQUAL(gradcheck_layer("convt2d", 2, 3, 4, 1, 3, 5, 0, 0), 0);
    CU_ASSERT_EQUAL(gradcheck_layer("convt3d", 2, 3, 2, 3, 2, 4, 0, 0), 0);
}

/* ------------------------------------------------------------------ accumulate contract */

/* Backward twice gives twice the gradients of once (up to the order of float additions:
 * samples and chunks add into the same gradients), and din = NULL leaves dw and db as they
 * were with din. */
static int not_twice(const float *x2, const float *x1, int64_t n) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += fabsf(x2[i] - 2 * x1[i]) > 1e-5f * (1 + fabsf(x2[i]));
    return bad;
}

static void check_accumulates(int k, int stride, int64_t d) {
    layer l;
    int64_t ni, no, nw;
    layer_init(&l, 2, 3, 4, d, 6, 7, k, stride, &ni, &no, &nw);
    dk_gc_fill(l.dout, no, -1, 1, 21);
    float *din1 = fbuf(ni), *dw1 = fbuf(nw), *db1 = fbuf(4);
    layer_backward(&l);
    memcpy(din1, l.din, (size_t)ni * sizeof(float));
    memcpy(dw1, l.dw, (size_t)nw * sizeof(float));
    memcpy(db1, l.db, 4 * sizeof(float));
    layer_backward(&l);
    CU_ASSERT_EQUAL(not_twice(l.din, din1, ni), 0);
    CU_ASSERT_EQUAL(not_twice(l.dw, dw1, nw), 0);
    CU_ASSERT_EQUAL(not_twice(l.db, db1, 4), 0);
    /* din NULL: the weight gradients are the same as with din */
    memset(l.dw, 0, (size_t)nw * sizeof(float));
    memset(l.db, 0, 4 * sizeof(float));
    float *keep = l.din;
    l.din = NULL;
    layer_backward(&l);
    l.din = keep;
    CU_ASSERT_EQUAL(memcmp(l.dw, dw1, (size_t)nw * sizeof(float)), 0);
    CU_ASSERT_EQUAL(memcmp(l.db, db1, 4 * sizeof(float)), 0);
    free(din1), free(dw1), free(db1);
    layer_free(&l);
}

static void test_accumulate(void) {
    check_accumulates(3, 1, 1);
    check_accumulates(3, 2, 5);
    check_accumulates(1, 1, 1);
    check_accumulates(0, 0, 4); /* convT */
}

/* ------------------------------------------------------------------ main */

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("nn.conv", NULL, NULL);
    if (!s || !CU_add_test(s, "shapes", test_conv_shapes) ||
        !CU_add_test(s, "conv forward/backward vs naive", test_conv_vs_naive) ||
        !CU_add_test(s, "direct path shapes vs naive", test_conv_direct) ||
        !CU_add_test(s, "same bits at 1, 2, 3 threads", test_conv_threads_bits) ||
        !CU_add_test(s, "convT forward/backward vs naive", test_convt_vs_naive) ||
        !CU_add_test(s, "gradcheck conv 2-D", test_gradcheck_conv2d) ||
        !CU_add_test(s, "gradcheck conv 3-D", test_gradcheck_conv3d) ||
        !CU_add_test(s, "gradcheck convT", test_gradcheck_convt) ||
        !CU_add_test(s, "backward accumulates, din NULL", test_accumulate)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
