/* Direct convolution for the thin layers of a U-Net: stride 1, a kernel of 1 or 3 per axis
 * (not 1x1x1), zero padding k/2, output rows at least 16 wide, at most 32 input and 32 output
 * channels, on CPUs with AVX2 and FMA: the forward, and the backward (the weight gradient below;
 * the input gradient as the forward convolution of dout with the flipped weights, added to din).
 * Everything else (and every CPU without them) takes vol2col + sgemm (conv.c).
 *
 * Why: with vol2col + sgemm a thin layer (16 or 32 channels, as at a U-Net's full
 * resolution) pays for writing the column matrix, for OpenBLAS packing both operands, and
 * for a GEMM whose M = cout is too short for its kernel: 37-50 GFLOP/s on one Zen 3 core
 * (tests/bench/README.md). With 64 channels or more the GEMM is fed well: on the 2-D
 * teacher's layers of 64 and 128 channels it ran at 70-81 % of one Zen 3 core's FMA peak,
 * this kernel at 49-69 %, so those layers stay on it. The bound is on both channel counts,
 * so that a layer's forward and backward (whose input gradient swaps them) take one path.
 * Here an output block of CB channels x 16 consecutive x positions (2 AVX2 vectors) stays in 2 CB
 * registers while the loop runs over input channels and taps: per tap two unaligned loads of the
 * input row and CB broadcasts of a weight feed 2 CB FMAs, so with CB = 6 the FMA units, not the
 * loads, set the pace.
 *
 * Data: a job is one output plane z of one sample, or a chunk of its rows (more jobs when
 * there are few planes). It first copies the input rows it reads (every input channel, the
 * kd planes, its rows +- kh/2) into a per-thread slab whose rows carry kw/2 zeros on the
 * left and zeros up to a whole number of 16-wide blocks on the right, so the kernel never
 * tests an x edge; taps whose plane or row falls in the zero padding are skipped (they
 * would add 0). Weights are packed once per call, (block, cin, kd, kh, kw, CB).
 *
 * Order: every output sums its taps in one fixed order (input channels in groups of 8,
 * each group's taps kz, ky, kx in registers, then the groups in order) in float with FMA,
 * whatever the job split and thread count: the same bits for any number of threads. They differ
 * from the GEMM path's bits by rounding (a different order of the same products), as one BLAS
 * kernel's do from another's.
 *
 * DAKD_CONV=gemm in the environment turns the path off (the GEMM path everywhere), for
 * comparisons; dk_conv_path() says which is in use. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "conv_internal.h"
#include "dakd/nn.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DIRECT_BUILT 1
#else
#define DIRECT_BUILT 0
#endif

enum {
    XB = 16,               /* output x positions per block: two 8-float vectors */
    CB_MAX = 6,            /* output channels per block: 2 CB_MAX accumulators of 16 */
    CI_GROUP = 8,          /* input channels summed apart before their partial is added */
    SLAB_BUDGET = 1 << 20, /* floats of one thread's input slab (4 MB) */
    MAX_CHANNELS = 32      /* wider layers take vol2col + sgemm (above) */
};

static int g_direct = -1; /* -1: not decided yet */

static int direct_enabled(void) {
    int d = __atomic_load_n(&g_direct, __ATOMIC_RELAXED);
    if (d >= 0) return d;
    d = 0;
#if DIRECT_BUILT
    __builtin_cpu_init();
    const char *env = getenv("DAKD_CONV");
    d = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        !(env && strcmp(env, "gemm") == 0);
#endif
    __atomic_store_n(&g_direct, d, __ATOMIC_RELAXED);
    return d;
}

const char *dk_conv_path(void) {
    return direct_enabled()
               ? "direct AVX2+FMA (stride 1, rows >= 16 wide, <= 32 channels), GEMM otherwise"
               : "GEMM (vol2col + sgemm)";
}

int dk_conv_direct_applies(const dk_conv_shape *s) {
    if (s->sd != 1 || s->sh != 1 || s->sw != 1) return 0;
    if (s->kd * s->kh * s->kw == 1 || s->ow < XB) return 0;
    if (s->cin > MAX_CHANNELS || s->cout > MAX_CHANNELS) return 0;
    if (s->pd != s->kd / 2 || s->ph != s->kh / 2 || s->pw != s->kw / 2) return 0;
    return direct_enabled();
}

