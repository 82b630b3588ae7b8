/*
 * DICOM series: group the files of a folder (dicom_scan.c) by series, order their images
 * along the slice normal (and in time for 4-D series), check the grid (orientation,
 * spacing, counts) and build dk_volume geometry. The rules are stated in dakd/volume.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dicom_internal.h"

/* Two images closer than this along the normal share a position (mm). */
#define SAME_POS_MM 0.01
/* Relative difference between slice steps that counts as uneven spacing. */
#define SPACING_REL_TOL 0.01

/* ---------------------------------------------------------------- series grouping */

void dk_dcm_groups_free(int **groups, int *sizes, int ngroups) {
    for (int i = 0; groups && i < ngroups; i++) free(groups[i]);
    free(groups);
    free(sizes);
}

dk_status dk_dcm_group(const dk_dcm_set *s, int ***groups, int **sizes, int *ngroups) {
    int **g = calloc((size_t)(s->n ? s->n : 1), sizeof *g);
    int *sz = calloc((size_t)(s->n ? s->n : 1), sizeof *sz);
    int *of = malloc(sizeof *of * (size_t)(s->n ? s->n : 1)); /* group of each file */
    int ng = 0;
    if (!g || !sz || !of) goto nomem;
    for (int i = 0; i < s->n; i++) {
        int k = 0;
        while (k < i && strcmp(s->files[k].series_uid, s->files[i].series_uid)) k++;
        of[i] = k < i ? of[k] : ng++;
        sz[of[i]]++;
    }
    for (int k = 0; k < ng; k++) {
        g[k] = malloc(sizeof **g * (size_t)sz[k]);
        if (!g[k]) goto nomem;
        sz[k] = 0;
    }
    for (int i = 0; i < s->n; i++) g[of[i]][sz[of[i]]++] = i;
    free(of);
    *groups = g, *sizes = sz, *ngroups = ng;
    return DK_OK;
nomem:
    free(of);
    dk_dcm_groups_free(g, sz, ng);
    *groups = NULL, *sizes = NULL, *ngroups = 0;
    return dk_fail(DK_ERR_NOMEM, "out of memory grouping %d DICOM files", s->n);
}

/* ---------------------------------------------------------------- ordering and geometry */

/* An image with its sort keys, while ordering. */
typedef struct {
    dk_dcm_slice s;
    long temporal, acquisition, instance;
} keyed;

static int cmp_pos(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->s.pos != y->s.pos) return x->s.pos < y->s.pos ? -1 : 1;
    return 0;
}

/* Order among images at one position: time keys, then file and frame. */
static int cmp_time(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    const long kx[5] = {x->temporal, x->acquisition, x->instance, x->s.file, x->s.frame};
    const long ky[5] = {y->temporal, y->acquisition, y->instance, y->s.file, y->s.frame};
    for (int i = 0; i < 5; i++)
        if (kx[i] != ky[i]) return kx[i] < ky[i] ? -1 : 1;
    return 0;
}

static const dk_dcm_frame *frame_of(const dk_dcm_set *s, const dk_dcm_slice *sl) {
    return &s->files[sl->file].frames[sl->frame];
}

/* All files must share the in-plane grid and pixel format; one sample per pixel. */
static dk_status check_uniform(const dk_dcm_set *s, const int *idx, int n, const char *what) {
    const dk_dcm_file *a = &s->files[idx[0]];
    if (a->samples != 1)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: SamplesPerPixel = %d (colour DICOM is not "
                       "supported)", a->path, a->samples);
    for (int i = 1; i < n; i++) {
        const dk_dcm_file *b = &s->files[idx[i]];
        if (b->rows != a->rows || b->cols != a->cols || b->bits_alloc != a->bits_alloc ||
            b->samples != a->samples)
            return dk_fail(DK_ERR_FORMAT, "%s: Rows x Columns x BitsAllocated = %d x %d x %d "
                           "but %s has %d x %d x %d (not one series grid)", what, b->rows,
                           b->cols, b->bits_alloc, a->path, a->rows, a->cols, a->bits_alloc);
    }
    return DK_OK;
}

/* Collect the images; 1 in *positioned when every one has a position and orientation. */
static dk_status collect(keyed **out, int *nout, int *positioned, const dk_dcm_set *s,
                         const int *idx, int n, const char *what) {
    int total = 0;
    for (int i = 0; i < n; i++) total += s->files[idx[i]].nframes;
    keyed *k = calloc((size_t)total, sizeof *k);
    if (!k) return dk_fail(DK_ERR_NOMEM, "%s: out of memory for %d images", what, total);
    *positioned = 1;
    int m = 0;
    for (int i = 0; i < n; i++) {
        const dk_dcm_file *f = &s->files[idx[i]];
        for (int fr = 0; fr < f->nframes; fr++, m++) {
            k[m].s.file = idx[i], k[m].s.frame = fr;
            k[m].temporal = f->temporal, k[m].acquisition = f->acquisition;
            k[m].instance = f->instance;
            if (!f->frames[fr].has_ipp || !f->frames[fr].has_iop) *positioned = 0;
        }
    }
    *out = k;
    *nout = total;
    return DK_OK;
}

