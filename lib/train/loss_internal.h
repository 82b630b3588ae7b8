/*
 * Helpers shared by the voxel-wise losses (loss_seg.c, loss_kd.c); not part of the API.
 *
 * Logits are (n, c, s): voxel v = i*s + j of the flat (n, s) grid has its c values at
 * x + i*c*s + j with channel stride s. Per-voxel softmaxes are computed in double.
 */
#ifndef DAKD_TRAIN_LOSS_INTERNAL_H
#define DAKD_TRAIN_LOSS_INTERNAL_H

#include "dakd/train.h"

#include <math.h>

/* Voxels are cut into LOSS_NCHUNK fixed chunks whatever the thread count, each summed in
 * double and added in index order; below LOSS_PAR_MIN floats the loop runs on one thread. */
enum { LOSS_NCHUNK = 64, LOSS_PAR_MIN = 1 << 15, LOSS_MAX_SUMS = 3 * DK_LOSS_MAX_CLASSES };

/* fn adds its `k` sums over flat voxels [v0, v1) into acc (k, zeroed by the caller). */
typedef void (*dk_loss_range_fn)(double *acc, void *ctx, int64_t v0, int64_t v1);

/* out (k) = the sums of fn over the nv voxels, chunk by chunk in a fixed order; k <=
 * LOSS_MAX_SUMS. `floats` (the data size) decides whether threads are worth it. */
void dk_loss_chunked_sums(double *out, int k, dk_loss_range_fn fn, void *ctx, int64_t nv,
                          int64_t floats);

/* Offset of voxel v's channel 0 in a (n, c, s) buffer. */
static inline int64_t dk_loss_vox_offset(int64_t v, int64_t c, int64_t s) {
    return (v / s) * c * s + v % s;
}

/* lp (c) = log softmax(x * inv_t) over the c channel-strided values at x (stride s). */
static inline void dk_loss_log_softmax(double *lp, const float *x, int64_t c, int64_t s,
                                       double inv_t) {
    double m = -HUGE_VAL;
    for (int64_t k = 0; k < c; k++) {
        lp[k] = (double)x[k * s] * inv_t;
        if (lp[k] > m) m = lp[k];
    }
    double sum = 0;
    for (int64_t k = 0; k < c; k++)
        sum += exp(lp[k] - m);
    double lse = m + log(sum);
    for (int64_t k = 0; k < c; k++)
        lp[k] -= lse;
}

/* Voxels of (nv) counted by mask (NULL: all). */
int64_t dk_loss_count_mask(const uint8_t *mask, int64_t nv);

#endif
