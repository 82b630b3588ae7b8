/*
 * Batch and instance normalisation over a (n, c, s) view, PyTorch semantics.
 *
 *   xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps),  y = gamma * xhat + beta
 *
 * with the biased variance var = E[(x - mean)^2] over the M values of a group: per channel
 * over (n, s) for batch norm (M = n*s), per (n, c) over s for instance norm (M = s).
 * Batch norm also updates running_mean/var with momentum m as PyTorch:
 * r = (1 - m) r + m stat, using the unbiased var * M / (M - 1) for running_var.
 *
 * Backward, from the saved mean and rstd (xhat recomputed from `in`):
 *   dbeta += sum dy,  dgamma += sum dy * xhat,
 *   dx += gamma * rstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M).
 *
 * Statistics are double sums of float sums over chunks of 128 values (moments()), combined in
 * a fixed order over the chunks and the n blocks of a channel, so the result does not depend
 * on the thread count. OpenMP runs over channels (batch) or (n, c) groups.
 */
#include "dakd/nn.h"

#include <math.h>

enum { CHUNK = 128 };

/* Below this many floats a kernel runs on one thread: a parallel region costs a few us,
 * and a whole time slice when the cores are shared. */
enum { PAR_MIN = 1 << 15 };

/* Sums of (x - k) and (x - k)^2 over one block, added into acc[0], acc[1] (double). The
 * shift k (the group's first value) keeps E[(x-k)^2] - E[x-k]^2 free of cancellation when
 * |mean| >> std. Each CHUNK is summed in float by an OpenMP simd reduction (vector partial
 * sums in an order fixed at compile time), and the chunks are added in double in order. */
static void moments(const float *x, int64_t len, float k, double *acc) {
    for (int64_t i = 0; i < len; i += CHUNK) {
        int64_t e = i + CHUNK < len ? i + CHUNK : len;
        float s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
        for (int64_t j = i; j < e; j++) {
            float v = x[j] - k;
            s += v;
            q += v * v;
        }
        acc[0] += s, acc[1] += q;
    }
}

/* Sums of dy and dy * xhat over one block, added into acc[0], acc[1]; chunks as moments().
 * When y is not NULL, dy is first masked by the activation's derivative at its output y (the
 * fused norm + ReLU backward), into a chunk on the stack: inside the simd reduction the
 * select would not vectorise. */
static void grad_sums(const float *dy, const float *y, float slope, const float *x, int64_t len,
                      float mean, float rstd, double *acc) {
    float g[CHUNK];
    for (int64_t i = 0; i < len; i += CHUNK) {
        int64_t e = (i + CHUNK < len ? i + CHUNK : len) - i;
        const float *d = dy + i, *xc = x + i;
        if (y) {
            for (int64_t j = 0; j < e; j++) g[j] = d[j] * (y[i + j] > 0.0f ? 1.0f : slope);
            d = g;
        }
        float s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
        for (int64_t j = 0; j < e; j++) {
            s += d[j];
            q += d[j] * ((xc[j] - mean) * rstd);
        }
        acc[0] += s, acc[1] += q;
    }
}

/* out = act(x * a + b) over one block (out may alias x); act is the identity when `act` is
 * 0, else (leaky) ReLU written as dk_relu_forward does (same values, NaN passes). */
static void scale_shift(float *out, const float *x, int64_t len, float a, float b, int act,
                        float slope) {
    if (!act) {
        for (int64_t i = 0; i < len; i++) out[i] = x[i] * a + b;
    } else if (slope == 0) {
        for (int64_t i = 0; i < len; i++) {
            float v = x[i] * a + b;
            out[i] = v < 0 ? 0.0f : v;
        }
    } else {
        for (int64_t i = 0; i < len; i++) {
            float v = x[i] * a + b, pos = v < 0 ? 0.0f : v, neg = v < 0 ? v : 0.0f;
            out[i] = pos + slope * neg;
        }
    }
}

/* din += a * dy + b * (x - mean) + c over one block: the backward formula with
 * a = gamma rstd, b = -gamma rstd^2 sum(dy xhat) / M, c = -gamma rstd sum(dy) / M; dy masked
 * as in grad_sums. */
