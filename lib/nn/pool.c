/*
 * Max-pooling with window = stride per axis, each 1 or 2 (2 on every axis, depth left alone
 * in 2-D, unless made by dk_pool_shape_make_axes: 1x2x2 pools each slice of a thick-slice
 * volume alone), as PyTorch's nn.MaxPool2d/3d(k): odd sizes floor (the last row/column/slice
 * is dropped), the argmax is the first maximum in window order (depth, row, column), which
 * is also increasing flat index. Windows do not overlap, so the backward is a scatter in
 * which every input voxel receives at most one term: OpenMP over (n, c) planes needs no
 * atomics.
 */
#include "dakd/nn.h"

#include <stdint.h>

/* Below this many floats a kernel runs on one thread: a parallel region costs a few us,
 * and a whole time slice when the cores are shared. */
enum { PAR_MIN = 1 << 15 };

void dk_pool_shape_make_axes(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h,
                             int64_t w, const int k[3]) {
    DK_ASSERT(s && k && n > 0 && c > 0);
    for (int a = 0; a < 3; a++) DK_ASSERT(k[a] == 1 || k[a] == 2);
    DK_ASSERT(d >= k[0] && h >= k[1] && w >= k[2]);
    *s = (dk_pool_shape){.n = n, .c = c, .id = d, .ih = h, .iw = w,
                         .od = d / k[0], .oh = h / k[1], .ow = w / k[2],
                         .kd = k[0], .kh = k[1], .kw = k[2]};
}

void dk_pool_shape_make(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) {
    DK_ASSERT(s && n > 0 && c > 0 && d > 0 && h >= 2 && w >= 2);
    const int k[3] = {d == 1 ? 1 : 2, 2, 2};
    dk_pool_shape_make_axes(s, n, c, d, h, w, k);
}

static void check_shape(const dk_pool_shape *s) {
    DK_ASSERT(s->n > 0 && s->c > 0 && s->od > 0 && s->oh > 0 && s->ow > 0);
    DK_ASSERT((s->kd == 1 || s->kd == 2) && (s->kh == 1 || s->kh == 2) &&
              (s->kw == 1 || s->kw == 2));
    DK_ASSERT(s->od == s->id / s->kd && s->oh == s->ih / s->kh && s->ow == s->iw / s->kw);
    DK_ASSERT(s->id * s->ih * s->iw <= INT32_MAX); /* argmax is an int32 plane index */
}

/* One output row of a 2-D window: rows r0, r1 of the input (r1 = r0 + iw). */
static void pool_row2(float *out, int32_t *am, const float *r0, int32_t base, int64_t iw,
                      int64_t ow) {
    for (int64_t x = 0; x < ow; x++) {
        const float *p = r0 + 2 * x;
        float m = p[0];
        int32_t k = 0;
        if (p[1] > m) {
            m = p[1];
            k = 1;
        }
        if (p[iw] > m) {
            m = p[iw];
            k = (int32_t)iw;
        }
        if (p[iw + 1] > m) {
            m = p[iw + 1];
            k = (int32_t)iw + 1;
        }
        out[x] = m;
        am[x] = base + (int32_t)(2 * x) + k;
    }
}

/* One output row of any other window (kd x kh x kw, 2x2x2 in 3-D): its voxels at off[],
 * in window order (depth, row, column), from column kw * x of row r0. */
static void pool_row_any(float *out, int32_t *am, const float *r0, int32_t base,
                         const dk_pool_shape *s, int64_t plane) {
    int32_t off[8];
    int nk = 0;
    for (int a = 0; a < s->kd; a++)
        for (int b = 0; b < s->kh; b++)
            for (int c = 0; c < s->kw; c++) off[nk++] = (int32_t)(a * plane + b * s->iw + c);
    for (int64_t x = 0; x < s->ow; x++) {
        const float *p = r0 + s->kw * x;
        float m = p[0];
        int32_t k = 0;
        for (int j = 1; j < nk; j++) {
            float v = p[off[j]];
            if (v > m) {
                m = v;
                k = off[j];
            }
        }
        out[x] = m;
        am[x] = base + (int32_t)(s->kw * x) + k;
    }
}

void dk_maxpool_forward(float *out, int32_t *argmax, const float *in, const dk_pool_shape *s) {
    DK_ASSERT(out && argmax && in && s);
    check_shape(s);
    const int64_t iplane = s->id * s->ih * s->iw, oplane = s->od * s->oh * s->ow;
    const int64_t islice = s->ih * s->iw, planes = s->n * s->c;
    const int row2 = s->kd == 1 && s->kh == 2 && s->kw == 2; /* the 2-D window, unrolled */
#pragma omp parallel for schedule(static) if (planes * iplane >= PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        const float *src = in + p * iplane;
        for (int64_t z = 0; z < s->od; z++) {
            for (int64_t y = 0; y < s->oh; y++) {
                int64_t o = p * oplane + (z * s->oh + y) * s->ow;
                int64_t base = (z * s->kd) * islice + s->kh * y * s->iw;
                if (row2)
                    pool_row2(out + o, argmax + o, src + base, (int32_t)base, s->iw, s->ow);
                else
                    pool_row_any(out + o, argmax + o, src + base, (int32_t)base, s, islice);
            }
        }
    }
}

void dk_maxpool_backward(float *din, const float *dout, const int32_t *argmax,
                         const dk_pool_shape *s) {
    DK_ASSERT(dout && argmax && s);
    check_shape(s);
    if (!din) return;
    const int64_t iplane = s->id * s->ih * s->iw, oplane = s->od * s->oh * s->ow;
    const int64_t planes = s->n * s->c;
#pragma omp parallel for schedule(static) if (planes * iplane >= PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        float *dst = din + p * iplane;
        const float *g = dout + p * oplane;
        const int32_t *am = argmax + p * oplane;
        for (int64_t i = 0; i < oplane; i++)
            dst[am[i]] += g[i];
    }
}
