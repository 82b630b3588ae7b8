/* Transposed convolution, kernel = stride per axis (2x2[x2], or 1 on some axes: 1x2x2), no
 * overlap: each input voxel paints its own block of the output, as one GEMM and a scatter.
 *
 * Shapes: kv = kd*kh*kw taps, Pin = id*ih*iw input positions of one sample. With the weight
 * w (cin, cout*kv) row-major (PyTorch's (cin, cout, kd, kh, kw)):
 *   forward   t (cout*kv, Pin) = w^T x in (cin, Pin);
 *             out[co, kd z+a, kh y+b, kw x+c] = t[co,abc, zyx]
 *   backward  t = gather(dout) (the inverse of the scatter);
 *             dw (cin, cout*kv) += in x t^T;  din (cin, Pin) += w x t;  db += sums of dout.
 * As in conv.c, t is built for a chunk of input rows (a row is one (iz, iy) pair) at a time,
 * so the workspace stays a few MB whatever the volume. Threads as conv.c: OpenMP over
 * (sample, chunk) jobs, a t buffer per thread, dw partials per thread (conv_internal.h);
 * chunks of input rows paint disjoint output rows, so out and din need no reduction. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "conv_internal.h"
#include "dakd/nn.h"

void dk_convt_shape_make_axes(dk_convt_shape *s, int64_t n, int64_t cin, int64_t cout, int64_t d,
                              int64_t h, int64_t w, const int k[3]) {
    DK_ASSERT(s && k && n > 0 && cin > 0 && cout > 0 && d > 0 && h > 0 && w > 0);
    for (int a = 0; a < 3; a++) DK_ASSERT(k[a] == 1 || k[a] == 2);
    *s = (dk_convt_shape){.n = n, .cin = cin, .cout = cout, .id = d, .ih = h, .iw = w,
                          .od = k[0] * d, .oh = k[1] * h, .ow = k[2] * w,
                          .kd = k[0], .kh = k[1], .kw = k[2]};
}

void dk_convt_shape_make(dk_convt_shape *s, int64_t n, int64_t cin, int64_t cout, int64_t d,
                         int64_t h, int64_t w) {
    const int k[3] = {d > 1 ? 2 : 1, 2, 2};
    dk_convt_shape_make_axes(s, n, cin, cout, d, h, w, k);
}

static int64_t taps(const dk_convt_shape *s) { return (int64_t)s->kd * s->kh * s->kw; }

/* Input rows (iz, iy pairs) per chunk of t. */
static int64_t chunk_rows(const dk_convt_shape *s) {
    return dk_conv_chunk_rows(s->id * s->ih, s->iw, s->cout * taps(s));
}

static size_t t_slot(const dk_convt_shape *s) {
    return dk_conv_slot((size_t)(s->cout * taps(s) * chunk_rows(s) * s->iw));
}

static size_t dw_floats(const dk_convt_shape *s) {
    return (size_t)(s->cin * s->cout * taps(s));
}

/* nt t buffers, then nt - 1 weight-gradient partials. */
size_t dk_convt_work_floats_nt(const dk_convt_shape *s, int nt) {
    DK_ASSERT(s && nt >= 1);
    return (size_t)nt * t_slot(s) + (size_t)(nt - 1) * dk_conv_slot(dw_floats(s));
}

size_t dk_convt_work_floats(const dk_convt_shape *s) {
    return dk_convt_work_floats_nt(s, dk_get_threads());
}

/* Scatter (dir > 0) t (cout*kv, (r1 - r0)*iw) into out (cout, od, oh, ow) of one sample, or
 * gather (dir < 0) dout into t, for input rows [r0, r1). A tap (a, b, c) of t's rows writes
 * output voxel (kd z + a, kh y + b, kw x + c). */
static void scatter(float *vol, float *t, const dk_convt_shape *s, int64_t r0, int64_t r1,
                    int dir) {
    int64_t kv = taps(s), pc = (r1 - r0) * s->iw, iw = s->iw;
    int64_t plane = s->od * s->oh * s->ow;
    for (int64_t co = 0; co < s->cout; co++) {
        for (int64_t ab = 0; ab < kv / s->kw; ab++) { /* tap (a, b); c is the inner pair */
            int64_t a = ab / s->kh, b = ab % s->kh;
            float *t0 = t + (co * kv + s->kw * ab) * pc, *t1 = t0 + pc;
            for (int64_t r = r0; r < r1; r++, t0 += iw, t1 += iw) {
                int64_t oz = (r / s->ih) * s->kd + a, oy = s->kh * (r % s->ih) + b;
                float *o = vol + co * plane + (oz * s->oh + oy) * s->ow;
                if (s->kw == 1) { /* no column pairs: a row copy */
                    float *dst = dir > 0 ? o : t0;
                    const float *src = dir > 0 ? t0 : o;
                    memcpy(dst, src, (size_t)iw * sizeof *dst);
                } else if (dir > 0) {
                    for (int64_t x = 0; x < iw; x++) {
                        o[2 * x] = t0[x];
                        o[2 * x + 1] = t1[x];
                    }
                } else {
                    for (int64_t x = 0; x < iw; x++) {
                        t0[x] = o[2 * x];
                        t1[x] = o[2 * x + 1];
                    }
                }
            }
        }
    }
}

