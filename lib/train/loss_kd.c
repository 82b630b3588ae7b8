/*
 * Knowledge distillation, T^2 * KL(q || p) per voxel (formula in dakd/train.h), with q the
 * weighted average of the teachers' softened probabilities.
 *
 * Per counted voxel, with p = softmax(z_s / T) and lse_s its log-normaliser:
 *   one teacher:  log q_k - log p_k = (z_t,k - z_s,k) / T + lse_s - lse_t, so
 *                 KL = sum_k q_k ((z_t,k - z_s,k) / T + lse_s - lse_t)  (no log per class);
 *   several:      q_k = sum_t w_t softmax(z_t / T)_k, KL = sum_k q_k (log q_k - log p_k)
 *                 (terms with q_k = 0 add 0; a log per class);
 * loss T^2 KL, and dL/dz_s,k = T (p_k - q_k) / V. With confidence weights (dk_loss_kd_confidence)
 * w_t is per voxel: w_t,v = a_t (1 - H_t,v / log c + DK_KD_CONF_EPS), normalised over t, where
 * H_t,v = lse_t,v - sum_k p_t,k z_t,k is the entropy of the teacher's softmax at T = 1 (one
 * more softmax per teacher and tile). Class-balanced (dk_loss_kd_balanced): a first pass
 * gives each voxel its predicted class, and each counted voxel's term and gradient are
 * scaled by V / (K V_k) of that class. Tiles of voxels in double (loss_internal.h); the
 * gradient is rounded to float once.
 */
#include "loss_internal.h"

#include <stdlib.h>

enum { KD_MAX_TEACHERS = 16 };

typedef struct {
    float *dx;
    const float *x;
    const float *const *t;
    double w[KD_MAX_TEACHERS]; /* normalised teacher weights */
    int nt;
    int confidence;            /* per-voxel weights w_t a_t (confidence + eps), normalised */
    const uint8_t *mask;
    const uint8_t *cls;        /* class-balanced: each voxel's predicted class, or NULL */
    double cw[DK_LOSS_MAX_CLASSES]; /* its weight V / (K V_k) */
    int64_t c, s;
    double inv_t, t2, g; /* 1/T, T^2, scale * T / V */
} kd_ctx;

/* Scratch of one tile: student e and teacher e (c, TILE), the mixed q (c, TILE). */
typedef struct {
    double es[DK_LOSS_MAX_CLASSES * LOSS_TILE], et[DK_LOSS_MAX_CLASSES * LOSS_TILE];
    double q[DK_LOSS_MAX_CLASSES * LOSS_TILE];
    double rs[LOSS_TILE], rt[LOSS_TILE], kl[LOSS_TILE], lse_s[LOSS_TILE], lse_t[LOSS_TILE];
} kd_tile;

/* kl (len) for one teacher; q = its probabilities. */
static inline void kd_one(kd_tile *b, const kd_ctx *q, const float *xs, const float *xt,
                          int64_t len) {
    const int64_t c = q->c, s = q->s;
    const double inv_t = q->inv_t;
    double d[LOSS_TILE];
    dk_loss_softmax_tile(b->et, b->rt, b->lse_t, NULL, xt, c, s, len, inv_t);
    for (int64_t t = 0; t < len; t++) {
        d[t] = b->lse_s[t] - b->lse_t[t];
        b->kl[t] = 0;
    }
    for (int64_t k = 0; k < c; k++) {
        double *qk = b->q + k * LOSS_TILE;
        const double *ek = b->et + k * LOSS_TILE;
        const float *zs = xs + k * s, *zt = xt + k * s;
        for (int64_t t = 0; t < len; t++) {
            qk[t] = ek[t] * b->rt[t];
            b->kl[t] += qk[t] * (((double)zt[t] - (double)zs[t]) * inv_t + d[t]);
        }
    }
}

/* wv (nt, LOSS_TILE): teacher i's weight at each voxel of the tile, a_i (1 - H_i / log c +
 * eps) normalised over the teachers, H_i the entropy of softmax(z_i) at T = 1. */