/* Geometry of one call: the slab's row width, its rows per job, the job split. */
typedef struct {
    int64_t nxb, wp;   /* 16-wide blocks per row; slab row width nxb*16 + kw - 1 */
    int64_t rows;      /* output rows (y) per job */
    int64_t nch, jobs; /* chunks per plane; n * od * nch jobs */
    int64_t slab;      /* floats of one slab: cin * kd * (rows + kh - 1) * wp */
} direct_geom;

static direct_geom geom(const dk_conv_shape *s, int nt) {
    direct_geom g;
    g.nxb = (s->ow + XB - 1) / XB;
    g.wp = g.nxb * XB + s->kw - 1;
    int64_t per_row = s->cin * s->kd * g.wp;
    int64_t rows = SLAB_BUDGET / per_row - (s->kh - 1);
    if (rows < 1) rows = 1;
    if (rows > s->oh) rows = s->oh;
    /* at least 4 jobs a thread when the planes alone do not give them (2-D, batch 1) */
    int64_t want = 4 * (int64_t)nt, planes = s->n * s->od;
    if (nt > 1 && planes < want) {
        int64_t nch = (want + planes - 1) / planes, r = (s->oh + nch - 1) / nch;
        if (r < rows) rows = r;
    }
    g.rows = rows;
    g.nch = (s->oh + rows - 1) / rows;
    g.jobs = s->n * s->od * g.nch;
    g.slab = dk_conv_slot((size_t)(s->cin * s->kd * (rows + s->kh - 1) * g.wp));
    return g;
}

static int64_t nblocks(const dk_conv_shape *s) { return (s->cout + CB_MAX - 1) / CB_MAX; }

/* Channels [*c0, *c0 + *cb) of block b: cout split into nblocks as evenly as possible. */
static void block_range(const dk_conv_shape *s, int64_t b, int64_t *c0, int *cb) {
    int64_t nb = nblocks(s), q = s->cout / nb, r = s->cout % nb;
    *c0 = b * q + (b < r ? b : r);
    *cb = (int)(q + (b < r));
}

static size_t packed_floats(const dk_conv_shape *s) {
    return dk_conv_slot((size_t)(s->cout * s->cin * s->kd * s->kh * s->kw));
}

size_t dk_conv_direct_work_floats(const dk_conv_shape *s, int nt) {
    return packed_floats(s) + (size_t)nt * (size_t)geom(s, nt).slab;
}

/* wp, block by block: block b (channels c0.. c0 + cb) as (cin, kd, kh, kw, cb). */
static void pack_weights(float *wp, const float *w, const dk_conv_shape *s) {
    int64_t kv = s->kd * s->kh * s->kw;
    for (int64_t b = 0; b < nblocks(s); b++) {
        int64_t c0;
        int cb;
        block_range(s, b, &c0, &cb);
        float *dst = wp + c0 * s->cin * kv;
        for (int64_t ci = 0; ci < s->cin; ci++)
            for (int64_t t = 0; t < kv; t++)
                for (int c = 0; c < cb; c++)
                    *dst++ = w[((c0 + c) * s->cin + ci) * kv + t];
    }
}

/* The slab of sample `in` (cin, id, ih, iw) for output plane z, rows [y0, y1): for each
 * channel in [ci0, ci1) and kz, rows iy = y0 - ph .. y1 - 1 + ph at slab row iy - (y0 - ph), each
 * [pw zeros][iw values][zeros] of width g->wp. Rows and planes in the padding are zeros
 * with zero_pad, else not written (the forward kernel skips their taps). */
static void fill_slab(float *slab, const float *in, const dk_conv_shape *s, const direct_geom *g,
                      int64_t z, int64_t y0, int64_t y1, int64_t ci0, int64_t ci1, int zero_pad) {
    int64_t nr = y1 - y0 + s->kh - 1, plane = s->id * s->ih * s->iw;
    int64_t tail = g->wp - s->pw - s->iw;
    for (int64_t ci = ci0; ci < ci1; ci++)
        for (int64_t kz = 0; kz < s->kd; kz++) {
            int64_t iz = z - s->pd + kz;
            float *dst = slab + (ci * s->kd + kz) * nr * g->wp;
            if (iz < 0 || iz >= s->id) {
                if (zero_pad) memset(dst, 0, (size_t)(nr * g->wp) * sizeof *dst);
                continue;
            }
            for (int64_t r = 0; r < nr; r++, dst += g->wp) {
                int64_t iy = y0 - s->ph + r;
                if (iy < 0 || iy >= s->ih) {
                    if (zero_pad) memset(dst, 0, (size_t)g->wp * sizeof *dst);
                    continue;
                }
                const float *src = in + ci * plane + (iz * s->ih + iy) * s->iw;
                if (s->pw) dst[0] = 0.0f;
                memcpy(dst + s->pw, src, (size_t)s->iw * sizeof *dst);
                memset(dst + s->pw + s->iw, 0, (size_t)tail * sizeof *dst);
            }
        }
}

