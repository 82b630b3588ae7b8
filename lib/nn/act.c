/*
 * Element-wise and channel-wise layers: (leaky) ReLU, channel concat, softmax and
 * log-softmax over channels at a temperature, inverted dropout.
 *
 * Element-wise loops run over blocks of BLOCK elements under OpenMP (each thread writes its
 * own block); channel-wise ones work on tiles of TILE voxels, with the running max and sum
 * for a tile on the stack, so every inner loop walks contiguous memory along s.
 */
#include "dakd/nn.h"

#include <math.h>
#include <string.h>

enum { BLOCK = 1 << 15, TILE = 256 };

/* Below this many floats a kernel runs on one thread: a parallel region costs a few us,
 * and a whole time slice when the cores are shared. */
enum { PAR_MIN = 1 << 15 };

/* ------------------------------------------------------------------ ReLU */

/* y = x > 0 ? x : slope * x. Written as x < 0 so a NaN passes through as in PyTorch, and the
 * leaky case as max(x, 0) + slope * min(x, 0): with a multiply inside one arm of the select,
 * GCC (trapping math) keeps a branch, which mispredicts on random signs and stays scalar. */
void dk_relu_forward(float *out, const float *in, int64_t n, float slope) {
    DK_ASSERT(out && in && n >= 0 && slope >= 0);
    const int64_t nb = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * BLOCK, i1 = i0 + BLOCK < n ? i0 + BLOCK : n;
        if (slope == 0) {
            for (int64_t i = i0; i < i1; i++)
                out[i] = in[i] < 0 ? 0.0f : in[i];
        } else {
            for (int64_t i = i0; i < i1; i++) {
                float v = in[i], pos = v < 0 ? 0.0f : v, neg = v < 0 ? v : 0.0f;
                out[i] = pos + slope * neg;
            }
        }
    }
}

void dk_relu_backward(float *din, const float *dout, const float *y, int64_t n, float slope) {
    DK_ASSERT(dout && y && n >= 0);
    if (!din) return;
    const int64_t nb = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * BLOCK, i1 = i0 + BLOCK < n ? i0 + BLOCK : n;
        for (int64_t i = i0; i < i1; i++) {
            float k = y[i] > 0.0f ? 1.0f : slope; /* a select of constants: no branch */
            din[i] += dout[i] * k;
        }
    }
}

/* ------------------------------------------------------------------ concat */

void dk_concat_forward(float *out, const float *a, const float *b, int64_t n, int64_t ca,
                       int64_t cb, int64_t s) {
    DK_ASSERT(out && a && b && n > 0 && ca > 0 && cb > 0 && s > 0);
    const size_t la = (size_t)(ca * s), lb = (size_t)(cb * s);
    for (int64_t i = 0; i < n; i++) {
        float *o = out + (size_t)i * (la + lb);
        memcpy(o, a + (size_t)i * la, la * sizeof *o);
        memcpy(o + la, b + (size_t)i * lb, lb * sizeof *o);
    }
}

static void add_into(float *dst, const float *src, int64_t len) {
    for (int64_t i = 0; i < len; i++)
        dst[i] += src[i];
}

/* da (n, ca, s) += dout[:, :ca]; db (n, cb, s) += dout[:, ca:]; either may be NULL. */
void dk_concat_backward(float *da, float *db, const float *dout, int64_t n, int64_t ca, int64_t cb,
                        int64_t s) {
    DK_ASSERT(dout && n > 0 && ca > 0 && cb > 0 && s > 0);
    const int64_t la = ca * s, lb = cb * s;
#pragma omp parallel for schedule(static) if (n * (la + lb) >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *g = dout + i * (la + lb);
        if (da) add_into(da + i * la, g, la);
        if (db) add_into(db + i * lb, g + la, lb);
    }
}

/* ------------------------------------------------------------------ softmax */

/* One tile of `len` voxels at x (stride s between channels): m = max_k x, then
 * e_k = exp((x_k - m) / T) into out and sum = sum_k e_k. */
static void exp_tile(float *out, float *m, float *sum, const float *x, int64_t c, int64_t s,
                     int64_t len, float inv_t) {
    memcpy(m, x, (size_t)len * sizeof *m);
    for (int64_t k = 1; k < c; k++) {
        const float *xk = x + k * s;
        for (int64_t t = 0; t < len; t++)
            m[t] = xk[t] > m[t] ? xk[t] : m[t];
    }
    for (int64_t t = 0; t < len; t++)
        sum[t] = 0;
    for (int64_t k = 0; k < c; k++) {
        const float *xk = x + k * s;
        float *ok = out + k * s;
        for (int64_t t = 0; t < len; t++) {
            ok[t] = expf((xk[t] - m[t]) * inv_t);
            sum[t] += ok[t];
        }
    }
}

