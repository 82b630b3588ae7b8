/*
 * Feature losses at taps (attention transfer, FitNets hints) and the feature extractors of
 * the alignment losses (global average pooling, sampled voxels). Formulas in dakd/train.h.
 *
 * Attention transfer, per sample, with a = A / |A| and G = dL/da_s = 2 (a_s - a_t) / n:
 *   dL/dA_s = (G - a_s (a_s . G)) / |A_s|   (G / 1e-12 when |A_s| was clamped to 1e-12)
 *   dL/dF_s(c, v) = 2 F_s(c, v) dL/dA_s(v).
 * Unnormalised (DK_AT_NONE), per sample with V counted voxels: dL/dA_s = 2 (A_s - A_t) / (n V).
 */
#include "dakd/train.h"
#include "loss_internal.h"

#include <math.h>
#include <string.h>

static const double AT_EPS = 1e-12;
enum { AT_MAX_SAMPLES = 64 };

static int64_t spatial(const dk_tensor *t) { return t->d * t->h * t->w; }

/* Two maps (As, At) per sample: the samples run in parallel, each on its own pair. */
size_t dk_loss_at_work_floats(const dk_tensor *fs) { return (size_t)(2 * fs->n * spatial(fs)); }

/* A (s) = sum_c F(c, :)^2 of one sample f (c, s). */
static void at_map_same(float *A, const float *f, int64_t c, int64_t s) {
    memset(A, 0, (size_t)s * sizeof *A);
    for (int64_t k = 0; k < c; k++)
        for (int64_t v = 0; v < s; v++)
            A[v] += f[k * s + v] * f[k * s + v];
}

/* A (student grid of fs) = the teacher map of one teacher sample f (ft->c, teacher grid),
 * averaged over each fd x fh x fw block. */
static void at_map_pooled(float *A, const float *f, const dk_tensor *fs, const dk_tensor *ft) {
    const int64_t fd = ft->d / fs->d, fh = ft->h / fs->h, fw = ft->w / fs->w;
    const float inv = (float)(1.0 / (double)(fd * fh * fw));
    const int64_t st = spatial(ft);
    memset(A, 0, (size_t)spatial(fs) * sizeof *A);
    for (int64_t k = 0; k < ft->c; k++)
        for (int64_t z = 0; z < ft->d; z++)
            for (int64_t y = 0; y < ft->h; y++) {
                const float *row = f + k * st + (z * ft->h + y) * ft->w;
                float *dst = A + ((z / fd) * fs->h + y / fh) * fs->w;
                for (int64_t x = 0; x < ft->w; x++)
                    dst[x / fw] += row[x] * row[x] * inv;
            }
}

static double l2norm(const float *a, int64_t s) {
    double sum = 0;
    for (int64_t v = 0; v < s; v++)
        sum += (double)a[v] * (double)a[v];
    return sqrt(sum);
}

/* dL/dF_s(c, v) = 2 F_s(c, v) dL/dA_s(v), dL/dA_s in dA (s), added into dfs (c, s). */
static void at_chain(float *dfs, const float *fs, const float *dA, int64_t c, int64_t s) {
    for (int64_t k = 0; k < c; k++)
        for (int64_t v = 0; v < s; v++)
            dfs[k * s + v] += 2.0f * fs[k * s + v] * dA[v];
}

/* Loss of one sample from its maps As, At (s), L2-normalised; when dfs, the gradient
 * (g = scale / n). */
static double at_sample_l2(float *dfs, const float *fs, float *As, float *At, int64_t c, int64_t s,
                           double g) {
    double ns = l2norm(As, s), nt = l2norm(At, s);
    double is = 1.0 / fmax(ns, AT_EPS), it = 1.0 / fmax(nt, AT_EPS);
    double loss = 0, dot = 0;
    for (int64_t v = 0; v < s; v++) {
        double as = As[v] * is, diff = as - At[v] * it;
        loss += diff * diff;
        dot += as * 2.0 * diff;
    }
    if (!dfs) return loss;
    if (ns < AT_EPS) dot = 0; /* a = A / eps is linear in A: no projection */
    for (int64_t v = 0; v < s; v++) {
        double as = As[v] * is, G = 2.0 * (as - At[v] * it);
        At[v] = (float)(g * (G - as * dot) * is); /* dL/dA_s, reusing At */
    }
    at_chain(dfs, fs, At, c, s);
    return loss;
}

