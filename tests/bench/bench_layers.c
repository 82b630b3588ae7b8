/*
 * bench_layers: time the memory-bound layer kernels (batch norm train forward/backward,
 * ReLU, max-pool, x2 upsampling) on a 2-D teacher's top level (8, 16, 1, 128, 128) and a
 * 3-D one (2, 8, 64, 64, 64). The shape is the full-resolution tensor: the pool's input and
 * the upsampling's output. GB/s counts the bytes each kernel must move at least (every
 * input read once, every output written once; a += counts a read and a write), so it is a
 * lower bound on the bandwidth used. Threads: OMP_NUM_THREADS, else one per core.
 *
 *   bench_layers [repeats]     (median and best of `repeats`, default 15; GB/s from the
 *                               median; the best is the figure on a shared machine)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/nn.h"

typedef struct {
    int64_t n, c, d, h, w;
    float *x, *y, *dx, *dy, *small, *dsmall, *gamma, *beta, *dgamma, *dbeta, *st;
    int32_t *am;
    dk_norm_shape ns;
    dk_pool_shape ps, us;
} bench;

typedef enum {
    K_COPY,
    K_BN_F,
    K_BN_B,
    K_RELU_F,
    K_RELU_B,
    K_POOL_F,
    K_POOL_B,
    K_UP_F,
    K_UP_B
} kernel;

/* memcpy of one full tensor is the roofline the others are read against. */
static const char *names[] = {"memcpy (ref)", "bn train fwd", "bn bwd",
                              "relu fwd",     "relu bwd",     "maxpool fwd",
                              "maxpool bwd",  "upsample fwd", "upsample bwd"};

static void run(bench *b, kernel k) {
    int64_t nel = b->n * b->c * b->d * b->h * b->w;
    float *st = b->st, *m = st, *r = st + 64, *rm = st + 128, *rv = st + 192;
    switch (k) {
    case K_COPY: memcpy(b->y, b->x, (size_t)nel * sizeof(float)); break;
    case K_BN_F:
        dk_batchnorm_forward_train(b->y, m, r, rm, rv, b->x, b->gamma, b->beta, &b->ns);
        break;
    case K_BN_B:
        dk_batchnorm_backward(b->dx, b->dgamma, b->dbeta, b->dy, b->x, m, r, b->gamma, &b->ns);
        break;
    case K_RELU_F: dk_relu_forward(b->y, b->x, nel, 0); break;
    case K_RELU_B: dk_relu_backward(b->dx, b->dy, b->y, nel, 0); break;
    case K_POOL_F: dk_maxpool_forward(b->small, b->am, b->x, &b->ps); break;
    case K_POOL_B: dk_maxpool_backward(b->dx, b->dsmall, b->am, &b->ps); break;
    case K_UP_F: dk_upsample2_forward(b->y, b->small, &b->us); break;
    case K_UP_B: dk_upsample2_backward(b->dsmall, b->dy, &b->us); break;
    }
}

/* Compulsory bytes per call: full-size tensors count nel floats, the half grid `sm`. */
static double bytes_of(kernel k, double nel, double sm) {
    switch (k) {
    case K_COPY: return 4 * 2 * nel;            /* in, out */
    case K_BN_F: return 4 * 2 * nel;            /* in, out */
    case K_BN_B: return 4 * 4 * nel;            /* dout, in, din r+w */
    case K_RELU_F: return 4 * 2 * nel;          /* in, out */
    case K_RELU_B: return 4 * 4 * nel;          /* dout, y, din r+w */
    case K_POOL_F: return 4 * nel + 8 * sm;     /* in, out + argmax */
    case K_POOL_B: return 4 * 2 * nel + 8 * sm; /* din r+w, dout + argmax */
    case K_UP_F: return 4 * nel + 4 * sm;       /* in (small), out */
    case K_UP_B: return 4 * nel + 8 * sm;       /* dout, din r+w (small) */
    }
    return 0;
}

static void fill(float *x, int64_t n, uint64_t seed) {
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = 2 * dk_rng_uniform(&r) - 1;
}

static int bench_shape(int64_t n, int64_t c, int64_t d, int64_t h, int64_t w, int reps) {
    bench b = {.n = n, .c = c, .d = d, .h = h, .w = w};
    int64_t nel = n * c * d * h * w;
    dk_pool_shape_make(&b.ps, n, c, d, h, w);
    dk_upsample_shape_make(&b.us, n, c, b.ps.od, b.ps.oh, b.ps.ow);
    int64_t sm = n * c * b.ps.od * b.ps.oh * b.ps.ow;
    b.ns = (dk_norm_shape){.n = n, .c = c, .s = d * h * w, .eps = 1e-5f, .momentum = 0.1f};
    float **bufs[] = {&b.x, &b.y, &b.dx, &b.dy};
    for (int i = 0; i < 4; i++)
        *bufs[i] = dk_alloc_aligned((size_t)nel, sizeof(float));
    b.small = dk_alloc_aligned((size_t)sm, sizeof(float));
    b.dsmall = dk_alloc_aligned((size_t)sm, sizeof(float));
    b.am = dk_alloc_aligned((size_t)sm, sizeof(int32_t));
    b.st = dk_alloc_aligned(64 * 8, sizeof(float));
    if (!b.x || !b.y || !b.dx || !b.dy || !b.small || !b.dsmall || !b.am || !b.st) return 1;
    memset(b.st, 0, 64 * 8 * sizeof(float));
    b.gamma = b.st + 256, b.beta = b.st + 320, b.dgamma = b.st + 384, b.dbeta = b.st + 448;
    for (int i = 0; i < c; i++)
        b.gamma[i] = 1;
    fill(b.x, nel, 1), fill(b.dy, nel, 2), fill(b.dsmall, sm, 3), fill(b.small, sm, 4);
    memset(b.dx, 0, (size_t)nel * sizeof(float));
    memset(b.y, 0, (size_t)nel * sizeof(float));
    dk_maxpool_forward(b.small, b.am, b.x, &b.ps);
    printf("(%lld, %lld, %lld, %lld, %lld)  %.1f MB per full tensor\n", (long long)n, (long long)c,
           (long long)d, (long long)h, (long long)w, 4e-6 * (double)nel);
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int k = K_COPY; k <= K_UP_B; k++) {
        run(&b, (kernel)k); /* warm up: page faults, caches */
        for (int i = 0; i < reps; i++) {
            double t0 = dk_time_now();
            run(&b, (kernel)k);
            t[i] = dk_time_now() - t0;
        }
        dk_sort_doubles(t, reps);
        double med = t[reps / 2], bytes = bytes_of((kernel)k, (double)nel, (double)sm);
        printf("  %-14s %8.3f ms (best %7.3f)  %6.1f GB/s (best %5.1f)\n", names[k], 1e3 * med,
               1e3 * t[0], 1e-9 * bytes / med, 1e-9 * bytes / t[0]);
    }
    free(t);
    dk_free(b.x), dk_free(b.y), dk_free(b.dx), dk_free(b.dy), dk_free(b.small);
    dk_free(b.dsmall), dk_free(b.am), dk_free(b.st);
    return 0;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 15;
    if (reps < 1) reps = 1;
    const char *env = getenv("OMP_NUM_THREADS");
    dk_set_threads(env ? atoi(env) : 0); /* <= 0: one per core */
    printf("bench_layers: %d threads, median and best of %d\n", dk_get_threads(), reps);
    if (bench_shape(8, 16, 1, 128, 128, reps) || bench_shape(2, 8, 64, 64, 64, reps)) {
        fprintf(stderr, "bench_layers: out of memory\n");
        return 1;
    }
    return 0;
}
