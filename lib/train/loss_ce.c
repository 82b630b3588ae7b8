/*
 * Softmax cross-entropy over channels (see dakd/train.h):
 *   L = (1/V) sum_{v: label != 255} (log sum_k exp(x_kv - m_v) + m_v - x_{label_v, v}),
 *   m_v = max_k x_kv,  dL/dx_kv = (softmax_kv - [k == label_v]) / V  (0 on ignored voxels).
 *
 * The voxels (n*s) are cut into NCHUNK fixed chunks whatever the thread count; each chunk
 * sums its loss in double and the chunks are added in index order, so L repeats bit for
 * bit. Inside a chunk, tiles of TILE voxels keep the per-voxel max and sum on the stack and
 * walk each channel contiguously.
 */
#include "dakd/train.h"

#include <math.h>
#include <string.h>

enum { IGNORE = 255, TILE = 256, NCHUNK = 64 };

/* Below this many floats a kernel runs on one thread: a parallel region costs a few us,
 * and a whole time slice when the cores are shared. */
enum { PAR_MIN = 1 << 15 };

/* Loss of `len` voxels of one sample (x, lab at the first voxel; channel stride s), and
 * g * (softmax - onehot) added into dx when dx != NULL. */
static double ce_tile(float *dx, const float *x, const uint8_t *lab, int64_t c, int64_t s,
                      int64_t len, float g) {
    float m[TILE], sum[TILE];
    memcpy(m, x, (size_t)len * sizeof *m);
    for (int64_t k = 1; k < c; k++)
        for (int64_t t = 0; t < len; t++)
            m[t] = x[k * s + t] > m[t] ? x[k * s + t] : m[t];
    memset(sum, 0, sizeof sum);
    for (int64_t k = 0; k < c; k++)
        for (int64_t t = 0; t < len; t++)
            sum[t] += expf(x[k * s + t] - m[t]);
    double loss = 0;
    for (int64_t t = 0; t < len; t++) {
        if (lab[t] == IGNORE) continue;
        DK_ASSERT(lab[t] < c);
        loss += log((double)sum[t]) + (double)m[t] - (double)x[lab[t] * s + t];
    }
    if (!dx) return loss;
    for (int64_t t = 0; t < len; t++)
        sum[t] = lab[t] == IGNORE ? 0.0f : g / sum[t];
    for (int64_t k = 0; k < c; k++)
        for (int64_t t = 0; t < len; t++)
            dx[k * s + t] += expf(x[k * s + t] - m[t]) * sum[t];
    for (int64_t t = 0; t < len; t++)
        if (lab[t] != IGNORE) dx[lab[t] * s + t] -= g;
    return loss;
}

/* Loss over flat voxels [v0, v1) of the (n, s) label grid, tile by tile. */
static double ce_range(float *dx, const float *x, const uint8_t *labels, int64_t c, int64_t s,
                       int64_t v0, int64_t v1, float g) {
    double loss = 0;
    while (v0 < v1) {
        int64_t i = v0 / s, j = v0 % s;
        int64_t len = s - j;
        if (len > v1 - v0) len = v1 - v0;
        if (len > TILE) len = TILE;
        int64_t o = i * c * s + j;
        loss += ce_tile(dx ? dx + o : NULL, x + o, labels + v0, c, s, len, g);
        v0 += len;
    }
    return loss;
}

double dk_loss_ce(float *dlogits, const float *logits, const uint8_t *labels, int64_t n, int64_t c,
                  int64_t s, float scale) {
    DK_ASSERT(logits && labels && n > 0 && c > 0 && c < IGNORE && s > 0);
    const int64_t nv = n * s;
    int64_t counted = 0;
    for (int64_t v = 0; v < nv; v++)
        counted += labels[v] != IGNORE;
    if (counted == 0) return 0.0;
    const float g = (float)((double)scale / (double)counted);
    double part[NCHUNK];
#pragma omp parallel for schedule(static) if (nv * c >= PAR_MIN)
    for (int k = 0; k < NCHUNK; k++)
        part[k] =
            ce_range(dlogits, logits, labels, c, s, nv * k / NCHUNK, nv * (k + 1) / NCHUNK, g);
    double loss = 0;
    for (int k = 0; k < NCHUNK; k++)
        loss += part[k];
    return loss / (double)counted;
}