/* One output block: channels of one weight block (CB of them) x 16 positions. `row` is the
 * slab at (ci 0, kz 0, the block's first row for ky 0, x of the block); taps kz in
 * [kz0, kz1), ky in [ky0, ky1) are the ones inside the input. */
typedef struct {
    const float *row, *w;
    int64_t ci_stride, kz_stride, wp, cin;
    int kd, kh, kz0, kz1, ky0, ky1;
} kern_args;

#if DIRECT_BUILT
/* The block's sums: input channels in groups of CI_GROUP, each group's taps summed in
 * registers and then added to the block's running sum (shorter float sums: a 3x3x3 layer
 * of 32 channels has 864 terms). add: out += sum, else out = sum. */
__attribute__((always_inline, target("avx2,fma"))) static inline void
kernel(float *out, int64_t ostride, int nvalid, int add, const kern_args *a, const int cb,
       const int kw) {
    __m256 acc0[CB_MAX], acc1[CB_MAX], sum0[CB_MAX], sum1[CB_MAX];
#pragma GCC unroll 6
    for (int c = 0; c < cb; c++)
        sum0[c] = sum1[c] = _mm256_setzero_ps();
    const int64_t wstep = (int64_t)kw * cb;
    for (int64_t ci0 = 0; ci0 < a->cin; ci0 += CI_GROUP) {
        int64_t ci1 = ci0 + CI_GROUP < a->cin ? ci0 + CI_GROUP : a->cin;
#pragma GCC unroll 6
        for (int c = 0; c < cb; c++)
            acc0[c] = acc1[c] = _mm256_setzero_ps();
        for (int64_t ci = ci0; ci < ci1; ci++)
            for (int kz = a->kz0; kz < a->kz1; kz++) {
                const float *r = a->row + ci * a->ci_stride + kz * a->kz_stride;
                const float *w = a->w + ((ci * a->kd + kz) * a->kh) * wstep;
                for (int ky = a->ky0; ky < a->ky1; ky++) {
                    const float *rr = r + ky * a->wp, *ww = w + ky * wstep;
#pragma GCC unroll 1
                    for (int kx = 0; kx < kw; kx++) {
                        __m256 v0 = _mm256_loadu_ps(rr + kx), v1 = _mm256_loadu_ps(rr + kx + 8);
#pragma GCC unroll 6
                        for (int c = 0; c < cb; c++) {
                            __m256 wv = _mm256_broadcast_ss(ww + kx * cb + c);
                            acc0[c] = _mm256_fmadd_ps(wv, v0, acc0[c]);
                            acc1[c] = _mm256_fmadd_ps(wv, v1, acc1[c]);
                        }
                    }
                }
            }
#pragma GCC unroll 6
        for (int c = 0; c < cb; c++) {
            sum0[c] = _mm256_add_ps(sum0[c], acc0[c]);
            sum1[c] = _mm256_add_ps(sum1[c], acc1[c]);
        }
    }
    for (int c = 0; c < cb; c++) {
        float *o = out + c * ostride, tmp[XB];
        float *d = nvalid == XB ? o : tmp; /* a partial block goes through tmp */
        if (add && d == tmp) memcpy(tmp, o, (size_t)nvalid * sizeof *o);
        if (add) {
            sum0[c] = _mm256_add_ps(_mm256_loadu_ps(d), sum0[c]);
            sum1[c] = _mm256_add_ps(_mm256_loadu_ps(d + 8), sum1[c]);
        }
        _mm256_storeu_ps(d, sum0[c]);
        _mm256_storeu_ps(d + 8, sum1[c]);
        if (d == tmp) memcpy(o, tmp, (size_t)nvalid * sizeof *o);
    }
}

/* One specialisation per block width (1..6 channels) and kw (1 or 3). */
#define KERNEL(CB, KW)                                                                             \
    __attribute__((target("avx2,fma"))) static void kern_##CB##_##KW(                              \
        float *out, int64_t ostride, int nvalid, int add, const kern_args *a) {                    \
        kernel(out, ostride, nvalid, add, a, CB, KW);                                              \
    }
