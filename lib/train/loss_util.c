/*
 * The fixed-order chunked reduction behind the voxel-wise losses, and the label/mask
 * helpers (see loss_internal.h and dakd/train.h).
 */
#include "loss_internal.h"

#include <string.h>

void dk_loss_chunked_sums(double *out, int k, dk_loss_range_fn fn, void *ctx, int64_t nv,
                          int64_t floats) {
    DK_ASSERT(k >= 1 && k <= LOSS_MAX_SUMS && nv >= 0);
    double part[LOSS_NCHUNK][LOSS_MAX_SUMS];
#pragma omp parallel for schedule(static) if (floats >= LOSS_PAR_MIN)
    for (int ch = 0; ch < LOSS_NCHUNK; ch++) {
        memset(part[ch], 0, (size_t)k * sizeof(double));
        fn(part[ch], ctx, nv * ch / LOSS_NCHUNK, nv * (ch + 1) / LOSS_NCHUNK);
    }
    for (int j = 0; j < k; j++) {
        double sum = 0;
        for (int ch = 0; ch < LOSS_NCHUNK; ch++)
            sum += part[ch][j];
        out[j] = sum;
    }
}

LOSS_CLONES
void dk_loss_softmax_tile(double *e, double *rsum, double *lse, double *mx, const float *x,
                          int64_t c, int64_t s, int64_t len, double inv_t) {
    DK_ASSERT(len >= 1 && len <= LOSS_TILE && c >= 1 && c <= DK_LOSS_MAX_CLASSES);
    double m[LOSS_TILE], sum[LOSS_TILE];
    for (int64_t t = 0; t < len; t++)
        m[t] = (double)x[t] * inv_t;
    for (int64_t k = 1; k < c; k++)
        for (int64_t t = 0; t < len; t++) {
            double v = (double)x[k * s + t] * inv_t;
            m[t] = v > m[t] ? v : m[t];
        }
    memset(sum, 0, (size_t)len * sizeof *sum);
    for (int64_t k = 0; k < c; k++) {
        double *ek = e + k * LOSS_TILE;
        for (int64_t t = 0; t < len; t++)
            ek[t] = (double)x[k * s + t] * inv_t - m[t];
        loss_exp_tile(ek, len);
        for (int64_t t = 0; t < len; t++)
            sum[t] += ek[t];
    }
    for (int64_t t = 0; t < len; t++)
        rsum[t] = 1.0 / sum[t];
    if (lse) {
        memcpy(lse, sum, (size_t)len * sizeof *lse);
        loss_log_tile(lse, len);
        for (int64_t t = 0; t < len; t++)
            lse[t] += m[t];
    }
    if (mx) memcpy(mx, m, (size_t)len * sizeof *mx);
}

int64_t dk_loss_count_mask(const uint8_t *mask, int64_t nv) {
    if (!mask) return nv;
    int64_t counted = 0;
    for (int64_t v = 0; v < nv; v++)
        counted += mask[v] != 0;
    return counted;
}

void dk_labels_apply_mask(uint8_t *labels, const uint8_t *mask, int64_t nv) {
    DK_ASSERT(labels && nv >= 0);
    if (!mask) return;
    for (int64_t v = 0; v < nv; v++)
        if (!mask[v]) labels[v] = DK_IGNORE_LABEL;
}

void dk_mask_pool(uint8_t *out, const uint8_t *mask, int64_t n, int64_t d, int64_t h, int64_t w,
                  int64_t fd, int64_t fh, int64_t fw) {
    DK_ASSERT(out && n >= 0 && fd >= 1 && fh >= 1 && fw >= 1);
    DK_ASSERT(d % fd == 0 && h % fh == 0 && w % fw == 0);
    const int64_t od = d / fd, oh = h / fh, ow = w / fw, os = od * oh * ow, s = d * h * w;
    if (!mask) {
        memset(out, 1, (size_t)(n * os));
        return;
    }
    memset(out, 0, (size_t)(n * os));
    for (int64_t i = 0; i < n; i++)
        for (int64_t z = 0; z < d; z++)
            for (int64_t y = 0; y < h; y++) {
                const uint8_t *row = mask + i * s + (z * h + y) * w;
                uint8_t *dst = out + i * os + ((z / fd) * oh + y / fh) * ow;
                for (int64_t x = 0; x < w; x++)
                    dst[x / fw] |= row[x] != 0;
            }
}

void dk_mean_pool(float *out, const float *in, int64_t planes, int64_t d, int64_t h, int64_t w,
                  int64_t fd, int64_t fh, int64_t fw) {
    DK_ASSERT(out && in && planes >= 0 && fd >= 1 && fh >= 1 && fw >= 1);
    DK_ASSERT(d % fd == 0 && h % fh == 0 && w % fw == 0);
    const int64_t od = d / fd, oh = h / fh, ow = w / fw, os = od * oh * ow;
    const double inv = 1.0 / (double)(fd * fh * fw);
    for (int64_t p = 0; p < planes; p++)
        for (int64_t o = 0; o < os; o++) {
            const int64_t z0 = o / (oh * ow) * fd, y0 = o / ow % oh * fh, x0 = o % ow * fw;
            double sum = 0;
            for (int64_t z = z0; z < z0 + fd; z++)
                for (int64_t y = y0; y < y0 + fh; y++)
                    for (int64_t x = x0; x < x0 + fw; x++)
                        sum += in[p * d * h * w + (z * h + y) * w + x];
            out[p * os + o] = (float)(sum * inv);
        }
}
