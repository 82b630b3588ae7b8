/* Batch augmentation: the spatial map (augment_spatial.c), flips and quarter turns move
 * image, label and mask together; intensity scale, shift, gamma, noise and blur change the
 * image only. Defaults from the option schema (prep_schema.c). */
#include "data_internal.h"

#include <math.h>
#include <string.h>

void dk_augment_defaults(dk_augment_opts *o) {
    dk_data_opts d;
    dk_data_defaults(&d);
    memcpy(o, &d.aug, sizeof *o);
}

/* ------------------------------------------------------------------ spatial */

/* The block helpers take the element size as an argument and are always inlined where it
 * is a constant (4 for the image, 1 for label and mask), so the copies become moves. */
#if defined(__GNUC__)
#define BLOCK_INLINE inline __attribute__((always_inline))
#else
#define BLOCK_INLINE inline
#endif

static BLOCK_INLINE void swap_elem(unsigned char *a, unsigned char *b, size_t es) {
    unsigned char t[8];
    memcpy(t, a, es);
    memcpy(a, b, es);
    memcpy(b, t, es);
}

static void swap_span(unsigned char *a, unsigned char *b, size_t bytes) {
    unsigned char t[512];
    for (size_t off = 0; off < bytes; off += sizeof t) {
        size_t k = bytes - off < sizeof t ? bytes - off : sizeof t;
        memcpy(t, a + off, k);
        memcpy(a + off, b + off, k);
        memcpy(b + off, t, k);
    }
}

/* Reverse a (d, h, w) block of `es`-byte elements along `axis` (0 = d, 1 = h, 2 = w). */
static BLOCK_INLINE void flip_block(unsigned char *p, size_t es, int64_t d, int64_t h,
                                    int64_t w, int axis) {
    size_t row = (size_t)w * es, plane = (size_t)h * row;
    if (axis == 0) {
        for (int64_t z = 0; z < d / 2; z++)
            swap_span(p + (size_t)z * plane, p + (size_t)(d - 1 - z) * plane, plane);
        return;
    }
    for (int64_t z = 0; z < d; z++) {
        unsigned char *q = p + (size_t)z * plane;
        if (axis == 1) {
            for (int64_t y = 0; y < h / 2; y++)
                swap_span(q + (size_t)y * row, q + (size_t)(h - 1 - y) * row, row);
            continue;
        }
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w / 2; x++)
                swap_elem(q + (size_t)y * row + (size_t)x * es,
                          q + (size_t)y * row + (size_t)(w - 1 - x) * es, es);
    }
}

/* A quarter turn of each n x n plane of a (d, n, n) block, in place by 4-cycles, as
 * numpy.rot90(a, k, axes=(1, 2)): k = 1 gives out[y][x] = in[x][n-1-y], k = 3 (ccw = 0)
 * out[y][x] = in[n-1-x][y]. */
static BLOCK_INLINE void rot_block(unsigned char *p, size_t es, int64_t d, int64_t n, int ccw) {
    for (int64_t z = 0; z < d; z++) {
        unsigned char *q = p + (size_t)(z * n * n) * es;
        for (int64_t i = 0; i < n / 2; i++)
            for (int64_t j = i; j < n - 1 - i; j++) {
                /* the four places of one cycle, in the order values move for k = 1 */
                unsigned char *c[4] = {q + (size_t)(i * n + j) * es,
                                       q + (size_t)(j * n + n - 1 - i) * es,
                                       q + (size_t)((n - 1 - i) * n + n - 1 - j) * es,
                                       q + (size_t)((n - 1 - j) * n + i) * es};
                if (!ccw) {
                    unsigned char *t = c[1];
                    c[1] = c[3], c[3] = t;
                }
                swap_elem(c[0], c[1], es); /* three swaps rotate the cycle by one */
                swap_elem(c[1], c[2], es);
                swap_elem(c[2], c[3], es);
            }
    }
}

/* Op 0 (flip along axis `arg`) or 1 (quarter turn, arg = 1 for k = 1, 0 for k = 3) on every
 * channel of patch i and on its label and mask. */
static void each_block(dk_batch *b, int64_t i, int op, int arg) {
    const dk_tensor *t = &b->image;
    int64_t vox = t->d * t->h * t->w;
    for (int64_t c = 0; c < t->c; c++) {
        unsigned char *p = (unsigned char *)dk_tensor_at(t, i, c, 0, 0, 0);
        if (op == 0) flip_block(p, 4, t->d, t->h, t->w, arg);
        else rot_block(p, 4, t->d, t->h, arg);
    }
    unsigned char *aux[2] = {b->label + i * vox, b->mask + i * vox};
    for (int k = 0; k < 2; k++) {
        if (op == 0) flip_block(aux[k], 1, t->d, t->h, t->w, arg);
        else rot_block(aux[k], 1, t->d, t->h, arg);
    }
}

