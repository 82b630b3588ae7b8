/*
 * Knowledge distillation, T^2 * KL(q || p) per voxel (formula in dakd/train.h), with q the
 * weighted average of the teachers' softened probabilities.
 *
 * Per counted voxel, in double: log p = log softmax(z_s / T), q_k = sum_t w_t exp(log
 * softmax(z_t / T))_k, loss T^2 sum_k q_k (log q_k - log p_k) (terms with q_k = 0 add 0),
 * and dL/dz_s,k = T (p_k - q_k) / V.
 */
#include "loss_internal.h"

enum { KD_MAX_TEACHERS = 16 };

typedef struct {
    float *dx;
    const float *x;
    const float *const *t;
    double w[KD_MAX_TEACHERS]; /* normalised teacher weights */
    int nt;
    const uint8_t *mask;
    int64_t c, s;
    double inv_t, t2, g; /* 1/T, T^2, scale * T / V */
} kd_ctx;

static void kd_range(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const kd_ctx *q = ctx;
    const int64_t c = q->c, s = q->s;
    double lp[DK_LOSS_MAX_CLASSES], lt[DK_LOSS_MAX_CLASSES], qt[DK_LOSS_MAX_CLASSES];
    for (int64_t v = v0; v < v1; v++) {
        if (q->mask && !q->mask[v]) continue;
        int64_t o = dk_loss_vox_offset(v, c, s);
        for (int64_t k = 0; k < c; k++)
            qt[k] = 0;
        for (int i = 0; i < q->nt; i++) {
            dk_loss_log_softmax(lt, q->t[i] + o, c, s, q->inv_t);
            for (int64_t k = 0; k < c; k++)
                qt[k] += q->w[i] * exp(lt[k]);
        }
        dk_loss_log_softmax(lp, q->x + o, c, s, q->inv_t);
        double kl = 0;
        for (int64_t k = 0; k < c; k++)
            if (qt[k] > 0) kl += qt[k] * (log(qt[k]) - lp[k]);
        acc[0] += q->t2 * kl;
        if (!q->dx) continue;
        for (int64_t k = 0; k < c; k++)
            q->dx[o + k * s] += (float)(q->g * (exp(lp[k]) - qt[k]));
    }
}

double dk_loss_kd(float *dstudent, const float *student, const float *const *teachers,
                  const float *tweights, int nteachers, const uint8_t *mask, int64_t n, int64_t c,
                  int64_t s, float T, float scale) {
    DK_ASSERT(student && teachers && nteachers >= 1 && nteachers <= KD_MAX_TEACHERS);
    DK_ASSERT(n > 0 && s > 0 && c >= 1 && c <= DK_LOSS_MAX_CLASSES && T > 0);
    const int64_t nv = n * s;
    int64_t counted = dk_loss_count_mask(mask, nv);
    if (counted == 0) return 0.0;
    kd_ctx q = {.dx = dstudent, .x = student, .t = teachers, .nt = nteachers, .mask = mask,
                .c = c, .s = s, .inv_t = 1.0 / (double)T, .t2 = (double)T * (double)T,
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
    double sum;
    dk_loss_chunked_sums(&sum, 1, kd_range, &q, nv, nv * c * (nteachers + 1));
    return sum / (double)counted;
}
