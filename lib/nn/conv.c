/* Convolution (kernel 1 or 3 per axis, stride 1 or 2, zero padding k/2) as vol2col +
 * cblas_sgemm. The stride-1 layers with rows >= 16 wide run as a direct convolution on CPUs
 * with AVX2 and FMA instead, forward and backward (conv_direct.c).
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
 * Threads: OpenMP over jobs (a sample, or a chunk of output rows of one), each thread with
 * its own column buffer and single-threaded OpenBLAS (conv_internal.h). One pool instead of
 * two: OpenBLAS's threads and libgomp's, both spinning on the same cores, made 2 threads
 * slower than 1 on 2 cores, and every small per-chunk GEMM paid OpenBLAS's fork/join.
 * A 1x1 stride-1 convolution is a GEMM on the input itself. */
#include <cblas.h>
#include <omp.h>
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

void dk_conv_shape_make_axes(dk_conv_shape *s, int64_t n, int64_t cin, int64_t cout, int64_t d,
                             int64_t h, int64_t w, const int k[3]) {
    DK_ASSERT(s && k && n > 0 && cin > 0 && cout > 0 && d > 0 && h > 0 && w > 0);
    for (int a = 0; a < 3; a++) DK_ASSERT(k[a] == 1 || k[a] == 3);
    *s = (dk_conv_shape){.n = n, .cin = cin, .cout = cout, .id = d, .ih = h, .iw = w,
                         .od = d, .oh = h, .ow = w, .kd = k[0], .kh = k[1], .kw = k[2],
                         .sd = 1, .sh = 1, .sw = 1, .pd = k[0] / 2, .ph = k[1] / 2,
                         .pw = k[2] / 2};
}

static int64_t kvol(const dk_conv_shape *s) { return (int64_t)s->kd * s->kh * s->kw; }

static int is_pointwise(const dk_conv_shape *s) {
    return kvol(s) == 1 && s->sd == 1 && s->sh == 1 && s->sw == 1;
}

/* Stride-1 backward computes din as a forward convolution of dout with the flipped,
 * transposed weights (below), so its column matrix has cout*kv rows, not cin*kv. */
static int flips(const dk_conv_shape *s) { return !is_pointwise(s) && s->sh == 1; }

/* The shape of that convolution (channel roles swapped) in *t; 1 when the direct path takes
 * the layer (then it takes *t too): its backward is then conv_direct.c's throughout. */
static int din_direct(const dk_conv_shape *s, dk_conv_shape *t) {
    *t = *s;
    t->cin = s->cout;
    t->cout = s->cin;
    return dk_conv_direct_applies(t);
}

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

/* Workspace for nt threads: nt column buffers (col_rows, chunk_rows*ow), then for stride 1
 * the flipped weights (cin, cout, kd, kh, kw), then nt - 1 weight-gradient partials. */
static size_t col_slot(const dk_conv_shape *s) {
    return is_pointwise(s) ? 0 : dk_conv_slot((size_t)(col_rows(s) * chunk_rows(s) * s->ow));
}

static size_t wf_floats(const dk_conv_shape *s) {
    return flips(s) ? dk_conv_slot((size_t)(s->cin * s->cout * kvol(s))) : 0;
}

static size_t dw_floats(const dk_conv_shape *s) { return (size_t)(s->cout * s->cin * kvol(s)); }

size_t dk_conv_work_floats_nt(const dk_conv_shape *s, int nt) {
    DK_ASSERT(s && nt >= 1);
    dk_conv_shape t;
    if (din_direct(s, &t)) {
        /* the direct path (conv_direct.c): forward its own; backward dw's slab, then the
         * flipped weights and the din convolution's scratch */
        size_t fw = dk_conv_direct_work_floats(s, nt), dw = dk_conv_direct_dw_work_floats(s, nt);
        size_t din = wf_floats(s) + dk_conv_direct_work_floats(&t, nt);
        size_t bw = dw > din ? dw : din;
        return fw > bw ? fw : bw;
    }
    /* column slots, the flipped weights (stride 1), the dw partials of threads 1.. */
    return (size_t)nt * col_slot(s) + wf_floats(s) +
           (size_t)(nt - 1) * dk_conv_slot(dw_floats(s));
}

size_t dk_conv_work_floats(const dk_conv_shape *s) {
    return dk_conv_work_floats_nt(s, dk_get_threads());
}

