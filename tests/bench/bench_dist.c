/* The gradient sum over ranks (dk_dist_sum: gather to rank 0 in rank order, sum, broadcast)
 * and the row gather (dk_dist_gather) timed on buffers of 0.125 to 8 MB; rank 0 prints the
 * median of `reps` calls per size and the time per MB. Run under mpirun:
 *   mpirun -np 2 build/tests/bench_dist [reps]
 * (docs/scaling.md). With one rank both are no-ops and it says so. */
#include <stdio.h>
#include <stdlib.h>

#include "dakd/dist.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of `reps` calls of dk_dist_sum (gather = 0) or dk_dist_gather on n floats
 * (the gather: n / size from each rank). */
static double time_op(float *buf, float *work, int64_t n, int reps, int gather, double *t) {
    int size = dk_dist_size();
    int64_t *counts = malloc((size_t)size * sizeof *counts);
    for (int r = 0; r < size; r++) counts[r] = n / size;
    for (int k = 0; k < reps; k++) {
        double t0 = dk_time_now();
        dk_status st = gather ? dk_dist_gather(work, buf, counts) : dk_dist_sum(buf, n, work);
        t[k] = dk_time_now() - t0;
        if (st != DK_OK) {
            fprintf(stderr, "bench_dist: %s\n", dk_last_error());
            dk_dist_abort(1);
        }
        if (dk_dist_bcast(&t[k], sizeof t[k], 0) != DK_OK) dk_dist_abort(1); /* rank 0's time */
    }
    free(counts);
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return t[reps / 2];
}

int main(int argc, char **argv) {
    if (dk_dist_init(&argc, &argv) != DK_OK) {
        fprintf(stderr, "bench_dist: %s\n", dk_last_error());
        return 1;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 21, rank = dk_dist_rank();
    if (reps < 1) reps = 1;
    const int64_t max_n = 2 << 20; /* 8 MB of floats */
    float *buf = calloc((size_t)max_n, sizeof(float)), *work = calloc((size_t)max_n, sizeof(float));
    double *t = malloc((size_t)reps * sizeof *t);
    if (!buf || !work || !t) return 1;
    if (rank == 0) {
        printf("ranks %d%s; median of %d calls\n\n", dk_dist_size(),
               dk_dist_size() == 1 ? " (no MPI: every call is a no-op or a copy)" : "", reps);
        printf("| MB | sum ms | sum ms/MB | gather ms | gather ms/MB |\n");
        printf("|---:|---:|---:|---:|---:|\n");
    }
    for (int64_t n = 32768; n <= max_n; n *= 4) {
        double mb = (double)n * sizeof(float) / 1048576.0;
        double s = time_op(buf, work, n, reps, 0, t), g = time_op(buf, work, n, reps, 1, t);
        if (rank == 0)
            printf("| %.3g | %.3f | %.3f | %.3f | %.3f |\n", mb, 1e3 * s, 1e3 * s / mb, 1e3 * g,
                   1e3 * g / mb);
    }
    free(buf), free(work), free(t);
    dk_dist_finalize();
    return 0;
}
