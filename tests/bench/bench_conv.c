/*
 * bench_conv — time dk_conv / dk_convt forward and backward on the layer shapes of the
 * 2-D teacher (batch 8, 128^2, widths 16/32/64/128), the 3-D teacher (batch 2, 64^3,
 * widths 8/16/32/64) and the prostate study's teacher (batch 4, 16 x 64^2, widths
 * 16..128, no depth pooling at the last level) and print a table: shape, ms forward, ms
 * backward, GFLOP/s and the share of the FMA peak.
 *
 *   bench_conv [threads] [2d|3d|prostate|all] [reps] [cpu]
 * threads <= 0 (default) keeps the environment's setting (OPENBLAS_NUM_THREADS,
 * OMP_NUM_THREADS). Set OPENBLAS_CORETYPE before starting (read when OpenBLAS loads).
 * `cpu` times with the process CPU clock instead of the wall clock: on a machine shared
 * with other jobs, a 1-thread run then still measures the kernels, not the scheduler.
 * Times are the median of `reps` runs (default 5) after one warm-up. The first layer's
 * backward skips din, as in the network.
 *
 * The machine's FMA peak is measured first by a loop of its own (independent FMA chains
 * in the widest vectors the CPU has: AVX-512, else AVX2, else SSE multiply + add) on every
 * thread at once, and each layer's speed is also given as a share of it. DAKD_CONV=gemm
 * times vol2col + sgemm where the direct path would run (dk_conv_path()).
 */
#include "dakd/core.h"
#include "dakd/nn.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

static int g_cpu_clock;