/* The same without normalisation: the mean over the sample's nv counted voxels of
 * (A_s - A_t)^2 (0 when nv = 0). */
static double at_sample_none(float *dfs, const float *fs, float *As, float *At, int64_t c,
                             int64_t s, double g, int64_t nv) {
    if (nv == 0) return 0;
    double loss = 0, gv = 2.0 * g / (double)nv;
    for (int64_t v = 0; v < s; v++) {
        double diff = (double)As[v] - (double)At[v];
        loss += diff * diff;
        At[v] = (float)(gv * diff); /* dL/dA_s, reusing At */
    }
    if (dfs) at_chain(dfs, fs, At, c, s);
    return loss / (double)nv;
}

/* The maps at voxels the mask (s) excludes are 0: they add nothing to the norms or the loss,
 * and their gradient (G - a_s dot) / |A_s| is 0 there. */
static void at_apply_mask(float *As, float *At, const uint8_t *mask, int64_t s) {
    for (int64_t v = 0; v < s; v++)
        if (!mask[v]) As[v] = At[v] = 0;
}

double dk_loss_at(float *dfs, const dk_tensor *fs, const dk_tensor *ft, const uint8_t *mask,
                  dk_at_norm norm, float scale, float *work) {
    DK_ASSERT(fs && ft && fs->data && ft->data && work && fs->n == ft->n && fs->n > 0);
    DK_ASSERT(norm == DK_AT_L2 || norm == DK_AT_NONE);
    DK_ASSERT(ft->d % fs->d == 0 && ft->h % fs->h == 0 && ft->w % fs->w == 0);
    const int64_t s = spatial(fs), st = spatial(ft), n = fs->n;
    const int same = s == st;
    double part[AT_MAX_SAMPLES], loss = 0;
    /* Samples in blocks of AT_MAX_SAMPLES, each sample's loss summed alone and the samples
     * added in order: the same bits for any thread count. */
    for (int64_t i0 = 0; i0 < n; i0 += AT_MAX_SAMPLES) {
        const int64_t nb = n - i0 < AT_MAX_SAMPLES ? n - i0 : AT_MAX_SAMPLES;
#pragma omp parallel for schedule(static) if (nb > 1 && (fs->c + ft->c) * s >= (1 << 14))
        for (int64_t j = 0; j < nb; j++) {
            const int64_t i = i0 + j;
            const float *f = fs->data + i * fs->c * s, *t = ft->data + i * ft->c * st;
            float *As = work + 2 * i * s, *At = As + s;
            at_map_same(As, f, fs->c, s);
            if (same)
                at_map_same(At, t, ft->c, s);
            else
                at_map_pooled(At, t, fs, ft);
            if (mask) at_apply_mask(As, At, mask + i * s, s);
            float *df = dfs ? dfs + i * fs->c * s : NULL;
            double g = (double)scale / (double)n;
            part[j] = norm == DK_AT_NONE
                          ? at_sample_none(df, f, As, At, fs->c, s, g,
                                           dk_loss_count_mask(mask ? mask + i * s : NULL, s))
                          : at_sample_l2(df, f, As, At, fs->c, s, g);
        }
        for (int64_t j = 0; j < nb; j++)
            loss += part[j];
    }
    return loss / (double)n;
}

/* ------------------------------------------------------------------ hints */

static void hint_shape(dk_conv_shape *cs, const dk_tensor *fs, int64_t ct) {
    dk_conv_shape_make(cs, fs->n, fs->c, ct, fs->d, fs->h, fs->w, 1, 1);
}

size_t dk_loss_hint_work_floats(const dk_tensor *fs, int64_t ct) {
    dk_conv_shape cs;
    hint_shape(&cs, fs, ct);
    return (size_t)(fs->n * ct * spatial(fs)) + dk_conv_work_floats(&cs);
}

