/* Per-label overlap and surface metrics of one case (the convention is in dakd/eval.h).
 *
 * One parallel pass over the voxels counts, per requested label, |P ∩ R|, |P|, |R| and the
 * counted voxels, and finds the bounding box of P ∪ R; values are read row by row, uint8
 * through a lookup table, every other dtype through dk_volume_get (which also refuses a
 * value that is not a non-negative integer, naming the first such voxel). The surface part
 * of each label then works inside that box grown by one voxel (surface.c). Per-thread
 * partial counts are integers, so the totals do not depend on the thread count. */
#include "eval_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { LUT_MAX = 65536 };

static const char *nm(const char *s, const char *dflt) { return s && *s ? s : dflt; }

const char *const dk_distance_unit_names[] = {"mm", "voxels", NULL};

void dk_metric_defaults(dk_metric_opts *o) {
    o->nsd_tol_mm = 1.0;
    o->surface = 1;
    o->unit = DK_UNIT_MM;
}

/* ------------------------------------------------------------------ label lookup */

static void lut_free(dk_label_lut *t) {
    free(t->lut);
    free(t->sorted_val);
    free(t->sorted_idx);
    memset(t, 0, sizeof *t);
}

static dk_status lut_make(dk_label_lut *t, const int *labels, int n) {
    memset(t, 0, sizeof *t);
    int64_t maxl = 0;
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0)
            return dk_fail(DK_ERR_ARG, "metrics: label %d is negative (labels are >= 0)",
                           labels[i]);
        for (int j = 0; j < i; j++)
            if (labels[j] == labels[i])
                return dk_fail(DK_ERR_ARG, "metrics: label %d is requested twice", labels[i]);
        maxl = labels[i] > maxl ? labels[i] : maxl;
    }
    t->n_lut = maxl + 1 < 256 ? 256 : maxl + 1 > LUT_MAX ? LUT_MAX : maxl + 1;
    t->n = n;
    t->lut = malloc((size_t)t->n_lut * sizeof *t->lut);
    t->sorted_val = malloc((size_t)(n ? n : 1) * sizeof *t->sorted_val);
    t->sorted_idx = malloc((size_t)(n ? n : 1) * sizeof *t->sorted_idx);
    if (!t->lut || !t->sorted_val || !t->sorted_idx) {
        lut_free(t);
        return dk_fail(DK_ERR_NOMEM, "metrics: no memory for the label table");
    }
    for (int64_t v = 0; v < t->n_lut; v++) t->lut[v] = -1;
    for (int i = 0; i < n; i++) { /* insertion sort: n is small */
        if (labels[i] < t->n_lut) t->lut[labels[i]] = i;
        int j = i;
        while (j > 0 && t->sorted_val[j - 1] > labels[i]) {
            t->sorted_val[j] = t->sorted_val[j - 1];
            t->sorted_idx[j] = t->sorted_idx[j - 1];
            j--;
        }
        t->sorted_val[j] = labels[i];
        t->sorted_idx[j] = i;
    }
    return DK_OK;
}

static int32_t lut_find(const dk_label_lut *t, int64_t v) {
    if (v < t->n_lut) return t->lut[v];
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->sorted_val[mid] == v) return t->sorted_idx[mid];
        if (t->sorted_val[mid] < v) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int64_t dk_label_row(int32_t *idx, const dk_volume *v, int64_t off, int64_t n,
                     const dk_label_lut *t) {
    if (v->dtype == DK_U8) {
        const uint8_t *p = (const uint8_t *)v->data + off;
        for (int64_t i = 0; i < n; i++) idx[i] = t->lut[p[i]];
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        double x = dk_volume_get(v, off + i);
        if (!(x >= 0 && x == floor(x) && x < 9.2e18)) return off + i;
        idx[i] = lut_find(t, (int64_t)x);
    }
    return -1;
}