static double dot3(const double *a, const double *b) {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

/* Direction columns (row, column, normal) from ImageOrientationPatient; checks that every
 * image shares it. */
static dk_status orientation(dk_geometry *g, const dk_dcm_set *s, const keyed *k, int n,
                             const char *what) {
    const dk_dcm_frame *a = frame_of(s, &k[0].s);
    for (int i = 1; i < n; i++) {
        const dk_dcm_frame *b = frame_of(s, &k[i].s);
        for (int c = 0; c < 6; c++)
            if (fabs(a->iop[c] - b->iop[c]) > 1e-4)
                return dk_fail(DK_ERR_FORMAT, "%s: mixed orientations: ImageOrientationPatient "
                               "%g\\%g\\%g\\%g\\%g\\%g in %s but %g\\%g\\%g\\%g\\%g\\%g in %s",
                               what, a->iop[0], a->iop[1], a->iop[2], a->iop[3], a->iop[4],
                               a->iop[5], s->files[k[0].s.file].path, b->iop[0], b->iop[1],
                               b->iop[2], b->iop[3], b->iop[4], b->iop[5],
                               s->files[k[i].s.file].path);
    }
    double r[3] = {a->iop[0], a->iop[1], a->iop[2]}, c[3] = {a->iop[3], a->iop[4], a->iop[5]};
    double nr = sqrt(dot3(r, r)), nc = sqrt(dot3(c, c));
    if (nr < 0.5 || nc < 0.5 || fabs(dot3(r, c)) > 1e-3 * nr * nc)
        return dk_fail(DK_ERR_FORMAT, "%s: ImageOrientationPatient %g\\%g\\%g\\%g\\%g\\%g is not "
                       "two orthogonal unit vectors", s->files[k[0].s.file].path, r[0], r[1],
                       r[2], c[0], c[1], c[2]);
    for (int i = 0; i < 3; i++) r[i] /= nr, c[i] /= nc;
    const double nrm[3] = {r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2],
                           r[0] * c[1] - r[1] * c[0]};
    for (int i = 0; i < 3; i++) {
        g->direction[i][0] = r[i];
        g->direction[i][1] = c[i];
        g->direction[i][2] = nrm[i];
    }
    return DK_OK;
}

/* Check the steps between the nz distinct positions `z` (ascending); the mean step. */
static dk_status check_steps(double *step, const double *z, int64_t nz, const char *what) {
    double dmin = HUGE_VAL;
    for (int64_t i = 0; i + 1 < nz; i++) dmin = fmin(dmin, z[i + 1] - z[i]);
    for (int64_t i = 0; i + 1 < nz; i++) {
        double d = z[i + 1] - z[i];
        if (fabs(d - dmin) <= SPACING_REL_TOL * dmin + 1e-4) continue;
        double m = d / dmin;
        if (fabs(m - floor(m + 0.5)) < 0.1)
            return dk_fail(DK_ERR_FORMAT, "%s: missing slice between z=%.4g and z=%.4g mm "
                           "(spacing %.4g)", what, z[i], z[i + 1], dmin);
        return dk_fail(DK_ERR_FORMAT, "%s: uneven slice spacing: %.4g mm between z=%.4g and "
                       "z=%.4g, %.4g elsewhere", what, d, z[i], z[i + 1], dmin);
    }
    *step = nz > 1 ? (z[nz - 1] - z[0]) / (double)(nz - 1) : 0.0;
    return DK_OK;
}

/* Positions must lie on the line origin + t * normal (no shear from gantry tilt). */
static dk_status check_shear(const dk_dcm_set *s, const keyed *k, int n, const dk_geometry *g,
                             const char *what) {
    const double *o = frame_of(s, &k[0].s)->ipp;
    for (int i = 1; i < n; i++) {
        const double *p = frame_of(s, &k[i].s)->ipp;
        double d[3] = {p[0] - o[0], p[1] - o[1], p[2] - o[2]};
        double along = d[0] * g->direction[0][2] + d[1] * g->direction[1][2] +
                       d[2] * g->direction[2][2];
        double off = 0;
        for (int r = 0; r < 3; r++) off += pow(d[r] - along * g->direction[r][2], 2);
        if (sqrt(off) > 0.01 + 1e-3 * fabs(along))
            return dk_fail(DK_ERR_UNSUPPORTED, "%s: ImagePositionPatient of %s is %.3g mm off "
                           "the slice normal through the first image (gantry tilt or a "
                           "sheared grid)", what, s->files[k[i].s.file].path, sqrt(off));
    }
    return DK_OK;
}

