/*
 * Dynamic per-sample loss weights and the mean-teacher EMA of parameters (dakd/train.h).
 */
#include "dakd/train.h"

#include <math.h>

void dk_dynweights_init(dk_dynweights *d, double beta, double gain, double momentum) {
    DK_ASSERT(d && momentum >= 0 && momentum <= 1);
    d->beta = beta;
    d->gain = gain;
    d->momentum = momentum;
    d->lbar = 0;
    d->updates = 0;
}

void dk_dynweights_defaults(dk_dynweights *d) { dk_dynweights_init(d, 0.5, 0.3, 0.9); }

void dk_dynweights_update(dk_dynweights *d, const double *loss, int64_t n) {
    DK_ASSERT(d && loss && n > 0);
    double mean = 0;
    for (int64_t i = 0; i < n; i++)
        mean += loss[i];
    mean /= (double)n;
    d->lbar = d->updates == 0 ? mean : d->momentum * d->lbar + (1.0 - d->momentum) * mean;
    d->updates++;
}

void dk_dynweights_compute(float *w, const dk_dynweights *d, const double *loss, int64_t n) {
    DK_ASSERT(w && d && loss && n >= 0);
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)(d->beta * (1.0 + d->gain * tanh(loss[i] - d->lbar)));
}

void dk_ema_update(dk_params *ema, const dk_params *p, double m) {
    DK_ASSERT(ema && p && ema->w && p->w && ema->total == p->total && m >= 0 && m <= 1);
    const float a = (float)m, b = (float)(1.0 - m);
    float *e = ema->w;
    const float *w = p->w;
    for (int64_t i = 0; i < p->total; i++)
        e[i] = a * e[i] + b * w[i];
}
