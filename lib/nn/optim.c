/* SGD and AdamW over the flat buffers, and the learning-rate schedules.
 *
 * The updates follow PyTorch 1.13's single-tensor implementations (torch.optim.SGD and
 * torch.optim.AdamW with foreach=False, one parameter group) operation by operation in
 * float32: every Python-side scalar (1 - b1, lr / (1 - b1^t), ...) is computed in double
 * as PyTorch does in Python and rounded to float once, as its CPU kernels do. PyTorch's
 * AVX2 kernels evaluate `a.add_(b, alpha=s)` as fma(b, s, a) and `a.addcmul_(b, c, value=s)`
 * as fma(s*b, c, a); fmaf() here does the same, so on such a build the results agree bit
 * for bit (checked against torch in tests/nn/test_params.c). fmaf is exactly rounded on
 * every CPU, so dakd's numbers do not depend on the CPU either (PyTorch's DEFAULT, non-AVX2
 * kernels round the product first and may differ from both in the last bit).
 *
 * Speed: fmaf is a library call unless the compiler may emit FMA instructions, so the
 * element loops are cloned for FMA CPUs (GCC target_clones, chosen at load time). The SGD
 * loop vectorises; the AdamW loop stays scalar because GCC keeps sqrtf's errno check
 * (-fno-math-errno would lift it; about 8 ns per parameter per step on one core).
 * Each element's update is independent: the blocks run under OpenMP without changing a bit
 * of the result. */
#include <math.h>

#include "dakd/nn.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define FMA_CLONES
#endif

/* Elements per OpenMP work item. */
#define BLOCK 16384

dk_status dk_optim_init(dk_optim *o, dk_params *p) {
    DK_ASSERT(o != NULL && p != NULL && p->w != NULL);
    if (o->kind == DK_OPT_ADAMW) return dk_params_alloc_state(p, 2);
    if (o->kind == DK_OPT_SGD) return o->momentum != 0.0 ? dk_params_alloc_state(p, 1) : DK_OK;
    return dk_fail(DK_ERR_ARG, "optimiser: unknown kind %d", (int)o->kind);
}

/* Per-step constants, rounded to float once. */
typedef struct {
    float wd, mom, neg_lr;
    int use_wd, use_mom, first, nesterov;
} sgd_consts;

typedef struct {
    float decay, b1, omb1, b2, omb2, bc2_sqrt, eps, neg_step;
} adamw_consts;

/* torch.optim.SGD, dampening 0, on elements [lo, hi):
 *   d = g.add(w, alpha=wd);  buf = clone(d) at the first step, else buf.mul_(mom).add_(d);
 *   d = nesterov ? d.add(buf, alpha=mom) : buf;  w.add_(d, alpha=-lr). */
static FMA_CLONES void sgd_range(float *restrict w, float *restrict buf, const float *restrict g,
                                 int64_t lo, int64_t hi, const sgd_consts *c) {
    const float wd = c->wd, mom = c->mom, neg_lr = c->neg_lr;
    const int use_wd = c->use_wd, use_mom = c->use_mom, first = c->first;
    const int nesterov = c->nesterov;
    for (int64_t i = lo; i < hi; i++) {
        float d = g[i];
        if (use_wd) d = fmaf(w[i], wd, d);
        if (use_mom) {
            const float b = first ? d : buf[i] * mom + d; /* alpha 1: fma = add */
            buf[i] = b;
            d = nesterov ? fmaf(b, mom, d) : b;
        }
        w[i] = fmaf(d, neg_lr, w[i]);
    }
}

/* torch.optim.AdamW (amsgrad off) on elements [lo, hi), t = step after the increment:
 *   w.mul_(1 - lr*wd);  m.mul_(b1).add_(g, alpha=1-b1);  v.mul_(b2).addcmul_(g, g, value=1-b2);
 *   denom = (v.sqrt() / sqrt(1 - b2^t)).add_(eps);  w.addcdiv_(m, denom, value=-lr/(1-b1^t)).
 * addcdiv_ is self + value*t1/t2 left to right (no fusion possible there). */