static void softmax_any(float *out, const float *in, int64_t n, int64_t c, int64_t s, float T,
                        int log_space) {
    DK_ASSERT(out && in && n > 0 && c > 0 && s > 0 && T > 0);
    const float inv_t = 1.0f / T;
    const int64_t ntile = (s + TILE - 1) / TILE;
#pragma omp parallel for schedule(static) if (n * c * s >= PAR_MIN)
    for (int64_t job = 0; job < n * ntile; job++) {
        int64_t i = job / ntile, t0 = (job % ntile) * TILE;
        int64_t len = s - t0 < TILE ? s - t0 : TILE;
        const float *x = in + i * c * s + t0;
        float *o = out + i * c * s + t0;
        float m[TILE], sm[TILE];
        exp_tile(o, m, sm, x, c, s, len, inv_t);
        if (log_space) {
            /* log softmax = (x - m) / T - log(sum) */
            for (int64_t t = 0; t < len; t++)
                sm[t] = logf(sm[t]);
            for (int64_t k = 0; k < c; k++)
                for (int64_t t = 0; t < len; t++)
                    o[k * s + t] = (x[k * s + t] - m[t]) * inv_t - sm[t];
        } else {
            for (int64_t t = 0; t < len; t++)
                sm[t] = 1.0f / sm[t];
            for (int64_t k = 0; k < c; k++)
                for (int64_t t = 0; t < len; t++)
                    o[k * s + t] *= sm[t];
        }
    }
}

void dk_softmax_forward(float *out, const float *in, int64_t n, int64_t c, int64_t s, float T) {
    softmax_any(out, in, n, c, s, T, 0);
}

void dk_log_softmax_forward(float *out, const float *in, int64_t n, int64_t c, int64_t s, float T) {
    softmax_any(out, in, n, c, s, T, 1);
}

/* y = softmax(x / T):     dx_k += (1/T) y_k (dy_k - sum_j dy_j y_j).
 * y = log_softmax(x / T): dx_k += (1/T) (dy_k - exp(y_k) sum_j dy_j). */
static void softmax_any_backward(float *din, const float *dout, const float *out, int64_t n,
                                 int64_t c, int64_t s, float T, int log_space) {
    DK_ASSERT(dout && out && n > 0 && c > 0 && s > 0 && T > 0);
    if (!din) return;
    const float inv_t = 1.0f / T;
    const int64_t ntile = (s + TILE - 1) / TILE;
#pragma omp parallel for schedule(static) if (n * c * s >= PAR_MIN)
    for (int64_t job = 0; job < n * ntile; job++) {
        int64_t i = job / ntile, t0 = (job % ntile) * TILE;
        int64_t len = s - t0 < TILE ? s - t0 : TILE, base = i * c * s + t0;
        const float *g = dout + base, *y = out + base;
        float *d = din + base, dot[TILE];
        for (int64_t t = 0; t < len; t++)
            dot[t] = 0;
        for (int64_t k = 0; k < c; k++)
            for (int64_t t = 0; t < len; t++)
                dot[t] += log_space ? g[k * s + t] : g[k * s + t] * y[k * s + t];
        for (int64_t k = 0; k < c; k++) {
            const float *gk = g + k * s, *yk = y + k * s;
            float *dk = d + k * s;
            if (log_space)
                for (int64_t t = 0; t < len; t++)
                    dk[t] += inv_t * (gk[t] - expf(yk[t]) * dot[t]);
            else
                for (int64_t t = 0; t < len; t++)
                    dk[t] += inv_t * yk[t] * (gk[t] - dot[t]);
        }
    }
}

void dk_softmax_backward(float *din, const float *dout, const float *out, int64_t n, int64_t c,
                         int64_t s, float T) {
    softmax_any_backward(din, dout, out, n, c, s, T, 0);
}

void dk_log_softmax_backward(float *din, const float *dout, const float *out, int64_t n, int64_t c,
                             int64_t s, float T) {
    softmax_any_backward(din, dout, out, n, c, s, T, 1);
}

/* ------------------------------------------------------------------ dropout */

/* Kept with probability 1 - p (a uniform draw u >= p), scaled by 1 / (1 - p). The draws are
 * sequential in element order, so the mask depends only on the RNG state. */
void dk_dropout_forward(float *out, uint8_t *mask, const float *in, int64_t n, float p,
                        dk_rng *rng) {
    DK_ASSERT(out && mask && in && n >= 0 && p >= 0 && p < 1);
    if (p == 0) {
        if (out != in) memcpy(out, in, (size_t)n * sizeof *out);
        memset(mask, 1, (size_t)n);
        return;
    }
    DK_ASSERT(rng);
    const float scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) {
        mask[i] = dk_rng_uniform(rng) >= p;
        out[i] = in[i] * (mask[i] ? scale : 0.0f);
    }
}

void dk_dropout_backward(float *din, const float *dout, const uint8_t *mask, int64_t n, float p) {
    DK_ASSERT(dout && mask && n >= 0 && p >= 0 && p < 1);
    if (!din) return;
    const float scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) {
        float k = mask[i] ? scale : 0.0f;
        din[i] += dout[i] * k;
    }
}
