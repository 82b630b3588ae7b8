/*
 * Confidence-filtered, class-balanced pseudo-labels from a teacher's logits (dakd/train.h):
 * argmax and max probability per voxel, then a threshold per class, min(tau, the confidence
 * that class's most confident share reaches).
 */
#include <math.h>

#include "loss_internal.h"

/* k_v (into out) and m_v (into conf) at every voxel of logits (n, c, s); softmax in double. */
static void predict(uint8_t *out, float *conf, const float *logits, int64_t n, int64_t c,
                    int64_t s) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t v = 0; v < s; v++) {
            const float *z = logits + i * c * s + v;
            int64_t best = 0;
            for (int64_t k = 1; k < c; k++) best = z[k * s] > z[best * s] ? k : best;
            double sum = 0;
            for (int64_t k = 0; k < c; k++) sum += exp((double)z[k * s] - (double)z[best * s]);
            out[i * s + v] = (uint8_t)best;
            conf[i * s + v] = (float)(1.0 / sum);
        }
}

int64_t dk_pseudo_labels(uint8_t *out, double *tau_k, const float *logits, const uint8_t *mask,
                         int64_t n, int64_t c, int64_t s, double tau, double share, float *work) {
    DK_ASSERT(out && logits && work && n > 0 && c > 0 && c <= DK_LOSS_MAX_CLASSES && s > 0);
    DK_ASSERT(share >= 0 && share <= 1);
    const int64_t nv = n * s;
    float *conf = work, *pick = work + nv;
    double th[DK_LOSS_MAX_CLASSES];
    predict(out, conf, logits, n, c, s);
    for (int64_t k = 0; k < c; k++) {
        th[k] = tau;
        if (share <= 0) continue;
        int64_t nk = 0;
        for (int64_t v = 0; v < nv; v++)
            if ((!mask || mask[v]) && out[v] == k) pick[nk++] = conf[v];
        if (nk == 0) continue;
        int64_t top = (int64_t)ceil(share * (double)nk); /* 1 .. nk */
        double q = dk_select_float(pick, nk, nk - top);
        th[k] = q < tau ? q : tau;
    }
    int64_t labelled = 0;
    for (int64_t v = 0; v < nv; v++) {
        int keep = (!mask || mask[v]) && (double)conf[v] >= th[out[v]];
        out[v] = keep ? out[v] : (uint8_t)DK_IGNORE_LABEL;
        labelled += keep;
    }
    for (int64_t k = 0; tau_k && k < c; k++) tau_k[k] = th[k];
    return labelled;
}
