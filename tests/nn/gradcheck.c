#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/core.h"

static double loss_of(const dk_gradcheck *g) {
    g->forward(g->ctx);
    double L = 0;
    for (int64_t i = 0; i < g->nout; i++) L += (double)g->dout[i] * (double)g->out[i];
    return L;
}

/* A failing entry whose one-sided differences disagree (a kink: a max-pool near-tie or a
 * ReLU crossing within ±eps) and whose analytic gradient equals one of them is the
 * derivative on one side of the kink, which is what backward computes: it passes, printed,
 * and at most checks/8 entries of a variable may pass so. */
static int at_kink(const dk_gradcheck *g, const dk_gc_var *v, int64_t i, float saved,
                   double eps, double lp, double lm, double ana, double atol, double rtol) {
    double l0 = loss_of(g);
    double hp = (double)(float)(saved + eps) - saved;
    double hm = saved - (double)(float)(saved - eps);
    if (!(hp > 0 && hm > 0)) return 0;
    double fwd = (lp - l0) / hp, bwd = (l0 - lm) / hm;
    double tol = 2 * atol + rtol * fmax(fabs(fwd), fabs(bwd));
    if (fabs(fwd - bwd) <= tol) return 0; /* smooth here: a real mismatch */
    int ok = fabs(ana - fwd) <= tol || fabs(ana - bwd) <= tol;
    if (ok)
        printf("\n      %s %s[%lld]: kink, one-sided %.6g / %.6g, analytic %.6g", g->label,
               v->name, (long long)i, bwd, fwd, ana);
    return ok;
}

static int check_var(const dk_gradcheck *g, const dk_gc_var *v, double eps, double rtol,
                     double atol, int max_checks) {
    int64_t checks = v->n < max_checks ? v->n : max_checks;
    int fails = 0, kinks = 0, max_kinks = (int)(checks / 8 > 1 ? checks / 8 : 1);
    double worst = 0;
    for (int64_t k = 0; k < checks; k++) {
        int64_t i = checks == v->n ? k : (k * v->n) / checks + (k * 7919) % (v->n / checks);
        float saved = v->x[i];
        v->x[i] = (float)(saved + eps);
        double lp = loss_of(g);
        v->x[i] = (float)(saved - eps);
        double lm = loss_of(g);
        v->x[i] = saved;
        /* the perturbation actually applied, after float rounding */
        double h = ((double)(float)(saved + eps) - (double)(float)(saved - eps));
        double num = (lp - lm) / h, ana = v->dx[i];
        double err = fabs(num - ana), scale = fmax(fabs(num), fabs(ana));
        double rel = err / fmax(scale, 1e-12);
        if (err > atol + rtol * scale && kinks < max_kinks &&
            at_kink(g, v, i, saved, eps, lp, lm, ana, atol, rtol)) {
            kinks++;
            continue;
        }
        if (rel > worst && err > atol) worst = rel;
        if (err > atol + rtol * scale) {
            if (fails < 5)
                printf("\n      %s %s[%lld]: numeric %.6g analytic %.6g", g->label, v->name,
                       (long long)i, num, ana);
            fails++;
        }
    }
    printf("\n      %s %-10s %lld checks, worst rel err %.2e%s", g->label, v->name,
           (long long)checks, worst, fails ? "  FAIL" : "");
    if (kinks) printf(" (%d at a kink)", kinks);
    return fails;
}

int dk_gradcheck_run(const dk_gradcheck *g) {
    double eps = g->eps > 0 ? g->eps : 1e-2;
    double rtol = g->rtol > 0 ? g->rtol : 1e-2;
    double atol = g->atol > 0 ? g->atol : 1e-3;
    int max_checks = g->max_checks > 0 ? g->max_checks : 64;
    dk_rng r;
    dk_rng_seed(&r, g->seed ? g->seed : 12345);
    for (int64_t i = 0; i < g->nout; i++) g->dout[i] = 2.0f * dk_rng_uniform(&r) - 1.0f;
    for (int k = 0; k < g->nvars; k++) memset(g->vars[k].dx, 0, (size_t)g->vars[k].n * 4);
    g->forward(g->ctx);
    g->backward(g->ctx);
    /* keep the analytic gradients: forward calls below may overwrite shared buffers */
    int fails = 0;
    for (int k = 0; k < g->nvars; k++)
        fails += check_var(g, &g->vars[k], eps, rtol, atol, max_checks);
    fflush(stdout);
    return fails;
}

void dk_gc_fill(float *x, int64_t n, double lo, double hi, uint64_t seed) {
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * dk_rng_uniform_double(&r));
}

void dk_gc_fill_away_from_zero(float *x, int64_t n, double gap, double hi, uint64_t seed) {
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        double m = gap + (hi - gap) * dk_rng_uniform_double(&r);
        x[i] = (float)(dk_rng_uniform(&r) < 0.5f ? -m : m);
    }
}

void dk_gc_fill_distinct(float *x, int64_t n, double spacing, uint64_t seed) {
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)((double)i * spacing);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher–Yates */
        int64_t j = (int64_t)dk_rng_below(&r, (uint64_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    for (int64_t i = 0; i < n; i++) x[i] -= (float)(0.5 * (double)n * spacing);
}