/* Group the position-sorted images into nz positions of nt images each. */
static dk_status group_positions(dk_dcm_plan *p, keyed *k, int n, double *z) {
    int64_t nz = 0, count = 0;
    int start = 0;
    for (int i = 1; i <= n; i++) {
        if (i < n && k[i].s.pos - k[start].s.pos <= SAME_POS_MM) continue;
        int64_t c = i - start;
        if (nz == 0) count = c;
        if (c != count)
            return dk_fail(DK_ERR_FORMAT, "%s: %lld images at z=%.4g mm but %lld at z=%.4g mm "
                           "(a 4-D series needs the same count at every position)", p->what,
                           (long long)c, k[start].s.pos, (long long)count, k[0].s.pos);
        qsort(k + start, (size_t)c, sizeof *k, cmp_time);
        z[nz++] = k[start].s.pos;
        start = i;
    }
    p->nz = nz, p->nt = count;
    for (int64_t zi = 0; zi < nz; zi++)
        for (int64_t t = 0; t < count; t++) p->slices[t * nz + zi] = k[zi * count + t].s;
    return DK_OK;
}

/* Images with positions: sort along the normal, group, check, set geometry. */
static dk_status plan_positioned(dk_dcm_plan *p, const dk_dcm_set *s, keyed *k, int n) {
    dk_geometry *g = &p->geom;
    dk_status st = orientation(g, s, k, n, p->what);
    if (st != DK_OK) return st;
    double nrm[3] = {g->direction[0][2], g->direction[1][2], g->direction[2][2]};
    for (int i = 0; i < n; i++) k[i].s.pos = dot3(frame_of(s, &k[i].s)->ipp, nrm);
    qsort(k, (size_t)n, sizeof *k, cmp_pos);
    if ((st = check_shear(s, k, n, g, p->what)) != DK_OK) return st;
    double *z = malloc(sizeof *z * (size_t)n);
    if (!z) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", p->what);
    st = group_positions(p, k, n, z);
    double step = 0;
    if (st == DK_OK) st = check_steps(&step, z, p->nz, p->what);
    free(z);
    if (st != DK_OK) return st;
    const dk_dcm_file *f0 = &s->files[p->slices[0].file];
    g->spacing[2] = p->nz > 1 ? step : f0->between > 0 ? f0->between
                                     : f0->thickness > 0 ? f0->thickness : 1.0;
    memcpy(g->origin, frame_of(s, &p->slices[0])->ipp, sizeof g->origin);
    return DK_OK;
}

/* Images without position or orientation (secondary capture, some multi-frames): file and
 * frame order, identity direction unless one is given, origin from the first position. */
static void plan_unpositioned(dk_dcm_plan *p, const dk_dcm_set *s, keyed *k, int n) {
    qsort(k, (size_t)n, sizeof *k, cmp_time);
    p->nz = n, p->nt = 1;
    for (int i = 0; i < n; i++) p->slices[i] = k[i].s;
    const dk_dcm_file *f0 = &s->files[k[0].s.file];
    const dk_dcm_frame *fr = frame_of(s, &k[0].s);
    if (fr->has_iop && orientation(&p->geom, s, k, 1, p->what) != DK_OK)
        dk_geometry_identity(&p->geom);
    if (fr->has_ipp) memcpy(p->geom.origin, fr->ipp, sizeof p->geom.origin);
    p->geom.spacing[2] = f0->between > 0 ? f0->between : f0->thickness > 0 ? f0->thickness : 1;
    dk_clear_error();
}

void dk_dcm_plan_free(dk_dcm_plan *p) {
    if (!p) return;
    free(p->slices);
    free(p->files);
    memset(p, 0, sizeof *p);
}

dk_status dk_dcm_plan_make(dk_dcm_plan *p, const dk_dcm_set *s, const int *idx, int n,
                           const char *what) {
    memset(p, 0, sizeof *p);
    p->what = what;
    dk_status st = check_uniform(s, idx, n, what);
    keyed *k = NULL;
    int nk = 0, positioned = 0;
    if (st == DK_OK) st = collect(&k, &nk, &positioned, s, idx, n, what);
    if (st != DK_OK) return st;
    p->slices = malloc(sizeof *p->slices * (size_t)nk);
    p->files = malloc(sizeof *p->files * (size_t)n);
    if (!p->slices || !p->files) {
        st = dk_fail(DK_ERR_NOMEM, "%s: out of memory for %d images", what, nk);
        goto out;
    }
    memcpy(p->files, idx, sizeof *idx * (size_t)n);
    p->nfiles = n;
    dk_geometry_identity(&p->geom);
    if (positioned) st = plan_positioned(p, s, k, nk);
    else plan_unpositioned(p, s, k, nk);
    const dk_dcm_file *f0 = &s->files[idx[0]];
    p->nx = f0->cols, p->ny = f0->rows;
    p->geom.spacing[0] = f0->spacing[1] > 0 ? f0->spacing[1] : 1.0;
    p->geom.spacing[1] = f0->spacing[0] > 0 ? f0->spacing[0] : 1.0;
out:
    free(k);
    if (st != DK_OK) dk_dcm_plan_free(p);
    return st;
}
