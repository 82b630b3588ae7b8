/*
 * DICOM series to dk_volume: list the series of a folder, choose one, read its pixels in
 * grid order through the ITK bridge (rescale per image, in floating point) and choose the
 * data type by the rule in dakd/volume.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dicom_internal.h"

/* ---------------------------------------------------------------- listing and choice */

static void describe_series(dk_dicom_series *d, const dk_dcm_set *s, const int *idx, int n,
                            const char *dir) {
    const dk_dcm_file *f = &s->files[idx[0]];
    memset(d, 0, sizeof *d);
    snprintf(d->uid, sizeof d->uid, "%s", f->series_uid);
    snprintf(d->modality, sizeof d->modality, "%s", f->modality);
    snprintf(d->description, sizeof d->description, "%s", f->description);
    snprintf(d->first_file, sizeof d->first_file, "%s", f->path);
    d->nfiles = n;
    dk_dcm_plan p;
    if (dk_dcm_plan_make(&p, s, idx, n, dir) == DK_OK) {
        d->nx = p.nx, d->ny = p.ny, d->nz = p.nz, d->nt = p.nt;
        dk_dcm_plan_free(&p);
    } else {
        d->nx = f->cols, d->ny = f->rows, d->nt = 0;
        for (int i = 0; i < n; i++) d->nz += s->files[idx[i]].nframes;
    }
}

static dk_status list_of_set(dk_dicom_series **out, int *nout, const dk_dcm_set *s,
                             const char *dir) {
    int **groups, *sizes, ng;
    *out = NULL;
    *nout = 0;
    dk_status st = dk_dcm_group(s, &groups, &sizes, &ng);
    if (st != DK_OK) return st;
    dk_dicom_series *d = calloc((size_t)(ng ? ng : 1), sizeof *d);
    if (!d) {
        dk_dcm_groups_free(groups, sizes, ng);
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory listing %d series", dir, ng);
    }
    for (int g = 0; g < ng; g++) describe_series(&d[g], s, groups[g], sizes[g], dir);
    dk_dcm_groups_free(groups, sizes, ng);
    dk_clear_error(); /* an irregular series is listed, not an error */
    *out = d;
    *nout = ng;
    return DK_OK;
}

dk_status dk_dicom_list_series(dk_dicom_series **out, int *n, dk_dicom_skipped **skipped,
                               int *nskipped, const char *dir) {
    dk_dcm_set s;
    *out = NULL;
    *n = 0;
    if (skipped) *skipped = NULL, *nskipped = 0;
    dk_status st = dk_itk_require(dir);
    if (st == DK_OK) st = dk_dcm_set_from_dir(&s, dir);
    if (st != DK_OK) return st;
    st = list_of_set(out, n, &s, dir);
    if (st == DK_OK && skipped) { /* handed over to the caller */
        *skipped = s.skipped, *nskipped = s.nskipped;
        s.skipped = NULL;
    }
    dk_dcm_set_free(&s);
    return st;
}

/* "DIR holds N series; choose ...: [0] UID (CT "desc", 512x512x20) [1] ..." */
static dk_status ambiguous(const dk_dcm_set *s, int **groups, int *sizes, int ng,
                           const char *dir, const char *why) {
    char list[900] = "";
    size_t len = 0;
    for (int g = 0; g < ng && len + 1 < sizeof list; g++) {
        const dk_dcm_file *f = &s->files[groups[g][0]];
        int k = snprintf(list + len, sizeof list - len, " [%d] %s (%s \"%s\", %d files)", g,
                         f->series_uid[0] ? f->series_uid : "(no UID)", f->modality,
                         f->description, sizes[g]);
        if (k < 0) break;
        len += (size_t)k;
    }
    return dk_fail(DK_ERR_ARG, "%s: %s; it holds %d series, choose one by SeriesInstanceUID "
                   "or index (series_uid, series_index):%s", dir, why, ng, list);
}

static int pick_group(const dk_dcm_set *s, int **groups, int ng, const dk_read_opts *opts) {
    if (opts && opts->series_uid) {
        for (int g = 0; g < ng; g++)
            if (!strcmp(s->files[groups[g][0]].series_uid, opts->series_uid)) return g;
        return -1;
    }
    if (opts && opts->series_index >= 0) return opts->series_index < ng ? opts->series_index : -1;
    return ng == 1 ? 0 : -1;
}

