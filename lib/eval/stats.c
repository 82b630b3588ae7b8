/* Summaries over cases (percentiles from dakd/core.h), the Wilcoxon signed-rank test
 * exactly as scipy.stats.wilcoxon(d) 1.10 computes it with its defaults, and the percentile
 * bootstrap interval of a mean over seeds and cases (dakd/eval.h). */
#include "dakd/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void dk_metric_summarize(dk_metric_summary *s, const double *values, int count, int flagged) {
    memset(s, 0, sizeof *s);
    s->flagged = flagged;
    double *v = malloc((size_t)(count > 0 ? count : 1) * sizeof *v);
    DK_ASSERT(v != NULL);
    for (int i = 0; i < count; i++) {
        if (isnan(values[i])) s->nan++;
        else v[s->n++] = values[i];
    }
    int n = s->n;
    if (n == 0) {
        s->mean = s->std = s->median = s->q1 = s->q3 = s->min = s->max = NAN;
        free(v);
        return;
    }
    dk_sort_doubles(v, n);
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    s->mean = sum / n;
    for (int i = 0; i < n; i++) ss += (v[i] - s->mean) * (v[i] - s->mean);
    s->std = n > 1 ? sqrt(ss / (n - 1)) : 0.0; /* ddof = 1 */
    s->median = dk_percentile_sorted(v, n, 50);
    s->q1 = dk_percentile_sorted(v, n, 25);
    s->q3 = dk_percentile_sorted(v, n, 75);
    s->min = v[0];
    s->max = v[n - 1];
    free(v);
}

/* ------------------------------------------------------------------ Wilcoxon */

typedef struct {
    double a; /* |d| */
    double d;
} signed_abs;

static int cmp_abs(const void *x, const void *y) {
    double a = ((const signed_abs *)x)->a, b = ((const signed_abs *)y)->a;
    return (a > b) - (a < b);
}

/* Average ranks of |d| (ties share the mean of their positions, as scipy's rankdata);
 * W+ and W− and the tie term Σ t(t² − 1) over groups of equal |d|. v is sorted. */
static void rank_sums(signed_abs *v, int n, double *rp, double *rm, double *ties) {
    qsort(v, (size_t)n, sizeof *v, cmp_abs);
    *rp = *rm = *ties = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[j + 1].a == v[i].a) j++;
        double rank = 0.5 * (double)(i + 1 + j + 1), t = (double)(j - i + 1);
        for (int k = i; k <= j; k++) *(v[k].d > 0 ? rp : rm) += rank;
        if (t > 1) *ties += t * (t * t - 1);
        i = j + 1;
    }
}

/* Exact two-sided p from the null distribution of W+ for n pairs (every sign pattern
 * equally likely): the recursion scipy's _get_wilcoxon_distr uses, at the integer part of
 * W+ (scipy casts W+ to int, so tied half ranks are truncated). */
static double exact_p(int n, double r_plus) {
    int64_t m = (int64_t)n * (n + 1) / 2;
    double *c = calloc((size_t)m + 1, sizeof *c), *prev = calloc((size_t)m + 1, sizeof *c);
    DK_ASSERT(c && prev);
    c[0] = 1;
    for (int k = 1; k <= n; k++) {
        int64_t len_prev = (int64_t)(k - 1) * k / 2 + 1, len = (int64_t)k * (k + 1) / 2 + 1;
        memcpy(prev, c, (size_t)len_prev * sizeof *c);
        memset(c, 0, (size_t)len * sizeof *c);
        for (int64_t i = 0; i < len_prev; i++) c[i] = prev[i] * 0.5;
        for (int64_t i = 0; i < len_prev; i++) c[len - len_prev + i] += prev[i] * 0.5;
    }
    int64_t r = (int64_t)r_plus;
    double p;
    if (r == m / 2) {
        p = 1.0;
    } else {
        double lo = 0, hi = 0;
        for (int64_t i = 0; i <= r; i++) lo += c[i];
        for (int64_t i = r; i <= m; i++) hi += c[i];
        p = 2 * (lo < hi ? lo : hi);
        p = p > 1 ? 1 : p < 0 ? 0 : p;
    }
    free(c);
    free(prev);
    return p;
}

/* scipy 1.10 with its defaults: with m differences (NaN dropped here; scipy would return
 * NaN), the exact distribution when m <= 50 and no difference is zero, otherwise the
 * normal approximation over the non-zero ones with the tie correction and no continuity
 * correction: z = (W − n(n+1)/4) / sqrt((n(n+1)(2n+1) − ½Σt(t²−1)) / 24), p = erfc(|z|/√2). */
void dk_wilcoxon(const double *d, int count, double *w, double *p, int *n_used) {
    signed_abs *v = malloc((size_t)(count > 0 ? count : 1) * sizeof *v);
    DK_ASSERT(v != NULL);
    int m = 0, zeros = 0, n = 0;
    for (int i = 0; i < count; i++) {
        if (isnan(d[i])) continue;
        m++;
        if (d[i] == 0) zeros++;
        else v[n++] = (signed_abs){fabs(d[i]), d[i]};
    }
    *n_used = n;
    if (n == 0) {
        *w = *p = NAN;
        free(v);
        return;
    }
    int exact = m <= 50 && zeros == 0;
    double rp, rm, ties;
    rank_sums(v, n, &rp, &rm, &ties);
    *w = rp < rm ? rp : rm;
    if (exact) {
        *p = exact_p(n, rp);
    } else {
        double nn = n, mn = nn * (nn + 1) * 0.25;
        double se = sqrt((nn * (nn + 1) * (2 * nn + 1) - 0.5 * ties) / 24);
        double z = (*w - mn) / se;
        *p = erfc(fabs(z) / sqrt(2.0));
    }
    free(v);
}

/* ------------------------------------------------------------------ bootstrap */

void dk_bootstrap_mean_ci(double *lo, double *hi, const double *x, int n_seeds, int n_cases,
                          int resamples, double level, uint64_t seed) {
    *lo = *hi = NAN;
    if (n_seeds <= 0 || n_cases <= 0 || resamples <= 0) return;
    double *means = malloc((size_t)resamples * sizeof *means);
    int *rows = malloc((size_t)n_seeds * sizeof *rows);
    int *cols = malloc((size_t)n_cases * sizeof *cols);
    DK_ASSERT(means && rows && cols);
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int b = 0; b < resamples; b++) {
        for (int s = 0; s < n_seeds; s++) rows[s] = (int)dk_rng_below(&r, (uint64_t)n_seeds);
        for (int c = 0; c < n_cases; c++) cols[c] = (int)dk_rng_below(&r, (uint64_t)n_cases);
        double sum = 0;
        for (int s = 0; s < n_seeds; s++) {
            const double *row = x + (size_t)rows[s] * (size_t)n_cases;
            for (int c = 0; c < n_cases; c++) sum += row[cols[c]];
        }
        means[b] = sum / ((double)n_seeds * n_cases);
    }
    dk_sort_doubles(means, resamples);
    *lo = dk_percentile_sorted(means, resamples, 50 * (1 - level));
    *hi = dk_percentile_sorted(means, resamples, 50 * (1 + level));
    free(means);
    free(rows);
    free(cols);
}
