/* Convolution (kernel 1 or 3, stride 1 or 2, zero padding k/2) as vol2col + cblas_sgemm.
 *
 * Shapes: K = cin*kd*kh*kw rows of the column matrix, P = od*oh*ow output positions of one
 * sample. The output of one sample is out (cout, P) = w (cout, K) x col (K, P), which is
 * NCDHW already, so no transpose is ever needed.
 *
 * The column matrix is never built whole: it is built for a chunk of R output rows (a row
 * is one (oz, oy) pair, ow positions) at a time, col (K, R*ow), small enough to stay in the
 * last-level cache between vol2col writing it and OpenBLAS packing it, and large enough
 * that the thin GEMM (M = cout, 8..128) still gets a long N. The GEMM writes straight into
 * the output columns of the chunk (ldc = P). This bounds the workspace at a few MB for
 * any volume: a whole 64^3 column matrix with K = 432 would be 450 MB.
 *
 * Threads come from OpenBLAS alone. vol2col/col2vol deliberately use no OpenMP: they
 * alternate with a GEMM every few hundred microseconds, and libgomp's workers spin after
 * each region on the very cores OpenBLAS's threads need (measured on 2 cores: 2-thread
 * runs 5-8x slower than with serial vol2col). A 1x1 stride-1 convolution is a GEMM on the
 * input itself. */
#include <cblas.h>
#include <string.h>

#include "conv_internal.h"
#include "dakd/nn.h"

/* Column budget of one chunk, in floats (4 MB: stays in the L3 beside OpenBLAS's packs;
 * 256 KB and 16 MB chunks measured slower, 1 MB the same), and the fewest GEMM columns a
 * chunk should have when K is large. */
enum { COL_BUDGET = 1 << 20, MIN_COLS = 512 };

void dk_conv_shape_make(dk_conv_shape *s, int64_t n, int64_t cin, int64_t cout, int64_t d,
                        int64_t h, int64_t w, int k, int stride) {
    DK_ASSERT(s && n > 0 && cin > 0 && cout > 0 && d > 0 && h > 0 && w > 0);
    DK_ASSERT((k == 1 || k == 3) && (stride == 1 || stride == 2));
    int p = k / 2, t = d > 1; /* 2-D: depth 1, no depth taps */
    *s = (dk_conv_shape){.n = n, .cin = cin, .cout = cout, .id = d, .ih = h, .iw = w,
                         .kd = t ? k : 1, .kh = k, .kw = k,
                         .sd = t ? stride : 1, .sh = stride, .sw = stride,
                         .pd = t ? p : 0, .ph = p, .pw = p};
    s->od = (d + 2 * s->pd - s->kd) / s->sd + 1;
    s->oh = (h + 2 * s->ph - s->kh) / s->sh + 1;
    s->ow = (w + 2 * s->pw - s->kw) / s->sw + 1;
}

static int64_t kvol(const dk_conv_shape *s) { return (int64_t)s->kd * s->kh * s->kw; }

static int is_pointwise(const dk_conv_shape *s) {
    return kvol(s) == 1 && s->sd == 1 && s->sh == 1 && s->sw == 1;
}

/* Stride-1 backward computes din as a forward convolution of dout with the flipped,
 * transposed weights (below), so its column matrix has cout*kv rows, not cin*kv. */
static int flips(const dk_conv_shape *s) { return !is_pointwise(s) && s->sh == 1; }

static int64_t col_rows(const dk_conv_shape *s) {
    int64_t c = flips(s) && s->cout > s->cin ? s->cout : s->cin;
    return c * kvol(s);
}

int64_t dk_conv_chunk_rows(int64_t rows, int64_t row_len, int64_t height) {
    int64_t r = COL_BUDGET / (height * row_len);
    int64_t r_min = (MIN_COLS + row_len - 1) / row_len;
    if (r < r_min) r = r_min;
    if (r < 1) r = 1;
    return r < rows ? r : rows;
}

static int64_t chunk_rows(const dk_conv_shape *s) {
    return dk_conv_chunk_rows(s->od * s->oh, s->ow, col_rows(s));
}

/* Workspace: the column buffer (col_rows, chunk_rows*ow), then for stride 1 the flipped
 * weights (cin, cout, kd, kh, kw). */