int64_t dk_conv_split_rows(int64_t rows, int64_t max_rows, int64_t n, int nt) {
    int64_t step = max_rows < rows ? max_rows : rows;
    if (nt <= 1) return step;
    for (int64_t nch = (rows + step - 1) / step; nch <= rows; nch++) {
        int64_t st = (rows + nch - 1) / nch, real = (rows + st - 1) / st;
        if ((n * real) % nt == 0) return st;
        if (n * real > 8 * (int64_t)nt) break; /* enough jobs: the tail costs little */
    }
    return step;
}

void dk_conv_partials_zero(float *p, size_t ld, int64_t len, int nt) {
    if (nt <= 1) return; /* the same for every thread of the team */
#pragma omp for schedule(static)
    for (int t = 0; t < nt - 1; t++) memset(p + (size_t)t * ld, 0, (size_t)len * sizeof *p);
}

void dk_conv_partials_add(float *dw, const float *p, size_t ld, int64_t len, int nt) {
    if (nt <= 1) return;
#pragma omp for schedule(static)
    for (int64_t e = 0; e < len; e++) {
        float acc = dw[e];
        for (int t = 0; t < nt - 1; t++) acc += p[(size_t)t * ld + (size_t)e];
        dw[e] = acc;
    }
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
            int kz = (int)(t / (3 * s->kh)), ky = (int)(t / 3 % s->kh);
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
#pragma omp parallel for schedule(static) if (n * cout * p >= (1 << 15))
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

/* Jobs of a kernel call: n samples x nch chunks of `step` output rows. */
typedef struct {
    int64_t rows, step, nch, jobs;
} conv_jobs;

static conv_jobs make_jobs(const dk_conv_shape *s, int nt, int whole_samples) {
    conv_jobs j = {.rows = s->od * s->oh};
    int64_t max_rows = is_pointwise(s) ? j.rows : chunk_rows(s);
    j.step = whole_samples ? max_rows : dk_conv_split_rows(j.rows, max_rows, s->n, nt);
    j.nch = whole_samples ? 1 : (j.rows + j.step - 1) / j.step;
    j.jobs = s->n * j.nch;
    return j;
}

void dk_conv_forward_nt(float *out, const float *in, const float *w, const float *b,
                        const dk_conv_shape *s, float *work, int nt) {
    DK_ASSERT(out && in && w && s && nt >= 1);
    int64_t k = s->cin * kvol(s), p = s->od * s->oh * s->ow;
    int64_t in_n = s->cin * s->id * s->ih * s->iw, out_n = s->cout * p;
    int pw = is_pointwise(s);
    DK_ASSERT(pw || work);
    if (dk_conv_direct_applies(s)) {
        dk_conv_direct_forward(out, in, w, s, work, nt, 0);
        if (b) dk_conv_add_bias(out, b, s->n, s->cout, p);
        return;
    }
    conv_jobs J = make_jobs(s, nt, 0);
    size_t slot = col_slot(s);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && J.jobs > 1)
    for (int64_t j = 0; j < J.jobs; j++) {
        int64_t i = j / J.nch, r0 = (j % J.nch) * J.step;
        int64_t r1 = r0 + J.step < J.rows ? r0 + J.step : J.rows, pc = (r1 - r0) * s->ow;
        const float *col = in + i * in_n + r0 * s->ow; /* pointwise: the input columns */
        if (!pw) {
            float *c = work + (size_t)omp_get_thread_num() * slot;
            vol2col(c, in + i * in_n, s, r0, r1);
            col = c;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->cout, (int)pc,
                    (int)k, 1.0f, w, (int)k, col, (int)(pw ? p : pc), 0.0f,
                    out + i * out_n + r0 * s->ow, (int)p);
    }
    if (b) dk_conv_add_bias(out, b, s->n, s->cout, p);
}

void dk_conv_forward(float *out, const float *in, const float *w, const float *b,
                     const dk_conv_shape *s, float *work) {
    dk_conv_forward_nt(out, in, w, b, s, work, dk_get_threads());
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

/* Pointwise stride 1, output rows [r0, r1): the input columns are the column matrix;
 * dw += dout_c x in_c^T, din_c += W^T dout_c. */
static void backward_pointwise(float *din_i, float *dw, const float *dout_i, const float *in_i,
                               const float *w, const dk_conv_shape *s, int64_t r0, int64_t r1) {
    int64_t p = s->od * s->oh * s->ow, off = r0 * s->ow, pc = (r1 - r0) * s->ow;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->cout, (int)s->cin, (int)pc,
                1.0f, dout_i + off, (int)p, in_i + off, (int)p, 1.0f, dw, (int)s->cin);
    if (din_i)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)s->cin, (int)pc, (int)s->cout,
                    1.0f, w, (int)s->cin, dout_i + off, (int)p, 1.0f, din_i + off, (int)p);
}

