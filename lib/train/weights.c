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
    d->dbar = 0;
    d->updates = 0;
}

void dk_dynweights_defaults(dk_dynweights *d) { dk_dynweights_init(d, 0.5, 0.3, 0.9); }

void dk_dynweights_update(dk_dynweights *d, const double *loss, int64_t n) {
    DK_ASSERT(d && loss && n > 0);
    double mean = 0, dev = 0;
    for (int64_t i = 0; i < n; i++)
        mean += loss[i];
    mean /= (double)n;
    const double m = d->momentum;
    const int first = d->updates == 0;
    d->lbar = first ? mean : m * d->lbar + (1.0 - m) * mean;
    for (int64_t i = 0; i < n; i++)
        dev += fabs(loss[i] - d->lbar);
    dev /= (double)n;
    d->dbar = first ? dev : m * d->dbar + (1.0 - m) * dev;
    d->updates++;
}

void dk_dynweights_compute(float *w, const dk_dynweights *d, const double *loss, int64_t n) {
    DK_ASSERT(w && d && loss && n >= 0);
    const double scale = 1.0 / fmax(d->dbar, 1e-12);
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)(d->beta * (1.0 + d->gain * tanh((loss[i] - d->lbar) * scale)));
}

double dk_ema_rampup(double t, double ramp) {
    if (ramp <= 0) return 1.0;
    double x = 1.0 - fmin(1.0, fmax(0.0, t) / ramp);
    return exp(-5.0 * x * x);
}

/* One pass over the flat buffers, e = a e + b w in float (a = m, b = 1 - m rounded once);
 * the loop vectorises, and blocks of EMA_BLOCK elements run under OpenMP: every element is
 * independent, so the result is the same for any thread count. */
enum { EMA_BLOCK = 16384 };

void dk_ema_update(dk_params *ema, const dk_params *p, double m) {
    DK_ASSERT(ema && p && ema->w && p->w && ema->total == p->total && m >= 0 && m <= 1);
    const float a = (float)m, b = (float)(1.0 - m);
    float *restrict e = ema->w;
    const float *restrict w = p->w;
    const int64_t total = p->total, nblk = (total + EMA_BLOCK - 1) / EMA_BLOCK;
#pragma omp parallel for schedule(static) if (nblk > 4)
    for (int64_t k = 0; k < nblk; k++) {
        const int64_t hi = (k + 1) * EMA_BLOCK < total ? (k + 1) * EMA_BLOCK : total;
        for (int64_t i = k * EMA_BLOCK; i < hi; i++)
            e[i] = a * e[i] + b * w[i];
    }
}