void dk_mask_row(uint8_t *m, const dk_volume *mask, int64_t off, int64_t n) {
    if (!mask) {
        memset(m, 1, (size_t)n);
    } else if (mask->dtype == DK_U8) {
        const uint8_t *p = (const uint8_t *)mask->data + off;
        for (int64_t i = 0; i < n; i++) m[i] = p[i] != 0;
    } else {
        for (int64_t i = 0; i < n; i++) m[i] = dk_volume_get(mask, off + i) != 0;
    }
}

/* ------------------------------------------------------------------ input checks */

static dk_status check_single(const dk_volume *v, const char *name) {
    if (v->nc != 1 || v->nt != 1)
        return dk_fail(DK_ERR_FORMAT,
                       "%s: label maps need one channel and one time point (have nc=%lld, "
                       "nt=%lld)", name, (long long)v->nc, (long long)v->nt);
    if (v->dtype == DK_DT_UNKNOWN || !v->data)
        return dk_fail(DK_ERR_ARG, "%s: no voxel data", name);
    return DK_OK;
}

/* The same grid: extent, then spacing, origin, direction within 1e-4 (relative). */
static dk_status check_grid(const dk_volume *a, const char *an, const dk_volume *b,
                            const char *bn) {
    if (a->nx != b->nx || a->ny != b->ny || a->nz != b->nz)
        return dk_fail(DK_ERR_FORMAT, "%s vs %s: different grids: size %lldx%lldx%lld vs "
                       "%lldx%lldx%lld", an, bn, (long long)a->nx, (long long)a->ny,
                       (long long)a->nz, (long long)b->nx, (long long)b->ny, (long long)b->nz);
    if (dk_geometry_equal(&a->geom, &b->geom, 1e-4)) return DK_OK;
    const dk_geometry *g = &a->geom, *h = &b->geom;
    dk_geometry t = *g;
    memcpy(t.origin, h->origin, sizeof t.origin);
    memcpy(t.direction, h->direction, sizeof t.direction);
    if (!dk_geometry_equal(&t, h, 1e-4))
        return dk_fail(DK_ERR_FORMAT, "%s vs %s: different grids: spacing %g,%g,%g vs %g,%g,%g mm",
                       an, bn, g->spacing[0], g->spacing[1], g->spacing[2], h->spacing[0],
                       h->spacing[1], h->spacing[2]);
    memcpy(t.origin, g->origin, sizeof t.origin);
    if (!dk_geometry_equal(&t, h, 1e-4))
        return dk_fail(DK_ERR_FORMAT, "%s vs %s: different grids: origin %g,%g,%g vs %g,%g,%g mm",
                       an, bn, g->origin[0], g->origin[1], g->origin[2], h->origin[0],
                       h->origin[1], h->origin[2]);
    return dk_fail(DK_ERR_FORMAT, "%s vs %s: different grids: direction columns differ "
                   "(orientation or rotation)", an, bn);
}

/* ------------------------------------------------------------------ the counting pass */

typedef struct {
    int64_t tp, np, nr;
    int64_t lo[3], hi[3]; /* bounding box of P ∪ R (lo > hi: empty) */
} label_acc;

typedef struct {
    label_acc *acc;        /* (threads, n_labels) */
    int64_t *counted;      /* (threads) */
    int64_t *bad_p, *bad_r; /* (threads): first bad flat index, or INT64_MAX */
    int32_t *rows;         /* (threads, 3 · nx) */
} count_bufs;

static void acc_voxel(label_acc *a, int64_t x, int64_t y, int64_t z) {
    if (x < a->lo[0]) a->lo[0] = x;
    if (x > a->hi[0]) a->hi[0] = x;
    if (y < a->lo[1]) a->lo[1] = y;
    if (y > a->hi[1]) a->hi[1] = y;
    if (z < a->lo[2]) a->lo[2] = z;
    if (z > a->hi[2]) a->hi[2] = z;
}

