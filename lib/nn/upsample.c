/*
 * x2 linear upsampling, align_corners = False, as PyTorch's
 * F.interpolate(scale_factor=2, mode='bilinear'/'trilinear'); an axis of factor 1
 * (dk_upsample_shape_make_axes) is copied, as PyTorch's scale_factor=(1, 2, 2) does.
 *
 * Along one axis of K inputs, output j takes source coordinate (j + 0.5)/2 - 0.5 clamped at
 * 0, i0 = floor, i1 = min(i0 + 1, K - 1). For a factor of 2 this is, with clamped indices,
 *   out[2k]     = 0.25 * in[max(k - 1, 0)] + 0.75 * in[k]
 *   out[2k + 1] = 0.75 * in[k]             + 0.25 * in[min(k + 1, K - 1)]
 * (at both edges the two terms hit the same input, so the edge outputs copy it, as PyTorch).
 * Its adjoint gathers four outputs per input, again with clamped indices:
 *   din[k] += 0.25 dout[max(2k-1, 0)] + 0.75 dout[2k] + 0.75 dout[2k+1]
 *           + 0.25 dout[min(2k+2, 2K-1)].
 * The interpolation is separable: rows (H, and D in 3-D) are blended first into a small
 * stack tile, then the tile is expanded (forward) or gathered (backward) along W. The
 * backward is a gather over inputs, so each thread writes only its own slices of din.
 */
#include "dakd/nn.h"

enum { TILE = 256 }; /* input columns per tile: tiles live on the stack, in L1 */
/* Below this many floats a kernel runs on one thread: a parallel region costs a few us,
 * and a whole time slice when the cores are shared. */
enum { PAR_MIN = 1 << 15 };

void dk_upsample_shape_make_axes(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h,
                                 int64_t w, const int k[3]) {
    DK_ASSERT(s && k && n > 0 && c > 0 && d > 0 && h > 0 && w > 0);
    for (int a = 0; a < 3; a++) DK_ASSERT(k[a] == 1 || k[a] == 2);
    *s = (dk_pool_shape){.n = n, .c = c, .id = d, .ih = h, .iw = w,
                         .od = k[0] * d, .oh = k[1] * h, .ow = k[2] * w,
                         .kd = k[0], .kh = k[1], .kw = k[2]};
}

void dk_upsample_shape_make(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h,
                            int64_t w) {
    const int k[3] = {d == 1 ? 1 : 2, 2, 2};
    dk_upsample_shape_make_axes(s, n, c, d, h, w, k);
}

static void check_shape(const dk_pool_shape *s) {
    DK_ASSERT(s->n > 0 && s->c > 0 && s->id > 0 && s->ih > 0 && s->iw > 0);
    DK_ASSERT((s->kd == 1 || s->kd == 2) && (s->kh == 1 || s->kh == 2) &&
              (s->kw == 1 || s->kw == 2));
    DK_ASSERT(s->od == s->kd * s->id && s->oh == s->kh * s->ih && s->ow == s->kw * s->iw);
}

