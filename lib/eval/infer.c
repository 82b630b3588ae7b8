/*
 * Sliding-window inference (dakd/eval.h): window starts (nnU-Net's rule), the Gaussian
 * importance map, padding of short axes, batched windows with flip test-time augmentation,
 * weighted blending of softmax probabilities; argmax and largest-connected-component
 * filtering.
 *
 * Buffers of one call (K = classes, C = channels, P = padded grid, p = patch voxels,
 * B = windows per forward):
 *   img  (C, P)  the image, zero-padded when an axis is shorter than the patch (else the
 *                caller's image itself)
 *   acc  (K, P)  Σ over windows of map · mean over flips of softmax (else the caller's probs)
 *   wsum (P)     Σ over windows of map
 *   map  (p)     importance map;  x (B, C, p) window inputs;  sm (B, K, p) their softmax
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/eval.h"

void dk_infer_defaults(dk_infer_opts *o) {
    memset(o, 0, sizeof *o);
    o->overlap = 0.5;
    o->gaussian = 1;
    o->tta_flips = 0;
    o->largest_cc = 0;
    o->batch = 4;
}

/* ================================================================ windows and weights */

int64_t dk_infer_window_starts(int64_t *starts, int64_t max, int64_t size, int64_t patch,
                               double overlap) {
    DK_ASSERT(patch >= 1 && size >= patch && overlap >= 0 && overlap < 1);
    int64_t n;
    if (patch == 1) {
        n = size;
        for (int64_t i = 0; i < n && i < max; i++)
            starts[i] = i;
        return n;
    }
    double target = (double)patch * (1.0 - overlap);
    n = (int64_t)ceil((double)(size - patch) / target) + 1;
    double step = n > 1 ? (double)(size - patch) / (double)(n - 1) : 0;
    /* rint rounds half to even in the default rounding mode, as numpy's round */
    for (int64_t i = 0; i < n && i < max; i++)
        starts[i] = (int64_t)rint(step * (double)i);
    return n;
}

/* One axis of the map: exp(-(i - c)^2 / (2 sigma^2)), c = (n - 1)/2, sigma = n/8; an axis
 * of 1 voxel weighs 1. Its maximum is at i = n/2 (c itself for odd n, c + 1/2 for even). */
static double gauss_at(int64_t i, int64_t n) {
    if (n == 1) return 1.0;
    double c = 0.5 * (double)(n - 1), s = (double)n / 8.0, d = (double)i - c;
    return exp(-d * d / (2 * s * s));
}

void dk_infer_gaussian(float *map, const int64_t patch[3]) {
    int64_t pd = patch[0], ph = patch[1], pw = patch[2];
    double inv = 1.0 / (gauss_at(pd / 2, pd) * gauss_at(ph / 2, ph) * gauss_at(pw / 2, pw));
    /* the w profile goes into the first row; rows are filled last to first from it */
    for (int64_t x = 0; x < pw; x++)
        map[x] = (float)gauss_at(x, pw);
    for (int64_t r = pd * ph - 1; r >= 0; r--) {
        double f = gauss_at(r / ph, pd) * gauss_at(r % ph, ph) * inv;
        for (int64_t x = 0; x < pw; x++)
            map[r * pw + x] = (float)(f * map[x]);
    }
    float minpos = INFINITY;
    int64_t n = pd * ph * pw;
    for (int64_t i = 0; i < n; i++)
        if (map[i] > 0 && map[i] < minpos) minpos = map[i];
    for (int64_t i = 0; i < n; i++)
        if (map[i] == 0) map[i] = minpos;
}

/* ================================================================ the sliding window */

typedef struct {
    int64_t C, K;              /* channels, classes */
    int64_t n[3], P[3], lo[3]; /* image grid, padded grid, padding before (d, h, w) */
    int64_t pt[3], pvox;       /* patch and its voxels */
    int64_t *st[3], ns[3];     /* window starts per axis and their counts */
    int nflip, flip_d;         /* flip combinations; 1 when the depth axis is flipped too */
    const float *img;
    float *acc, *wsum, *map, *x, *sm;
    float *own_img, *own_acc; /* allocated when padding */
} sw_state;