static void count_row(label_acc *acc, int64_t *counted, const int32_t *ip, const int32_t *ir,
                      const uint8_t *m, int64_t nx, int64_t y, int64_t z) {
    for (int64_t x = 0; x < nx; x++) {
        if (!m[x]) continue;
        (*counted)++;
        int32_t p = ip[x], r = ir[x];
        if (p >= 0) {
            acc[p].np++;
            acc[p].tp += p == r;
            acc_voxel(&acc[p], x, y, z);
        }
        if (r >= 0) {
            acc[r].nr++;
            if (r != p) acc_voxel(&acc[r], x, y, z);
        }
    }
}

static void count_pass(count_bufs *cb, const dk_volume *pred, const dk_volume *ref,
                       const dk_volume *mask, const dk_label_lut *t, int nl, int nt) {
    int64_t nx = pred->nx, ny = pred->ny, rows = ny * pred->nz;
#pragma omp parallel num_threads(nt)
    {
        int th = omp_get_thread_num();
        label_acc *acc = cb->acc + (size_t)th * (size_t)nl;
        int32_t *ip = cb->rows + (size_t)th * (size_t)nx * 3, *ir = ip + nx;
        uint8_t *m = (uint8_t *)(ir + nx);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            int64_t bp = dk_label_row(ip, pred, r * nx, nx, t);
            int64_t br = dk_label_row(ir, ref, r * nx, nx, t);
            if (bp >= 0 || br >= 0) { /* remember the first bad voxel; skip the row */
                if (bp >= 0 && bp < cb->bad_p[th]) cb->bad_p[th] = bp;
                if (br >= 0 && br < cb->bad_r[th]) cb->bad_r[th] = br;
                continue;
            }
            dk_mask_row(m, mask, r * nx, nx);
            count_row(acc, &cb->counted[th], ip, ir, m, nx, r % ny, r / ny);
        }
    }
}

static dk_status bad_value(const dk_volume *v, const char *name, int64_t i) {
    int64_t x = i % v->nx, y = (i / v->nx) % v->ny, z = i / (v->nx * v->ny);
    return dk_fail(DK_ERR_FORMAT,
                   "%s: voxel %lld (x=%lld, y=%lld, z=%lld) = %g is not a label (labels are "
                   "non-negative integers)", name, (long long)i, (long long)x, (long long)y,
                   (long long)z, dk_volume_get(v, i));
}

/* ------------------------------------------------------------------ per label */

static double ratio(int64_t a, int64_t b) { return b ? (double)a / (double)b : NAN; }

static void overlap_metrics(dk_label_metrics *m, const label_acc *a, int64_t counted,
                            double voxel_mm3) {
    m->tp = a->tp;
    m->fp = a->np - a->tp;
    m->fn = a->nr - a->tp;
    m->tn = counted - m->tp - m->fp - m->fn;
    m->n_pred = a->np;
    m->n_ref = a->nr;
    m->vol_pred_mm3 = (double)a->np * voxel_mm3;
    m->vol_ref_mm3 = (double)a->nr * voxel_mm3;
    m->both_empty = a->np == 0 && a->nr == 0;
    m->flagged = (a->np == 0) != (a->nr == 0);
    m->specificity = ratio(m->tn, m->tn + m->fp);
    m->hd = m->hd95 = m->assd = m->nsd = NAN;
    if (m->both_empty) {
        m->dice = m->iou = m->precision = m->recall = m->vol_sim = 1;
        return;
    }
    m->dice = 2.0 * (double)m->tp / (double)(2 * m->tp + m->fp + m->fn);
    m->iou = (double)m->tp / (double)(m->tp + m->fp + m->fn);
    m->precision = ratio(m->tp, m->tp + m->fp);
    m->recall = ratio(m->tp, m->tp + m->fn);
    int64_t diff = a->np > a->nr ? a->np - a->nr : a->nr - a->np;
    m->vol_sim = 1.0 - (double)diff / (double)(a->np + a->nr);
}

