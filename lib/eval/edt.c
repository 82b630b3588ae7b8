/* Exact squared Euclidean distance transform with anisotropic spacing (dakd/eval.h).
 *
 * Separable, one pass per axis (Felzenszwalb & Huttenlocher 2012):
 *   pass x (binary input): per row, two sweeps give the index distance to the nearest
 *          feature voxel of that row; out = (d · sx)², +INF when the row has none;
 *   pass y, pass z: per line, the lower envelope of the parabolas
 *          g_q(p) = f(q) + (s·p − s·q)²   (positions in mm, f from the previous passes)
 *          out(p) = min over q of g_q(p).
 * Lines along y and z are gathered in blocks of BLOCK adjacent x columns (64-byte reads
 * instead of one element per cache line), converted to double, transformed, and scattered
 * back as float32. Each line is processed by one thread on its own scratch, so the result
 * does not depend on the thread count. Lines with extent 1 are left as they are. */
#include "eval_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCK = 16 };

/* Per-thread scratch for lines of length L: f (L doubles), z (L + 1 doubles), the envelope
 * e (3L doubles), v (L int32), blk (BLOCK · L floats), each rounded up to 64 bytes. */
static size_t round64(size_t b) { return (b + 63) & ~(size_t)63; }

static size_t thread_bytes(int64_t len) {
    size_t L = (size_t)len;
    return round64(L * sizeof(double)) + round64((L + 1) * sizeof(double)) +
           round64(3 * L * sizeof(double)) + round64(L * sizeof(int32_t)) + round64((size_t)BLOCK * L * sizeof(float));
}

static int64_t max3(int64_t a, int64_t b, int64_t c) {
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

size_t dk_edt_work_bytes(int64_t nx, int64_t ny, int64_t nz) {
    return (size_t)dk_get_threads() * thread_bytes(max3(nx, ny, nz)) + 64;
}

/* Pass x on one row: distance in voxels to the nearest feature of the row (a sweep from
 * the left kept as integers in `left`, then one from the right), scaled by the spacing and
 * squared; +INF when the row has no feature. bit selects the bits of feat that count. */
static void row_pass(float *out, const uint8_t *feat, uint8_t bit, int64_t n, double s,
                     int32_t *left) {
    const int32_t none = INT32_MAX;
    uint8_t any = 0;
    for (int64_t i = 0; i < n; i++) any |= feat[i] & bit;
    if (!any) { /* most rows of a crop miss a thin boundary set */
        for (int64_t i = 0; i < n; i++) out[i] = INFINITY;
        return;
    }
    int32_t last = -1;
    for (int64_t i = 0; i < n; i++) {
        if (feat[i] & bit) last = (int32_t)i;
        left[i] = last < 0 ? none : (int32_t)(i - last);
    }
    int32_t next = -1;
    for (int64_t i = n - 1; i >= 0; i--) {
        if (feat[i] & bit) next = (int32_t)i;
        int32_t d = left[i];
        if (next >= 0 && next - i < d) d = (int32_t)(next - i);
        if (d == none) {
            out[i] = INFINITY;
        } else {
            double mm = (double)d * s;
            out[i] = (float)(mm * mm);
        }
    }
}

/* Lower envelope of parabolas on one line: f (n values, +INF = no parabola) → out. Every
 * position p is at s·p mm. The envelope keeps, per parabola k, its apex position ex[k], its
 * value ef[k] and h = ef + ex² (so intersections need no recomputation), and z[k], where
 * it starts. e holds 3n doubles, z n + 1. */
static void line_envelope(float *out, int64_t ostride, const double *f, int64_t n, double s,
                          double *e, double *z) {
    double *ex = e, *ef = e + n, *eh = e + 2 * n;
    int64_t k = -1;
    for (int64_t q = 0; q < n; q++) {
        if (f[q] == INFINITY) continue;
        double xq = s * (double)q, hq = f[q] + xq * xq, sint = -INFINITY;
        /* pop the parabolas the new one hides: intersection at or before their start */
        while (k >= 0) {
            sint = (hq - eh[k]) / (2.0 * (xq - ex[k]));
            if (sint > z[k]) break;
            k--;
        }
        k++;
        ex[k] = xq;
        ef[k] = f[q];
        eh[k] = hq;
        z[k] = k == 0 ? -INFINITY : sint;
        z[k + 1] = INFINITY;
    }
    if (k < 0) {
        for (int64_t p = 0; p < n; p++) out[p * ostride] = INFINITY;
        return;
    }
    int64_t j = 0;
    for (int64_t p = 0; p < n; p++) {
        double xp = s * (double)p;
        while (z[j + 1] < xp) j++;
        double dx = xp - ex[j];
        out[p * ostride] = (float)(dx * dx + ef[j]);
    }
}

/* Scratch of thread t. */
typedef struct {
    double *f, *z, *e;
    int32_t *v;
    float *blk;
} scratch;

static scratch scratch_of(unsigned char *base, int t, int64_t len) {
    unsigned char *p = base + (size_t)t * thread_bytes(len);
    size_t L = (size_t)len;
    scratch s;
    s.f = (double *)p;
    p += round64(L * sizeof(double));
    s.z = (double *)p;
    p += round64((L + 1) * sizeof(double));
    s.e = (double *)p;
    p += round64(3 * L * sizeof(double));
    s.v = (int32_t *)p;
    p += round64(L * sizeof(int32_t));
    s.blk = (float *)p;
    return s;
}

/* Copy bw floats (a full block is a fixed-size copy the compiler inlines). */
static void copy_cols(float *dst, const float *src, int64_t bw) {
    if (bw == BLOCK) memcpy(dst, src, BLOCK * sizeof(float));
    else memcpy(dst, src, (size_t)bw * sizeof(float));
}

/* One pass along an axis of extent len and element stride `stride`. Lines are indexed by
 * (outer index a in [0, n_outer), x block); a line starts at a·astride + x. With `only`
 * != 0 (the last pass of a transform that is only sampled), a line without a voxel whose
 * codes has a bit of `only` is skipped: its values are then not the distances. */
static void axis_pass(float *out, int64_t nx, int64_t n_outer, int64_t astride, int64_t len,
                      int64_t stride, double s, unsigned char *work, int64_t wlen, int nt,
                      const uint8_t *codes, uint8_t only) {
    int64_t nblk = (nx + BLOCK - 1) / BLOCK, jobs = n_outer * nblk;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t job = 0; job < jobs; job++) {
        scratch sc = scratch_of(work, omp_get_thread_num(), wlen);
        int64_t a = job / nblk, x0 = (job % nblk) * BLOCK;
        int64_t bw = nx - x0 < BLOCK ? nx - x0 : BLOCK;
        uint8_t need[BLOCK], any = 0;
        for (int64_t c = 0; c < BLOCK; c++) need[c] = !only;
        if (only) {
            const uint8_t *cb = codes + a * astride + x0;
            for (int64_t i = 0; i < len; i++)
                for (int64_t c = 0; c < bw; c++) need[c] |= (cb[i * stride + c] & only) != 0;
        }
        for (int64_t c = 0; c < bw; c++) any |= need[c];
        if (!any) continue;
        float *base = out + a * astride + x0;
        for (int64_t i = 0; i < len; i++) /* gather: bw adjacent columns per step */
            copy_cols(sc.blk + i * BLOCK, base + i * stride, bw);
        for (int64_t c = 0; c < bw; c++) {
            if (!need[c]) continue;
            int finite = 0;
            for (int64_t i = 0; i < len; i++) {
                sc.f[i] = sc.blk[i * BLOCK + c];
                finite |= sc.f[i] != INFINITY;
            }
            if (finite) line_envelope(sc.blk + c, BLOCK, sc.f, len, s, sc.e, sc.z);
        }
        for (int64_t i = 0; i < len; i++) copy_cols(base + i * stride, sc.blk + i * BLOCK, bw);
    }
}

