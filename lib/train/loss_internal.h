/*
 * Helpers shared by the voxel-wise losses (loss_ce.c, loss_seg.c, loss_kd.c); not part of
 * the API.
 *
 * Logits are (n, c, s): voxel v = i*s + j of the flat (n, s) grid has its c values at
 * x + i*c*s + j with channel stride s. The losses walk TILES of up to LOSS_TILE voxels that
 * are contiguous within one sample, classes outer and voxels inner, so every per-class loop
 * runs over contiguous values and vectorises. Softmaxes, loss terms and sums are double
 * (exponentials and logs by loss_exp_tile and loss_log_tile, which vectorise), only the
 * gradients written are float: the loss keeps double accuracy, so finite
 * differences of it still check the gradients.
 *
 * Determinism: the voxels are cut into LOSS_NCHUNK fixed chunks whatever the thread count,
 * tiles start at chunk and sample boundaries, each chunk sums in double and the chunks are
 * added in index order, so a loss and its gradient are the same for every thread count.
 */
#ifndef DAKD_TRAIN_LOSS_INTERNAL_H
#define DAKD_TRAIN_LOSS_INTERNAL_H

#include "dakd/train.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Below LOSS_PAR_MIN floats the loop runs on one thread: a parallel region costs a few us,
 * and a whole time slice when the cores are shared. */
enum {
    LOSS_NCHUNK = 64,
    LOSS_PAR_MIN = 1 << 15,
    LOSS_MAX_SUMS = 3 * DK_LOSS_MAX_CLASSES,
    LOSS_TILE = 128
};

/* The tile loops are cloned for AVX2 (GCC target_clones, chosen at load time): 4 doubles a
 * vector instead of SSE2's 2. The build does not contract a * b + c into FMA (ISO C mode),
 * so both clones round every operation alike and give the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LOSS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LOSS_CLONES
#endif

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

/* Voxels of the tile starting at flat voxel v of a range ending at v1: up to LOSS_TILE,
 * never across a sample boundary (so the tile's channel-k values are contiguous). */
static inline int64_t dk_loss_tile_len(int64_t v, int64_t v1, int64_t s) {
    int64_t len = s - v % s;
    if (len > v1 - v) len = v1 - v;
    return len < LOSS_TILE ? len : LOSS_TILE;
}

/* x (len) = e^x in place for x <= 0 (softmax arguments x - max), in double: x = n ln 2 + r,
 * |r| <= ln 2 / 2 (Cody-Waite split of ln 2), e^r by its Taylor polynomial of degree 12
 * (truncation < 2e-16 relative), times 2^n built in the exponent bits (n read from the
 * rounding constant 1.5 * 2^52, so no double-to-int64 conversion, which SSE2/AVX2 lack).
 * Within 2 ulp of exp(); x below -708 gives e^-708 (about 3e-308, never a denormal),
 * which next to the voxel's maximum term (1) is 0 to double precision. Plain C without
 * branches: the loop vectorises, and the result does not depend on the vector width. */
static inline void loss_exp_tile(double *x, int64_t len) {
    const double log2e = 1.4426950408889634, ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10, magic = 6755399441055744.0;
    for (int64_t t = 0; t < len; t++) {
        double v = x[t] < -708.0 ? -708.0 : x[t];
        double k = v * log2e + magic; /* magic + n, n = nearest integer in [-1022, 0] */
        double n = k - magic;
        double r = (v - n * ln2_hi) - n * ln2_lo;
        double p = 1.0 / 479001600.0;
        p = p * r + 1.0 / 39916800.0;
        p = p * r + 1.0 / 3628800.0;
        p = p * r + 1.0 / 362880.0;
        p = p * r + 1.0 / 40320.0;
        p = p * r + 1.0 / 5040.0;
        p = p * r + 1.0 / 720.0;
        p = p * r + 1.0 / 120.0;
        p = p * r + 1.0 / 24.0;
        p = p * r + 1.0 / 6.0;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        union {
            double d;
            uint64_t i; /* unsigned: a NaN's bits shift without overflow (and stay NaN) */
        } kb = {.d = k}, two_n;
        two_n.i = (kb.i - UINT64_C(0x4338000000000000) + 1023) << 52; /* 2^n, n + 1023 > 0 */
        x[t] = p * two_n.d;
    }
}