size_t dk_conv_work_floats(const dk_conv_shape *s) {
    DK_ASSERT(s);
    if (is_pointwise(s)) return 0;
    size_t col = (size_t)(col_rows(s) * chunk_rows(s) * s->ow);
    return col + (flips(s) ? (size_t)(s->cin * s->cout * kvol(s)) : 0);
}

/* The output columns [lo, hi) of a row whose kernel tap kx reads inside the input row:
 * ix = ox*sw - pw + kx in [0, iw). */
static void tap_range(int64_t *lo, int64_t *hi, const dk_conv_shape *s, int kx) {
    int64_t off = kx - s->pw; /* ix = ox*sw + off */
    int64_t l = off >= 0 ? 0 : (-off + s->sw - 1) / s->sw;
    int64_t last = s->iw - 1 - off; /* ox*sw <= last */
    int64_t h = last < 0 ? 0 : last / s->sw + 1;
    if (h > s->ow) h = s->ow;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* The input row (of one channel plane (id, ih, iw)) that tap (kz, ky) of output row r
 * reads, or NULL where it falls in the zero padding. */
static const float *tap_row(const float *plane, const dk_conv_shape *s, int64_t r, int kz,
                            int ky) {
    int64_t iz = (r / s->oh) * s->sd - s->pd + kz;
    int64_t iy = (r % s->oh) * s->sh - s->ph + ky;
    if (iz < 0 || iz >= s->id || iy < 0 || iy >= s->ih) return NULL;
    return plane + (iz * s->ih + iy) * s->iw;
}

/* One row of col: tap (kz, ky, kx) of one channel plane over output rows [r0, r1),
 * dst ((r1 - r0) * ow). */
static void vol2col_row(float *dst, const float *plane, const dk_conv_shape *s, int kz, int ky,
                        int kx, int64_t r0, int64_t r1) {
    int64_t lo, hi, ow = s->ow, off = kx - s->pw;
    tap_range(&lo, &hi, s, kx);
    for (int64_t r = r0; r < r1; r++, dst += ow) {
        const float *src = tap_row(plane, s, r, kz, ky);
        if (!src) {
            memset(dst, 0, (size_t)ow * sizeof *dst);
            continue;
        }
        for (int64_t x = 0; x < lo; x++) dst[x] = 0.0f;
        if (s->sw == 1) {
            memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof *dst);
        } else {
            for (int64_t x = lo; x < hi; x++) dst[x] = src[2 * x + off];
        }
        for (int64_t x = hi; x < ow; x++) dst[x] = 0.0f;
    }
}

/* The three rows kx = 0, 1, 2 of col for tap (kz, ky) at stride 1, padding 1 (ow = iw):
 * one pass over each source row writes all three shifted copies, dst (3 rows, ld pc). */
static void vol2col_rows3(float *dst, int64_t pc, const float *plane, const dk_conv_shape *s,
                          int kz, int ky, int64_t r0, int64_t r1) {
    int64_t w = s->ow;
    for (int64_t r = r0; r < r1; r++, dst += w) {
        float *d0 = dst, *d1 = dst + pc, *d2 = dst + 2 * pc;
        const float *src = tap_row(plane, s, r, kz, ky);
        if (!src) {
            memset(d0, 0, (size_t)w * sizeof *dst);
            memset(d1, 0, (size_t)w * sizeof *dst);
            memset(d2, 0, (size_t)w * sizeof *dst);
            continue;
        }
        /* memcpy: glibc's copy uses the widest vectors; this file is built for baseline x86-64 */
        d0[0] = 0.0f;
        memcpy(d0 + 1, src, (size_t)(w - 1) * sizeof *dst);
        memcpy(d1, src, (size_t)w * sizeof *dst);
        memcpy(d2, src + 1, (size_t)(w - 1) * sizeof *dst);
        d2[w - 1] = 0.0f;
    }
}

/* col (K, (r1 - r0) * ow) for output rows [r0, r1) of one sample's input (cin, id, ih, iw). */
static void vol2col(float *col, const float *in, const dk_conv_shape *s, int64_t r0,
                    int64_t r1) {
    int64_t kv = kvol(s), k = s->cin * kv, pc = (r1 - r0) * s->ow;
    int64_t plane = s->id * s->ih * s->iw;
    if (s->kw == 3 && s->sw == 1) {
        for (int64_t row = 0; row < k; row += 3) {
            int64_t c = row / kv, t = row % kv;
            int kz = (int)(t / 9), ky = (int)(t / 3 % 3);
            vol2col_rows3(col + row * pc, pc, in + c * plane, s, kz, ky, r0, r1);
        }
        return;
    }
    for (int64_t row = 0; row < k; row++) {
        int64_t c = row / kv, t = row % kv;
        int kz = (int)(t / (s->kh * s->kw)), ky = (int)(t / s->kw % s->kh), kx = (int)(t % s->kw);
        vol2col_row(col + row * pc, in + c * plane, s, kz, ky, kx, r0, r1);
    }
}