/* The operands of one call; din/dout are NULL in the direction that has none. */
typedef struct {
    float *out, *din, *dw;
    const float *in, *w, *dout;
    const dk_convt_shape *s;
    float *work, *partial; /* t buffers (slot floats each); dw partials (pslot each) */
    size_t slot, pslot;
} convt_args;

/* Input rows [r0, r1) of sample i. Forward: t = w^T x in_c, scatter t. Backward: gather
 * dout into t, dw += in_c x t^T, din_c += w x t. */
static void convt_chunk(const convt_args *a, int64_t i, int64_t r0, int64_t r1, int th) {
    const dk_convt_shape *s = a->s;
    float *t = a->work + (size_t)th * a->slot;
    float *dw = th == 0 ? a->dw : a->partial + (size_t)(th - 1) * a->pslot;
    int64_t m = s->cout * taps(s), pin = s->id * s->ih * s->iw, pc = (r1 - r0) * s->iw;
    int64_t in_off = i * s->cin * pin + r0 * s->iw, out_off = i * s->cout * s->od * s->oh * s->ow;
    if (a->out) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)pc, (int)s->cin, 1.0f,
                    a->w, (int)m, a->in + in_off, (int)pin, 0.0f, t, (int)pc);
        scatter(a->out + out_off, t, s, r0, r1, 1);
        return;
    }
    /* gather only reads dout; the cast lets one loop serve both directions */
    scatter((float *)(a->dout + out_off), t, s, r0, r1, -1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->cin, (int)m, (int)pc, 1.0f,
                a->in + in_off, (int)pin, t, (int)pc, 1.0f, dw, (int)m);
    if (a->din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->cin, (int)pc, (int)m,
                    1.0f, a->w, (int)m, t, (int)pc, 1.0f, a->din + in_off, (int)pin);
}

static void convt_run(const convt_args *a, int nt) {
    int64_t rows = a->s->id * a->s->ih, n = a->s->n;
    int64_t step = dk_conv_split_rows(rows, chunk_rows(a->s), n, nt);
    int64_t nch = (rows + step - 1) / step, jobs = n * nch, len = (int64_t)dw_floats(a->s);
    int bw = a->out == NULL;
#pragma omp parallel num_threads(nt) if (nt > 1 && jobs > 1)
    {
        int th = omp_get_thread_num();
        if (bw) dk_conv_partials_zero(a->partial, a->pslot, len, nt);
#pragma omp for schedule(static)
        for (int64_t j = 0; j < jobs; j++) {
            int64_t r0 = (j % nch) * step;
            convt_chunk(a, j / nch, r0, r0 + step < rows ? r0 + step : rows, th);
        }
        if (bw) dk_conv_partials_add(a->dw, a->partial, a->pslot, len, nt);
    }
}

void dk_convt_forward_nt(float *out, const float *in, const float *w, const float *b,
                         const dk_convt_shape *s, float *work, int nt) {
    DK_ASSERT(out && in && w && s && work && nt >= 1);
    convt_args a = {.out = out, .in = in, .w = w, .s = s, .work = work, .slot = t_slot(s)};
    convt_run(&a, nt);
    if (b) dk_conv_add_bias(out, b, s->n, s->cout, s->od * s->oh * s->ow);
}

void dk_convt_forward(float *out, const float *in, const float *w, const float *b,
                      const dk_convt_shape *s, float *work) {
    dk_convt_forward_nt(out, in, w, b, s, work, dk_get_threads());
}

void dk_convt_backward_nt(float *din, float *dw, float *db, const float *dout, const float *in,
                          const float *w, const dk_convt_shape *s, float *work, int nt) {
    DK_ASSERT(dw && dout && in && w && s && work && nt >= 1);
    convt_args a = {.din = din, .dw = dw, .in = in, .w = w, .dout = dout, .s = s, .work = work,
                    .slot = t_slot(s), .pslot = dk_conv_slot(dw_floats(s))};
    a.partial = work + (size_t)nt * a.slot;
    convt_run(&a, nt);
    if (db) dk_conv_bias_grad(db, dout, s->n, s->cout, s->od * s->oh * s->ow);
}

void dk_convt_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                       const float *w, const dk_convt_shape *s, float *work) {
    dk_convt_backward_nt(din, dw, db, dout, in, w, s, work, dk_get_threads());
}
