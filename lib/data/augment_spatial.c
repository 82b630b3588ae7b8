/* Spatial augmentation: rotation, zoom and smooth deformation as one coordinate map sampled
 * once (trilinear image, per-value linear label and mask), and Gaussian blur. The rules are
 * in dakd/data.h's augmentation banner. */
#include "data_internal.h"

#include <math.h>
#include <string.h>

enum { RADIUS_MAX = 4 * DK_BLUR_SIGMA_MAX };

/* The workspace of one patch, in b->work: the image copy (c·vox floats), the deformation
 * field (3·vox), the in-plane cells (h·w cells of CELL_FLOATS), label and mask copies
 * (2·vox bytes), the Gaussian passes' rows (dk__gauss_work_floats). */
typedef struct {
    float *image, *field, *line;
    void *cells; /* cell2 */
    uint8_t *label, *mask;
} workspace;

enum { CELL_FLOATS = 9 }; /* sizeof(cell2) / sizeof(float), checked below */

size_t dk__augment_work_floats(int64_t c, int64_t d, int64_t h, int64_t w) {
    int64_t vox = d * h * w, ext = d > h ? (d > w ? d : w) : (h > w ? h : w);
    return (size_t)((c + 3) * vox + CELL_FLOATS * h * w + (2 * vox + 3) / 4) +
           dk__gauss_work_floats(ext);
}

static workspace work_of(const dk_batch *b) {
    const dk_tensor *t = &b->image;
    int64_t vox = t->d * t->h * t->w;
    DK_ASSERT(b->work);
    float *p = b->work;
    workspace ws = {.image = p, .field = p + t->c * vox, .cells = p + (t->c + 3) * vox};
    ws.label = (uint8_t *)(p + (t->c + 3) * vox + CELL_FLOATS * t->h * t->w);
    ws.mask = ws.label + vox;
    ws.line = p + (t->c + 3) * vox + CELL_FLOATS * t->h * t->w + (2 * vox + 3) / 4;
    return ws;
}

/* ------------------------------------------------------------------ Gaussian passes */

/* Where index i (outside [0, n)) reads: scipy's reflect (period 2n) or the nearest end. */
static int64_t edge_index(int64_t i, int64_t n, dk_edge_mode edge) {
    if (edge == DK_EDGE_CLAMP) return i < 0 ? 0 : n - 1;
    int64_t m = i % (2 * n);
    if (m < 0) m += 2 * n;
    return m < n ? m : 2 * n - 1 - m;
}

enum { BLOCK = 32 }; /* lines smoothed together along d or h (adjacent in memory) */

size_t dk__gauss_work_floats(int64_t extent) { return (size_t)(extent + 2 * RADIUS_MAX) * BLOCK; }

/* Row i (of `nb` floats at p + i·stride) of n rows, or what an edge mode reads for it. */
static void fetch_row(float *dst, const float *p, int64_t i, int64_t n, int64_t stride, int64_t nb,
                      dk_edge_mode edge) {
    if (i < 0 || i >= n) {
        if (edge == DK_EDGE_ZERO) {
            memset(dst, 0, (size_t)nb * sizeof(float));
            return;
        }
        i = edge_index(i, n, edge);
    }
    memcpy(dst, p + i * stride, (size_t)nb * sizeof(float));
}

/* nb adjacent lines of n values (line l's element i at p[i·stride + l]), padded by r rows on
 * each side into buf, then out = k0·x_i + sum_j kj·(x_{i-j} + x_{i+j}), in that order, with
 * the loop over the lines innermost (it vectorises). */
static void smooth_lines(float *p, int64_t n, int64_t stride, int64_t nb, const float *k, int r,
                         dk_edge_mode edge, float *buf) {
    for (int64_t i = -r; i < n + r; i++)
        fetch_row(buf + (i + r) * nb, p, i, n, stride, nb, edge);
    for (int64_t i = 0; i < n; i++) {
        float *o = p + i * stride;
        const float *c = buf + (i + r) * nb;
        for (int64_t l = 0; l < nb; l++)
            o[l] = k[0] * c[l];
        for (int j = 1; j <= r; j++) {
            const float *lo = c - j * nb, *hi = c + j * nb;
            for (int64_t l = 0; l < nb; l++)
                o[l] += k[j] * (lo[l] + hi[l]);
        }
    }
}

/* One contiguous line of n values, the same sums with the loop over i innermost. */
static void smooth_row(float *p, int64_t n, const float *k, int r, dk_edge_mode edge, float *buf) {
    float *mid = buf + r;
    for (int64_t i = -r; i < n + r; i++)
        fetch_row(mid + i, p, i, n, 1, 1, edge);
    for (int64_t i = 0; i < n; i++)
        p[i] = k[0] * mid[i];
    for (int j = 1; j <= r; j++)
        for (int64_t i = 0; i < n; i++)
            p[i] += k[j] * (mid[i - j] + mid[i + j]);
}

