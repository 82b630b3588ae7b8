/*
 * CUnit suite for Fourier domain adaptation (dakd/data.h, dk_fda_*):
 *  - numpy.fft as the oracle: Yang & Soatto's FDA_source_to_target_np (fft2, fftshift, the
 *    band [c - b, c + b], ifft2, real part), extended to fftn over three axes for 3-D, on
 *    small images of odd and even sides and two channels; the output's phase is the
 *    source's wherever its amplitude is not tiny (numpy again);
 *  - beta = 0 is the identity, bit for bit;
 *  - a band of the zero frequency only (b = 0) swaps the mean and keeps the rest: the
 *    analytic oracle x - mean(x) + mean(t);
 *  - the target itself as the style keeps the source (amplitude and phase unchanged);
 *  - two plans give the same bits.
 */
#include "dakd/data.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PY "/usr/bin/python3"

static void fill(float *x, int64_t n, uint64_t seed) {
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)dk_rng_normal(&r) + 0.5f;
}

static int write_raw(const char *path, const float *x, int64_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(x, sizeof(float), (size_t)n, f);
    fclose(f);
    return k == (size_t)n ? 0 : -1;
}

static int read_raw(const char *path, float *x, int64_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t k = fread(x, sizeof(float), (size_t)n, f);
    fclose(f);
    return k == (size_t)n ? 0 : -1;
}

/* The reference, written from the paper's code: full complex spectra over the last `rank`
 * axes, fftshift, the band sliced around the centre, ifftshift, real part of the inverse;
 * then the phase check of the C output. argv: dir c d h w beta. */
static const char *const REFERENCE =
    "import sys, numpy as np\n"
    "d_, c, d, h, w, beta = sys.argv[1], *map(int, sys.argv[2:6]), float(sys.argv[6])\n"
    "shape = (c, d, h, w)\n"
    "src = np.fromfile(d_ + '/src.raw', np.float32).reshape(shape).astype(np.float64)\n"
    "trg = np.fromfile(d_ + '/trg.raw', np.float32).reshape(shape).astype(np.float64)\n"
    "axes = (-3, -2, -1) if d > 1 else (-2, -1)\n"
    "fs, ft = np.fft.fftn(src, axes=axes), np.fft.fftn(trg, axes=axes)\n"
    "a_s = np.fft.fftshift(np.abs(fs), axes=axes); a_t = np.fft.fftshift(np.abs(ft), axes=axes)\n"
    "b = int(np.floor(min(shape[k] for k in axes) * beta))\n"
    "sl = [slice(None)] * 4\n"
    "for k in axes:\n"
    "    cc = shape[k] // 2; sl[k] = slice(cc - b, cc + b + 1)\n"
    "a_s[tuple(sl)] = a_t[tuple(sl)]\n"
    "a_s = np.fft.ifftshift(a_s, axes=axes)\n"
    "out = np.real(np.fft.ifftn(a_s * np.exp(1j * np.angle(fs)), axes=axes))\n"
    "out.astype(np.float32).tofile(d_ + '/ref.raw')\n"
    "got = np.fromfile(d_ + '/out.raw', np.float32).reshape(shape).astype(np.float64)\n"
    "fg = np.fft.fftn(got, axes=axes)\n"
    "keep = np.abs(fs) > 1e-2 * np.abs(fs).max()\n"
    "dphi = np.angle(fg[keep] * np.conj(fs[keep]))\n"
    "print('max phase difference %.3g over %d coefficients' % (np.abs(dphi).max(), keep.sum()))\n"
    "sys.exit(0 if np.abs(dphi).max() < 1e-3 else 3)\n";

/* dk_fda_apply on (c, d, h, w) against the numpy reference; 1 when the oracle is missing. */
static int against_numpy(int64_t c, int64_t d, int64_t h, int64_t w, double beta) {
    const char *dir = dk_test_tmpdir();
    int64_t n = c * d * h * w;
    float *src = malloc((size_t)n * sizeof(float)), *trg = malloc((size_t)n * sizeof(float));
    float *out = malloc((size_t)n * sizeof(float)), *ref = malloc((size_t)n * sizeof(float));
    fill(src, n, 1), fill(trg, n, 2);
    for (int64_t i = 0; i < n; i++) trg[i] = 3.0f * trg[i] + 1.0f; /* another style */
    memcpy(out, src, (size_t)n * sizeof(float));
    dk_fda *f = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_fda_create(&f, d, h, w), DK_OK);
    dk_fda_apply(f, out, trg, c, beta);
    dk_fda_free(f);
    FILE *py = fopen(dk_test_path(dir, "fda_ref.py"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(py);
    fputs(REFERENCE, py);
    fclose(py);
    CU_ASSERT_EQUAL_FATAL(write_raw(dk_test_path(dir, "src.raw"), src, n), 0);
    CU_ASSERT_EQUAL_FATAL(write_raw(dk_test_path(dir, "trg.raw"), trg, n), 0);
    CU_ASSERT_EQUAL_FATAL(write_raw(dk_test_path(dir, "out.raw"), out, n), 0);
    char msg[512];
    int skipped = dk_test_sh(NULL, 0, PY " -c 'import numpy'") != 0;
    if (skipped) {
        dk_test_skip("FDA against numpy.fft", PY " has no numpy");
    } else {
        int rc = dk_test_sh(msg, sizeof msg, PY " %s/fda_ref.py %s %lld %lld %lld %lld %.17g",
                            dir, dir, (long long)c, (long long)d, (long long)h, (long long)w,
                            beta);
        printf("\n  %lldx%lldx%lldx%lld beta %g: %s", (long long)c, (long long)d, (long long)h,
               (long long)w, beta, msg);
        CU_ASSERT_EQUAL(rc, 0); /* the phase is the source's */
        CU_ASSERT_EQUAL_FATAL(read_raw(dk_test_path(dir, "ref.raw"), ref, n), 0);
        double err = 0, moved = 0;
        for (int64_t i = 0; i < n; i++) {
            err = fmax(err, fabs((double)out[i] - ref[i]));
            moved = fmax(moved, fabs((double)out[i] - src[i]));
        }
        printf(" max |C - numpy| %.3g, max |out - src| %.3g", err, moved);
        CU_ASSERT(err < 1e-4);
        CU_ASSERT(moved > 0.1); /* the band did change the image */
    }
    free(src), free(trg), free(out), free(ref);
    return skipped;
}

static void test_numpy_2d(void) {
    against_numpy(2, 1, 12, 10, 0.2); /* b = 2; even sides */
    against_numpy(1, 1, 9, 11, 0.25); /* b = 2; odd sides */
}

static void test_numpy_3d(void) { against_numpy(2, 6, 8, 7, 0.34); /* b = 2 */ }

/* beta = 0: the identity, bit for bit. */
static void test_beta_zero(void) {
    enum { N = 2 * 16 * 16 };
    static float src[N], keep[N], trg[N];
    fill(src, N, 3), fill(trg, N, 4);
    memcpy(keep, src, sizeof src);
    dk_fda *f = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_fda_create(&f, 1, 16, 16), DK_OK);
    dk_fda_apply(f, src, trg, 2, 0.0);
    CU_ASSERT(memcmp(src, keep, sizeof src) == 0);
    dk_fda_free(f);
}

