/*
 * Monotonic wall clock for durations, progress rates and benchmarks.
 */
#include "dakd/core.h"

#include <time.h>

double dk_time_now(void) {
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on the POSIX systems we target; a zero return would
     * only make rates look odd, never corrupt data. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