dk_status dk_dcm_plan_series(dk_dcm_plan *p, const dk_dcm_set *s, const dk_read_opts *opts,
                             const char *dir) {
    memset(p, 0, sizeof *p);
    if (s->n == 0)
        return dk_fail(DK_ERR_IO, "%s: no DICOM images in this folder (files directly in it; "
                       "sub-folders are not searched)", dir);
    int **groups, *sizes, ng;
    dk_status st = dk_dcm_group(s, &groups, &sizes, &ng);
    if (st != DK_OK) return st;
    int g = pick_group(s, groups, ng, opts);
    int chose = opts && (opts->series_uid || opts->series_index >= 0);
    if (g < 0 && !chose) st = ambiguous(s, groups, sizes, ng, dir, "several series");
    else if (g < 0) st = ambiguous(s, groups, sizes, ng, dir, "no such series");
    else st = dk_dcm_plan_make(p, s, groups[g], sizes[g], dir);
    dk_dcm_groups_free(groups, sizes, ng);
    return st;
}

/* ---------------------------------------------------------------- pixels */

/* The pixels of a plan as a dk_dcm_job: item fi decodes file p->files[fi] in the child,
 * straight into `buf` (MAP_SHARED, so the parent sees it). */
typedef struct {
    void *buf; /* float or double, nx*ny per image, in plan order */
    int dbl;
    const dk_dcm_plan *p;
    const dk_dcm_set *s;
} pixel_job;

static dk_status pixels_work(void *arg, int fi, int *flag) {
    const pixel_job *j = arg;
    const dk_dcm_file *f = &j->s->files[j->p->files[fi]];
    (void)flag;
    int64_t *slot = malloc(sizeof *slot * (size_t)f->nframes);
    if (!slot) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", f->path);
    for (int k = 0; k < f->nframes; k++) slot[k] = -1;
    for (int64_t i = 0; i < j->p->nz * j->p->nt; i++)
        if (j->p->slices[i].file == j->p->files[fi]) slot[j->p->slices[i].frame] = i;
    dk_status st = f->mosaic_rows ? dk_dcm_mosaic_read_pixels(j->buf, j->dbl, f, slot)
                                  : dk_itk_dcm_read_pixels(j->buf, j->dbl, f, slot);
    free(slot);
    return st;
}

static const char *pixels_path(void *arg, int fi) {
    const pixel_job *j = arg;
    return j->s->files[j->p->files[fi]].path;
}

/* Read every image into `buf` (shared memory) in plan order, in a child process; a series
 * with an unreadable image is not read. */
static dk_status read_pixels(void *buf, int dbl, const dk_dcm_plan *p, const dk_dcm_set *s) {
    pixel_job j = {buf, dbl, p, s};
    dk_dcm_job job = {p->nfiles, &j, pixels_work, NULL, NULL, NULL, pixels_path,
                      "decoding the pixel data"};
    return dk_dcm_run_isolated(&job);
}

/* The integer type the stored pixels had. */
static dk_dtype stored_type(const dk_dcm_file *f) {
    int sgn = f->pixel_rep == 1;
    if (f->bits_alloc <= 8) return sgn ? DK_I8 : DK_U8;
    if (f->bits_alloc <= 16) return sgn ? DK_I16 : DK_U16;
    return sgn ? DK_I32 : DK_U32;
}

static int fits(dk_dtype t, double lo, double hi) {
    static const struct {
        dk_dtype t;
        double lo, hi;
    } r[] = {{DK_U8, 0, 255},         {DK_I8, -128, 127},
             {DK_U16, 0, 65535},      {DK_I16, -32768, 32767},
             {DK_U32, 0, 4294967295.0}, {DK_I32, -2147483648.0, 2147483647.0}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].t == t) return lo >= r[i].lo && hi <= r[i].hi;
    return 0;
}