static void grad_apply(float *din, const float *dy, const float *y, float slope, const float *x,
                       int64_t len, float mean, float a, float b, float c) {
    if (!y) {
        for (int64_t i = 0; i < len; i++) din[i] += a * dy[i] + b * (x[i] - mean) + c;
        return;
    }
    for (int64_t i = 0; i < len; i++) {
        float g = dy[i] * (y[i] > 0.0f ? 1.0f : slope);
        din[i] += a * g + b * (x[i] - mean) + c;
    }
}

/* mean and rstd of a group from its shifted sums (moments) over m values; returns the biased
 * var and stores the mean in double into *mu. */
static double group_stats(const double *acc, int64_t m, float k, double eps, double *mu,
                          float *mean, float *rstd) {
    double d = acc[0] / (double)m;
    double var = acc[1] / (double)m - d * d;
    if (var < 0) var = 0; /* rounding on a constant group */
    *mu = k + d;
    *mean = (float)*mu;
    *rstd = (float)(1.0 / sqrt(var + eps));
    return var;
}

static void check_shape(const dk_norm_shape *s) {
    DK_ASSERT(s && s->n > 0 && s->c > 0 && s->s > 0 && s->eps > 0);
}

/* Batch norm training forward, followed by (leaky) ReLU when act. */
static void bn_forward_train(float *out, float *mean, float *rstd, float *running_mean,
                             float *running_var, const float *in, const float *gamma,
                             const float *beta, int act, float slope, const dk_norm_shape *s) {
    DK_ASSERT(out && mean && rstd && in && gamma && beta);
    check_shape(s);
    const int64_t n = s->n, c = s->c, sp = s->s, m = n * sp;
    DK_ASSERT(m > 1); /* PyTorch: "Expected more than 1 value per channel" */
    const double mom = s->momentum;
#pragma omp parallel for schedule(static) if (s->n * s->c * s->s >= PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) {
        double acc[2] = {0, 0}, mu;
        const float k = in[ch * sp];
        for (int64_t b = 0; b < n; b++)
            moments(in + (b * c + ch) * sp, sp, k, acc);
        double var = group_stats(acc, m, k, s->eps, &mu, &mean[ch], &rstd[ch]);
        float a = gamma[ch] * rstd[ch], sh = beta[ch] - mean[ch] * a;
        for (int64_t b = 0; b < n; b++)
            scale_shift(out + (b * c + ch) * sp, in + (b * c + ch) * sp, sp, a, sh, act, slope);
        if (running_mean) running_mean[ch] = (float)((1 - mom) * running_mean[ch] + mom * mu);
        if (running_var)
            running_var[ch] =
                (float)((1 - mom) * running_var[ch] + mom * var * (double)m / (double)(m - 1));
    }
}

void dk_batchnorm_forward_train(float *out, float *mean, float *rstd, float *running_mean,
                                float *running_var, const float *in, const float *gamma,
                                const float *beta, const dk_norm_shape *s) {
    bn_forward_train(out, mean, rstd, running_mean, running_var, in, gamma, beta, 0, 0, s);
}

void dk_batchnorm_relu_forward_train(float *out, float *mean, float *rstd, float *running_mean,
                                     float *running_var, const float *in, const float *gamma,
                                     const float *beta, float slope, const dk_norm_shape *s) {
    DK_ASSERT(slope >= 0);
    bn_forward_train(out, mean, rstd, running_mean, running_var, in, gamma, beta, 1, slope, s);
}

static void bn_forward_eval(float *out, const float *in, const float *gamma, const float *beta,
                            const float *running_mean, const float *running_var, int act,
                            float slope, const dk_norm_shape *s) {
    DK_ASSERT(out && in && gamma && beta && running_mean && running_var);
    check_shape(s);
    const int64_t n = s->n, c = s->c, sp = s->s;
#pragma omp parallel for schedule(static) collapse(2) if (n * c * sp >= PAR_MIN)
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            double r = 1.0 / sqrt((double)running_var[ch] + s->eps);
            float a = (float)(gamma[ch] * r);
            float sh = (float)(beta[ch] - running_mean[ch] * gamma[ch] * r);
            scale_shift(out + (b * c + ch) * sp, in + (b * c + ch) * sp, sp, a, sh, act, slope);
        }
}

void dk_batchnorm_forward_eval(float *out, const float *in, const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var,
                               const dk_norm_shape *s) {
    bn_forward_eval(out, in, gamma, beta, running_mean, running_var, 0, 0, s);
}

