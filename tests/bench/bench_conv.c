/*
 * bench_conv — time dk_conv / dk_convt forward and backward on the layer shapes of the
 * 2-D teacher (batch 8, 128^2, widths 16/32/64/128) and the 3-D teacher (batch 2, 64^3,
 * widths 8/16/32/64) and print a table: shape, ms forward, ms backward, GFLOP/s.
 *
 *   bench_conv [threads] [2d|3d|all] [reps] [cpu]
 * threads <= 0 (default) keeps the environment's setting (OPENBLAS_NUM_THREADS,
 * OMP_NUM_THREADS). Set OPENBLAS_CORETYPE before starting (read when OpenBLAS loads).
 * `cpu` times with the process CPU clock instead of the wall clock: on a machine shared
 * with other jobs, a 1-thread run then still measures the kernels, not the scheduler.
 * Times are the median of `reps` runs (default 5) after one warm-up. The first layer's
 * backward skips din, as in the network.
 */
#include "dakd/core.h"
#include "dakd/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_cpu_clock;

static double now(void) {
    if (!g_cpu_clock) return dk_time_now();
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const char *name;
    int transposed; /* 1: 2x2(x2) transposed conv; k ignored */
    int64_t cin, cout, size; /* input side (cubic in 3-D, square in 2-D) */
    int k, bias, need_din;
} layer_def;

/* The teacher U-Net's convolutions at widths base*(1, 2, 4, 8), input side `side`. */
static int teacher_layers(layer_def *l, int64_t base, int64_t side) {
    int n = 0;
    int64_t c = base, s = side;
    l[n++] = (layer_def){"enc0.conv1", 0, 1, c, s, 3, 0, 0};
    l[n++] = (layer_def){"enc0.conv2", 0, c, c, s, 3, 0, 1};
    static const char *enc[] = {"enc1", "enc2", "bottleneck"};
    static const char *dec[] = {"dec0", "dec1", "dec2"};
    static char names[32][32];
    int nn = 0;
    for (int lv = 1; lv < 4; lv++) {
        int64_t w = c << lv, sz = s >> lv;
        snprintf(names[nn], 32, "%s.conv1", enc[lv - 1]);
        l[n++] = (layer_def){names[nn++], 0, w / 2, w, sz, 3, 0, 1};
        snprintf(names[nn], 32, "%s.conv2", enc[lv - 1]);
        l[n++] = (layer_def){names[nn++], 0, w, w, sz, 3, 0, 1};
    }
    for (int lv = 2; lv >= 0; lv--) {
        int64_t w = c << lv, sz = s >> lv;
        snprintf(names[nn], 32, "up%d (convT)", lv);
        l[n++] = (layer_def){names[nn++], 1, 2 * w, w, sz / 2, 0, 1, 1};
        snprintf(names[nn], 32, "%s.conv1", dec[lv]);
        l[n++] = (layer_def){names[nn++], 0, 2 * w, w, sz, 3, 0, 1};
        snprintf(names[nn], 32, "%s.conv2", dec[lv]);
        l[n++] = (layer_def){names[nn++], 0, w, w, sz, 3, 0, 1};
    }
    l[n++] = (layer_def){"head (1x1)", 0, c, 2, s, 1, 1, 1};
    return n;
}