double dk_loss_hint(float *dfs, float *dw, float *db, const dk_tensor *fs, const dk_tensor *ft,
                    const uint8_t *mask, const float *w, const float *b, float scale,
                    float *work) {
    DK_ASSERT(fs && ft && fs->data && ft->data && w && work);
    DK_ASSERT(fs->n == ft->n && fs->d == ft->d && fs->h == ft->h && fs->w == ft->w);
    DK_ASSERT(dw || (!dfs && !db));
    DK_ASSERT(!db || b);
    dk_conv_shape cs;
    hint_shape(&cs, fs, ft->c);
    const int64_t s = spatial(ft), ne = ft->n * ft->c * s;
    const int64_t counted = ft->c * dk_loss_count_mask(mask, ft->n * s);
    if (counted == 0) return 0.0;
    float *y = work, *cwork = work + ne;
    dk_conv_forward(y, fs->data, w, b, &cs, cwork);
    double loss = 0;
    const double g = 2.0 * (double)scale / (double)counted;
    for (int64_t e = 0; e < ne; e++) {
        const int on = !mask || mask[e / (ft->c * s) * s + e % s];
        double diff = on ? (double)y[e] - (double)ft->data[e] : 0.0;
        loss += diff * diff;
        y[e] = (float)(g * diff); /* dL/dy, reusing y */
    }
    if (dw) dk_conv_backward(dfs, dw, db, y, fs->data, w, &cs, cwork);
    return loss / (double)counted;
}

/* ------------------------------------------------------------------ feature extraction */

void dk_feat_gap_forward(float *out, const dk_tensor *in) {
    DK_ASSERT(out && in && in->data);
    const int64_t s = spatial(in), rows = in->n * in->c;
    for (int64_t r = 0; r < rows; r++) {
        double sum = 0;
        for (int64_t v = 0; v < s; v++)
            sum += in->data[r * s + v];
        out[r] = (float)(sum / (double)s);
    }
}

void dk_feat_gap_backward(float *din, const float *dout, const dk_tensor *in) {
    DK_ASSERT(din && dout && in);
    const int64_t s = spatial(in), rows = in->n * in->c;
    for (int64_t r = 0; r < rows; r++) {
        float g = (float)((double)dout[r] / (double)s);
        for (int64_t v = 0; v < s; v++)
            din[r * s + v] += g;
    }
}

/* idx (m) = m distinct values of 0..k-1, uniformly (Floyd's algorithm). */
static void floyd(int64_t *idx, int64_t m, int64_t k, dk_rng *rng) {
    for (int64_t r = 0, j = k - m; j < k; j++, r++) {
        int64_t t = (int64_t)dk_rng_below(rng, (uint64_t)(j + 1));
        int seen = 0;
        for (int64_t u = 0; u < r && !seen; u++)
            seen = idx[u] == t;
        idx[r] = seen ? j : t;
    }
}

void dk_feat_sample_draw(int64_t *idx, int64_t m, const dk_tensor *in, const uint8_t *mask,
                         dk_rng *rng) {
    const int64_t total = in->n * spatial(in);
    int64_t k = total;
    if (mask) {
        k = 0;
        for (int64_t p = 0; p < total; p++)
            k += mask[p] != 0;
    }
    DK_ASSERT(idx && rng && m >= 0 && m <= k);
    floyd(idx, m, k, rng);
    if (!mask) return;
    for (int64_t r = 1; r < m; r++) /* ranks in increasing order (insertion sort, m small) */
        for (int64_t u = r; u > 0 && idx[u - 1] > idx[u]; u--) {
            int64_t tmp = idx[u];
            idx[u] = idx[u - 1], idx[u - 1] = tmp;
        }
    for (int64_t p = 0, rank = 0, r = 0; p < total && r < m; p++) /* rank -> position */
        if (mask[p]) {
            if (rank == idx[r]) idx[r++] = p;
            rank++;
        }
}

/* Offset of channel 0 of flat position p (sample i = p / s, voxel p % s). */
static int64_t pos_offset(const dk_tensor *in, int64_t p) {
    const int64_t s = spatial(in);
    DK_ASSERT(p >= 0 && p < in->n * s);
    return (p / s) * in->c * s + p % s;
}

void dk_feat_sample_forward(float *out, const dk_tensor *in, const int64_t *idx, int64_t m) {
    DK_ASSERT(out && in && in->data && (idx || m == 0));
    const int64_t s = spatial(in);
    for (int64_t r = 0; r < m; r++) {
        int64_t o = pos_offset(in, idx[r]);
        for (int64_t k = 0; k < in->c; k++)
            out[r * in->c + k] = in->data[o + k * s];
    }
}

void dk_feat_sample_backward(float *din, const float *dout, const dk_tensor *in,
                             const int64_t *idx, int64_t m) {
    DK_ASSERT(din && dout && in && (idx || m == 0));
    const int64_t s = spatial(in);
    for (int64_t r = 0; r < m; r++) {
        int64_t o = pos_offset(in, idx[r]);
        for (int64_t k = 0; k < in->c; k++)
            din[o + k * s] += dout[r * in->c + k];
    }
}