KERNEL(1, 1)
KERNEL(2, 1)
KERNEL(3, 1)
KERNEL(4, 1)
KERNEL(5, 1)
KERNEL(6, 1)
KERNEL(1, 3)
KERNEL(2, 3)
KERNEL(3, 3)
KERNEL(4, 3)
KERNEL(5, 3)
KERNEL(6, 3)

typedef void (*kern_fn)(float *, int64_t, int, int, const kern_args *);
static const kern_fn g_kern[2][CB_MAX] = {
    {kern_1_1, kern_2_1, kern_3_1, kern_4_1, kern_5_1, kern_6_1},
    {kern_1_3, kern_2_3, kern_3_3, kern_4_3, kern_5_3, kern_6_3},
};

/* Output plane z, rows [y0, y1) of sample out_i (cout, od, oh, ow) from its slab. */
static void run_rows(float *out_i, const float *slab, const float *wpk, const dk_conv_shape *s,
                     const direct_geom *g, int64_t z, int64_t y0, int64_t y1, int add) {
    int64_t nr = y1 - y0 + s->kh - 1, p = s->od * s->oh * s->ow, kv = s->kd * s->kh * s->kw;
    kern_args a = {.ci_stride = s->kd * nr * g->wp,
                   .kz_stride = nr * g->wp,
                   .wp = g->wp,
                   .cin = s->cin,
                   .kd = s->kd,
                   .kh = s->kh};
    a.kz0 = (int)(s->pd - z > 0 ? s->pd - z : 0);
    a.kz1 = (int)(s->id - z + s->pd < s->kd ? s->id - z + s->pd : s->kd);
    for (int64_t y = y0; y < y1; y++) {
        a.ky0 = (int)(s->ph - y > 0 ? s->ph - y : 0);
        a.ky1 = (int)(s->ih - y + s->ph < s->kh ? s->ih - y + s->ph : s->kh);
        for (int64_t b = 0; b < nblocks(s); b++) {
            int64_t c0;
            int cb;
            block_range(s, b, &c0, &cb);
            kern_fn f = g_kern[s->kw == 3][cb - 1];
            a.w = wpk + c0 * s->cin * kv;
            float *o = out_i + c0 * p + (z * s->oh + y) * s->ow;
            for (int64_t xb = 0; xb < g->nxb; xb++) {
                int64_t x0 = xb * XB, nv = s->ow - x0 < XB ? s->ow - x0 : XB;
                a.row = slab + (y - y0) * g->wp + x0;
                f(o + x0, p, (int)nv, add, &a);
            }
        }
    }
}
#endif

/* ---------------------------------------------------------------- weight gradients
 *
 * dw (cout, cin, kd, kh, kw) += sum over samples and output positions of dout x the input
 * at the tap. The work is cut into chunks (a few output rows of one plane of one sample) and
 * units (one input channel x a block of DW_CB output channels, input channel outer); each
 * thread owns a contiguous range of units, hence disjoint entries of dw, and walks every
 * chunk in order: it fills its own slab with the input channels its units read (as the
 * forward does, with zeros where a tap falls in the padding), then for each of its units and
 * each (kz, ky) sums over the chunk's positions in DW_CB x kw vector accumulators (8
 * positions each), reduces their lanes in a fixed order and adds the chunk's sums to dw.
 * No thread waits for another until the end, and every entry sums the same chunks in the
 * same order whatever the split: the same bits for any thread count. */
enum {
    DW_CB = 4,          /* output channels per job: DW_CB x 3 accumulators */
    DW_BUDGET = 1 << 16 /* floats of a chunk's slab and dout rows (256 KB: the L2) */
};

static int64_t dw_blocks(const dk_conv_shape *s) { return (s->cout + DW_CB - 1) / DW_CB; }

static void dw_block_range(const dk_conv_shape *s, int64_t b, int64_t *c0, int *cb) {
    int64_t nb = dw_blocks(s), q = s->cout / nb, r = s->cout % nb;
    *c0 = b * q + (b < r ? b : r);
    *cb = (int)(q + (b < r));
}

/* Output rows per chunk: its slab (every input channel, kd planes, rows + kh - 1) and its
 * dout rows (every output channel) within DW_BUDGET, at least one. */
