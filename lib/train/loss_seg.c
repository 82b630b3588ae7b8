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
    double g;                                                        /* entropy: scale / V */
} seg_ctx;

/* Scratch of one tile: e (c, TILE) (then p), 1 / sum_k e_k, the labels as doubles (255 =
 * ignored; compared as doubles so the class loops keep one lane width), a row of terms. */
typedef struct {
    double e[DK_LOSS_MAX_CLASSES * LOSS_TILE], rs[LOSS_TILE], yf[LOSS_TILE], tmp[LOSS_TILE];
} seg_tile;

/* yf (len) = the labels; ycount (c) += the voxels of each class when not NULL. */
static inline void labels_tile(double *yf, double *ycount, const uint8_t *y, int64_t c,
                               int64_t len) {
    for (int64_t t = 0; t < len; t++) {
        DK_ASSERT(y[t] < c || y[t] == DK_IGNORE_LABEL);
        yf[t] = (double)y[t];
        if (ycount && y[t] != DK_IGNORE_LABEL) ycount[y[t]] += 1.0;
    }
}

/* acc (3c) += P_k, Y_k, I_k over the counted voxels of [v0, v1). */
LOSS_CLONES
static void dice_sums(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const seg_ctx *q = ctx;
    const int64_t c = q->c, s = q->s;
    seg_tile b;
    for (int64_t v = v0; v < v1;) {
        const int64_t len = dk_loss_tile_len(v, v1, s), o = dk_loss_vox_offset(v, c, s);
        labels_tile(b.yf, acc + c, q->lab + v, c, len);
        dk_loss_softmax_tile(b.e, b.rs, NULL, NULL, q->x + o, c, s, len, 1.0);
        for (int64_t k = 0; k < c; k++) {
            const double *ek = b.e + k * LOSS_TILE, fk = (double)k;
            for (int64_t t = 0; t < len; t++)
                b.tmp[t] = b.yf[t] != 255.0 ? ek[t] * b.rs[t] : 0.0;
            acc[k] += dk_loss_tile_sum(b.tmp, len);
            for (int64_t t = 0; t < len; t++)
                b.tmp[t] = b.yf[t] == fk ? b.tmp[t] : 0.0;
            acc[2 * c + k] += dk_loss_tile_sum(b.tmp, len);
        }
        v += len;
    }
}

/* dL/dx_kv = p_kv (g_kv - sum_j p_jv g_jv), g_kv = b_k + [k == y_v] a_k, counted voxels. */
LOSS_CLONES
static void dice_grad(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const seg_ctx *q = ctx;
    const int64_t c = q->c, s = q->s;
    seg_tile b;
    double *dot = b.tmp;
    (void)acc;
    for (int64_t v = v0; v < v1;) {
        const int64_t len = dk_loss_tile_len(v, v1, s), o = dk_loss_vox_offset(v, c, s);
        labels_tile(b.yf, NULL, q->lab + v, c, len);
        dk_loss_softmax_tile(b.e, b.rs, NULL, NULL, q->x + o, c, s, len, 1.0);
        memset(dot, 0, (size_t)len * sizeof *dot);
        for (int64_t k = 0; k < c; k++) {
            double *pk = b.e + k * LOSS_TILE; /* e_k becomes p_k */
            const double gy = q->coef_b[k] + q->coef_a[k], gn = q->coef_b[k], fk = (double)k;
            for (int64_t t = 0; t < len; t++) {
                pk[t] *= b.rs[t];
                dot[t] += pk[t] * (b.yf[t] == fk ? gy : gn);
            }
        }
        for (int64_t k = 0; k < c; k++) {
            float *dk = q->dx + o + k * s;
            const double *pk = b.e + k * LOSS_TILE;
            const double gy = q->coef_b[k] + q->coef_a[k], gn = q->coef_b[k], fk = (double)k;
            for (int64_t t = 0; t < len; t++) {
                float d = (float)(pk[t] * ((b.yf[t] == fk ? gy : gn) - dot[t]));
                dk[t] += b.yf[t] != 255.0 ? d : 0.0f;
            }
        }
        v += len;
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

/* acc[0] += sum of H_v = log sum_k e_kv - sum_k p_kv (x_kv - m_v) over the counted voxels
 * of [v0, v1); dL/dx_kv = -g p_kv ((x_kv - m_v) - sum_j p_jv (x_jv - m_v)), which is
 * -g p_kv (log p_kv + H_v) without a log per class. */
LOSS_CLONES
static void entropy_range(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const seg_ctx *q = ctx;
    const int64_t c = q->c, s = q->s;
    seg_tile b;
    double lse[LOSS_TILE], m[LOSS_TILE], *dot = b.tmp, *on = b.yf;
    for (int64_t v = v0; v < v1;) {
        const int64_t len = dk_loss_tile_len(v, v1, s), o = dk_loss_vox_offset(v, c, s);
        const float *x = q->x + o;
        for (int64_t t = 0; t < len; t++)
            on[t] = !q->mask || q->mask[v + t] ? 1.0 : 0.0;
        dk_loss_softmax_tile(b.e, b.rs, lse, m, x, c, s, len, 1.0);
        memset(dot, 0, (size_t)len * sizeof *dot);
        for (int64_t k = 0; k < c; k++) {
            double *pk = b.e + k * LOSS_TILE; /* e_k becomes p_k */
            for (int64_t t = 0; t < len; t++) {
                pk[t] *= b.rs[t];
                dot[t] += pk[t] * ((double)x[k * s + t] - m[t]);
            }
        }
        for (int64_t t = 0; t < len; t++)
            if (on[t] != 0) acc[0] += (lse[t] - m[t]) - dot[t];
        for (int64_t k = 0; q->dx && k < c; k++) {
            float *dk = q->dx + o + k * s;
            const double *pk = b.e + k * LOSS_TILE, g = q->g;
            for (int64_t t = 0; t < len; t++) {
                float d = (float)(g * pk[t] * (((double)x[k * s + t] - m[t]) - dot[t]));
                dk[t] -= on[t] != 0 ? d : 0.0f;
            }
        }
        v += len;
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