void dk_augment_flip(dk_batch *b, int64_t i, int axis) {
    DK_ASSERT(axis >= 0 && axis < 3 && i >= 0 && i < b->image.n);
    each_block(b, i, 0, axis);
}

void dk_augment_rot90(dk_batch *b, int64_t i, int k) {
    k = ((k % 4) + 4) % 4;
    DK_ASSERT(i >= 0 && i < b->image.n && (k % 2 == 0 || b->image.h == b->image.w));
    if (k == 2) {
        each_block(b, i, 0, 1);
        each_block(b, i, 0, 2);
        return;
    }
    if (k != 0) each_block(b, i, 1, k == 1);
}

/* ------------------------------------------------------------------ intensity */

static void channel_stats(const float *x, int64_t n, double *mn, double *mx, double *mean,
                          double *sd) {
    double lo = x[0], hi = x[0], s = 0, ss = 0;
    for (int64_t k = 0; k < n; k++) {
        lo = fmin(lo, x[k]);
        hi = fmax(hi, x[k]);
        s += x[k];
    }
    *mean = s / (double)n;
    for (int64_t k = 0; k < n; k++) ss += (x[k] - *mean) * (x[k] - *mean);
    *sd = sqrt(ss / (double)n);
    *mn = lo, *mx = hi;
}

void dk_augment_gamma(dk_batch *b, int64_t i, double gamma, int retain_stats) {
    const dk_tensor *t = &b->image;
    int64_t vox = t->d * t->h * t->w;
    for (int64_t c = 0; c < t->c; c++) {
        float *x = dk_tensor_at(t, i, c, 0, 0, 0);
        double mn, mx, mean, sd, mean2, sd2, unused;
        channel_stats(x, vox, &mn, &mx, &mean, &sd);
        double r = mx - mn + 1e-7;
        float fmn = (float)mn, fr = (float)r, inv = (float)(1 / r), gf = (float)gamma;
        for (int64_t k = 0; k < vox; k++) x[k] = fmn + fr * powf((x[k] - fmn) * inv, gf);
        if (!retain_stats) continue;
        channel_stats(x, vox, &unused, &unused, &mean2, &sd2);
        double g = sd / (sd2 + 1e-8);
        for (int64_t k = 0; k < vox; k++) x[k] = (float)((x[k] - mean2) * g + mean);
    }
}

static double uni(dk_rng *r, double lo, double hi) {
    return lo + (hi - lo) * dk_rng_uniform_double(r);
}

/* Scale (kind 0) or shift (kind 1) each channel of patch i by its own draw. */
static void scale_or_shift(dk_batch *b, int64_t i, int kind, double lo, double hi, dk_rng *rng) {
    const dk_tensor *t = &b->image;
    int64_t vox = t->d * t->h * t->w;
    for (int64_t c = 0; c < t->c; c++) {
        float *x = dk_tensor_at(t, i, c, 0, 0, 0);
        float v = (float)uni(rng, lo, hi);
        if (kind == 0)
            for (int64_t k = 0; k < vox; k++) x[k] *= v;
        else
            for (int64_t k = 0; k < vox; k++) x[k] += v;
    }
}

/* Gaussian noise by Box–Muller in float, two variates from each 64-bit draw (24-bit
 * uniforms: the tails stop at 5.8 sigma, plenty for augmentation) — three times faster
 * than one dk_rng_normal a voxel. */
static void add_noise(dk_batch *b, int64_t i, double sigma, dk_rng *rng) {
    const dk_tensor *t = &b->image;
    float *x = dk_tensor_at(t, i, 0, 0, 0, 0), s = (float)sigma;
    int64_t n = t->c * t->d * t->h * t->w;
    for (int64_t k = 0; k < n; k += 2) {
        uint64_t u = dk_rng_u64(rng);
        float u1 = (float)((u >> 40) + 1) * 0x1.0p-24f; /* (0, 1] */
        float u2 = (float)(u & 0xFFFFFF) * 0x1.0p-24f;
        float r = s * sqrtf(-2.0f * logf(u1)), a = 6.2831853f * u2;
        x[k] += r * cosf(a);
        if (k + 1 < n) x[k + 1] += r * sinf(a);
    }
}