static int64_t dw_rows(const dk_conv_shape *s, int64_t wp) {
    int64_t fixed = s->cin * s->kd * (s->kh - 1) * wp, per = s->cin * s->kd * wp + s->cout * s->ow;
    int64_t r = (DW_BUDGET - fixed) / per;
    if (r < 1) r = 1;
    return r < s->oh ? r : s->oh;
}

/* Floats of one thread's slab (laid out for every input channel; it fills its own). */
static size_t dw_slab_floats(const dk_conv_shape *s) {
    int64_t wp = (s->ow + XB - 1) / XB * XB + s->kw - 1;
    return dk_conv_slot((size_t)(s->cin * s->kd * (dw_rows(s, wp) + s->kh - 1) * wp));
}

size_t dk_conv_direct_dw_work_floats(const dk_conv_shape *s, int nt) {
    return (size_t)nt * dw_slab_floats(s);
}

#if DIRECT_BUILT
/* Lanes of v summed in one fixed order: (0+4, 1+5, 2+6, 3+7), then pairs, then the two. */
__attribute__((always_inline, target("avx2,fma"))) static inline float hsum(__m256 v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
}

/* One job on one chunk: sr is the slab row of (ci, kz, ky) for the chunk's first output row
 * (x 0 of the padded row), d the dout row of channel c0 there (channel stride ds); dwp the
 * entry (c0, ci, kz, ky, 0) of dw (channel stride cs). */
typedef struct {
    const float *sr, *d;
    float *dwp;
    int64_t ds, cs, rows, ow, wp;
} dw_args;

__attribute__((always_inline, target("avx2,fma"))) static inline void
dw_kernel(const dw_args *a, const int cb, const int kw, const int TAIL) {
    __m256 acc[DW_CB][3];
    for (int c = 0; c < cb; c++)
        for (int k = 0; k < kw; k++)
            acc[c][k] = _mm256_setzero_ps();
    int64_t nv = a->ow / 8, tail = a->ow % 8;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)tail), lane);
    for (int64_t r = 0; r < a->rows; r++) {
        const float *sr = a->sr + r * a->wp, *dr = a->d + r * a->ow;
        for (int64_t x = 0; x < nv * 8; x += 8) {
            __m256 in[3];
#pragma GCC unroll 3
            for (int k = 0; k < kw; k++)
                in[k] = _mm256_loadu_ps(sr + x + k);
#pragma GCC unroll 4
            for (int c = 0; c < cb; c++) {
                __m256 d = _mm256_loadu_ps(dr + c * a->ds + x);
#pragma GCC unroll 3
                for (int k = 0; k < kw; k++)
                    acc[c][k] = _mm256_fmadd_ps(d, in[k], acc[c][k]);
            }
        }
        if (TAIL && tail) {
            int64_t x = nv * 8;
            __m256 in[3];
            for (int k = 0; k < kw; k++)
                in[k] = _mm256_loadu_ps(sr + x + k);
            for (int c = 0; c < cb; c++) {
                __m256 d = _mm256_maskload_ps(dr + c * a->ds + x, mask);
                for (int k = 0; k < kw; k++)
                    acc[c][k] = _mm256_fmadd_ps(d, in[k], acc[c][k]);
            }
        }
    }
    for (int c = 0; c < cb; c++)
        for (int k = 0; k < kw; k++)
            a->dwp[c * a->cs + k] += hsum(acc[c][k]);
}

#define DW_KERNEL(CB, KW)                                                                          \
    __attribute__((target("avx2,fma"))) static void dw_##CB##_##KW(const dw_args *a) {             \
        if (a->ow % 8)                                                                             \
            dw_kernel(a, CB, KW, 1);                                                               \
        else                                                                                       \
            dw_kernel(a, CB, KW, 0);                                                               \
    }
DW_KERNEL(1, 1)
DW_KERNEL(2, 1)
DW_KERNEL(3, 1)
DW_KERNEL(4, 1)
DW_KERNEL(1, 3)
DW_KERNEL(2, 3)
DW_KERNEL(3, 3)
DW_KERNEL(4, 3)

typedef void (*dw_fn)(const dw_args *);
static const dw_fn g_dw[2][DW_CB] = {{dw_1_1, dw_2_1, dw_3_1, dw_4_1},
                                     {dw_1_3, dw_2_3, dw_3_3, dw_4_3}};

/* Units [u0, u1) on one chunk: output rows [y0, y1) of plane z of sample i, whose slab
 * (nr = y1 - y0 + kh - 1 rows a plane) holds the units' input channels. */