/* x (len) = log x in place, in double: x = 2^e f with f in [sqrt(1/2), sqrt(2)), log f =
 * 2 atanh(u) = 2 (u + u^3/3 + ... + u^23/23), u = (f - 1) / (f + 1), |u| <= 0.172 (the
 * series' tail < 1e-17); e ln 2 with ln 2 split as in loss_exp_tile. Within a few ulp of
 * log(); x below DBL_MIN (0 included) is read as DBL_MIN (callers skip zero terms); NaN
 * and +Inf are returned as they are (a NaN logit must reach the trainer's check). The
 * exponent e is read as a double from the bits (0x433 << 52 | biased e) - 2^52. */
static inline void loss_log_tile(double *x, int64_t len) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double sqrt2 = 1.4142135623730951, two52 = 4503599627370496.0;
    const double tiny = 2.2250738585072014e-308;
    for (int64_t t = 0; t < len; t++) {
        const double in = x[t];
        union {
            double d;
            uint64_t i;
        } u = {.d = in < tiny ? tiny : in}, f, eb;
        f.i = (u.i & UINT64_C(0x000FFFFFFFFFFFFF)) | UINT64_C(0x3FF0000000000000); /* [1, 2) */
        eb.i = (u.i >> 52) | UINT64_C(0x4330000000000000);
        double e = (eb.d - two52) - 1023.0;
        double m = f.d > sqrt2 ? 0.5 * f.d : f.d;
        e = f.d > sqrt2 ? e + 1.0 : e;
        double a = (m - 1.0) / (m + 1.0), a2 = a * a;
        double p = 1.0 / 23.0;
        p = p * a2 + 1.0 / 21.0;
        p = p * a2 + 1.0 / 19.0;
        p = p * a2 + 1.0 / 17.0;
        p = p * a2 + 1.0 / 15.0;
        p = p * a2 + 1.0 / 13.0;
        p = p * a2 + 1.0 / 11.0;
        p = p * a2 + 1.0 / 9.0;
        p = p * a2 + 1.0 / 7.0;
        p = p * a2 + 1.0 / 5.0;
        p = p * a2 + 1.0 / 3.0;
        double r = e * ln2_hi + (e * ln2_lo + (2.0 * a + 2.0 * a * a2 * p));
        x[t] = in <= 1.7976931348623157e308 ? r : in; /* NaN, +Inf: themselves */
    }
}

/* Softmax of one tile of len voxels at x (channel stride s), scaled by inv_t, in double:
 *   e (c, LOSS_TILE) = exp(x_k * inv_t - m),  m = max_k x_k * inv_t,
 *   rsum (len) = 1 / sum_k e_k   (so p_k = e_k * rsum),
 *   lse (len) = m + log(sum_k e_k)   (NULL: not wanted),
 *   mx (len) = m   (NULL: not wanted). */
void dk_loss_softmax_tile(double *e, double *rsum, double *lse, double *mx, const float *x,
                          int64_t c, int64_t s, int64_t len, double inv_t);

/* Sum of v (len): four double lanes over the tile (the same adds for any vector width),
 * then the lanes in order. */
static inline double dk_loss_tile_sum(const double *v, int64_t len) {
    double lane[4] = {0, 0, 0, 0};
    int64_t t = 0;
    for (; t + 4 <= len; t += 4)
        for (int j = 0; j < 4; j++)
            lane[j] += v[t + j];
    double sum = (lane[0] + lane[1]) + (lane[2] + lane[3]);
    for (; t < len; t++)
        sum += v[t];
    return sum;
}

/* Voxels of (nv) counted by mask (NULL: all). */
int64_t dk_loss_count_mask(const uint8_t *mask, int64_t nv);

#endif