/* The label's box grown by one voxel, clamped to the image. */
static dk_crop crop_of(const label_acc *a, const dk_volume *v) {
    int64_t n[3] = {v->nx, v->ny, v->nz};
    dk_crop c;
    for (int ax = 0; ax < 3; ax++) {
        int64_t lo = a->lo[ax] > 0 ? a->lo[ax] - 1 : 0;
        int64_t hi = a->hi[ax] + 1 < n[ax] ? a->hi[ax] + 1 : n[ax] - 1;
        c.o[ax] = lo;
        c.n[ax] = hi - lo + 1;
    }
    return c;
}

static void count_bufs_free(count_bufs *cb) {
    free(cb->acc);
    free(cb->counted);
    free(cb->bad_p);
    free(cb->bad_r);
    free(cb->rows);
}

static dk_status count_bufs_make(count_bufs *cb, int nt, int nl, int64_t nx) {
    cb->acc = malloc((size_t)nt * (size_t)(nl ? nl : 1) * sizeof *cb->acc);
    cb->counted = calloc((size_t)nt, sizeof *cb->counted);
    cb->bad_p = malloc((size_t)nt * sizeof *cb->bad_p);
    cb->bad_r = malloc((size_t)nt * sizeof *cb->bad_r);
    cb->rows = malloc((size_t)nt * (size_t)nx * 3 * sizeof(int32_t));
    if (!cb->acc || !cb->counted || !cb->bad_p || !cb->bad_r || !cb->rows)
        return dk_fail(DK_ERR_NOMEM, "metrics: no memory for per-thread counts");
    for (int i = 0; i < nt * nl; i++) {
        label_acc *a = &cb->acc[i];
        memset(a, 0, sizeof *a);
        for (int ax = 0; ax < 3; ax++) a->lo[ax] = INT64_MAX, a->hi[ax] = -1;
    }
    for (int i = 0; i < nt; i++) cb->bad_p[i] = cb->bad_r[i] = INT64_MAX;
    return DK_OK;
}

/* Sum the per-thread partials into thread 0's slots. */
static void reduce(count_bufs *cb, int nt, int nl) {
    for (int th = 1; th < nt; th++) {
        cb->counted[0] += cb->counted[th];
        if (cb->bad_p[th] < cb->bad_p[0]) cb->bad_p[0] = cb->bad_p[th];
        if (cb->bad_r[th] < cb->bad_r[0]) cb->bad_r[0] = cb->bad_r[th];
        for (int k = 0; k < nl; k++) {
            label_acc *d = &cb->acc[k], *s = &cb->acc[(size_t)th * (size_t)nl + (size_t)k];
            d->tp += s->tp;
            d->np += s->np;
            d->nr += s->nr;
            for (int ax = 0; ax < 3; ax++) {
                if (s->lo[ax] < d->lo[ax]) d->lo[ax] = s->lo[ax];
                if (s->hi[ax] > d->hi[ax]) d->hi[ax] = s->hi[ax];
            }
        }
    }
}

static dk_status check_inputs(const dk_volume *pred, const char *pn, const dk_volume *ref,
                              const char *rn, const dk_volume *mask) {
    dk_status st;
    if ((st = check_single(pred, pn)) != DK_OK || (st = check_single(ref, rn)) != DK_OK)
        return st;
    if ((st = check_grid(pred, pn, ref, rn)) != DK_OK) return st;
    if (mask && ((st = check_single(mask, "mask")) != DK_OK ||
                 (st = check_grid(mask, "mask", ref, rn)) != DK_OK))
        return st;
    return DK_OK;
}