void dk__gauss_axis(float *p, int64_t d, int64_t h, int64_t w, int axis, double sigma,
                    dk_edge_mode edge, float *buf) {
    const int64_t dims[3] = {d, h, w};
    int64_t n = dims[axis];
    DK_ASSERT(axis >= 0 && axis < 3 && sigma >= 0 && sigma <= DK_BLUR_SIGMA_MAX);
    int r = (int)(4.0 * sigma + 0.5);
    if (n == 1 || r == 0) return;
    double kd[RADIUS_MAX + 1], sum = 0;
    for (int j = 0; j <= r; j++)
        sum += (j ? 2 : 1) * (kd[j] = exp(-0.5 * j * j / (sigma * sigma)));
    float k[RADIUS_MAX + 1];
    for (int j = 0; j <= r; j++)
        k[j] = (float)(kd[j] / sum);
    if (edge == DK_EDGE_ZERO && r > n - 1) r = (int)(n - 1); /* taps past the far end read 0 */
    if (axis == 2) {
        for (int64_t l = 0; l < d * h; l++)
            smooth_row(p + l * w, w, k, r, edge, buf);
        return;
    }
    /* along h: per slice, blocks of the w columns; along d: blocks of the h·w pillars */
    int64_t outer = axis == 1 ? d : 1, lines = axis == 1 ? w : h * w;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t l0 = 0; l0 < lines; l0 += BLOCK)
            smooth_lines(p + o * h * w + l0, n, lines, lines - l0 < BLOCK ? lines - l0 : BLOCK, k,
                         r, edge, buf);
}

void dk_augment_blur(dk_batch *b, int64_t i, int64_t c, const double sigma[3]) {
    const dk_tensor *t = &b->image;
    DK_ASSERT(b->work && i >= 0 && i < t->n && c >= 0 && c < t->c);
    float *x = dk_tensor_at(t, i, c, 0, 0, 0), *line = work_of(b).line;
    for (int a = 0; a < 3; a++)
        if (sigma[a] > 0) dk__gauss_axis(x, t->d, t->h, t->w, a, sigma[a], DK_EDGE_MIRROR, line);
}

/* ------------------------------------------------------------------ the coordinate map */

/* q = c + m·(p - c + u(p)) for output voxel p = (z, y, x). In-plane maps keep q_z = z and
 * use m's (h, w) block with a (2, h, w) field shared by the slices. */
typedef struct {
    double m[3][3], c[3];
    const float *u; /* NULL, (3, d, h, w), or (2, h, w) in-plane */
    int plane;
    int64_t d, h, w;
} coord_map;

static double snap(double v) {
    if (fabs(v) < 1e-12) return 0;
    if (fabs(fabs(v) - 1) < 1e-12) return v > 0 ? 1 : -1;
    return v;
}

/* m = s·Rd(a0)·Rh(a1)·Rw(a2) (in-plane: s·Rd(a0) on (h, w), 1 for z). Returns 1 when it
 * is the identity. */
static int build_matrix(double m[3][3], const dk_spatial_map *sm) {
    static const int planes[3][2] = {{1, 2}, {0, 2}, {0, 1}}; /* the axes each angle turns */
    double r[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    for (int a = 0; a < (sm->in_plane ? 1 : 3); a++) {
        double c = snap(cos(sm->angle[a])), s = snap(sin(sm->angle[a])), g[3][3] = {{0}}, t[3][3];
        int p = planes[a][0], q = planes[a][1], o = 3 - p - q;
        g[o][o] = 1, g[p][p] = c, g[p][q] = s, g[q][p] = -s, g[q][q] = c;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                t[i][j] = r[i][0] * g[0][j] + r[i][1] * g[1][j] + r[i][2] * g[2][j];
        memcpy(r, t, sizeof r);
    }
    int identity = 1;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            m[i][j] = (sm->in_plane && (i == 0 || j == 0)) ? r[i][j] : sm->zoom * r[i][j];
            identity = identity && m[i][j] == (i == j);
        }
    return identity;
}