static void sw_free(sw_state *s) {
    for (int a = 0; a < 3; a++)
        free(s->st[a]);
    dk_free(s->own_img);
    dk_free(s->own_acc);
    dk_free(s->wsum);
    dk_free(s->map);
    dk_free(s->x);
    dk_free(s->sm);
}

/* Patch, padding and window starts from the options and the network's multiple. */
static dk_status sw_shape(sw_state *s, const dk_unet_config *g, const dk_infer_opts *o) {
    int64_t mult[3];
    dk_unet_multiple(g, mult);
    int iso = dk_unet_is_isotropic(g);
    for (int a = 0; a < 3; a++) {
        int64_t p = o->patch[a], m = mult[a];
        if (a == 0 && g->dims == 2 && p > 1)
            return dk_fail(DK_ERR_ARG, "patch depth %lld: a 2-D network takes depth 1",
                           (long long)p);
        if (p <= 0) p = (a == 0 && g->dims == 2) ? 1 : (s->n[a] + m - 1) / m * m;
        if (p > 1 && p % m != 0)
            return dk_fail(DK_ERR_ARG,
                           "patch x,y,z = %lld,%lld,%lld: %lld is not a multiple of %lld "
                           "(%s for this network)",
                           (long long)o->patch[2], (long long)o->patch[1], (long long)o->patch[0],
                           (long long)p, (long long)m,
                           iso ? "2^(levels-1)" : "the product of its pool strides along it");
        if (p == 1 && g->dims == 3 && m > 1)
            return dk_fail(DK_ERR_ARG,
                           "patch axis of 1 voxel: a 3-D network needs a multiple "
                           "of %lld",
                           (long long)m);
        s->pt[a] = p;
        s->P[a] = s->n[a] > p ? s->n[a] : p;
        s->lo[a] = (s->P[a] - s->n[a]) / 2;
        s->ns[a] = dk_infer_window_starts(NULL, 0, s->P[a], p, o->overlap);
        if (!(s->st[a] = malloc((size_t)s->ns[a] * sizeof(int64_t))))
            return dk_fail(DK_ERR_NOMEM, "inference: no memory for window starts");
        dk_infer_window_starts(s->st[a], s->ns[a], s->P[a], p, o->overlap);
    }
    s->pvox = s->pt[0] * s->pt[1] * s->pt[2];
    s->flip_d = g->dims == 3 && s->pt[0] > 1;
    s->nflip = o->tta_flips ? (s->flip_d ? 8 : 4) : 1;
    return DK_OK;
}

/* The padded image (or the caller's), the accumulators and the map. */
static dk_status sw_alloc(sw_state *s, float *probs, const dk_volume *image, int64_t B,
                          int gaussian) {
    int64_t pv = s->P[0] * s->P[1] * s->P[2];
    int padded = pv != s->n[0] * s->n[1] * s->n[2];
    if (padded) {
        s->own_img = dk_alloc_aligned((size_t)(s->C * pv), sizeof(float));
        s->own_acc = dk_alloc_aligned((size_t)(s->K * pv), sizeof(float));
    }
    s->wsum = dk_alloc_aligned((size_t)pv, sizeof(float));
    s->map = dk_alloc_aligned((size_t)s->pvox, sizeof(float));
    s->x = dk_alloc_aligned((size_t)(B * s->C * s->pvox), sizeof(float));
    s->sm = dk_alloc_aligned((size_t)(B * s->K * s->pvox), sizeof(float));
    if ((padded && (!s->own_img || !s->own_acc)) || !s->wsum || !s->map || !s->x || !s->sm)
        return dk_fail(DK_ERR_NOMEM,
                       "inference: no memory for %lldx%lldx%lld windows of "
                       "%lld classes",
                       (long long)s->P[0], (long long)s->P[1], (long long)s->P[2], (long long)s->K);
    const float *src = image->data;
    if (padded) {
        memset(s->own_img, 0, (size_t)(s->C * pv) * sizeof(float));
        for (int64_t c = 0; c < s->C; c++)
            for (int64_t z = 0; z < s->n[0]; z++)
                for (int64_t y = 0; y < s->n[1]; y++)
                    memcpy(s->own_img +
                               ((c * s->P[0] + z + s->lo[0]) * s->P[1] + y + s->lo[1]) * s->P[2] +
                               s->lo[2],
                           src + ((c * s->n[0] + z) * s->n[1] + y) * s->n[2],
                           (size_t)s->n[2] * sizeof(float));
    }
    s->img = padded ? s->own_img : src;
    s->acc = padded ? s->own_acc : probs;
    memset(s->acc, 0, (size_t)(s->K * pv) * sizeof(float));
    memset(s->wsum, 0, (size_t)pv * sizeof(float));
    if (gaussian)
        dk_infer_gaussian(s->map, s->pt);
    else
        for (int64_t i = 0; i < s->pvox; i++)
            s->map[i] = 1;
    return DK_OK;
}