dk_status dk_eval_case(dk_label_metrics *out, const dk_volume *pred, const char *pred_name,
                       const dk_volume *ref, const char *ref_name, const dk_volume *mask,
                       const int *labels, int n_labels, const dk_metric_opts *o) {
    const char *pn = nm(pred_name, "prediction"), *rn = nm(ref_name, "reference");
    dk_metric_opts def;
    if (!o) dk_metric_defaults(&def), o = &def;
    if (n_labels < 0 || (n_labels > 0 && (!labels || !out)))
        return dk_fail(DK_ERR_ARG, "metrics: %d labels requested without a label list",
                       n_labels);
    if (!(o->nsd_tol_mm >= 0) || !isfinite(o->nsd_tol_mm))
        return dk_fail(DK_ERR_ARG, "metrics: NSD tolerance %g mm must be finite and >= 0",
                       o->nsd_tol_mm);
    dk_status st = check_inputs(pred, pn, ref, rn, mask);
    if (st != DK_OK) return st;
    dk_volume unit_grid; /* voxel units: pred's grid with every spacing 1 (borrows its voxels) */
    if (o->unit == DK_UNIT_VOXELS) {
        unit_grid = *pred;
        for (int a = 0; a < 3; a++) unit_grid.geom.spacing[a] = 1;
        pred = &unit_grid;
    }
    int nt = dk_get_threads();
    dk_label_lut t;
    count_bufs cb = {0};
    dk_surface_bufs sb = {0};
    if ((st = lut_make(&t, labels, n_labels)) != DK_OK) return st;
    if ((st = count_bufs_make(&cb, nt, n_labels, pred->nx)) != DK_OK) goto out;
    count_pass(&cb, pred, ref, mask, &t, n_labels, nt);
    reduce(&cb, nt, n_labels);
    if (cb.bad_p[0] != INT64_MAX) { st = bad_value(pred, pn, cb.bad_p[0]); goto out; }
    if (cb.bad_r[0] != INT64_MAX) { st = bad_value(ref, rn, cb.bad_r[0]); goto out; }
    const double *s = pred->geom.spacing;
    for (int k = 0; k < n_labels; k++) {
        dk_label_metrics *m = &out[k];
        memset(m, 0, sizeof *m);
        m->label = labels[k];
        overlap_metrics(m, &cb.acc[k], cb.counted[0], s[0] * s[1] * s[2]);
        if (m->both_empty) {
            if (o->surface) m->hd = m->hd95 = m->assd = 0, m->nsd = 1;
            continue;
        }
        if (!o->surface) continue;
        dk_crop c = crop_of(&cb.acc[k], pred);
        st = dk_surface_metrics(m, &sb, pred, ref, mask, &t, k, &c, o->nsd_tol_mm);
        if (st != DK_OK) goto out;
    }
out:
    lut_free(&t);
    count_bufs_free(&cb);
    dk_surface_bufs_free(&sb);
    return st;
}

/* ------------------------------------------------------------------ column table */

#define COL(name, field, hb) {name, offsetof(dk_label_metrics, field), hb}
static const dk_metric_column COLUMNS[] = {
    COL("dice", dice, 1),          COL("iou", iou, 1),
    COL("precision", precision, 1), COL("recall", recall, 1),
    COL("specificity", specificity, 1), COL("vol_sim", vol_sim, 1),
    COL("hd", hd, 0),              COL("hd95", hd95, 0),
    COL("assd", assd, 0),          COL("nsd", nsd, 1),
    COL("vol_pred_mm3", vol_pred_mm3, 1), COL("vol_ref_mm3", vol_ref_mm3, 1),
};

const dk_metric_column *dk_metric_columns(int *n) {
    if (n) *n = (int)(sizeof COLUMNS / sizeof COLUMNS[0]);
    return COLUMNS;
}

const char *dk_metric_column_name(const dk_metric_column *c, dk_distance_unit u) {
    if (u != DK_UNIT_VOXELS) return c->name;
    if (c->offset == offsetof(dk_label_metrics, vol_pred_mm3)) return "vol_pred_voxels";
    if (c->offset == offsetof(dk_label_metrics, vol_ref_mm3)) return "vol_ref_voxels";
    return c->name;
}