static void kd_confidence(double *wv, kd_tile *b, const kd_ctx *q, int64_t o, int64_t len) {
    const int64_t c = q->c, s = q->s;
    const double inv_logc = 1.0 / log((double)c);
    double sum[LOSS_TILE] = {0};
    for (int i = 0; i < q->nt; i++) {
        double *w = wv + i * LOSS_TILE, pz[LOSS_TILE] = {0};
        const float *z = q->t[i] + o;
        dk_loss_softmax_tile(b->et, b->rt, b->lse_t, NULL, z, c, s, len, 1.0);
        for (int64_t k = 0; k < c; k++)
            for (int64_t t = 0; t < len; t++)
                pz[t] += b->et[k * LOSS_TILE + t] * b->rt[t] * (double)z[k * s + t];
        for (int64_t t = 0; t < len; t++) {
            w[t] = q->w[i] * (1.0 - (b->lse_t[t] - pz[t]) * inv_logc + DK_KD_CONF_EPS);
            sum[t] += w[t];
        }
    }
    for (int i = 0; i < q->nt; i++)
        for (int64_t t = 0; t < len; t++)
            wv[i * LOSS_TILE + t] /= sum[t];
}

/* b->q (c, len) = the teachers' softened probabilities mixed with the per-voxel weights wv
 * (nt, LOSS_TILE), or with the fixed q->w when wv is NULL. */
static inline void kd_mix(kd_tile *b, const kd_ctx *q, const double *wv, int64_t o,
                          int64_t len) {
    const int64_t c = q->c, s = q->s;
    memset(b->q, 0, (size_t)(c * LOSS_TILE) * sizeof(double));
    for (int i = 0; i < q->nt; i++) {
        dk_loss_softmax_tile(b->et, b->rt, NULL, NULL, q->t[i] + o, c, s, len, q->inv_t);
        const double *w = wv ? wv + i * LOSS_TILE : NULL;
        for (int64_t k = 0; k < c; k++) {
            double *qk = b->q + k * LOSS_TILE;
            const double *ek = b->et + k * LOSS_TILE;
            if (w)
                for (int64_t t = 0; t < len; t++)
                    qk[t] += w[t] * (ek[t] * b->rt[t]);
            else
                for (int64_t t = 0; t < len; t++)
                    qk[t] += q->w[i] * (ek[t] * b->rt[t]);
        }
    }
}

/* kl (len) for several teachers: q = their weighted mixture. */
static inline void kd_multi(kd_tile *b, const kd_ctx *q, const float *xs, int64_t o, int64_t len) {
    const int64_t c = q->c, s = q->s;
    double wv[KD_MAX_TEACHERS * LOSS_TILE];
    if (q->confidence) kd_confidence(wv, b, q, o, len);
    kd_mix(b, q, q->confidence ? wv : NULL, o, len);
    memset(b->kl, 0, (size_t)len * sizeof(double));
    double *lq = b->rt; /* free now */
    for (int64_t k = 0; k < c; k++) {
        const double *qk = b->q + k * LOSS_TILE;
        const float *zs = xs + k * s;
        memcpy(lq, qk, (size_t)len * sizeof *lq);
        loss_log_tile(lq, len);
        for (int64_t t = 0; t < len; t++) {
            double lp = (double)zs[t] * q->inv_t - b->lse_s[t];
            b->kl[t] += qk[t] > 0 ? qk[t] * (lq[t] - lp) : 0.0;
        }
    }
}

LOSS_CLONES
static void kd_range(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const kd_ctx *q = ctx;
    const int64_t c = q->c, s = q->s;
    kd_tile b;
    double on[LOSS_TILE]; /* a voxel's weight: 0 masked out, else 1 (or its class's) */
    for (int64_t v = v0; v < v1;) {
        const int64_t len = dk_loss_tile_len(v, v1, s), o = dk_loss_vox_offset(v, c, s);
        const float *xs = q->x + o;
        for (int64_t t = 0; t < len; t++)
            on[t] = !q->mask || q->mask[v + t] ? (q->cls ? q->cw[q->cls[v + t]] : 1.0) : 0.0;
        dk_loss_softmax_tile(b.es, b.rs, b.lse_s, NULL, xs, c, s, len, q->inv_t);
        if (q->nt == 1) kd_one(&b, q, xs, q->t[0] + o, len);
        else kd_multi(&b, q, xs, o, len);
        for (int64_t t = 0; t < len; t++)
            b.kl[t] = on[t] != 0 ? b.kl[t] * on[t] : 0.0;
        acc[0] += q->t2 * dk_loss_tile_sum(b.kl, len);
        if (!q->dx) {
            v += len;
            continue;
        }
        for (int64_t k = 0; k < c; k++) {
            float *dk = q->dx + o + k * s;
            const double *ek = b.es + k * LOSS_TILE, *qk = b.q + k * LOSS_TILE;
            for (int64_t t = 0; t < len; t++) {
                float d = (float)(q->g * on[t] * (ek[t] * b.rs[t] - qk[t]));
                dk[t] += on[t] != 0 ? d : 0.0f;
            }
        }
        v += len;
    }
}