/* din (cin, id, ih, iw) of one sample += col2vol(dcol (K, (r1 - r0) * ow)); the taps of a
 * channel are added in a fixed order. */
static void col2vol_add(float *din, const float *dcol, const dk_conv_shape *s, int64_t r0,
                        int64_t r1) {
    int64_t kv = kvol(s), pc = (r1 - r0) * s->ow, ow = s->ow;
    int64_t plane = s->id * s->ih * s->iw;
    for (int64_t c = 0; c < s->cin; c++) {
        float *pl = din + c * plane;
        for (int64_t t = 0; t < kv; t++) {
            int kz = (int)(t / (s->kh * s->kw)), ky = (int)(t / s->kw % s->kh);
            int kx = (int)(t % s->kw);
            int64_t lo, hi, off = kx - s->pw;
            tap_range(&lo, &hi, s, kx);
            const float *src = dcol + (c * kv + t) * pc;
            for (int64_t r = r0; r < r1; r++, src += ow) {
                float *dst = (float *)tap_row(pl, s, r, kz, ky); /* pl is din: writable */
                if (!dst) continue;
                if (s->sw == 1) {
                    for (int64_t x = lo; x < hi; x++) dst[x + off] += src[x];
                } else {
                    for (int64_t x = lo; x < hi; x++) dst[2 * x + off] += src[x];
                }
            }
        }
    }
}

void dk_conv_add_bias(float *out, const float *b, int64_t n, int64_t cout, int64_t p) {
    for (int64_t i = 0; i < n * cout; i++) {
        float bi = b[i % cout], *o = out + i * p;
        for (int64_t j = 0; j < p; j++) o[j] += bi;
    }
}

/* Float partials over blocks of 256 (which vectorise) are summed in double in index order:
 * accurate on 64^3 planes and the same for any thread count. */
void dk_conv_bias_grad(float *db, const float *dout, int64_t n, int64_t cout, int64_t p) {
    for (int64_t c = 0; c < cout; c++) {
        double acc = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float *d = dout + (i * cout + c) * p;
            for (int64_t j0 = 0; j0 < p; j0 += 256) {
                int64_t j1 = j0 + 256 < p ? j0 + 256 : p;
                float part = 0.0f;
                for (int64_t j = j0; j < j1; j++) part += d[j];
                acc += part;
            }
        }
        db[c] += (float)acc;
    }
}

void dk_conv_forward(float *out, const float *in, const float *w, const float *b,
                     const dk_conv_shape *s, float *work) {
    DK_ASSERT(out && in && w && s);
    int64_t k = s->cin * kvol(s), p = s->od * s->oh * s->ow;
    int64_t in_n = s->cin * s->id * s->ih * s->iw, out_n = s->cout * p;
    int pw = is_pointwise(s);
    DK_ASSERT(pw || work);
    int64_t rows = s->od * s->oh, step = pw ? rows : chunk_rows(s);
    for (int64_t i = 0; i < s->n; i++) {
        for (int64_t r0 = 0; r0 < rows; r0 += step) {
            int64_t r1 = r0 + step < rows ? r0 + step : rows, pc = (r1 - r0) * s->ow;
            const float *col = in + i * in_n;
            if (!pw) {
                vol2col(work, in + i * in_n, s, r0, r1);
                col = work;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->cout, (int)pc,
                        (int)k, 1.0f, w, (int)k, col, (int)(pw ? p : pc), 0.0f,
                        out + i * out_n + r0 * s->ow, (int)p);
        }
    }
    if (b) dk_conv_add_bias(out, b, s->n, s->cout, p);
}

/* wf (cin, cout, kv) = w (cout, cin, kv) with the taps reversed: for stride 1 and padding
 * k/2, din = conv(dout, wf) with the same padding (the adjoint of a correlation is the
 * correlation with the mirrored kernel). */