/* Operands of a backward call and where each thread's scratch lives. */
typedef struct {
    float *din, *dw, *work, *partial;
    const float *dout, *in, *w, *wf;
    const dk_conv_shape *s;
    conv_jobs J;
    size_t slot, pslot;
} conv_bw;

/* Job j on thread t: one chunk of one sample, or (when col2vol chunks would overlap in
 * din) every chunk of one sample in order. */
static void backward_job(const conv_bw *a, int64_t j, int t) {
    const dk_conv_shape *s = a->s;
    int64_t p = s->od * s->oh * s->ow, i = j / a->J.nch;
    int64_t in_n = s->cin * s->id * s->ih * s->iw, out_n = s->cout * p;
    float *dw = t == 0 ? a->dw : a->partial + (size_t)(t - 1) * a->pslot;
    float *din_i = a->din ? a->din + i * in_n : NULL, *col = a->work + (size_t)t * a->slot;
    const float *dout_i = a->dout + i * out_n, *in_i = a->in + i * in_n;
    int64_t c0 = j % a->J.nch, c1 = a->J.nch == 1 ? (a->J.rows + a->J.step - 1) / a->J.step
                                                   : c0 + 1;
    for (int64_t c = c0; c < c1; c++) {
        int64_t r0 = c * a->J.step, r1 = r0 + a->J.step < a->J.rows ? r0 + a->J.step : a->J.rows;
        if (is_pointwise(s))
            backward_pointwise(din_i, dw, dout_i, in_i, a->w, s, r0, r1);
        else
            backward_chunk(din_i, dw, dout_i, in_i, a->w, a->wf, s, col, r0, r1);
    }
}

void dk_conv_backward_nt(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, const dk_conv_shape *s, float *work, int nt) {
    DK_ASSERT(dw && dout && in && w && s && nt >= 1);
    int pw = is_pointwise(s);
    DK_ASSERT((pw && nt == 1) || work);
    dk_conv_shape ft;
    if (din_direct(s, &ft)) { /* the direct path: no column matrix at all */
        dk_conv_direct_dw(dw, dout, in, s, work, nt);
        if (din) {
            flip_weights(work, w, s);
            dk_conv_direct_forward(din, dout, work, &ft, work + wf_floats(s), nt, 1);
        }
        if (db) dk_conv_bias_grad(db, dout, s->n, s->cout, s->od * s->oh * s->ow);
        return;
    }
    /* stride 2 scatters din through col2vol: chunks of one sample overlap, so a job is a
     * whole sample */
    int whole = din && !pw && !flips(s);
    conv_bw a = {.din = din, .dw = dw, .work = work, .dout = dout, .in = in, .w = w, .s = s,
                 .J = make_jobs(s, nt, whole), .slot = col_slot(s),
                 .pslot = dk_conv_slot(dw_floats(s))};
    float *wf = work ? work + (size_t)nt * a.slot : NULL;
    a.partial = work ? wf + wf_floats(s) : NULL;
    if (din && flips(s)) {
        flip_weights(wf, w, s);
        a.wf = wf;
    }
    int64_t len = (int64_t)dw_floats(s);
#pragma omp parallel num_threads(nt) if (nt > 1 && a.J.jobs > 1)
    {
        int t = omp_get_thread_num();
        dk_conv_partials_zero(a.partial, a.pslot, len, nt);
#pragma omp for schedule(static)
        for (int64_t j = 0; j < a.J.jobs; j++) backward_job(&a, j, t);
        dk_conv_partials_add(dw, a.partial, a.pslot, len, nt);
    }
    if (db) dk_conv_bias_grad(db, dout, s->n, s->cout, s->od * s->oh * s->ow);
}

void dk_conv_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                      const float *w, const dk_conv_shape *s, float *work) {
    dk_conv_backward_nt(din, dw, db, dout, in, w, s, work, dk_get_threads());
}