void dk_batchnorm_relu_forward_eval(float *out, const float *in, const float *gamma,
                                    const float *beta, const float *running_mean,
                                    const float *running_var, float slope,
                                    const dk_norm_shape *s) {
    DK_ASSERT(slope >= 0);
    bn_forward_eval(out, in, gamma, beta, running_mean, running_var, 1, slope, s);
}

static void bn_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                        const float *y, float slope, const float *in, const float *mean,
                        const float *rstd, const float *gamma, const dk_norm_shape *s) {
    DK_ASSERT(dgamma && dbeta && dout && in && mean && rstd && gamma);
    check_shape(s);
    const int64_t n = s->n, c = s->c, sp = s->s, m = n * sp;
#pragma omp parallel for schedule(static) if (s->n * s->c * s->s >= PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) {
        double acc[2] = {0, 0};
        for (int64_t b = 0; b < n; b++) {
            int64_t o = (b * c + ch) * sp;
            grad_sums(dout + o, y ? y + o : NULL, slope, in + o, sp, mean[ch], rstd[ch], acc);
        }
        dbeta[ch] += (float)acc[0];
        dgamma[ch] += (float)acc[1];
        if (!din) continue;
        double gr = (double)gamma[ch] * rstd[ch];
        float a = (float)gr, bb = (float)(-gr * rstd[ch] * acc[1] / (double)m);
        float cc = (float)(-gr * acc[0] / (double)m);
        for (int64_t b = 0; b < n; b++) {
            int64_t o = (b * c + ch) * sp;
            grad_apply(din + o, dout + o, y ? y + o : NULL, slope, in + o, sp, mean[ch], a, bb,
                       cc);
        }
    }
}

void dk_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd,
                           const float *gamma, const dk_norm_shape *s) {
    bn_backward(din, dgamma, dbeta, dout, NULL, 0, in, mean, rstd, gamma, s);
}

void dk_batchnorm_relu_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                const float *y, const float *in, const float *mean,
                                const float *rstd, const float *gamma, float slope,
                                const dk_norm_shape *s) {
    DK_ASSERT(y && slope >= 0);
    bn_backward(din, dgamma, dbeta, dout, y, slope, in, mean, rstd, gamma, s);
}

void dk_instancenorm_forward(float *out, float *mean, float *rstd, const float *in,
                             const float *gamma, const float *beta, const dk_norm_shape *s) {
    DK_ASSERT(out && mean && rstd && in && gamma && beta);
    check_shape(s);
    const int64_t c = s->c, sp = s->s, groups = s->n * c;
#pragma omp parallel for schedule(static) if (s->n * s->c * s->s >= PAR_MIN)
    for (int64_t g = 0; g < groups; g++) {
        double acc[2] = {0, 0}, mu;
        moments(in + g * sp, sp, in[g * sp], acc);
        group_stats(acc, sp, in[g * sp], s->eps, &mu, &mean[g], &rstd[g]);
        float a = gamma[g % c] * rstd[g];
        scale_shift(out + g * sp, in + g * sp, sp, a, beta[g % c] - mean[g] * a, 0, 0);
    }
}

void dk_instancenorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                              const float *in, const float *mean, const float *rstd,
                              const float *gamma, const dk_norm_shape *s) {
    DK_ASSERT(dgamma && dbeta && dout && in && mean && rstd && gamma);
    check_shape(s);
    const int64_t n = s->n, c = s->c, sp = s->s;
    /* Threads own channels, so dgamma/dbeta (c) sum over the batch without races. */
#pragma omp parallel for schedule(static) if (s->n * s->c * s->s >= PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) {
        double dg = 0, db = 0;
        for (int64_t b = 0; b < n; b++) {
            int64_t g = b * c + ch, o = g * sp;
            double acc[2] = {0, 0};
            grad_sums(dout + o, NULL, 0, in + o, sp, mean[g], rstd[g], acc);
            db += acc[0];
            dg += acc[1];
            if (!din) continue;
            double gr = (double)gamma[ch] * rstd[g];
            grad_apply(din + o, dout + o, NULL, 0, in + o, sp, mean[g], (float)gr,
                       (float)(-gr * rstd[g] * acc[1] / (double)sp),
                       (float)(-gr * acc[0] / (double)sp));
        }
        dbeta[ch] += (float)db;
        dgamma[ch] += (float)dg;
    }
}