/* b = 0 (beta below 1 / side): only the zero frequency, whose amplitude is |sum|, so
 * x' = x - mean(x) + sign(mean(x)) |mean(t)| per channel (the source's phase keeps the sign:
 * channel 1's negative target mean comes out positive); in 3-D as in 2-D. */
static void test_mean_only(void) {
    static const int64_t shapes[2][3] = {{1, 16, 12}, {4, 8, 8}};
    for (int k = 0; k < 2; k++) {
        const int64_t *s = shapes[k];
        int64_t n = s[0] * s[1] * s[2];
        float *x = malloc((size_t)(2 * n) * sizeof(float)), *t = malloc((size_t)(2 * n) * 4);
        float *y = malloc((size_t)(2 * n) * sizeof(float));
        fill(x, 2 * n, 5), fill(t, 2 * n, 6);
        for (int64_t i = 0; i < 2 * n; i++) t[i] = 2.0f * t[i] + (i < n ? 3.0f : -3.0f);
        memcpy(y, x, (size_t)(2 * n) * sizeof(float));
        dk_fda *f = NULL;
        CU_ASSERT_EQUAL_FATAL(dk_fda_create(&f, s[0], s[1], s[2]), DK_OK);
        dk_fda_apply(f, y, t, 2, 0.05);
        for (int ch = 0; ch < 2; ch++) {
            double mx = 0, mt = 0, err = 0;
            for (int64_t i = 0; i < n; i++) mx += x[ch * n + i], mt += t[ch * n + i];
            mx /= (double)n, mt /= (double)n;
            for (int64_t i = 0; i < n; i++)
                err = fmax(err, fabs(y[ch * n + i] - (x[ch * n + i] - mx + copysign(mt, mx))));
            CU_ASSERT(err < 1e-4);
            CU_ASSERT(fabs(mt - mx) > 0.5); /* the oracle has teeth */
        }
        dk_fda_free(f);
        free(x), free(t), free(y);
    }
}

/* The style of the image itself changes nothing (up to rounding); two plans agree bitwise. */
static void test_self_and_bits(void) {
    enum { N = 3 * 8 * 8 * 8 };
    static float x[N], y[N], z[N], t[N];
    fill(x, N, 7), fill(t, N, 8);
    memcpy(y, x, sizeof x);
    dk_fda *f = NULL, *g = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_fda_create(&f, 8, 8, 8), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_fda_create(&g, 8, 8, 8), DK_OK);
    dk_fda_apply(f, y, x, 3, 0.5);
    double err = 0;
    for (int i = 0; i < N; i++) err = fmax(err, fabs(y[i] - x[i]));
    CU_ASSERT(err < 1e-5);
    memcpy(y, x, sizeof x), memcpy(z, x, sizeof x);
    dk_fda_apply(f, y, t, 3, 0.3);
    dk_fda_apply(g, z, t, 3, 0.3);
    CU_ASSERT(memcmp(y, z, sizeof y) == 0);
    CU_ASSERT(memcmp(y, x, sizeof y) != 0);
    dk_fda *bad = NULL;
    CU_ASSERT_EQUAL(dk_fda_create(&bad, 0, 8, 8), DK_ERR_ARG);
    CU_ASSERT_PTR_NULL(bad);
    dk_fda_free(f), dk_fda_free(g);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("data.fda", NULL, NULL);
    if (!s || !CU_add_test(s, "2-D amplitude swap = numpy.fft reference", test_numpy_2d) ||
        !CU_add_test(s, "3-D amplitude swap = numpy.fft reference", test_numpy_3d) ||
        !CU_add_test(s, "beta = 0 is the identity", test_beta_zero) ||
        !CU_add_test(s, "the zero frequency alone swaps the mean", test_mean_only) ||
        !CU_add_test(s, "own style keeps the image; same bits", test_self_and_bits)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