/* The transform of the voxels whose feat has any bit of `bit` set (lib/eval internal). */
dk_status dk_edt_sq_bits(float *out, const uint8_t *feat, uint8_t bit, uint8_t only, int64_t nx,
                         int64_t ny, int64_t nz, const double spacing[3], void *work) {
    DK_ASSERT(nx >= 1 && ny >= 1 && nz >= 1);
    int nt = dk_get_threads();
    int64_t wlen = max3(nx, ny, nz);
    void *own = NULL;
    if (!work) {
        own = dk_alloc_aligned(dk_edt_work_bytes(nx, ny, nz), 1);
        if (!own) return dk_fail(DK_ERR_NOMEM, "distance transform: no memory for scratch");
        work = own;
    }
    unsigned char *w = (unsigned char *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    int64_t rows = ny * nz;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) {
        scratch sc = scratch_of(w, omp_get_thread_num(), wlen);
        row_pass(out + r * nx, feat + r * nx, bit, nx, spacing[0], sc.v);
    }
    /* `only` applies to the last pass there is */
    if (ny > 1)
        axis_pass(out, nx, nz, nx * ny, ny, nx, spacing[1], w, wlen, nt, feat, nz > 1 ? 0 : only);
    if (nz > 1) axis_pass(out, nx, ny, nx, nz, nx * ny, spacing[2], w, wlen, nt, feat, only);
    dk_free(own);
    return DK_OK;
}

dk_status dk_edt_sq(float *out, const uint8_t *feat, int64_t nx, int64_t ny, int64_t nz,
                    const double spacing[3], void *work) {
    return dk_edt_sq_bits(out, feat, 0xFF, 0, nx, ny, nz, spacing, work);
}