static void flip_weights(float *wf, const float *w, const dk_conv_shape *s) {
    int64_t kv = kvol(s);
    for (int64_t co = 0; co < s->cout; co++)
        for (int64_t ci = 0; ci < s->cin; ci++)
            for (int64_t t = 0; t < kv; t++)
                wf[(ci * s->cout + co) * kv + t] = w[(co * s->cin + ci) * kv + kv - 1 - t];
}

/* din rows [r0, r1) of one sample += conv(dout_i (cout, P), wf): vol2col of dout with the
 * channel roles swapped, then one GEMM (cin, pc) += wf (cin, cout*kv) x col (cout*kv, pc)
 * straight into din. The GEMM's inner dimension is cout*kv, not cout as in W^T x dout. */
static void din_flipped(float *din_i, const float *dout_i, const float *wf,
                        const dk_conv_shape *s, float *col, int64_t r0, int64_t r1) {
    dk_conv_shape t = *s;
    t.cin = s->cout;
    t.cout = s->cin;
    int64_t k = s->cout * kvol(s), p = s->od * s->oh * s->ow, pc = (r1 - r0) * s->ow;
    vol2col(col, dout_i, &t, r0, r1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->cin, (int)pc, (int)k, 1.0f,
                wf, (int)k, col, (int)pc, 1.0f, din_i + r0 * s->ow, (int)p);
}

/* Backward of output rows [r0, r1) of sample i: dw += dout_c (cout, pc) x col^T; then din,
 * by the flipped convolution (stride 1), or dcol = W^T x dout_c and col2vol (stride 2). */
static void backward_chunk(float *din_i, float *dw, const float *dout_i, const float *in_i,
                           const float *w, const float *wf, const dk_conv_shape *s,
                           float *col, int64_t r0, int64_t r1) {
    int64_t k = s->cin * kvol(s), p = s->od * s->oh * s->ow, pc = (r1 - r0) * s->ow;
    const float *dout_c = dout_i + r0 * s->ow;
    vol2col(col, in_i, s, r0, r1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->cout, (int)k, (int)pc, 1.0f,
                dout_c, (int)p, col, (int)pc, 1.0f, dw, (int)k);
    if (!din_i) return;
    if (wf) {
        din_flipped(din_i, dout_i, wf, s, col, r0, r1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)pc, (int)s->cout, 1.0f,
                w, (int)k, dout_c, (int)p, 0.0f, col, (int)pc);
    col2vol_add(din_i, col, s, r0, r1);
}

/* Pointwise stride 1: the input is the column matrix; dw += dout x in^T, din += W^T dout. */
static void backward_pointwise(float *din_i, float *dw, const float *dout_i, const float *in_i,
                               const float *w, const dk_conv_shape *s) {
    int64_t p = s->od * s->oh * s->ow;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->cout, (int)s->cin, (int)p,
                1.0f, dout_i, (int)p, in_i, (int)p, 1.0f, dw, (int)s->cin);
    if (din_i)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)s->cin, (int)p, (int)s->cout,
                    1.0f, w, (int)s->cin, dout_i, (int)p, 1.0f, din_i, (int)p);
}

void dk_conv_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                      const float *w, const dk_conv_shape *s, float *work) {
    DK_ASSERT(dw && dout && in && w && s);
    int64_t p = s->od * s->oh * s->ow;
    int64_t in_n = s->cin * s->id * s->ih * s->iw, out_n = s->cout * p;
    int pw = is_pointwise(s);
    DK_ASSERT(pw || work);
    float *wf = NULL;
    if (din && flips(s)) {
        wf = work + col_rows(s) * chunk_rows(s) * s->ow;
        flip_weights(wf, w, s);
    }
    int64_t rows = s->od * s->oh, step = pw ? rows : chunk_rows(s);
    for (int64_t i = 0; i < s->n; i++) {
        float *din_i = din ? din + i * in_n : NULL;
        if (pw) {
            backward_pointwise(din_i, dw, dout + i * out_n, in + i * in_n, w, s);
            continue;
        }
        for (int64_t r0 = 0; r0 < rows; r0 += step) {
            int64_t r1 = r0 + step < rows ? r0 + step : rows;
            backward_chunk(din_i, dw, dout + i * out_n, in + i * in_n, w, wf, s, work, r0, r1);
        }
    }
    if (db) dk_conv_bias_grad(db, dout, s->n, s->cout, p);
}
