/* Surface metrics of one label inside its crop (the convention is in dakd/eval.h).
 *
 * The crop is the bounding box of P ∪ R grown by one voxel (clamped to the image), so every
 * face neighbour of a voxel of P or R is inside it or outside the image. One byte per crop
 * voxel codes the sets: bit 1 = P, 2 = R, 4 = ∂P, 8 = ∂R. The boundary bits are first
 * written into the (still unused) distance buffer and merged afterwards, so no thread
 * writes a byte that another reads. Distances: EDT of ∂R sampled at ∂P, then EDT of ∂P
 * sampled at ∂R, into one pooled array in scan order (∂P part first); sums are taken in
 * that order, so nothing depends on the thread count. */
#include "eval_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { BIT_P = 1, BIT_R = 2, BIT_BP = 4, BIT_BR = 8 };

void dk_surface_bufs_free(dk_surface_bufs *b) {
    if (!b) return;
    dk_free(b->codes);
    dk_free(b->edt);
    free(b->dist);
    free(b->row_bp);
    free(b->row_br);
    free(b->rows);
    dk_free(b->work);
    memset(b, 0, sizeof *b);
}

static dk_status grow(dk_surface_bufs *b, const dk_crop *c, int64_t nx, int nt) {
    size_t vox = (size_t)(c->n[0] * c->n[1] * c->n[2]), rows = (size_t)(c->n[1] * c->n[2]);
    size_t wb = dk_edt_work_bytes(c->n[0], c->n[1], c->n[2]); /* longest crop axis */
    if (vox > b->cap) {
        dk_free(b->codes);
        dk_free(b->edt);
        b->codes = dk_alloc_aligned(vox, 1);
        b->edt = dk_alloc_aligned(vox, sizeof(float));
        b->cap = b->codes && b->edt ? vox : 0;
        if (!b->cap) return dk_fail(DK_ERR_NOMEM, "metrics: no memory for a %zu-voxel crop", vox);
    }
    if (wb > b->work_cap) {
        dk_free(b->work);
        b->work = dk_alloc_aligned(wb, 1);
        b->work_cap = b->work ? wb : 0;
        if (!b->work) return dk_fail(DK_ERR_NOMEM, "metrics: no memory for EDT scratch");
    }
    if (rows + 1 > b->row_cap) {
        free(b->row_bp);
        free(b->row_br);
        b->row_bp = malloc((rows + 1) * sizeof(int64_t));
        b->row_br = malloc((rows + 1) * sizeof(int64_t));
        b->row_cap = b->row_bp && b->row_br ? rows + 1 : 0;
        if (!b->row_cap) return dk_fail(DK_ERR_NOMEM, "metrics: no memory for row counts");
    }
    if (!b->rows) { /* per thread: two label rows (int32) and a mask row (bytes) */
        b->rows = malloc((size_t)nt * (size_t)nx * 3 * sizeof(int32_t));
        if (!b->rows) return dk_fail(DK_ERR_NOMEM, "metrics: no memory for row buffers");
    }
    return DK_OK;
}

/* uint8 inputs (and a uint8 mask or none): compare with the label value directly. */
static void fill_row_u8(uint8_t *o, const dk_volume *pred, const dk_volume *ref,
                        const dk_volume *mask, int label, int64_t off, int64_t n) {
    const uint8_t *p = (const uint8_t *)pred->data + off, *r = (const uint8_t *)ref->data + off;
    uint8_t l = (uint8_t)label;
    if (label > 255) {
        memset(o, 0, (size_t)n);
        return;
    }
    for (int64_t x = 0; x < n; x++) o[x] = (uint8_t)((p[x] == l) | ((r[x] == l) << 1));
    if (mask) {
        const uint8_t *m = (const uint8_t *)mask->data + off;
        for (int64_t x = 0; x < n; x++) o[x] = m[x] ? o[x] : 0;
    }
}

/* Fill bits P and R of the crop (mask applied). */
static void fill_sets(dk_surface_bufs *b, const dk_volume *pred, const dk_volume *ref,
                      const dk_volume *mask, const dk_label_lut *t, int k, int label,
                      const dk_crop *c, int nt) {
    int64_t cx = c->n[0], rows = c->n[1] * c->n[2], nx = pred->nx, ny = pred->ny;
    int u8 = pred->dtype == DK_U8 && ref->dtype == DK_U8 && (!mask || mask->dtype == DK_U8);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) {
        if (u8) {
            int64_t yy = c->o[1] + r % c->n[1], zz = c->o[2] + r / c->n[1];
            fill_row_u8(b->codes + r * cx, pred, ref, mask, label, (zz * ny + yy) * nx + c->o[0],
                        cx);
            continue;
        }
        int32_t *ip = b->rows + (size_t)omp_get_thread_num() * (size_t)nx * 3, *ir = ip + nx;
        uint8_t *m = (uint8_t *)(ir + nx);
        int64_t y = c->o[1] + r % c->n[1], z = c->o[2] + r / c->n[1];
        int64_t off = (z * ny + y) * nx + c->o[0];
        dk_label_row(ip, pred, off, cx, t);
        dk_label_row(ir, ref, off, cx, t);
        dk_mask_row(m, mask, off, cx);
        uint8_t *o = b->codes + r * cx;
        for (int64_t x = 0; x < cx; x++)
            o[x] = (uint8_t)(m[x] ? (ip[x] == k ? BIT_P : 0) | (ir[x] == k ? BIT_R : 0) : 0);
    }
}

/* Boundary bits of crop row r into bnd (a voxel of S with a face neighbour not in S;
 * neighbours outside the crop are not in S; no z neighbours in 2-D). */