static void dw_chunk(float *dw, const float *dout, const float *slab, const dk_conv_shape *s,
                     const direct_geom *g, int64_t i, int64_t z, int64_t y0, int64_t y1, int64_t u0,
                     int64_t u1) {
    int64_t nb = dw_blocks(s), nr = y1 - y0 + s->kh - 1, p = s->od * s->oh * s->ow;
    const dw_fn *fns = g_dw[s->kw == 3];
    for (int64_t u = u0; u < u1; u++) {
        int64_t ci = u / nb, c0;
        int cb;
        dw_block_range(s, u % nb, &c0, &cb);
        for (int64_t kz = 0; kz < s->kd; kz++)
            for (int64_t ky = 0; ky < s->kh; ky++) {
                dw_args a = {.sr = slab + ((ci * s->kd + kz) * nr + ky) * g->wp,
                             .d = dout + (i * s->cout + c0) * p + (z * s->oh + y0) * s->ow,
                             .dwp = dw + ((c0 * s->cin + ci) * s->kd + kz) * s->kh * s->kw +
                                    ky * s->kw,
                             .ds = p,
                             .cs = s->cin * s->kd * s->kh * s->kw,
                             .rows = y1 - y0,
                             .ow = s->ow,
                             .wp = g->wp};
                fns[cb - 1](&a);
            }
    }
}
#endif

void dk_conv_direct_dw(float *dw, const float *dout, const float *in, const dk_conv_shape *s,
                       float *work, int nt) {
#if DIRECT_BUILT
    DK_ASSERT(dk_conv_direct_applies(s) && work && nt >= 1);
    direct_geom g = {.nxb = (s->ow + XB - 1) / XB};
    g.wp = g.nxb * XB + s->kw - 1;
    int64_t R = dw_rows(s, g.wp), in_n = s->cin * s->id * s->ih * s->iw, nb = dw_blocks(s);
    int64_t units = s->cin * nb;
    size_t slot = dw_slab_floats(s);
#pragma omp parallel num_threads(nt) if (nt > 1 && units > 1)
    {
        int64_t t = omp_get_thread_num(), n_t = omp_get_num_threads();
        int64_t u0 = units * t / n_t, u1 = units * (t + 1) / n_t;
        float *slab = work + (size_t)t * slot;
        for (int64_t i = 0; i < s->n && u0 < u1; i++)
            for (int64_t z = 0; z < s->od; z++)
                for (int64_t y0 = 0; y0 < s->oh; y0 += R) {
                    int64_t y1 = y0 + R < s->oh ? y0 + R : s->oh;
                    fill_slab(slab, in + i * in_n, s, &g, z, y0, y1, u0 / nb, (u1 - 1) / nb + 1, 1);
                    dw_chunk(dw, dout, slab, s, &g, i, z, y0, y1, u0, u1);
                }
    }
#else
    (void)dw, (void)dout, (void)in, (void)s, (void)work, (void)nt;
    DK_ASSERT(0 && "direct convolution not built on this target");
#endif
}

void dk_conv_direct_forward(float *out, const float *in, const float *w, const dk_conv_shape *s,
                            float *work, int nt, int add) {
#if DIRECT_BUILT
    DK_ASSERT(dk_conv_direct_applies(s) && work && nt >= 1);
    direct_geom g = geom(s, nt);
    float *wpk = work, *slabs = work + packed_floats(s);
    pack_weights(wpk, w, s);
    int64_t in_n = s->cin * s->id * s->ih * s->iw, out_n = s->cout * s->od * s->oh * s->ow;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && g.jobs > 1)
    for (int64_t j = 0; j < g.jobs; j++) {
        int64_t i = j / (s->od * g.nch), rest = j % (s->od * g.nch);
        int64_t z = rest / g.nch, y0 = (rest % g.nch) * g.rows;
        int64_t y1 = y0 + g.rows < s->oh ? y0 + g.rows : s->oh;
        float *slab = slabs + (size_t)omp_get_thread_num() * (size_t)g.slab;
        fill_slab(slab, in + i * in_n, s, &g, z, y0, y1, 0, s->cin, 0);
        run_rows(out + i * out_n, slab, wpk, s, &g, z, y0, y1, add);
    }
#else
    (void)out, (void)in, (void)w, (void)s, (void)work, (void)nt, (void)add;
    DK_ASSERT(0 && "direct convolution not built on this target");
#endif
}