static float *alloc_filled(size_t n, float v) {
    float *p = dk_alloc_aligned(n + 16, sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = v * (float)((i * 7919) % 17) - v * 8;
    return p;
}

typedef struct {
    double ms_fwd, ms_bwd, flop_fwd, flop_bwd;
    size_t work; /* floats of workspace */
} timing;

/* Median over reps of forward, then backward, of one layer. */
static timing time_layer(const layer_def *d, int64_t batch, int dims, int reps) {
    int64_t dd = dims == 3 ? d->size : 1;
    dk_conv_shape cs;
    dk_convt_shape ts;
    size_t nin, nout, nw, nwork;
    double macs;
    if (d->transposed) {
        dk_convt_shape_make(&ts, batch, d->cin, d->cout, dd, d->size, d->size);
        nin = (size_t)(batch * d->cin * dd * d->size * d->size);
        nout = (size_t)(batch * d->cout * ts.od * ts.oh * ts.ow);
        nw = (size_t)(d->cin * d->cout * 4 * ts.kd);
        nwork = dk_convt_work_floats(&ts);
        macs = (double)nw * (double)(nin / (size_t)d->cin);
    } else {
        dk_conv_shape_make(&cs, batch, d->cin, d->cout, dd, d->size, d->size, d->k, 1);
        nin = (size_t)(batch * d->cin * dd * d->size * d->size);
        nout = (size_t)(batch * d->cout * cs.od * cs.oh * cs.ow);
        nw = (size_t)(d->cout * d->cin * cs.kd * cs.kh * cs.kw);
        nwork = dk_conv_work_floats(&cs);
        macs = (double)nw * (double)(nout / (size_t)d->cout);
    }
    float *in = alloc_filled(nin, 0.01f), *out = alloc_filled(nout, 0);
    float *w = alloc_filled(nw, 0.01f), *b = alloc_filled((size_t)d->cout, 0.1f);
    float *dout = alloc_filled(nout, 0.01f), *din = alloc_filled(nin, 0);
    float *dw = alloc_filled(nw, 0), *db = alloc_filled((size_t)d->cout, 0);
    float *work = alloc_filled(nwork + 1, 0);
    double tf[64], tb[64];
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        if (d->transposed)
            dk_convt_forward(out, in, w, d->bias ? b : NULL, &ts, work);
        else
            dk_conv_forward(out, in, w, d->bias ? b : NULL, &cs, work);
        double t1 = now();
        float *di = d->need_din ? din : NULL;
        if (d->transposed)
            dk_convt_backward(di, dw, d->bias ? db : NULL, dout, in, w, &ts, work);
        else
            dk_conv_backward(di, dw, d->bias ? db : NULL, dout, in, w, &cs, work);
        double t2 = now();
        if (r >= 0) tf[r] = t1 - t0, tb[r] = t2 - t1;
    }
    dk_sort_doubles(tf, reps);
    dk_sort_doubles(tb, reps);
    timing t = {1e3 * tf[reps / 2], 1e3 * tb[reps / 2], 2 * macs,
                2 * macs * (d->need_din ? 2 : 1), nwork};
    dk_free(in), dk_free(out), dk_free(w), dk_free(b);
    dk_free(dout), dk_free(din), dk_free(dw), dk_free(db);
    dk_free(work);
    return t;
}

static void run_net(const char *title, int dims, int64_t batch, int64_t base, int64_t side,
                    int reps) {
    layer_def l[32];
    int n = teacher_layers(l, base, side);
    printf("\n%s: batch %lld, %lld^%d, widths %lld..%lld\n", title, (long long)batch,
           (long long)side, dims, (long long)base, (long long)base * 8);
    printf("%-16s %-22s %9s %9s %8s %8s %8s\n", "layer", "cin->cout @ input", "ms fwd",
           "ms bwd", "GF/s f", "GF/s b", "GF/s");
    double sf = 0, sb = 0, ff = 0, fb = 0;
    size_t work = 0;
    for (int i = 0; i < n; i++) {
        timing t = time_layer(&l[i], batch, dims, reps);
        char shape[64];
        snprintf(shape, sizeof shape, "%lld->%lld @%lld%s%s", (long long)l[i].cin,
                 (long long)l[i].cout, (long long)l[i].size, dims == 3 ? "^3" : "^2",
                 l[i].transposed ? " T" : (l[i].k == 1 ? " k1" : ""));
        printf("%-16s %-22s %9.2f %9.2f %8.1f %8.1f %8.1f\n", l[i].name, shape, t.ms_fwd,
               t.ms_bwd, t.flop_fwd / t.ms_fwd * 1e-6, t.flop_bwd / t.ms_bwd * 1e-6,
               (t.flop_fwd + t.flop_bwd) / (t.ms_fwd + t.ms_bwd) * 1e-6);
        sf += t.ms_fwd, sb += t.ms_bwd, ff += t.flop_fwd, fb += t.flop_bwd;
        if (t.work > work) work = t.work;
    }
    printf("%-16s %-22s %9.2f %9.2f %8.1f %8.1f %8.1f   (%.2f GFLOP a step)\n", "total", "",
           sf, sb, ff / sf * 1e-6, fb / sb * 1e-6, (ff + fb) / (sf + sb) * 1e-6,
           (ff + fb) * 1e-9);
    printf("largest workspace %.2f MB\n", (double)work * sizeof(float) / (1 << 20));
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    const char *which = argc > 2 ? argv[2] : "all";
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (reps < 1 || reps > 64) reps = 5;
    g_cpu_clock = argc > 4 && strcmp(argv[4], "cpu") == 0;
    if (threads > 0) dk_set_threads(threads);
    printf("bench_conv: OpenBLAS kernel %s, %d thread(s), median of %d, %s clock\n",
           dk_blas_kernel(), dk_get_threads(), reps, g_cpu_clock ? "CPU" : "wall");
    if (strcmp(which, "3d") != 0) run_net("2-D teacher", 2, 8, 16, 128, reps);
    if (strcmp(which, "2d") != 0) run_net("3-D teacher", 3, 2, 8, 64, reps);
    return 0;
}
