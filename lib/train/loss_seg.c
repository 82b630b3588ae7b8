/*
 * Soft Dice over the batch and entropy minimisation on softmax predictions (formulas in
 * dakd/train.h).
 *
 * Dice: with D_k = P_k + Y_k + smooth and |K| counted classes, dL/dp_kv = a_k y_kv + b_k for
 * k in K (0 otherwise), a_k = -2 / (|K| D_k), b_k = (2 I_k + smooth) / (|K| D_k^2); through
 * the softmax dL/dx_kv = p_kv (g_kv - sum_j p_jv g_jv). A first pass sums P, Y, I per class,
 * a second writes the gradient (each voxel its own memory).
 */
#include "loss_internal.h"

typedef struct {
    float *dx;
    const float *x;
    const uint8_t *lab;
    const uint8_t *mask;
    int64_t c, s;
    double coef_a[DK_LOSS_MAX_CLASSES], coef_b[DK_LOSS_MAX_CLASSES]; /* Dice: a_k, b_k */
    double g;                                                      /* entropy: scale / V */
} seg_ctx;

/* acc (3c) += P_k, Y_k, I_k over the counted voxels of [v0, v1). */
static void dice_sums(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const seg_ctx *q = ctx;
    const int64_t c = q->c;
    double lp[DK_LOSS_MAX_CLASSES];
    for (int64_t v = v0; v < v1; v++) {
        uint8_t y = q->lab[v];
        if (y == DK_IGNORE_LABEL) continue;
        DK_ASSERT(y < c);
        dk_loss_log_softmax(lp, q->x + dk_loss_vox_offset(v, c, q->s), c, q->s, 1.0);
        for (int64_t k = 0; k < c; k++)
            acc[k] += exp(lp[k]);
        acc[c + y] += 1.0;
        acc[2 * c + y] += exp(lp[y]);
    }
}

static void dice_grad(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const seg_ctx *q = ctx;
    const int64_t c = q->c, s = q->s;
    double lp[DK_LOSS_MAX_CLASSES], gk[DK_LOSS_MAX_CLASSES];
    (void)acc;
    for (int64_t v = v0; v < v1; v++) {
        uint8_t y = q->lab[v];
        if (y == DK_IGNORE_LABEL) continue;
        int64_t o = dk_loss_vox_offset(v, c, s);
        dk_loss_log_softmax(lp, q->x + o, c, s, 1.0);
        double dot = 0;
        for (int64_t k = 0; k < c; k++) {
            gk[k] = q->coef_b[k] + (k == y ? q->coef_a[k] : 0.0);
            dot += exp(lp[k]) * gk[k];
        }
        for (int64_t k = 0; k < c; k++)
            q->dx[o + k * s] += (float)(exp(lp[k]) * (gk[k] - dot));
    }
}

double dk_loss_dice(float *dlogits, const float *logits, const uint8_t *labels, int64_t n,
                    int64_t c, int64_t s, int include_bg, double smooth, float scale) {
    DK_ASSERT(logits && labels && n > 0 && s > 0 && c >= 1 && c <= DK_LOSS_MAX_CLASSES);
    DK_ASSERT(include_bg || c >= 2);
    DK_ASSERT(smooth >= 0);
    const int64_t nv = n * s;
    seg_ctx q = {.dx = dlogits, .x = logits, .lab = labels, .c = c, .s = s};
    double sums[3 * DK_LOSS_MAX_CLASSES];
    dk_loss_chunked_sums(sums, (int)(3 * c), dice_sums, &q, nv, nv * c);
    double ycount = 0;
    for (int64_t k = 0; k < c; k++)
        ycount += sums[c + k];
    if (ycount == 0) return 0.0;
    const int64_t k0 = include_bg ? 0 : 1;
    const double nk = (double)(c - k0);
    double mean = 0;
    for (int64_t k = 0; k < c; k++) {
        q.coef_a[k] = q.coef_b[k] = 0;
        if (k < k0) continue;
        double den = sums[k] + sums[c + k] + smooth, num = 2.0 * sums[2 * c + k] + smooth;
        mean += num / den;
        q.coef_a[k] = -2.0 * (double)scale / (nk * den);
        q.coef_b[k] = (double)scale * num / (nk * den * den);
    }
    if (dlogits) {
        double unused;
        dk_loss_chunked_sums(&unused, 1, dice_grad, &q, nv, nv * c);
    }
    return 1.0 - mean / nk;
}

/* acc[0] += sum of H_v over the counted voxels of [v0, v1); gradient when dx. */
static void entropy_range(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const seg_ctx *q = ctx;
    const int64_t c = q->c, s = q->s;
    double lp[DK_LOSS_MAX_CLASSES];
    for (int64_t v = v0; v < v1; v++) {
        if (q->mask && !q->mask[v]) continue;
        int64_t o = dk_loss_vox_offset(v, c, s);
        dk_loss_log_softmax(lp, q->x + o, c, s, 1.0);
        double h = 0;
        for (int64_t k = 0; k < c; k++)
            h -= exp(lp[k]) * lp[k];
        acc[0] += h;
        if (!q->dx) continue;
        for (int64_t k = 0; k < c; k++)
            q->dx[o + k * s] -= (float)(q->g * exp(lp[k]) * (lp[k] + h));
    }
}

double dk_loss_entropy(float *dlogits, const float *logits, const uint8_t *mask, int64_t n,
                       int64_t c, int64_t s, float scale) {
    DK_ASSERT(logits && n > 0 && s > 0 && c >= 1 && c <= DK_LOSS_MAX_CLASSES);
    const int64_t nv = n * s;
    int64_t counted = dk_loss_count_mask(mask, nv);
    if (counted == 0) return 0.0;
    seg_ctx q = {.dx = dlogits, .x = logits, .mask = mask, .c = c, .s = s,
                 .g = (double)scale / (double)counted};
    double sum;
    dk_loss_chunked_sums(&sum, 1, entropy_range, &q, nv, nv * c);
    return sum / (double)counted;
}