/* nnU-Net's draw of a gamma or a zoom in [lo, hi]: below 1 half the time (when the range
 * allows), else at or above 1. */
static double draw_around_one(double lo, double hi, dk_rng *rng) {
    if (dk_rng_uniform_double(rng) < 0.5 && lo < 1) return uni(rng, lo, 1.0);
    return uni(rng, fmax(lo, 1.0), hi);
}

/* Fires with probability p, drawing nothing when p is 0. */
static int fires(double p, dk_rng *rng) { return p > 0 && dk_rng_uniform_double(rng) < p; }

/* Whether the patch gets the in-plane map and blur ([augment] in_plane_only). */
static int in_plane(const dk_augment_opts *o, const dk_tensor *t) {
    if (t->d == 1 || o->in_plane_only == DK_IN_PLANE_TRUE) return 1;
    if (o->in_plane_only == DK_IN_PLANE_FALSE) return 0;
    return (t->h > t->w ? t->h : t->w) > 3 * t->d; /* nnU-Net: max(patch) / patch[0] > 3 */
}

/* Rotation, zoom and deformation drawn in that order, then applied as one map. */
static void spatial(dk_batch *b, int64_t i, const dk_augment_opts *o, dk_rng *rng) {
    const double deg = 3.14159265358979323846 / 180;
    dk_spatial_map m = {.zoom = 1, .in_plane = in_plane(o, &b->image)};
    int any = 0;
    if (fires(o->p_rot, rng)) {
        double a = m.in_plane ? o->rot_deg_2d : o->rot_deg;
        for (int k = 0; k < (m.in_plane ? 1 : 3); k++) m.angle[k] = uni(rng, -a, a) * deg;
        any = 1;
    }
    if (fires(o->p_zoom, rng)) m.zoom = draw_around_one(o->zoom_lo, o->zoom_hi, rng), any = 1;
    if (fires(o->p_elastic, rng)) {
        m.alpha = uni(rng, o->elastic_alpha_lo, o->elastic_alpha_hi);
        m.sigma = uni(rng, o->elastic_sigma_lo, o->elastic_sigma_hi);
        any = 1;
    }
    if (any) dk_augment_spatial(b, i, &m, rng);
}

/* A sigma per channel; in-plane patches are not blurred across slices. */
static void blur(dk_batch *b, int64_t i, const dk_augment_opts *o, dk_rng *rng) {
    int plane = in_plane(o, &b->image);
    for (int64_t c = 0; c < b->image.c; c++) {
        double s = uni(rng, o->blur_sigma_lo, o->blur_sigma_hi);
        const double sigma[3] = {plane ? 0 : s, s, s};
        dk_augment_blur(b, i, c, sigma);
    }
}

static void augment_one(dk_batch *b, int64_t i, const dk_augment_opts *o, dk_rng *rng) {
    const dk_tensor *t = &b->image;
    const int64_t dims[3] = {t->d, t->h, t->w};
    spatial(b, i, o, rng);
    for (int a = 0; a < 3; a++)
        if (dk_rng_uniform_double(rng) < o->p_flip[a] && dims[a] > 1) dk_augment_flip(b, i, a);
    if (dk_rng_uniform_double(rng) < o->p_rot90) {
        int k = t->h == t->w ? 1 + (int)dk_rng_below(rng, 3) : 2;
        dk_augment_rot90(b, i, k);
    }
    if (dk_rng_uniform_double(rng) < o->p_scale)
        scale_or_shift(b, i, 0, o->scale_lo, o->scale_hi, rng);
    if (dk_rng_uniform_double(rng) < o->p_shift)
        scale_or_shift(b, i, 1, o->shift_lo, o->shift_hi, rng);
    if (dk_rng_uniform_double(rng) < o->p_gamma)
        dk_augment_gamma(b, i, draw_around_one(o->gamma_lo, o->gamma_hi, rng),
                         o->gamma_retain_stats);
    if (dk_rng_uniform_double(rng) < o->p_noise)
        add_noise(b, i, sqrt(uni(rng, 0, o->noise_var_hi)), rng);
    if (fires(o->p_blur, rng)) blur(b, i, o, rng);
}

void dk_augment_batch(dk_batch *b, const dk_augment_opts *o, dk_rng *rng) {
    for (int64_t i = 0; i < b->image.n; i++) augment_one(b, i, o, rng);
}