/* cls[v] = argmax_k of the fixed-weight mixture q (kd_mix; the first maximum) for each of the
 * nv voxels; the counted voxels of each class into counts. */
static void kd_classes(uint8_t *cls, int64_t *counts, const kd_ctx *q, int64_t nv) {
    const int64_t c = q->c, s = q->s;
    kd_tile b;
    for (int64_t v = 0; v < nv;) {
        const int64_t len = dk_loss_tile_len(v, nv, s);
        kd_mix(&b, q, NULL, dk_loss_vox_offset(v, c, s), len);
        for (int64_t t = 0; t < len; t++) {
            int best = 0;
            for (int64_t k = 1; k < c; k++)
                best = b.q[k * LOSS_TILE + t] > b.q[best * LOSS_TILE + t] ? (int)k : best;
            cls[v + t] = (uint8_t)best;
            if (!q->mask || q->mask[v + t]) counts[best]++;
        }
        v += len;
    }
}

static double kd_run(float *dstudent, const float *student, const float *const *teachers,
                     const float *tweights, int nteachers, int confidence, int balanced,
                     const uint8_t *mask, int64_t n, int64_t c, int64_t s, float T,
                     float scale) {
    DK_ASSERT(student && teachers && nteachers >= 1 && nteachers <= KD_MAX_TEACHERS);
    DK_ASSERT(n > 0 && s > 0 && c >= 1 && c <= DK_LOSS_MAX_CLASSES && T > 0);
    const int64_t nv = n * s;
    int64_t counted = dk_loss_count_mask(mask, nv);
    if (counted == 0) return 0.0;
    kd_ctx q = {.dx = dstudent, .x = student, .t = teachers, .nt = nteachers, .mask = mask,
                .confidence = confidence && nteachers > 1, .c = c, .s = s, .inv_t = 1.0 / (double)T, .t2 = (double)T * (double)T,
                .g = (double)scale * (double)T / (double)counted};
    double wsum = 0;
    for (int i = 0; i < nteachers; i++) {
        DK_ASSERT(teachers[i]);
        q.w[i] = tweights ? (double)tweights[i] : 1.0;
        DK_ASSERT(q.w[i] >= 0);
        wsum += q.w[i];
    }
    DK_ASSERT(wsum > 0);
    for (int i = 0; i < nteachers; i++)
        q.w[i] /= wsum;
    uint8_t *cls = NULL;
    if (balanced) {
        int64_t counts[DK_LOSS_MAX_CLASSES] = {0}, K = 0;
        cls = malloc((size_t)nv);
        DK_ASSERT(cls != NULL);
        kd_classes(cls, counts, &q, nv);
        for (int64_t k = 0; k < c; k++) K += counts[k] > 0;
        for (int64_t k = 0; k < c; k++)
            q.cw[k] = counts[k] ? (double)counted / ((double)K * (double)counts[k]) : 0.0;
        q.cls = cls;
    }
    double sum;
    dk_loss_chunked_sums(&sum, 1, kd_range, &q, nv, nv * c * (nteachers + 1));
    free(cls);
    return sum / (double)counted;
}

double dk_loss_kd(float *dstudent, const float *student, const float *const *teachers,
                  const float *tweights, int nteachers, const uint8_t *mask, int64_t n, int64_t c,
                  int64_t s, float T, float scale) {
    return kd_run(dstudent, student, teachers, tweights, nteachers, 0, 0, mask, n, c, s, T,
                  scale);
}

double dk_loss_kd_confidence(float *dstudent, const float *student,
                             const float *const *teachers, const float *tweights, int nteachers,
                             const uint8_t *mask, int64_t n, int64_t c, int64_t s, float T,
                             float scale) {
    DK_ASSERT(c >= 2);
    return kd_run(dstudent, student, teachers, tweights, nteachers, 1, 0, mask, n, c, s, T,
                  scale);
}

double dk_loss_kd_balanced(float *dstudent, const float *student, const float *const *teachers,
                           const float *tweights, int nteachers, int confidence,
                           const uint8_t *mask, int64_t n, int64_t c, int64_t s, float T,
                           float scale) {
    DK_ASSERT(!confidence || c >= 2);
    return kd_run(dstudent, student, teachers, tweights, nteachers, confidence, 1, mask, n, c, s,
                  T, scale);
}
