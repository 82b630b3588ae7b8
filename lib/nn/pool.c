/*
 * Max-pooling, window 2 and stride 2 (depth left alone in 2-D), as PyTorch's
 * nn.MaxPool2d/3d(2): odd sizes floor (the last row/column/slice is dropped), the
 * argmax is the first maximum in window order (depth, row, column), which is also
 * increasing flat index. Windows do not overlap, so the backward is a scatter in which
 * every input voxel receives at most one term: OpenMP over (n, c) planes needs no
 * atomics.
 */
#include "dakd/nn.h"

#include <stdint.h>

/* Below this many floats a kernel runs on one thread: a parallel region costs a few us,
 * and a whole time slice when the cores are shared. */
enum { PAR_MIN = 1 << 15 };

void dk_pool_shape_make(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) {
    DK_ASSERT(s && n > 0 && c > 0 && d > 0 && h >= 2 && w >= 2);
    *s = (dk_pool_shape){.n = n,
                         .c = c,
                         .id = d,
                         .ih = h,
                         .iw = w,
                         .od = d == 1 ? 1 : d / 2,
                         .oh = h / 2,
                         .ow = w / 2,
                         .kd = d == 1 ? 1 : 2};
}

static void check_shape(const dk_pool_shape *s) {
    DK_ASSERT(s->n > 0 && s->c > 0 && s->od > 0 && s->oh > 0 && s->ow > 0);
    DK_ASSERT(s->kd == 1 ? s->id == 1 && s->od == 1 : s->kd == 2 && s->od == s->id / 2);
    DK_ASSERT(s->oh == s->ih / 2 && s->ow == s->iw / 2);
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

/* One output row of a 3-D window: the 2x2 window in slices r0 and r0 + plane. */
static void pool_row3(float *out, int32_t *am, const float *r0, int32_t base, int64_t iw,
                      int64_t plane, int64_t ow) {
    int32_t off[8]; /* window order: depth, row, column */
    for (int j = 0; j < 8; j++)
        off[j] = (int32_t)((j >> 2) * plane + ((j >> 1) & 1) * iw + (j & 1));
    for (int64_t x = 0; x < ow; x++) {
        const float *p = r0 + 2 * x;
        float m = p[0];
        int32_t k = 0;
        for (int j = 1; j < 8; j++) {
            float v = p[off[j]];
            if (v > m) {
                m = v;
                k = off[j];
            }
        }
        out[x] = m;
        am[x] = base + (int32_t)(2 * x) + k;
    }
}

void dk_maxpool_forward(float *out, int32_t *argmax, const float *in, const dk_pool_shape *s) {
    DK_ASSERT(out && argmax && in && s);
    check_shape(s);
    const int64_t iplane = s->id * s->ih * s->iw, oplane = s->od * s->oh * s->ow;
    const int64_t islice = s->ih * s->iw, planes = s->n * s->c;
#pragma omp parallel for schedule(static) if (planes * iplane >= PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        const float *src = in + p * iplane;
        for (int64_t z = 0; z < s->od; z++) {
            for (int64_t y = 0; y < s->oh; y++) {
                int64_t o = p * oplane + (z * s->oh + y) * s->ow;
                int64_t base = (z * s->kd) * islice + 2 * y * s->iw;
                if (s->kd == 1)
                    pool_row2(out + o, argmax + o, src + base, (int32_t)base, s->iw, s->ow);
                else
                    pool_row3(out + o, argmax + o, src + base, (int32_t)base, s->iw, islice, s->ow);
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