static FMA_CLONES void adamw_range(float *restrict w, float *restrict m, float *restrict v,
                                   const float *restrict g, int64_t lo, int64_t hi,
                                   const adamw_consts *c) {
    const float decay = c->decay, b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2;
    const float bc2_sqrt = c->bc2_sqrt, eps = c->eps, neg_step = c->neg_step;
    for (int64_t i = lo; i < hi; i++) {
        const float gi = g[i];
        const float wi = w[i] * decay;
        const float mi = fmaf(gi, omb1, m[i] * b1);
        const float vi = fmaf(omb2 * gi, gi, v[i] * b2);
        const float denom = sqrtf(vi) / bc2_sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi + neg_step * mi / denom;
    }
}

static void sgd_step(const dk_optim *o, dk_params *p, double lr) {
    const sgd_consts c = {.wd = (float)o->weight_decay,
                          .mom = (float)o->momentum,
                          .neg_lr = (float)(-lr),
                          .use_wd = o->weight_decay != 0.0,
                          .use_mom = o->momentum != 0.0,
                          .first = o->step == 0,
                          .nesterov = o->nesterov};
    DK_ASSERT(!c.use_mom || p->m != NULL);
    const int64_t total = p->total, nblk = (total + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (nblk > 4)
    for (int64_t b = 0; b < nblk; b++)
        sgd_range(p->w, p->m, p->g, b * BLOCK,
                  b * BLOCK + BLOCK < total ? b * BLOCK + BLOCK : total, &c);
}

static void adamw_step(const dk_optim *o, dk_params *p, double lr) {
    const double t = (double)o->step;
    const double bc1 = 1.0 - pow(o->beta1, t), bc2 = 1.0 - pow(o->beta2, t);
    const adamw_consts c = {.decay = (float)(1.0 - lr * o->weight_decay),
                            .b1 = (float)o->beta1,
                            .omb1 = (float)(1.0 - o->beta1),
                            .b2 = (float)o->beta2,
                            .omb2 = (float)(1.0 - o->beta2),
                            .bc2_sqrt = (float)sqrt(bc2),
                            .eps = (float)o->eps,
                            .neg_step = (float)(-(lr / bc1))};
    DK_ASSERT(p->m != NULL && p->v != NULL);
    const int64_t total = p->total, nblk = (total + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (nblk > 4)
    for (int64_t b = 0; b < nblk; b++)
        adamw_range(p->w, p->m, p->v, p->g, b * BLOCK,
                    b * BLOCK + BLOCK < total ? b * BLOCK + BLOCK : total, &c);
}

void dk_optim_step(dk_optim *o, dk_params *p, double lr) {
    DK_ASSERT(o != NULL && p != NULL && p->w != NULL && p->g != NULL);
    if (o->kind == DK_OPT_ADAMW) {
        o->step++; /* PyTorch increments before computing the bias corrections */
        adamw_step(o, p, lr);
    } else {
        DK_ASSERT(o->kind == DK_OPT_SGD);
        sgd_step(o, p, lr); /* reads o->step == 0 as "no momentum buffer yet" */
        o->step++;
    }
}

/* ---------------------------------------------------------------- LR schedules */

/* Warm-up: steps t < W give base * (t + 1) / W, reaching base at t = W - 1. After it the
 * schedule runs on u = t - W over T = total_steps: poly base * (1 - u/T)^power (power <= 0
 * means nnU-Net's 0.9), cosine min + (base - min) * (1 + cos(pi u / T)) / 2; u is clamped
 * to [0, T], so past the end poly gives 0 and cosine min_lr. T <= 0 reads as constant. */
double dk_lr_at(const dk_lr_schedule *s, int64_t t) {
    DK_ASSERT(s != NULL);
    if (t < 0) t = 0;
    if (s->warmup_steps > 0 && t < s->warmup_steps)
        return s->base * (double)(t + 1) / (double)s->warmup_steps;
    const int64_t w = s->warmup_steps > 0 ? s->warmup_steps : 0;
    const int64_t T = s->total_steps;
    if (s->kind == DK_LR_CONSTANT || T <= 0) return s->base;
    int64_t u = t - w;
    if (u > T) u = T;
    const double frac = (double)u / (double)T;
    if (s->kind == DK_LR_POLY) {
        const double power = s->power > 0.0 ? s->power : 0.9;
        return s->base * pow(1.0 - frac, power);
    }
    DK_ASSERT(s->kind == DK_LR_COSINE);
    const double pi = 3.14159265358979323846;
    return s->min_lr + (s->base - s->min_lr) * (1.0 + cos(pi * frac)) / 2.0;
}
