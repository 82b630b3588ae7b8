/*
 * Fourier domain adaptation (Yang & Soatto 2020): the low-frequency amplitude spectrum of a
 * source patch replaced by a target patch's, phase kept (rules in dakd/data.h). FFTW3 single
 * precision does the transforms: r2c forwards into half spectra (d, h, w/2 + 1), c2r back.
 */
#include "dakd/data.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

struct dk_fda {
    int64_t n[3];          /* d, h, w */
    int64_t nreal, nspec;  /* d h w; d h (w/2 + 1) */
    float *real;           /* (d, h, w) fftwf_malloc'd */
    fftwf_complex *fs, *ft; /* (d, h, w/2 + 1) the source's and the target's spectra */
    fftwf_plan fwd, inv;   /* real -> fs (also run real -> ft), fs -> real */
};

/* FFTW's planner keeps global state: plans are made and destroyed under one lock. */
static pthread_mutex_t planner = PTHREAD_MUTEX_INITIALIZER;

void dk_fda_free(dk_fda *f) {
    if (!f) return;
    pthread_mutex_lock(&planner);
    if (f->fwd) fftwf_destroy_plan(f->fwd);
    if (f->inv) fftwf_destroy_plan(f->inv);
    pthread_mutex_unlock(&planner);
    fftwf_free(f->real);
    fftwf_free(f->fs);
    fftwf_free(f->ft);
    free(f);
}

dk_status dk_fda_create(dk_fda **out, int64_t d, int64_t h, int64_t w) {
    *out = NULL;
    if (d < 1 || h < 1 || w < 1 || d * h * w > INT32_MAX)
        return dk_fail(DK_ERR_ARG, "fda: patch %lldx%lldx%lld is not a valid FFT size",
                       (long long)d, (long long)h, (long long)w);
    dk_fda *f = calloc(1, sizeof *f);
    if (!f) return dk_fail(DK_ERR_NOMEM, "fda: out of memory");
    f->n[0] = d, f->n[1] = h, f->n[2] = w;
    f->nreal = d * h * w;
    f->nspec = d * h * (w / 2 + 1);
    f->real = fftwf_malloc((size_t)f->nreal * sizeof(float));
    f->fs = fftwf_malloc((size_t)f->nspec * sizeof(fftwf_complex));
    f->ft = fftwf_malloc((size_t)f->nspec * sizeof(fftwf_complex));
    if (f->real && f->fs && f->ft) {
        /* 2-D patches are planned as 2-D transforms (d = 1 adds nothing but a pass) */
        int rank = d > 1 ? 3 : 2, dims[3] = {(int)d, (int)h, (int)w};
        const int *nd = d > 1 ? dims : dims + 1;
        pthread_mutex_lock(&planner);
        f->fwd = fftwf_plan_dft_r2c(rank, nd, f->real, f->fs, FFTW_ESTIMATE);
        f->inv = fftwf_plan_dft_c2r(rank, nd, f->fs, f->real, FFTW_ESTIMATE);
        pthread_mutex_unlock(&planner);
    }
    if (!f->fwd || !f->inv) {
        dk_fda_free(f);
        return dk_fail(DK_ERR_NOMEM, "fda: no memory for the FFT plans of a %lldx%lldx%lld patch",
                       (long long)d, (long long)h, (long long)w);
    }
    *out = f;
    return DK_OK;
}

/* |signed frequency| of index j on an axis of n points (numpy.fft.fftfreq(n) * n; the
 * Nyquist index n/2 of an even n counts as n/2). */
static int64_t freq(int64_t j, int64_t n) { return j <= n / 2 ? j : n - j; }

/* F_s <- A_t exp(i arg F_s) at the half-spectrum entries of the band |k_a| <= b. The c2r
 * transform then yields Re IFFT of the full spectrum: A_t and the band are symmetric under
 * k -> -k, so the mutated spectrum stays Hermitian. */
static void swap_band(dk_fda *f, int64_t b) {
    int64_t d = f->n[0], h = f->n[1], hw = f->n[2] / 2 + 1;
    for (int64_t z = 0; z < d; z++) {
        if (freq(z, d) > b) continue;
        for (int64_t y = 0; y < h; y++) {
            if (freq(y, h) > b) continue;
            for (int64_t x = 0; x <= b && x < hw; x++) {
                int64_t i = (z * h + y) * hw + x;
                double sr = f->fs[i][0], si = f->fs[i][1];
                double at = hypot(f->ft[i][0], f->ft[i][1]), as = hypot(sr, si);
                if (as > 0) {
                    f->fs[i][0] = (float)(sr * at / as);
                    f->fs[i][1] = (float)(si * at / as);
                } else {
                    f->fs[i][0] = (float)at, f->fs[i][1] = 0;
                }
            }
        }
    }
}

void dk_fda_apply(dk_fda *f, float *src, const float *tgt, int64_t c, double beta) {
    DK_ASSERT(beta >= 0 && beta <= 0.5);
    if (beta == 0) return;
    int64_t side = f->n[0] > 1 && f->n[0] < f->n[1] ? f->n[0] : f->n[1];
    side = f->n[2] < side ? f->n[2] : side;
    int64_t b = (int64_t)floor((double)side * beta), n = f->nreal;
    for (int64_t ch = 0; ch < c; ch++) {
        float *xs = src + ch * n;
        const float *xt = tgt + ch * n;
        for (int64_t i = 0; i < n; i++) f->real[i] = xt[i];
        fftwf_execute_dft_r2c(f->fwd, f->real, f->ft);
        for (int64_t i = 0; i < n; i++) f->real[i] = xs[i];
        fftwf_execute(f->fwd); /* real -> fs */
        swap_band(f, b);
        fftwf_execute(f->inv); /* fs -> real (overwrites fs), unnormalised: n times x */
        for (int64_t i = 0; i < n; i++) xs[i] = (float)((double)f->real[i] / (double)n);
    }
}