static double now(void) {
    if (!g_cpu_clock) return dk_time_now();
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---------------------------------------------------------------- FMA peak */

/* This thread's clock: its CPU time with `cpu`, else the wall clock. */
static double thread_now(void) {
    if (!g_cpu_clock) return dk_time_now();
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum { PEAK_ITERS = 1 << 24 };

#if defined(__x86_64__) && defined(__GNUC__)
/* 12 (AVX2) or 24 (AVX-512) independent FMA chains: enough to cover the FMA latency on
 * two pipes. Returns the flops done, with the sum kept live. */
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(float *sink) {
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < PEAK_ITERS; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 t = a[0];
    for (int i = 1; i < 12; i++) t = _mm256_add_ps(t, a[i]);
    float o[8];
    _mm256_storeu_ps(o, t);
    *sink += o[0];
    return 2.0 * 8 * 12 * (double)PEAK_ITERS;
}

__attribute__((target("avx512f"))) static double fma_loop_avx512(float *sink) {
    __m512 a[24], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < PEAK_ITERS; it++)
        for (int i = 0; i < 24; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    __m512 t = a[0];
    for (int i = 1; i < 24; i++) t = _mm512_add_ps(t, a[i]);
    *sink += _mm512_reduce_add_ps(t);
    return 2.0 * 16 * 24 * (double)PEAK_ITERS;
}
#endif

/* SSE multiply + add (baseline x86-64: no FMA). */
static double fma_loop_sse(float *sink) {
    typedef float v4 __attribute__((vector_size(16)));
    v4 a[12], m = {0.999999f, 0.999999f, 0.999999f, 0.999999f}, c = {1e-7f, 1e-7f, 1e-7f, 1e-7f};
    for (int i = 0; i < 12; i++) a[i] = (v4){(float)i, (float)i, (float)i, (float)i};
    for (long it = 0; it < PEAK_ITERS; it++)
        for (int i = 0; i < 12; i++) a[i] = a[i] * m + c;
    float t = 0;
    for (int i = 0; i < 12; i++) t += a[i][0];
    *sink += t;
    return 2.0 * 4 * 12 * (double)PEAK_ITERS;
}

static const char *g_peak_isa = "SSE (no FMA)";

/* GFLOP/s of every thread's loop together (median of 3). */
static double fma_peak(int nt) {
    double (*f)(float *) = fma_loop_sse;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) f = fma_loop_avx512, g_peak_isa = "AVX-512 FMA";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f = fma_loop_avx2, g_peak_isa = "AVX2 FMA";
#endif
    double r[3];
    for (int k = 0; k < 3; k++) {
        double rate = 0;
        float sink = 0;
        /* each thread's rate on its own clock (with `cpu`: its CPU time), summed */
#pragma omp parallel num_threads(nt) reduction(+ : rate, sink)
        {
            double a = thread_now(), fl = f(&sink);
            rate += fl / (thread_now() - a);
        }
        r[k] = rate * 1e-9;
        if (sink == 12345.0f) printf(" ");
    }
    dk_sort_doubles(r, 3);
    return r[1];
}

static double g_peak; /* GFLOP/s of the threads the kernels use */

typedef struct {
    const char *name;
    int transposed; /* 1: transposed conv, kernel = stride 2 in-plane, kd in depth; k ignored */
    int64_t cin, cout, size; /* input side in-plane (and in depth unless `depth` is set) */
    int k, bias, need_din;
    int64_t depth; /* 3-D input depth; 0: `size` (cubic) */
    int kd;        /* transposed: depth kernel and stride (1 or 2); 0: 2 */
} layer_def;

/* The teacher U-Net's convolutions at widths base*(1, 2, 4, 8), input side `side` in-plane
 * and depth `depth`; zpool[lv] (1 or 2) is the depth pooling below level lv (in-plane
 * always 2), as the nnU-Net plan of a thick-slice patch gives. */
static int teacher_layers(layer_def *l, int64_t base, int64_t side, int64_t depth,
                          const int zpool[3]) {
    int n = 0;
    int64_t c = base, s = side, dz[4] = {depth, 0, 0, 0};
    for (int lv = 1; lv < 4; lv++) dz[lv] = dz[lv - 1] / zpool[lv - 1];
    l[n++] = (layer_def){"enc0.conv1", 0, 1, c, s, 3, 0, 0, dz[0], 0};
    l[n++] = (layer_def){"enc0.conv2", 0, c, c, s, 3, 0, 1, dz[0], 0};
    static const char *enc[] = {"enc1", "enc2", "bottleneck"};
    static const char *dec[] = {"dec0", "dec1", "dec2"};
    static char names[32][32];
    int nn = 0;
    for (int lv = 1; lv < 4; lv++) {
        int64_t w = c << lv, sz = s >> lv;
        snprintf(names[nn], 32, "%s.conv1", enc[lv - 1]);
        l[n++] = (layer_def){names[nn++], 0, w / 2, w, sz, 3, 0, 1, dz[lv], 0};
        snprintf(names[nn], 32, "%s.conv2", enc[lv - 1]);
        l[n++] = (layer_def){names[nn++], 0, w, w, sz, 3, 0, 1, dz[lv], 0};
    }
    for (int lv = 2; lv >= 0; lv--) {
        int64_t w = c << lv, sz = s >> lv;
        snprintf(names[nn], 32, "up%d (convT)", lv);
        l[n++] = (layer_def){names[nn++], 1, 2 * w, w, sz / 2, 0, 1, 1, dz[lv + 1], zpool[lv]};
        snprintf(names[nn], 32, "%s.conv1", dec[lv]);
        l[n++] = (layer_def){names[nn++], 0, 2 * w, w, sz, 3, 0, 1, dz[lv], 0};
        snprintf(names[nn], 32, "%s.conv2", dec[lv]);
        l[n++] = (layer_def){names[nn++], 0, w, w, sz, 3, 0, 1, dz[lv], 0};
    }
    l[n++] = (layer_def){"head (1x1)", 0, c, 2, s, 1, 1, 1, dz[0], 0};
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
    int64_t dd = dims == 3 ? (d->depth ? d->depth : d->size) : 1;
    dk_conv_shape cs;
    dk_convt_shape ts;
    size_t nin, nout, nw, nwork;
    double macs;
    if (d->transposed) {
        int kt[3] = {dims == 3 ? (d->kd ? d->kd : 2) : 1, 2, 2};
        dk_convt_shape_make_axes(&ts, batch, d->cin, d->cout, dd, d->size, d->size, kt);
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
                    int64_t depth, const int zpool[3], int reps) {
    layer_def l[32];
    int n = teacher_layers(l, base, side, depth, zpool);
    if (dims == 3 && depth != side)
        printf("\n%s: batch %lld, %lld x %lld^2, widths %lld..%lld, depth pools %d,%d,%d\n",
               title, (long long)batch, (long long)depth, (long long)side, (long long)base,
               (long long)base * 8, zpool[0], zpool[1], zpool[2]);
    else
        printf("\n%s: batch %lld, %lld^%d, widths %lld..%lld\n", title, (long long)batch,
               (long long)side, dims, (long long)base, (long long)base * 8);
    printf("%-16s %-22s %9s %9s %8s %8s %8s %7s %7s\n", "layer", "cin->cout @ input", "ms fwd",
           "ms bwd", "GF/s f", "GF/s b", "GF/s", "%pk f", "%pk b");
    double sf = 0, sb = 0, ff = 0, fb = 0;
    size_t work = 0;
    for (int i = 0; i < n; i++) {
        timing t = time_layer(&l[i], batch, dims, reps);
        char shape[64];
        const char *kind = l[i].transposed ? " T" : (l[i].k == 1 ? " k1" : "");
        if (dims == 3 && l[i].depth && l[i].depth != l[i].size)
            snprintf(shape, sizeof shape, "%lld->%lld @%lldx%lld^2%s", (long long)l[i].cin,
                     (long long)l[i].cout, (long long)l[i].depth, (long long)l[i].size, kind);
        else
            snprintf(shape, sizeof shape, "%lld->%lld @%lld%s%s", (long long)l[i].cin,
                     (long long)l[i].cout, (long long)l[i].size, dims == 3 ? "^3" : "^2", kind);
        double gf = t.flop_fwd / t.ms_fwd * 1e-6, gb = t.flop_bwd / t.ms_bwd * 1e-6;
        printf("%-16s %-22s %9.2f %9.2f %8.1f %8.1f %8.1f %6.0f%% %6.0f%%\n", l[i].name, shape,
               t.ms_fwd, t.ms_bwd, gf, gb, (t.flop_fwd + t.flop_bwd) / (t.ms_fwd + t.ms_bwd) * 1e-6,
               100 * gf / g_peak, 100 * gb / g_peak);
        sf += t.ms_fwd, sb += t.ms_bwd, ff += t.flop_fwd, fb += t.flop_bwd;
        if (t.work > work) work = t.work;
    }
    printf("%-16s %-22s %9.2f %9.2f %8.1f %8.1f %8.1f %6.0f%% %6.0f%%   (%.2f GFLOP a step)\n",
           "total", "", sf, sb, ff / sf * 1e-6, fb / sb * 1e-6, (ff + fb) / (sf + sb) * 1e-6,
           100 * ff / sf * 1e-6 / g_peak, 100 * fb / sb * 1e-6 / g_peak, (ff + fb) * 1e-9);
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
    printf("convolution: %s\n", dk_conv_path());
    g_peak = fma_peak(dk_get_threads());
    printf("FMA peak (%s loop, %d thread(s)): %.1f GFLOP/s\n", g_peak_isa, dk_get_threads(),
           g_peak);
    static const int cubic[3] = {2, 2, 2}, thick[3] = {2, 2, 1};
    int all = strcmp(which, "all") == 0;
    if (all || !strcmp(which, "2d")) run_net("2-D teacher", 2, 8, 16, 128, 1, cubic, reps);
    if (all || !strcmp(which, "3d")) run_net("3-D teacher", 3, 2, 8, 64, 64, cubic, reps);
    /* the prostate study's teacher: 4 patches of 16 x 64 x 64, pools 2,2,2; 2,2,2; 1,2,2 */
    if (all || !strcmp(which, "prostate"))
        run_net("3-D prostate teacher", 3, 4, 16, 64, 16, thick, reps);
    return 0;
}
