/*
 * Monotonic wall clock for durations, progress rates and benchmarks.
 */
#include "dakd/core.h"

#include <stdlib.h>
#include <time.h>

double dk_time_now(void) {
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on the POSIX systems we target; a zero return would
     * only make rates look odd, never corrupt data. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void dk_sort_doubles(double *v, int64_t n) {
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_double);
}

double dk_median(double *v, int64_t n) {
    dk_sort_doubles(v, n);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