static void source_of(double q[3], const coord_map *cm, int64_t z, int64_t y, int64_t x) {
    double e[3] = {(double)z - cm->c[0], (double)y - cm->c[1], (double)x - cm->c[2]};
    if (cm->u && cm->plane) {
        int64_t k = y * cm->w + x, n = cm->h * cm->w;
        e[1] += cm->u[k], e[2] += cm->u[n + k];
    } else if (cm->u) {
        int64_t k = (z * cm->h + y) * cm->w + x, n = cm->d * cm->h * cm->w;
        e[0] += cm->u[k], e[1] += cm->u[n + k], e[2] += cm->u[2 * n + k];
    }
    for (int a = 0; a < 3; a++)
        q[a] = cm->c[a] + cm->m[a][0] * e[0] + cm->m[a][1] * e[1] + cm->m[a][2] * e[2];
    if (cm->plane) q[0] = (double)z;
}

/* ------------------------------------------------------------------ sampling */

/* A cell: the 2^nd corners around q (nd = 2: (y, x) in a slice; 3: (z, y, x)), in the order
 * (z,) y, x with x fastest. Corners outside the patch get weight 0 and offset 0 (a valid
 * read), their weight summed in w_out, so reads need no branch. */
typedef struct {
    int32_t off[4];
    float w[4];
    float w_out;
} cell2;
typedef struct {
    int32_t off[8];
    float w[8];
    float w_out;
} cell3;
_Static_assert(sizeof(cell2) == CELL_FLOATS * sizeof(float), "cells are CELL_FLOATS floats");

static inline void cell_at(int32_t *off, float *wt, float *w_out, const double *q,
                           const int64_t *dims, int nd) {
    /* per axis (a 2-D cell has a first axis of one plane): weights, offsets, inside */
    float wa[3][2] = {{1, 0}};
    int64_t oa[3][2] = {{0, 0}};
    int ia[3][2] = {{1, 0}};
    for (int a = 3 - nd; a < 3; a++) {
        const double qa = q[a - (3 - nd)];
        const int64_t n = dims[a - (3 - nd)];
        DK_ASSERT(fabs(qa) < 1e15); /* a finite map: the conversion below is exact */
        int64_t lo = (int64_t)qa;
        lo -= (double)lo > qa; /* floor */
        float f = (float)(qa - (double)lo);
        wa[a][0] = 1 - f, wa[a][1] = f;
        for (int u = 0; u < 2; u++)
            ia[a][u] = lo + u >= 0 && lo + u < n, oa[a][u] = lo + u;
    }
    /* offsets: z·(h·w) + y·w + x over the cell's own dims */
    const int64_t w = dims[nd - 1], hw = nd == 3 ? dims[1] * dims[2] : 0;
    *w_out = 0;
    int k = 0;
    for (int z = 0; z < (nd == 3 ? 2 : 1); z++)
        for (int y = 0; y < 2; y++) {
            float wzy = wa[0][z] * wa[1][y];
            int izy = ia[0][z] && ia[1][y];
            int64_t ozy = oa[0][z] * hw + oa[1][y] * w;
            for (int x = 0; x < 2; x++, k++) {
                float c = wzy * wa[2][x];
                int in = izy && ia[2][x];
                off[k] = in ? (int32_t)(ozy + oa[2][x]) : 0;
                wt[k] = in ? c : 0;
                *w_out += in ? 0 : c;
            }
        }
}

static inline float gather(const float *src, const int32_t *off, const float *w, int n) {
    float s = w[0] * src[off[0]];
    for (int k = 1; k < n; k++)
        s += w[k] * src[off[k]];
    return s;
}

/* The value with the largest summed weight among the n corners; the part of the cell outside
 * the patch is one more candidate, `outside` (so a mask equal to a binary label maps as that
 * label). Ties go to the first corner listed, outside last. */
static inline uint8_t vote(const uint8_t *src, const int32_t *off, const float *w, float w_out,
                           int n, uint8_t outside) {
    uint8_t v[8];
    int same = w_out == 0;
    for (int k = 0; k < n; k++)
        v[k] = src[off[k]], same &= v[k] == v[0];
    if (same) return v[0];
    uint8_t val[8];
    float acc[8];
    int m = 0, best = 0;
    for (int k = 0; k < n; k++) {
        if (w[k] == 0) continue; /* outside, or a corner the point does not reach */
        int j = 0;
        while (j < m && val[j] != v[k])
            j++;
        if (j == m) val[m] = v[k], acc[m++] = 0;
        acc[j] += w[k];
    }
    for (int j = 1; j < m; j++)
        if (acc[j] > acc[best]) best = j;
    return m == 0 || w_out > acc[best] ? outside : val[best];
}

/* The patch's image (c, vox), label and mask being written; the copies read are in ws. */
typedef struct {
    float *img;
    uint8_t *lab, *msk;
    int64_t c, vox;
} patch_out;

/* Output voxel o of every channel, label and mask from a cell of n corners whose offsets
 * count from `base`. */
