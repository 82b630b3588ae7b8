/*
 * Softmax cross-entropy over channels (see dakd/train.h):
 *   L = (1/V) sum_{v: label != 255} (log sum_k exp(x_kv - m_v) + m_v - x_{label_v, v}),
 *   m_v = max_k x_kv,  dL/dx_kv = (softmax_kv - [k == label_v]) / V  (0 on ignored voxels).
 *
 * Tiles of voxels in double, fixed chunks added in order (loss_internal.h): L repeats bit
 * for bit for any thread count. c <= DK_LOSS_MAX_CLASSES (the tile holds every class).
 */
#include "loss_internal.h"

typedef struct {
    float *dx;
    const float *x;
    const uint8_t *lab;
    int64_t c, s;
    double g; /* scale / V */
} ce_ctx;

LOSS_CLONES
static void ce_range(double *acc, void *ctx, int64_t v0, int64_t v1) {
    const ce_ctx *q = ctx;
    const int64_t c = q->c, s = q->s;
    double e[DK_LOSS_MAX_CLASSES * LOSS_TILE], rs[LOSS_TILE], lse[LOSS_TILE], yf[LOSS_TILE];
    for (int64_t v = v0; v < v1;) {
        const int64_t len = dk_loss_tile_len(v, v1, s), o = dk_loss_vox_offset(v, c, s);
        const uint8_t *y = q->lab + v;
        const float *x = q->x + o;
        dk_loss_softmax_tile(e, rs, lse, NULL, x, c, s, len, 1.0);
        for (int64_t t = 0; t < len; t++) {
            yf[t] = (double)y[t]; /* 255 = ignored; doubles keep the class loops one width */
            if (y[t] == DK_IGNORE_LABEL) continue;
            DK_ASSERT(y[t] < c);
            acc[0] += lse[t] - (double)x[y[t] * s + t];
        }
        for (int64_t k = 0; q->dx && k < c; k++) {
            float *dk = q->dx + o + k * s;
            const double *ek = e + k * LOSS_TILE, g = q->g, fk = (double)k;
            for (int64_t t = 0; t < len; t++) {
                float d = (float)(g * (ek[t] * rs[t] - (yf[t] == fk ? 1.0 : 0.0)));
                dk[t] += yf[t] != 255.0 ? d : 0.0f;
            }
        }
        v += len;
    }
}

double dk_loss_ce(float *dlogits, const float *logits, const uint8_t *labels, int64_t n, int64_t c,
                  int64_t s, float scale) {
    DK_ASSERT(logits && labels && n > 0 && c > 0 && c <= DK_LOSS_MAX_CLASSES && s > 0);
    const int64_t nv = n * s;
    int64_t counted = 0;
    for (int64_t v = 0; v < nv; v++)
        counted += labels[v] != DK_IGNORE_LABEL;
    if (counted == 0) return 0.0;
    ce_ctx q = {.dx = dlogits, .x = logits, .lab = labels, .c = c, .s = s,
                .g = (double)scale / (double)counted};
    double loss;
    dk_loss_chunked_sums(&loss, 1, ce_range, &q, nv, nv * c);
    return loss / (double)counted;
}