/* The output type by the rule of dakd/volume.h; buf holds the rescaled values. */
static dk_dtype choose_dtype(const dk_dcm_plan *p, const dk_dcm_set *s, const void *buf,
                             int dbl) {
    int integral = 1;
    for (int64_t i = 0; i < p->nz * p->nt; i++) {
        const dk_dcm_frame *fr = &s->files[p->slices[i].file].frames[p->slices[i].frame];
        integral &= fr->slope == 1.0 && fr->intercept == floor(fr->intercept);
    }
    if (!integral) return dbl ? DK_F64 : DK_F32;
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    int64_t n = p->nx * p->ny * p->nz * p->nt;
    for (int64_t i = 0; i < n; i++) {
        double x = dbl ? ((const double *)buf)[i] : ((const float *)buf)[i];
        lo = fmin(lo, x), hi = fmax(hi, x);
    }
    dk_dtype t = stored_type(&s->files[p->slices[0].file]);
    if (fits(t, lo, hi)) return t;
    if (fits(DK_I16, lo, hi)) return DK_I16;
    if (fits(DK_I32, lo, hi)) return DK_I32;
    return dbl ? DK_F64 : DK_F32;
}

static dk_status load(dk_volume *v, const dk_dcm_plan *p, const dk_dcm_set *s) {
    const dk_dcm_file *f0 = &s->files[p->slices[0].file];
    int dbl = f0->bits_alloc > 16;
    int64_t n = p->nx * p->ny * p->nz * p->nt, dims[5] = {p->nx, p->ny, p->nz, p->nt, 1};
    /* the decode buffer is the largest allocation: float or double per voxel */
    dk_status cs = dk_volume_check_size(p->what, "Columns x Rows x slices x frames", dims,
                                        dbl ? DK_F64 : DK_F32);
    if (cs != DK_OK) return cs;
    size_t bytes = (size_t)n * (dbl ? sizeof(double) : sizeof(float));
    void *buf = dk_dcm_shared_alloc(bytes); /* the child decodes into it */
    if (!buf)
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory for %lld voxels", p->what, (long long)n);
    dk_status st = read_pixels(buf, dbl, p, s);
    dk_dtype t = st == DK_OK ? choose_dtype(p, s, buf, dbl) : DK_F32;
    if (st == DK_OK) st = dk_volume_alloc(v, p->nx, p->ny, p->nz, p->nt, 1, t);
    if (st == DK_OK && t == (dbl ? DK_F64 : DK_F32)) {
        memcpy(v->data, buf, (size_t)n * dk_dtype_size(t));
    } else if (st == DK_OK && t == DK_I16 && !dbl) { /* the common case (CT, MR), values fit */
        for (int64_t i = 0; i < n; i++) ((int16_t *)v->data)[i] = (int16_t)((float *)buf)[i];
    } else if (st == DK_OK) {
        for (int64_t i = 0; i < n; i++)
            dk_volume_set(v, i, dbl ? ((double *)buf)[i] : ((float *)buf)[i]);
    }
    dk_dcm_shared_free(buf, bytes);
    if (st != DK_OK) return st;
    v->geom = p->geom;
    v->ndim = 3;
    snprintf(v->meta.descrip, sizeof v->meta.descrip, "DICOM %.8s%s%.60s", f0->modality,
             f0->description[0] ? " " : "", f0->description);
    return DK_OK;
}

dk_status dk_dicom_read(dk_volume *v, const char *path, const dk_read_opts *opts) {
    memset(v, 0, sizeof *v);
    struct stat sb;
    if (dk_itk_require(path) != DK_OK) return DK_ERR_UNSUPPORTED;
    if (stat(path, &sb) != 0) return dk_fail(DK_ERR_IO, "%s: cannot open", path);
    int is_dir = S_ISDIR(sb.st_mode);
    dk_dcm_set s;
    dk_status st = is_dir ? dk_dcm_set_from_dir(&s, path) : dk_dcm_set_from_file(&s, path);
    if (st != DK_OK) return st;
    if (!is_dir && s.files[0].is_seg) {
        dk_dcm_set_free(&s);
        return dk_dicom_seg_read(v, path, NULL);
    }
    dk_dcm_plan p;
    int one = 0;
    st = is_dir ? dk_dcm_plan_series(&p, &s, opts, path)
                : dk_dcm_plan_make(&p, &s, &one, 1, path);
    if (st == DK_OK) st = load(v, &p, &s);
    dk_dcm_plan_free(&p);
    dk_dcm_set_free(&s);
    if (st != DK_OK) dk_volume_free(v);
    return st;
}