static void boundary_row(uint8_t *bnd, const uint8_t *codes, const int64_t n[3], int64_t r,
                         int is2d) {
    int64_t cx = n[0], cy = n[1], cz = n[2], y = r % cy, z = r / cy;
    const uint8_t *row = codes + r * cx;
    const uint8_t *up = y > 0 ? row - cx : NULL, *dn = y + 1 < cy ? row + cx : NULL;
    const uint8_t *bk = z > 0 && !is2d ? row - cx * cy : NULL;
    const uint8_t *fw = z + 1 < cz && !is2d ? row + cx * cy : NULL;
    for (int64_t x = 0; x < cx; x++) {
        unsigned s = row[x] & (BIT_P | BIT_R), all = BIT_P | BIT_R;
        if (!s) {
            bnd[x] = 0;
            continue;
        }
        unsigned in = s;
        in &= x > 0 ? row[x - 1] : 0;
        in &= x + 1 < cx ? row[x + 1] : 0;
        in &= up ? up[x] : 0;
        in &= dn ? dn[x] : 0;
        if (!is2d) {
            in &= bk ? bk[x] : 0;
            in &= fw ? fw[x] : 0;
        }
        bnd[x] = (uint8_t)((s & ~in & all) << 2); /* P → 4, R → 8 */
    }
}

/* ∂P, ∂R into the codes and per-row counts into row_bp / row_br (exclusive prefix sums). */
static void boundaries(dk_surface_bufs *b, const dk_crop *c, int is2d, int64_t *nbp,
                       int64_t *nbr, int nt) {
    int64_t cx = c->n[0], rows = c->n[1] * c->n[2];
    uint8_t *bnd = (uint8_t *)b->edt;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) boundary_row(bnd + r * cx, b->codes, c->n, r, is2d);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) {
        int64_t np = 0, nr = 0;
        uint8_t *o = b->codes + r * cx;
        const uint8_t *s = bnd + r * cx;
        for (int64_t x = 0; x < cx; x++) {
            o[x] |= s[x];
            np += (s[x] & BIT_BP) != 0;
            nr += (s[x] & BIT_BR) != 0;
        }
        b->row_bp[r + 1] = np;
        b->row_br[r + 1] = nr;
    }
    b->row_bp[0] = b->row_br[0] = 0;
    for (int64_t r = 0; r < rows; r++) {
        b->row_bp[r + 1] += b->row_bp[r];
        b->row_br[r + 1] += b->row_br[r];
    }
    *nbp = b->row_bp[rows];
    *nbr = b->row_br[rows];
}

/* d = sqrt(edt) at the voxels with bit `at`, in scan order, into dist[row_off[r]...]. */
static void sample(double *dist, const dk_surface_bufs *b, const int64_t *row_off,
                   uint8_t at, int64_t cx, int64_t rows, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *o = b->codes + r * cx;
        const float *e = b->edt + r * cx;
        double *d = dist + row_off[r];
        if (row_off[r + 1] == row_off[r]) continue; /* no such voxel in this row */
        for (int64_t x = 0; x < cx; x++)
            if (o[x] & at) *d++ = sqrt((double)e[x]);
    }
}

/* HD, ASSD, NSD from the pooled distances (in their scan order), then HD95 by selection
 * (reorders d) with numpy's "linear" rule. */
static void pooled_stats(dk_label_metrics *m, double *d, int64_t n, double tau) {
    double sum = 0, mx = 0;
    int64_t close = 0;
    /* float32 distance transform: allow its rounding (relative ~1e-7) at exactly τ */
    double tau_eff = tau * (1.0 + 1e-6);
    for (int64_t i = 0; i < n; i++) {
        sum += d[i];
        mx = d[i] > mx ? d[i] : mx;
        close += d[i] <= tau_eff;
    }
    m->hd = mx;
    m->assd = sum / (double)n;
    m->nsd = (double)close / (double)n;
    m->hd95 = dk_percentile_select(d, n, 95);
}

dk_status dk_surface_metrics(dk_label_metrics *m, dk_surface_bufs *b, const dk_volume *pred,
                             const dk_volume *ref, const dk_volume *mask,
                             const dk_label_lut *t, int k, const dk_crop *c, double tau) {
    int nt = dk_get_threads();
    dk_status st = grow(b, c, pred->nx, nt);
    if (st != DK_OK) return st;
    int64_t cx = c->n[0], rows = c->n[1] * c->n[2], nbp, nbr;
    fill_sets(b, pred, ref, mask, t, k, m->label, c, nt);
    boundaries(b, c, pred->nz == 1, &nbp, &nbr, nt);
    m->n_bpred = nbp;
    m->n_bref = nbr;
    if (nbp == 0 || nbr == 0) return DK_OK;
    size_t need = (size_t)(nbp + nbr);
    if (need > b->dist_cap) {
        free(b->dist);
        b->dist = malloc(need * sizeof(double));
        b->dist_cap = b->dist ? need : 0;
        if (!b->dist)
            return dk_fail(DK_ERR_NOMEM, "metrics: no memory for %zu boundary distances", need);
    }
    const double *sp = pred->geom.spacing;
    st = dk_edt_sq_bits(b->edt, b->codes, BIT_BR, BIT_BP, cx, c->n[1], c->n[2], sp, b->work);
    if (st != DK_OK) return st;
    sample(b->dist, b, b->row_bp, BIT_BP, cx, rows, nt);
    st = dk_edt_sq_bits(b->edt, b->codes, BIT_BP, BIT_BR, cx, c->n[1], c->n[2], sp, b->work);
    if (st != DK_OK) return st;
    sample(b->dist + nbp, b, b->row_br, BIT_BR, cx, rows, nt);
    pooled_stats(m, b->dist, nbp + nbr, tau);
    return DK_OK;
}
