/*
 * The central finite-difference gradient check used by every backward test.
 *
 * The function under test maps variables (inputs and parameters) to outputs `out`. The
 * check fixes a random projection r (uniform in [-1, 1]) and the scalar loss
 * L = sum_i r_i * out_i, accumulated in double. Analytic gradients come from one backward
 * pass with dout = r (the backward ACCUMULATES, so dx arrays are zeroed first). Numeric
 * gradients are central differences (L(x + eps) - L(x - eps)) / (2 eps) on each checked
 * entry. An entry passes when |num - ana| <= atol + rtol * max(|num|, |ana|).
 *
 * Inputs must keep away from kinks (ReLU at 0, pooling ties): the tests choose them so.
 */
#ifndef DK_GRADCHECK_H
#define DK_GRADCHECK_H

#include <stdint.h>

typedef struct {
    const char *name;
    float *x;  /* the variable, perturbed in place and restored */
    float *dx; /* its analytic gradient, filled by backward */
    int64_t n;
} dk_gc_var;

typedef struct {
    const char *label;
    void (*forward)(void *ctx);  /* recompute out from the current variables */
    void (*backward)(void *ctx); /* accumulate into every dx, reading dout */
    void *ctx;
    float *out, *dout; /* (nout) each; dout is set by the check */
    int64_t nout;
    dk_gc_var *vars;
    int nvars;
    double eps;      /* default 1e-2 */
    double rtol;     /* default 1e-2 */
    double atol;     /* default 1e-3 */
    int max_checks;  /* entries per variable, spread over it; 0 = 64 */
    uint64_t seed;
} dk_gradcheck;

/* Run the check; prints one line per variable (worst relative error) and every failing
 * entry (at most 5 per variable). Returns the number of failing entries. */
int dk_gradcheck_run(const dk_gradcheck *g);

/* Fill x (n) with values uniform in [lo, hi] drawn from dk_rng seeded with seed. */
void dk_gc_fill(float *x, int64_t n, double lo, double hi, uint64_t seed);
/* Fill with values whose magnitude is at least `gap` (random sign): keeps ReLU inputs away
 * from 0; and distinct values (a random permutation of a spaced grid) for pooling. */
void dk_gc_fill_away_from_zero(float *x, int64_t n, double gap, double hi, uint64_t seed);
void dk_gc_fill_distinct(float *x, int64_t n, double spacing, uint64_t seed);

#endif