static inline void put_voxel(const patch_out *p, const workspace *ws, const int32_t *off,
                             const float *w, float w_out, int n, int64_t base, int64_t o) {
    for (int64_t ch = 0; ch < p->c; ch++)
        p->img[ch * p->vox + o] = gather(ws->image + ch * p->vox + base, off, w, n);
    p->lab[o] = vote(ws->label + base, off, w, w_out, n, 255);
    p->msk[o] = vote(ws->mask + base, off, w, w_out, n, 0);
}

/* Write patch i from the copies in ws through the map. An in-plane map computes the (h, w)
 * cells once into ws->cells and then fills the patch slice by slice. */
static void resample(dk_batch *b, int64_t i, const coord_map *cm, const workspace *ws) {
    const dk_tensor *t = &b->image;
    const int64_t d = t->d, h = t->h, w = t->w, vox = d * h * w;
    const patch_out p = {dk_tensor_at(t, i, 0, 0, 0, 0), b->label + i * vox, b->mask + i * vox,
                         t->c, vox};
    double q[3];
    if (cm->plane) {
        const int64_t plane[2] = {h, w};
        cell2 *cells = ws->cells;
        for (int64_t y = 0, o = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++, o++) {
                source_of(q, cm, 0, y, x);
                cell_at(cells[o].off, cells[o].w, &cells[o].w_out, q + 1, plane, 2);
            }
        for (int64_t z = 0, o = 0; z < d; z++)
            for (int64_t k = 0; k < h * w; k++, o++)
                put_voxel(&p, ws, cells[k].off, cells[k].w, cells[k].w_out, 4, z * h * w, o);
        return;
    }
    DK_ASSERT(vox <= INT32_MAX);
    const int64_t dims[3] = {d, h, w};
    cell3 c;
    for (int64_t z = 0, o = 0; z < d; z++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++, o++) {
                source_of(q, cm, z, y, x);
                cell_at(c.off, c.w, &c.w_out, q, dims, 3);
                put_voxel(&p, ws, c.off, c.w, c.w_out, 8, 0, o);
            }
}

/* The deformation: per component U(-1, 1) noise (two draws from each 64-bit number),
 * smoothed along every axis of extent > 1 with zero outside, times alpha. */
static void draw_field(float *u, int comps, int64_t d, int64_t h, int64_t w, double alpha,
                       double sigma, dk_rng *rng, float *line) {
    int64_t n = d * h * w;
    for (int64_t k = 0; k < comps * n; k += 2) {
        uint64_t r = dk_rng_u64(rng);
        u[k] = (float)((double)(r >> 32) * 0x1.0p-31 - 1.0);
        if (k + 1 < comps * n) u[k + 1] = (float)((double)(r & 0xFFFFFFFFu) * 0x1.0p-31 - 1.0);
    }
    for (int c = 0; c < comps; c++) {
        float *p = u + c * n;
        for (int a = 0; a < 3; a++)
            dk__gauss_axis(p, d, h, w, a, sigma, DK_EDGE_ZERO, line);
        for (int64_t k = 0; k < n; k++)
            p[k] = (float)(alpha * p[k]);
    }
}

void dk_augment_spatial(dk_batch *b, int64_t i, const dk_spatial_map *m, dk_rng *rng) {
    const dk_tensor *t = &b->image;
    DK_ASSERT(i >= 0 && i < t->n && m->zoom > 0 && m->alpha >= 0);
    DK_ASSERT(m->sigma >= 0 && m->sigma <= DK_BLUR_SIGMA_MAX);
    coord_map cm = {.plane = m->in_plane || t->d == 1, .d = t->d, .h = t->h, .w = t->w};
    dk_spatial_map sm = *m;
    sm.in_plane = cm.plane;
    if (build_matrix(cm.m, &sm) && m->alpha == 0) return;
    cm.c[0] = 0.5 * (double)(t->d - 1), cm.c[1] = 0.5 * (double)(t->h - 1);
    cm.c[2] = 0.5 * (double)(t->w - 1);
    workspace ws = work_of(b);
    int64_t vox = t->d * t->h * t->w;
    memcpy(ws.image, dk_tensor_at(t, i, 0, 0, 0, 0), (size_t)(t->c * vox) * sizeof(float));
    memcpy(ws.label, b->label + i * vox, (size_t)vox);
    memcpy(ws.mask, b->mask + i * vox, (size_t)vox);
    if (m->alpha > 0) {
        DK_ASSERT(rng);
        draw_field(ws.field, cm.plane ? 2 : 3, cm.plane ? 1 : t->d, t->h, t->w, m->alpha, m->sigma,
                   rng, ws.line);
        cm.u = ws.field;
    }
    resample(b, i, &cm, &ws);
}