/* Start (d, h, w) of window w (d slowest). */
static void window_start(const sw_state *s, int64_t w, int64_t o[3]) {
    o[2] = s->st[2][w % s->ns[2]];
    o[1] = s->st[1][(w / s->ns[2]) % s->ns[1]];
    o[0] = s->st[0][w / (s->ns[2] * s->ns[1])];
}

/* Flip combination f in 0..nflip-1 as bits: 1 = w, 2 = h, 4 = d (3-D only). Index along an
 * axis of n voxels, flipped or not. */
static inline int64_t fl(int64_t i, int64_t n, int on) { return on ? n - 1 - i : i; }

/* x (C, patch) = the window at `o` of the padded image, flipped by `f`. */
static void copy_in(float *x, const sw_state *s, const int64_t o[3], int f) {
    const int64_t *pt = s->pt, *P = s->P;
    for (int64_t c = 0; c < s->C; c++)
        for (int64_t z = 0; z < pt[0]; z++)
            for (int64_t y = 0; y < pt[1]; y++) {
                const float *src =
                    s->img +
                    ((c * P[0] + o[0] + fl(z, pt[0], f & 4)) * P[1] + o[1] + fl(y, pt[1], f & 2)) *
                        P[2] +
                    o[2];
                float *dst = x + ((c * pt[0] + z) * pt[1] + y) * pt[2];
                if (f & 1)
                    for (int64_t i = 0; i < pt[2]; i++)
                        dst[i] = src[pt[2] - 1 - i];
                else
                    memcpy(dst, src, (size_t)pt[2] * sizeof(float));
            }
}

/* acc at window `o` += scale · map · sm, with sm (K, patch) predicted on the input flipped
 * by `f`: its voxel (z, y, x) is the window's voxel (fl(z), fl(y), fl(x)). Rows of one
 * window are distinct, so they run in parallel. */
static void accumulate(sw_state *s, const float *sm, const int64_t o[3], int f, float scale) {
    const int64_t *pt = s->pt, *P = s->P, rows = pt[0] * pt[1];
#pragma omp parallel for schedule(static) if (rows * pt[2] * s->K >= (1 << 16))
    for (int64_t r = 0; r < rows; r++) {
        int64_t z = r / pt[1], y = r % pt[1];
        int64_t oz = fl(z, pt[0], f & 4), oy = fl(y, pt[1], f & 2);
        const float *m = s->map + (oz * pt[1] + oy) * pt[2];
        for (int64_t k = 0; k < s->K; k++) {
            const float *p = sm + ((k * pt[0] + z) * pt[1] + y) * pt[2];
            float *a = s->acc + ((k * P[0] + o[0] + oz) * P[1] + o[1] + oy) * P[2] + o[2];
            if (f & 1)
                for (int64_t i = 0; i < pt[2]; i++)
                    a[pt[2] - 1 - i] += scale * m[pt[2] - 1 - i] * p[i];
            else
                for (int64_t i = 0; i < pt[2]; i++)
                    a[i] += scale * m[i] * p[i];
        }
    }
}

