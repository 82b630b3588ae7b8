/*
 * Order statistics: sorting doubles, the median, selection of the k-th smallest value, and
 * percentiles (dakd/core.h). One home for them, so that every report, metric and
 * normalisation counts the same way.
 */
#include "dakd/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void dk_sort_doubles(double *v, int64_t n) {
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_double);
}

double dk_median(double *v, int64_t n) {
    DK_ASSERT(n >= 1);
    dk_sort_doubles(v, n);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Hoare selection with a median-of-three pivot, written once for both element types. On
 * return v[k] holds the k-th smallest and nothing right of k is smaller: either the loop
 * closed on k (hi == lo), or k lies between the two halves of the last partition, where
 * every element equals the pivot. */
#define SWAP(T, a, b) \
    do {              \
        T t_ = (a);   \
        (a) = (b);    \
        (b) = t_;     \
    } while (0)

#define DEFINE_SELECT(name, T)                                      \
    T name(T *v, int64_t n, int64_t k) {                            \
        DK_ASSERT(n >= 1 && k >= 0 && k < n);                       \
        int64_t lo = 0, hi = n - 1;                                 \
        while (hi > lo) {                                           \
            int64_t mid = lo + (hi - lo) / 2;                       \
            if (v[mid] < v[lo]) SWAP(T, v[mid], v[lo]);             \
            if (v[hi] < v[lo]) SWAP(T, v[hi], v[lo]);               \
            if (v[hi] < v[mid]) SWAP(T, v[hi], v[mid]);             \
            T pivot = v[mid];                                       \
            int64_t i = lo, j = hi;                                 \
            while (i <= j) {                                        \
                while (v[i] < pivot) i++;                           \
                while (v[j] > pivot) j--;                           \
                if (i <= j) {                                       \
                    SWAP(T, v[i], v[j]);                            \
                    i++, j--;                                       \
                }                                                   \
            }                                                       \
            if (k <= j) hi = j;                                     \
            else if (k >= i) lo = i;                                \
            else break;                                             \
        }                                                           \
        return v[k];                                                \
    }

DEFINE_SELECT(dk_select_double, double)
DEFINE_SELECT(dk_select_float, float)

/* numpy's _lerp: a + (b − a)·g below g = 0.5, b − (b − a)(1 − g) from there on. */
static double lerp_numpy(double a, double b, double g) {
    double diff = b - a;
    return g >= 0.5 ? b - diff * (1.0 - g) : a + diff * g;
}

double dk_percentile_sorted(const double *sorted, int64_t n, double p) {
    DK_ASSERT(n >= 1 && p >= 0 && p <= 100);
    double vi = (double)(n - 1) * (p / 100.0);
    if (vi >= (double)(n - 1)) return sorted[n - 1];
    int64_t k = (int64_t)floor(vi);
    return lerp_numpy(sorted[k], sorted[k + 1], vi - (double)k);
}

double dk_percentile_select(double *v, int64_t n, double p) {
    DK_ASSERT(n >= 1 && p >= 0 && p <= 100);
    double vi = (double)(n - 1) * (p / 100.0);
    if (vi >= (double)(n - 1)) return dk_select_double(v, n, n - 1);
    int64_t k = (int64_t)floor(vi);
    double a = dk_select_double(v, n, k), b = v[k + 1];
    /* everything right of k is >= v[k]: the next order statistic is the least of it */
    for (int64_t i = k + 2; i < n; i++) b = v[i] < b ? v[i] : b;
    return lerp_numpy(a, b, vi - (double)k);
}

double dk_percentile(const float *vals, int64_t n, double p, float *work) {
    DK_ASSERT(n > 0 && p >= 0 && p <= 100);
    memcpy(work, vals, (size_t)n * sizeof *work);
    double pos = p / 100.0 * (double)(n - 1);
    int64_t k = (int64_t)floor(pos);
    double frac = pos - (double)k;
    double a = dk_select_float(work, n, k);
    if (frac == 0 || k + 1 >= n) return a;
    float b = work[k + 1];
    for (int64_t i = k + 2; i < n; i++)
        if (work[i] < b) b = work[i];
    return a + frac * ((double)b - a);
}