static int64_t clampi(int64_t v, int64_t hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* Forward taps along one axis for output j of an axis with k inputs: idx[2], wt[2]. */
static void fwd_taps(int64_t j, int64_t k, int64_t *idx, float *wt) {
    int64_t h = j / 2;
    if (j % 2 == 0) {
        idx[0] = clampi(h - 1, k - 1), wt[0] = 0.25f;
        idx[1] = h, wt[1] = 0.75f;
    } else {
        idx[0] = h, wt[0] = 0.75f;
        idx[1] = clampi(h + 1, k - 1), wt[1] = 0.25f;
    }
}

/* Backward taps along one axis for input i of an axis with k inputs (2k outputs). */
static void bwd_taps(int64_t i, int64_t k, int64_t *idx, float *wt) {
    static const float w4[4] = {0.25f, 0.75f, 0.75f, 0.25f};
    for (int t = 0; t < 4; t++) {
        idx[t] = clampi(2 * i - 1 + t, 2 * k - 1);
        wt[t] = w4[t];
    }
}

/* dst[t] (=|+=) sum_q wt[q] * rows[q][col + t], t < len, for q in [q0, q0 + 2 or 4). */
static void blend_group(float *dst, const float *const *rows, const float *wt, int q0, int nq,
                        int64_t col, int64_t len, int add) {
    const float *a = rows[q0] + col, *b = rows[q0 + 1] + col;
    const float wa = wt[q0], wb = wt[q0 + 1];
    if (nq == 2) {
        for (int64_t t = 0; t < len; t++)
            dst[t] = (add ? dst[t] : 0.0f) + wa * a[t] + wb * b[t];
        return;
    }
    const float *c = rows[q0 + 2] + col, *d = rows[q0 + 3] + col;
    const float wc = wt[q0 + 2], wd = wt[q0 + 3];
    for (int64_t t = 0; t < len; t++)
        dst[t] = (add ? dst[t] : 0.0f) + (wa * a[t] + wb * b[t]) + (wc * c[t] + wd * d[t]);
}

/* r[t] = sum_q wt[q] * rows[q][j_t] for t in [0, len + 2): j_0 = lo, j_t = col + t - 1 for
 * 1 <= t <= len, j_{len+1} = hi. The rows are blended four at a time (nrows is 2, 4 or 16),
 * so the tile is loaded and stored once per four rows (nrows 8 with a factor-1 axis). */
static void blend(float *r, const float *const *rows, const float *wt, int nrows, int64_t lo,
                  int64_t col, int64_t len, int64_t hi) {
    for (int q = 0; q < nrows; q += 4) {
        int nq = nrows - q < 4 ? 2 : 4;
        blend_group(r + 1, rows, wt, q, nq, col, len, q > 0);
        blend_group(r, rows, wt, q, nq, lo, 1, q > 0);
        blend_group(r + len + 1, rows, wt, q, nq, hi, 1, q > 0);
    }
}

void dk_upsample2_forward(float *out, const float *in, const dk_pool_shape *s) {
    DK_ASSERT(out && in && s);
    check_shape(s);
    const int64_t iw = s->iw, ow = s->ow, islice = s->ih * iw;
    const int64_t iplane = s->id * islice, oplane = s->od * s->oh * ow;
    const int64_t rows_total = s->n * s->c * s->od * s->oh;
#pragma omp parallel for schedule(static) if (rows_total * ow >= PAR_MIN)
    for (int64_t row = 0; row < rows_total; row++) {
        int64_t y = row % s->oh, z = (row / s->oh) % s->od, p = row / (s->oh * s->od);
        /* an axis of factor 1 copies: its second tap has weight 0 */
        int64_t hy[2] = {y, y}, hz[2] = {z, z};
        float wy[2] = {1.0f, 0.0f}, wz[2] = {1.0f, 0.0f};
        if (s->kh == 2) fwd_taps(y, s->ih, hy, wy);
        if (s->kd == 2) fwd_taps(z, s->id, hz, wz);
        const float *rows[4];
        float wt[4];
        int nrows = 0;
        for (int a = 0; a < s->kd; a++)
            for (int b = 0; b < 2; b++) {
                rows[nrows] = in + p * iplane + hz[a] * islice + hy[b] * iw;
                wt[nrows++] = wz[a] * wy[b];
            }
        float *dst = out + p * oplane + (z * s->oh + y) * ow;
        float r[TILE + 2];
        for (int64_t x0 = 0; x0 < iw; x0 += TILE) {
            int64_t len = iw - x0 < TILE ? iw - x0 : TILE;
            blend(r, rows, wt, nrows, clampi(x0 - 1, iw - 1), x0, len, clampi(x0 + len, iw - 1));
            float *o = dst + s->kw * x0;
            if (s->kw == 1) {
                for (int64_t t = 0; t < len; t++) o[t] = r[t + 1];
                continue;
            }
            for (int64_t t = 0; t < len; t++) {
                o[2 * t] = 0.25f * r[t] + 0.75f * r[t + 1];
                o[2 * t + 1] = 0.75f * r[t + 1] + 0.25f * r[t + 2];
            }
        }
    }
}

void dk_upsample2_backward(float *din, const float *dout, const dk_pool_shape *s) {
    DK_ASSERT(dout && s);
    check_shape(s);
    if (!din) return;
    const int64_t iw = s->iw, ow = s->ow, oslice = s->oh * ow;
    const int64_t iplane = s->id * s->ih * iw, oplane = s->od * oslice;
    const int64_t rows_total = s->n * s->c * s->id * s->ih;
#pragma omp parallel for schedule(static) if (rows_total * ow >= PAR_MIN)
    for (int64_t row = 0; row < rows_total; row++) {
        int64_t y = row % s->ih, z = (row / s->ih) % s->id, p = row / (s->ih * s->id);
        int64_t hy[4] = {y, y, 0, 0}, hz[4] = {z, 0, 0, 0};
        float wy[4] = {1.0f, 0.0f, 0.0f, 0.0f}, wz[4] = {1.0f, 0.0f, 0.0f, 0.0f};
        int nz = 1, ny = 2; /* factor 1 along h: one tap, padded to two of weight 0 */
        if (s->kh == 2) bwd_taps(y, s->ih, hy, wy), ny = 4;
        if (s->kd == 2) bwd_taps(z, s->id, hz, wz), nz = 4;
        const float *rows[16];
        float wt[16];
        int nrows = 0;
        for (int a = 0; a < nz; a++)
            for (int b = 0; b < ny; b++) {
                rows[nrows] = dout + p * oplane + hz[a] * oslice + hy[b] * ow;
                wt[nrows++] = wz[a] * wy[b];
            }
        float *dst = din + p * iplane + (z * s->ih + y) * iw;
        float R[2 * TILE + 2];
        for (int64_t x0 = 0; x0 < iw; x0 += TILE) {
            int64_t len = iw - x0 < TILE ? iw - x0 : TILE;
            float *d = dst + x0;
            if (s->kw == 1) {
                blend(R, rows, wt, nrows, clampi(x0 - 1, ow - 1), x0, len,
                      clampi(x0 + len, ow - 1));
                for (int64_t t = 0; t < len; t++) d[t] += R[t + 1];
                continue;
            }
            blend(R, rows, wt, nrows, clampi(2 * x0 - 1, ow - 1), 2 * x0, 2 * len,
                  clampi(2 * x0 + 2 * len, ow - 1));
            for (int64_t t = 0; t < len; t++)
                d[t] += 0.25f * R[2 * t] + 0.75f * R[2 * t + 1] + 0.75f * R[2 * t + 2] +
                        0.25f * R[2 * t + 3];
        }
    }
}