static void add_weights(sw_state *s, const int64_t o[3]) {
    const int64_t *pt = s->pt, *P = s->P;
    for (int64_t z = 0; z < pt[0]; z++)
        for (int64_t y = 0; y < pt[1]; y++) {
            float *w = s->wsum + ((o[0] + z) * P[1] + o[1] + y) * P[2] + o[2];
            const float *m = s->map + (z * pt[1] + y) * pt[2];
            for (int64_t i = 0; i < pt[2]; i++)
                w[i] += m[i];
        }
}

/* Run the items (window, flip) through the network B at a time. */
static void sw_run(sw_state *s, dk_unet *net, int64_t B) {
    int64_t nwin = s->ns[0] * s->ns[1] * s->ns[2], items = nwin * s->nflip;
    dk_progress pg; /* per forward pass of B windows: a large volume takes minutes */
    dk_progress_begin(&pg, "windows", (items + B - 1) / B);
    const float *logits = dk_unet_tap(net, "logits")->value.data;
    float scale = 1.0f / (float)s->nflip;
    int64_t o[3];
    for (int64_t w = 0; w < nwin; w++)
        window_start(s, w, o), add_weights(s, o);
    for (int64_t first = 0; first < items; first += B) {
        int64_t nb = items - first < B ? items - first : B;
        for (int64_t b = 0; b < nb; b++) {
            window_start(s, (first + b) / s->nflip, o);
            copy_in(s->x + b * s->C * s->pvox, s, o, (int)((first + b) % s->nflip));
        }
        if (nb < B) /* unused slots: any finite input; their outputs are not read */
            memset(s->x + nb * s->C * s->pvox, 0,
                   (size_t)((B - nb) * s->C * s->pvox) * sizeof(float));
        dk_unet_forward(net, s->x, 0, NULL);
        dk_softmax_forward(s->sm, logits, nb, s->K, s->pvox, 1.0f);
        for (int64_t b = 0; b < nb; b++) {
            window_start(s, (first + b) / s->nflip, o);
            accumulate(s, s->sm + b * s->K * s->pvox, o, (int)((first + b) % s->nflip), scale);
        }
        dk_progress_step(&pg, 1);
    }
    dk_progress_end(&pg);
}

/* probs (K, n) = acc / wsum, cropped out of the padded grid (in place when not padded). */
static void sw_finish(float *probs, const sw_state *s) {
    const int64_t *P = s->P, *n = s->n, *lo = s->lo;
    for (int64_t k = 0; k < s->K; k++)
        for (int64_t z = 0; z < n[0]; z++)
            for (int64_t y = 0; y < n[1]; y++) {
                int64_t pin = ((z + lo[0]) * P[1] + y + lo[1]) * P[2] + lo[2];
                const float *a = s->acc + k * P[0] * P[1] * P[2] + pin, *w = s->wsum + pin;
                float *out = probs + ((k * n[0] + z) * n[1] + y) * n[2];
                for (int64_t i = 0; i < n[2]; i++)
                    out[i] = a[i] / w[i];
            }
}

dk_status dk_infer_probs(float *probs, dk_unet *net, const dk_volume *image,
                         const dk_infer_opts *o) {
    const dk_unet_config *g = dk_unet_get_config(net);
    if (image->dtype != DK_F32 || image->nt != 1 || image->nc != g->in_channels)
        return dk_fail(DK_ERR_ARG,
                       "inference: the image is %s with %lld channels and %lld time "
                       "points; the network takes float32 with %d channels and 1 time point",
                       dk_dtype_name(image->dtype), (long long)image->nc, (long long)image->nt,
                       g->in_channels);
    if (!(o->overlap >= 0 && o->overlap < 1) || o->batch < 1)
        return dk_fail(DK_ERR_ARG, "inference: overlap %g must be in [0, 1) and batch %d >= 1",
                       o->overlap, o->batch);
    sw_state s;
    memset(&s, 0, sizeof s);
    s.C = image->nc;
    s.K = g->classes;
    s.n[0] = image->nz, s.n[1] = image->ny, s.n[2] = image->nx;
    dk_status st = sw_shape(&s, g, o);
    if (st != DK_OK) goto out;
    int64_t items = s.ns[0] * s.ns[1] * s.ns[2] * s.nflip;
    int64_t passes = (items + o->batch - 1) / o->batch, B = (items + passes - 1) / passes;
    if ((st = sw_alloc(&s, probs, image, B, o->gaussian)) != DK_OK) goto out;
    if ((st = dk_unet_plan(net, B, s.pt[0], s.pt[1], s.pt[2])) != DK_OK) goto out;
    sw_run(&s, net, B);
    sw_finish(probs, &s);
out:
    sw_free(&s);
    return st;
}

/* ================================================================ labels */

void dk_infer_argmax(uint8_t *labels, const float *probs, int classes, int64_t nvox) {
    DK_ASSERT(classes >= 1 && classes <= 256);
#pragma omp parallel for schedule(static) if (nvox >= (1 << 16))
    for (int64_t v = 0; v < nvox; v++) {
        int best = 0;
        float bv = probs[v];
        for (int k = 1; k < classes; k++)
            if (probs[(int64_t)k * nvox + v] > bv) bv = probs[(int64_t)k * nvox + v], best = k;
        labels[v] = (uint8_t)best;
    }
}

/* Union-find root with path halving. */
static int32_t root_of(int32_t *par, int32_t i) {
    while (par[i] != i) {
        par[i] = par[par[i]];
        i = par[i];
    }
    return i;
}

/* Join the sets of a and b; the smaller index becomes the root, so a root is the first
 * voxel of its component in scan order. */
static void join(int32_t *par, int32_t a, int32_t b) {
    a = root_of(par, a), b = root_of(par, b);
    if (a < b)
        par[b] = a;
    else if (b < a)
        par[a] = b;
}

dk_status dk_keep_largest_cc(uint8_t *labels, int64_t nx, int64_t ny, int64_t nz, int classes) {
    DK_ASSERT(classes >= 1 && classes <= 256);
    int64_t n = nx * ny * nz, plane = nx * ny;
    if (n > INT32_MAX)
        return dk_fail(DK_ERR_UNSUPPORTED, "largest component: %lld voxels exceed 2^31 - 1",
                       (long long)n);
    int32_t *par = malloc((size_t)(n > 0 ? n : 1) * sizeof *par);
    if (!par)
        return dk_fail(DK_ERR_NOMEM, "largest component: no memory for %lld voxels", (long long)n);
    /* 1: union each foreground voxel with its earlier face neighbours of the same label */
    for (int32_t i = 0; i < (int32_t)n; i++) {
        par[i] = i;
        uint8_t l = labels[i];
        if (l == 0 || l >= classes) continue;
        int64_t x = i % nx, y = (i / nx) % ny, z = i / plane;
        if (x > 0 && labels[i - 1] == l) join(par, i, i - 1);
        if (y > 0 && labels[i - nx] == l) join(par, i, (int32_t)(i - nx));
        if (z > 0 && labels[i - plane] == l) join(par, i, (int32_t)(i - plane));
    }
    /* 2: flatten, then turn each root's entry into minus its size (a root is the first
     * voxel of its component, so it is met before the rest) */
    for (int32_t i = 0; i < (int32_t)n; i++)
        if (labels[i] != 0 && labels[i] < classes) par[i] = root_of(par, i);
    for (int32_t i = 0; i < (int32_t)n; i++) {
        if (labels[i] == 0 || labels[i] >= classes) continue;
        if (par[i] == i)
            par[i] = -1;
        else
            par[par[i]]--;
    }
    /* 3: the largest component per label; equal sizes keep the first in scan order */
    int64_t best[256] = {0};
    int32_t best_root[256];
    for (int k = 0; k < 256; k++)
        best_root[k] = -1;
    for (int32_t i = 0; i < (int32_t)n; i++) {
        uint8_t l = labels[i];
        if (l == 0 || l >= classes || par[i] >= 0) continue;
        if (-(int64_t)par[i] > best[l]) best[l] = -(int64_t)par[i], best_root[l] = i;
    }
    for (int32_t i = 0; i < (int32_t)n; i++) {
        uint8_t l = labels[i];
        if (l == 0 || l >= classes) continue;
        if ((par[i] < 0 ? i : par[i]) != best_root[l]) labels[i] = 0;
    }
    free(par);
    return DK_OK;
}
