/* Preprocessing of one case: channel choice, intensity normalisation, label and mask
 * checks, and the whole chain for a case of a list (dk_case_load). */
#include "dakd/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *nm(const char *name) { return name ? name : "volume"; }

/* ------------------------------------------------------------------ channels */

dk_status dk_channels_select(dk_volume *out, const dk_volume *in, dk_channel_mode mode,
                             int index, const char *name) {
    memset(out, 0, sizeof *out);
    if (in->nt != 1)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: nt = %lld time points; preprocessing takes one",
                       nm(name), (long long)in->nt);
    if (mode == DK_CHANNELS_ONE && (index < 0 || index >= in->nc))
        return dk_fail(DK_ERR_ARG, "%s: channel %d requested, the image has %lld", nm(name),
                       index, (long long)in->nc);
    if (mode == DK_CHANNELS_LUMINANCE && in->nc < 3)
        return dk_fail(DK_ERR_ARG, "%s: luminance needs 3 channels (RGB), the image has %lld",
                       nm(name), (long long)in->nc);
    int64_t nc = mode == DK_CHANNELS_ALL ? in->nc : 1;
    dk_status st = dk_volume_alloc(out, in->nx, in->ny, in->nz, 1, nc, DK_F32);
    if (st != DK_OK) return st;
    out->geom = in->geom;
    out->ndim = in->ndim;
    out->meta = in->meta;
    int64_t plane = in->nx * in->ny * in->nz;
    float *o = out->data;
    if (mode == DK_CHANNELS_LUMINANCE) {
        for (int64_t i = 0; i < plane; i++)
            o[i] = (float)(0.299 * dk_volume_get(in, i) + 0.587 * dk_volume_get(in, plane + i) +
                           0.114 * dk_volume_get(in, 2 * plane + i));
        return DK_OK;
    }
    int64_t first = mode == DK_CHANNELS_ONE ? index * plane : 0;
    for (int64_t i = 0; i < nc * plane; i++) o[i] = (float)dk_volume_get(in, first + i);
    return DK_OK;
}

/* ------------------------------------------------------------------ normalisation */

void dk_norm_defaults(dk_norm_opts *o) {
    dk_prep_opts p;
    dk_prep_defaults(&p);
    memcpy(o, &p.norm, sizeof *o);
}

/* Mean and population std of the gathered values. */
static void mean_std(const float *v, int64_t n, double *mean, double *sd) {
    double s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = sqrt(ss / (double)n);
}

/* Normalise one channel x[0..n) whose voxels inside the mask were gathered into g[0..m). */
static dk_status norm_channel(float *x, int64_t n, float *g, int64_t m, float *work,
                              const dk_norm_opts *o, const char *name, int64_t ch) {
    if (o->kind == DK_INTENSITY_CT_WINDOW) {
        double lo = o->level - 0.5 * o->width;
        for (int64_t i = 0; i < n; i++) {
            double t = (x[i] - lo) / o->width;
            x[i] = (float)(t < 0 ? 0 : t > 1 ? 1 : t);
        }
        return DK_OK;
    }
    double clo = -INFINITY, chi = INFINITY;
    if (o->kind == DK_INTENSITY_PERCENTILE_ZSCORE) {
        clo = dk_percentile(g, m, o->lo_pct, work);
        chi = dk_percentile(g, m, o->hi_pct, work);
        for (int64_t i = 0; i < m; i++) g[i] = (float)fmin(fmax(g[i], clo), chi);
    }
    double mean, sd;
    mean_std(g, m, &mean, &sd);
    if (!isfinite(mean) || !isfinite(sd))
        return dk_fail(DK_ERR_NUMERIC, "%s: channel %lld has NaN/Inf intensities", name,
                       (long long)ch);
    double inv = 1.0 / fmax(sd, 1e-8);
    for (int64_t i = 0; i < n; i++) x[i] = (float)((fmin(fmax(x[i], clo), chi) - mean) * inv);
    return DK_OK;
}

dk_status dk_normalize(dk_volume *img, const uint8_t *mask, const dk_norm_opts *o,
                       const char *name) {
    if (img->dtype != DK_F32 || img->nt != 1)
        return dk_fail(DK_ERR_ARG, "%s: normalisation takes float32 with nt = 1 (have %s)",
                       nm(name), dk_dtype_name(img->dtype));
    if (o->kind == DK_INTENSITY_NONE) return DK_OK;
    if (o->kind == DK_INTENSITY_CT_WINDOW && !(o->width > 0))
        return dk_fail(DK_ERR_ARG, "%s: CT window width %g must be > 0", nm(name), o->width);
    if (o->kind == DK_INTENSITY_PERCENTILE_ZSCORE &&
        !(o->lo_pct >= 0 && o->lo_pct < o->hi_pct && o->hi_pct <= 100))
        return dk_fail(DK_ERR_ARG, "%s: percentiles %g, %g must satisfy 0 <= lo < hi <= 100",
                       nm(name), o->lo_pct, o->hi_pct);
    int64_t n = img->nx * img->ny * img->nz, inside = 0;
    if (mask)
        for (int64_t i = 0; i < n; i++) inside += mask[i] != 0;
    if (inside == 0) mask = NULL; /* an empty mask: statistics over every voxel */
    int64_t m = mask ? inside : n;
    float *g = dk_alloc_aligned((size_t)m, 2 * sizeof(float));
    if (!g) return dk_fail(DK_ERR_NOMEM, "%s: normalisation buffer", nm(name));
    dk_status st = DK_OK;
    for (int64_t c = 0; c < img->nc && st == DK_OK; c++) {
        float *x = (float *)img->data + c * n;
        for (int64_t i = 0, j = 0; i < n; i++)
            if (!mask || mask[i]) g[j++] = x[i];
        st = norm_channel(x, n, g, m, g + m, o, nm(name), c);
        if (st == DK_OK && mask && o->zero_outside_mask && o->kind != DK_INTENSITY_CT_WINDOW)
            for (int64_t i = 0; i < n; i++)
                if (!mask[i]) x[i] = 0;
    }
    dk_free(g);
    return st;
}

/* ------------------------------------------------------------------ labels, masks, grids */

static int label_ok(double v, int classes, int ignore) {
    return (v >= 0 && v < classes && v == floor(v)) || (ignore >= 0 && v == ignore);
}

static double map_value(double v, const dk_label_map *m) {
    for (int k = 0; m && k < m->n; k++)
        if (v == m->from[k]) return m->to[k];
    return v;
}

/* "v (n voxels), ..." for the first 8 distinct values met in `label` (x fastest), shown in
 * ascending order, and whether there are more. */
static void describe_values(char *buf, size_t n, const dk_volume *label) {
    enum { K = 8 };
    double val[K];
    int64_t cnt[K], more = 0, total = dk_volume_numel(label);
    int k = 0;
    for (int64_t i = 0; i < total; i++) {
        double v = dk_volume_get(label, i);
        int j = 0;
        while (j < k && !(val[j] == v || (isnan(val[j]) && isnan(v)))) j++;
        if (j < k) {
            cnt[j]++;
        } else if (k < K) {
            val[k] = v, cnt[k++] = 1;
        } else {
            more++;
        }
    }
    size_t used = 0;
    for (int pass = 0; pass < k && used < n; pass++) {
        int m = -1; /* the next value in ascending order (selection) */
        for (int q = 0; q < k; q++)
            if (cnt[q] >= 0 && (m < 0 || val[q] < val[m])) m = q;
        used += (size_t)snprintf(buf + used, n - used, "%s%g (%lld voxels)", pass ? ", " : "",
                                 val[m], (long long)cnt[m]);
        cnt[m] = -1;
    }
    if (more && used < n) snprintf(buf + used, n - used, " and more values");
}

/* Report the smallest bad value and its voxel count, and the count of all bad voxels, then
 * the values of the file and the fixes. */
static dk_status report_bad_labels(const dk_volume *label, int classes, int ignore,
                                   const dk_label_map *map, const char *name) {
    int64_t n = dk_volume_numel(label), bad_total = 0, count = 0;
    double first = NAN; /* stays NaN when every bad value is NaN */
    for (int64_t i = 0; i < n; i++) {
        double v = dk_volume_get(label, i);
        if (label_ok(map_value(v, map), classes, ignore)) continue;
        bad_total++;
        if (isnan(v)) {
            count += isnan(first);
            continue;
        }
        if (isnan(first) || v < first) first = v, count = 0;
        count += v == first;
    }
    char values[400];
    describe_values(values, sizeof values, label);
    return dk_fail(DK_ERR_FORMAT,
                   "%s: label value %g found in %lld voxels (%lld bad voxels in all; allowed "
                   "0..%d%s); the file holds %s. If these are classes, set [data] classes; "
                   "else map them onto classes with [data] label_map = FROM:TO,... (e.g. "
                   "255:1 for a 0/255 mask)", nm(name), first, (long long)count,
                   (long long)bad_total, classes - 1, ignore >= 0 ? ", 255 = ignore" : "",
                   values);
}

dk_status dk_label_map_parse(dk_label_map *m, const char *text, int classes) {
    memset(m, 0, sizeof *m);
    const char *p = text ? text : "", *why = NULL;
    char what[96];
    p += strspn(p, " \t");
    while (*p && !why) {
        char *end;
        long from = strtol(p, &end, 10), to = 0;
        if (end == p || *(end += strspn(end, " \t")) != ':') {
            why = "not FROM:TO pairs separated by commas (e.g. 255:1)";
            break;
        }
        p = end + 1;
        to = strtol(p, &end, 10);
        if (end == p) why = "not FROM:TO pairs separated by commas (e.g. 255:1)";
        else if (from < 0 || from > 65535)
            snprintf(what, sizeof what, "FROM %ld is outside 0..65535", from), why = what;
        else if (!((to >= 0 && to < classes) || to == 255))
            snprintf(what, sizeof what, "TO %ld is neither a class 0..%d nor 255 (ignore)", to,
                     classes - 1), why = what;
        else if (m->n == DK_LABEL_MAP_MAX)
            snprintf(what, sizeof what, "more than %d pairs", DK_LABEL_MAP_MAX), why = what;
        for (int k = 0; !why && k < m->n; k++)
            if (m->from[k] == from)
                snprintf(what, sizeof what, "%ld mapped twice", from), why = what;
        if (why) break;
        m->from[m->n] = (int)from, m->to[m->n++] = (int)to;
        p = end + strspn(end, " \t");
        if (*p == ',' && !*(p + 1 + strspn(p + 1, " \t")))
            why = "a trailing comma";
        else if (*p == ',')
            p += 1 + strspn(p + 1, " \t");
        else if (*p)
            why = "not FROM:TO pairs separated by commas (e.g. 255:1)";
    }
    if (!why) return DK_OK;
    memset(m, 0, sizeof *m);
    return dk_fail(DK_ERR_ARG, "[data] label_map = '%s': %s", text, why);
}

/* A zeroed DK_U8 volume on the grid of the single-channel `in` (`what` for the message). */
static dk_status alloc_u8_like(dk_volume *out, const dk_volume *in, const char *name,
                               const char *what) {
    if (in->nc != 1 || in->nt != 1)
        return dk_fail(DK_ERR_FORMAT, "%s: a %s has one channel and one time point (have "
                       "nc = %lld, nt = %lld)", nm(name), what, (long long)in->nc,
                       (long long)in->nt);
    dk_status st = dk_volume_alloc(out, in->nx, in->ny, in->nz, 1, 1, DK_U8);
    if (st != DK_OK) return st;
    out->geom = in->geom;
    out->ndim = in->ndim;
    out->meta = in->meta;
    return DK_OK;
}

dk_status dk_label_check_map(dk_volume *out, const dk_volume *label, int classes, int ignore,
                             const dk_label_map *map, const char *name) {
    memset(out, 0, sizeof *out);
    if (classes < 1 || classes > 255)
        return dk_fail(DK_ERR_ARG, "%s: classes = %d outside 1..255", nm(name), classes);
    dk_status st = alloc_u8_like(out, label, name, "label map");
    if (st != DK_OK) return st;
    uint8_t *o = out->data;
    int64_t n = dk_volume_numel(label);
    for (int64_t i = 0; i < n; i++) {
        double v = map_value(dk_volume_get(label, i), map);
        if (label_ok(v, classes, ignore)) {
            o[i] = (uint8_t)v;
            continue;
        }
        dk_volume_free(out);
        return report_bad_labels(label, classes, ignore, map, name);
    }
    return DK_OK;
}

dk_status dk_label_check(dk_volume *out, const dk_volume *label, int classes, int ignore,
                         const char *name) {
    return dk_label_check_map(out, label, classes, ignore, NULL, name);
}

dk_status dk_mask_from_volume(dk_volume *out, const dk_volume *in, const char *name) {
    memset(out, 0, sizeof *out);
    dk_status st = alloc_u8_like(out, in, name, "mask");
    if (st != DK_OK) return st;
    uint8_t *o = out->data;
    for (int64_t i = 0; i < dk_volume_numel(in); i++) o[i] = dk_volume_get(in, i) != 0;
    return DK_OK;
}

/* The geometry fields of a and b that differ beyond dk_geometry_equal's tolerance, as
 * "spacing, origin" (empty when none). */
static void differing_fields(char *out, size_t n, const dk_geometry *a, const dk_geometry *b,
                             double tol) {
    int sp = 0, org = 0, dir = 0;
    for (int i = 0; i < 3; i++) {
        sp |= fabs(a->spacing[i] - b->spacing[i]) > tol * fmax(1.0, fabs(a->spacing[i]));
        org |= fabs(a->origin[i] - b->origin[i]) > tol * fmax(1.0, fabs(a->origin[i]));
        for (int j = 0; j < 3; j++) dir |= fabs(a->direction[i][j] - b->direction[i][j]) > tol;
    }
    snprintf(out, n, "%s%s%s%s%s", sp ? "spacing" : "", sp && (org || dir) ? ", " : "",
             org ? "origin" : "", org && dir ? ", " : "", dir ? "direction" : "");
}

int dk_grid_match(const dk_volume *a, const char *name_a, const dk_volume *b,
                  const char *name_b, double tol) {
    if (a->nx != b->nx || a->ny != b->ny || a->nz != b->nz) {
        dk_fail(DK_ERR_FORMAT, "%s is %lldx%lldx%lld but %s is %lldx%lldx%lld: not the same grid",
                nm(name_a), (long long)a->nx, (long long)a->ny, (long long)a->nz, nm(name_b),
                (long long)b->nx, (long long)b->ny, (long long)b->nz);
        return 0;
    }
    if (!dk_geometry_equal(&a->geom, &b->geom, tol)) {
        const dk_geometry *g = &a->geom, *h = &b->geom;
        char what[64];
        differing_fields(what, sizeof what, g, h, tol);
        dk_fail(DK_ERR_FORMAT, "%s and %s: same size but different %s beyond %g "
                "(spacing %g,%g,%g vs %g,%g,%g; origin %g,%g,%g vs %g,%g,%g)", nm(name_a),
                nm(name_b), what, tol, g->spacing[0], g->spacing[1], g->spacing[2], h->spacing[0],
                h->spacing[1], h->spacing[2], g->origin[0], g->origin[1], g->origin[2],
                h->origin[0], h->origin[1], h->origin[2]);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ one case */

void dk_prep_defaults(dk_prep_opts *o) {
    dk_data_opts d;
    dk_data_defaults(&d);
    memcpy(o, &d.prep, sizeof *o);
}

void dk_case_data_free(dk_case_data *c) {
    if (!c) return;
    dk_volume_free(&c->image);
    dk_volume_free(&c->label);
    dk_volume_free(&c->mask);
    memset(c, 0, sizeof *c);
}

static int wants_resample(const dk_resample_target *t) {
    for (int a = 0; a < 3; a++)
        if (t->spacing[a] > 0 || t->size[a] > 0) return 1;
    return 0;
}

/* Replace *v by its resampling (no-op when no target is set). */
static dk_status resample_in_place(dk_volume *v, const dk_resample_target *t, dk_interp how) {
    if (!v->data || !wants_resample(t)) return DK_OK;
    dk_volume r;
    dk_status st = dk_resample(&r, v, t, how);
    if (st != DK_OK) return st;
    dk_volume_free(v);
    *v = r;
    return DK_OK;
}

/* A checked label map `lab` with ignore voxels (255) and no foreground is refused unless the
 * label map names 255 (then the user has said what it means): a binary mask saved as
 * 0/255 would train a background-only model. `raw` is the file's map, for its values. */
static dk_status check_foreground(const dk_volume *lab, const dk_volume *raw,
                                  const dk_label_map *map, const char *name) {
    for (int k = 0; k < map->n; k++)
        if (map->from[k] == 255 || map->to[k] == 255) return DK_OK;
    const uint8_t *l = lab->data;
    int64_t fg = 0, ign = 0, n = dk_volume_numel(lab);
    for (int64_t i = 0; i < n; i++) fg += l[i] != 0 && l[i] != 255, ign += l[i] == 255;
    if (ign == 0 || fg > 0) return DK_OK;
    char values[400];
    describe_values(values, sizeof values, raw);
    return dk_fail(DK_ERR_FORMAT, "%s: the label map holds %s: no foreground class, and 255 "
                   "means ignore, so nothing would be learnt from it (a background-only "
                   "model). A binary mask saved as 0/255? Map it with [data] label_map = "
                   "255:1; if 255 does mean ignore here, say so with label_map = 255:255",
                   nm(name), values);
}

/* DK_ERR_NUMERIC naming the file when an image voxel is NaN or Inf: refused at load, as no
 * normalisation gives such a voxel a meaning (z-score statistics would be NaN; percentile
 * clipping and "none" would pass it on silently). */
static dk_status check_finite(const dk_volume *img, const char *name) {
    const float *x = img->data;
    int64_t n = img->nx * img->ny * img->nz, bad = 0, first = -1;
    for (int64_t i = 0; i < n * img->nc; i++)
        if (!isfinite(x[i])) {
            if (first < 0) first = i;
            bad++;
        }
    if (!bad) return DK_OK;
    int64_t v = first % n;
    return dk_fail(DK_ERR_NUMERIC, "%s: %lld voxels are NaN or Inf (first: channel %lld, x %lld, "
                   "y %lld, z %lld); images must be finite", nm(name), (long long)bad,
                   (long long)(first / n), (long long)(v % img->nx),
                   (long long)(v / img->nx % img->ny), (long long)(v / (img->nx * img->ny)));
}

/* The target grid of dk_prep_opts.mask_extent: one factor f = extent / (longest side of the
 * mask's bounding box, in voxels) on every axis with more than one voxel. */
static dk_status mask_extent_target(dk_resample_target *t, const dk_volume *mask, double extent,
                                    const char *name) {
    if (!mask->data)
        return dk_fail(DK_ERR_ARG, "%s: no mask, and data.mask_extent = %g scales each image by "
                       "its mask's extent (give the case list a mask column, or set "
                       "mask_extent = 0)", nm(name), extent);
    const uint8_t *m = mask->data;
    int64_t n[3] = {mask->nx, mask->ny, mask->nz}, lo[3] = {n[0], n[1], n[2]}, hi[3] = {-1, -1, -1};
    for (int64_t z = 0; z < n[2]; z++)
        for (int64_t y = 0; y < n[1]; y++)
            for (int64_t x = 0; x < n[0]; x++) {
                if (!m[(z * n[1] + y) * n[0] + x]) continue;
                int64_t v[3] = {x, y, z};
                for (int a = 0; a < 3; a++) {
                    if (v[a] < lo[a]) lo[a] = v[a];
                    if (v[a] > hi[a]) hi[a] = v[a];
                }
            }
    if (hi[0] < 0)
        return dk_fail(DK_ERR_FORMAT, "%s: the mask is empty, so data.mask_extent has no extent "
                       "to scale by", nm(name));
    int64_t side = 0;
    for (int a = 0; a < 3; a++)
        if (n[a] > 1 && hi[a] - lo[a] + 1 > side) side = hi[a] - lo[a] + 1;
    double f = extent / (double)side;
    memset(t, 0, sizeof *t);
    for (int a = 0; a < 3; a++) {
        double want = floor((double)n[a] * f + 0.5);
        t->size[a] = n[a] > 1 ? (int64_t)(want < 1 ? 1 : want) : 0;
    }
    return DK_OK;
}

/* The chain with file names for messages (names_[0..2] = image, label, mask). */
static dk_status prepare(dk_case_data *out, const dk_volume *image, const dk_volume *label,
                         const dk_volume *mask, const dk_prep_opts *o, const char *names[3]) {
    if (label && !dk_grid_match(image, names[0], label, names[1], o->grid_tol))
        return DK_ERR_FORMAT;
    if (mask && !dk_grid_match(image, names[0], mask, names[2], o->grid_tol))
        return DK_ERR_FORMAT;
    dk_status st = dk_channels_select(&out->image, image, o->channels, o->channel_index,
                                      names[0]);
    if (st == DK_OK) st = check_finite(&out->image, names[0]);
    if (st == DK_OK && mask) st = dk_mask_from_volume(&out->mask, mask, names[2]);
    dk_label_map map;
    if (st == DK_OK && label) st = dk_label_map_parse(&map, o->label_map, o->classes);
    if (st == DK_OK && label)
        st = dk_label_check_map(&out->label, label, o->classes, 255, &map, names[1]);
    if (st == DK_OK && label) st = check_foreground(&out->label, label, &map, names[1]);
    if (st != DK_OK) goto out;
    dk_resample_target target = o->target;
    if (o->mask_extent > 0 && (st = mask_extent_target(&target, &out->mask, o->mask_extent,
                                                       names[0])) != DK_OK)
        goto out;
    const uint8_t *norm_mask = o->norm_in_mask ? out->mask.data : NULL;
    st = dk_normalize(&out->image, norm_mask, &o->norm, names[0]);
    if (st == DK_OK) st = resample_in_place(&out->image, &target, DK_INTERP_LINEAR);
    if (st == DK_OK) st = resample_in_place(&out->label, &target, DK_INTERP_NEAREST);
    if (st == DK_OK) st = resample_in_place(&out->mask, &target, DK_INTERP_NEAREST);
out:
    if (st != DK_OK) dk_case_data_free(out);
    return st;
}

dk_status dk_case_prepare(dk_case_data *out, const dk_volume *image, const dk_volume *label,
                          const dk_volume *mask, const dk_prep_opts *o, const char *id) {
    memset(out, 0, sizeof *out);
    dk_prep_opts defaults;
    if (!o) dk_prep_defaults(&defaults), o = &defaults;
    char names[3][160];
    snprintf(names[0], sizeof names[0], "%s image", id ? id : "case");
    snprintf(names[1], sizeof names[1], "%s label", id ? id : "case");
    snprintf(names[2], sizeof names[2], "%s mask", id ? id : "case");
    const char *p[3] = {names[0], names[1], names[2]};
    dk_status st = prepare(out, image, label, mask, o, p);
    if (st == DK_OK) snprintf(out->id, sizeof out->id, "%s", id ? id : "");
    return st;
}

dk_status dk_case_load(dk_case_data *out, const dk_case_list *list, int i,
                       const dk_prep_opts *o) {
    DK_ASSERT(i >= 0 && i < list->n);
    memset(out, 0, sizeof *out);
    dk_prep_opts defaults;
    if (!o) dk_prep_defaults(&defaults), o = &defaults;
    const dk_case *c = &list->cases[i];
    dk_volume img = {0}, lab = {0}, msk = {0};
    dk_status st = dk_case_image_read(&img, (const char *const *)c->images, c->n_images,
                                      o->grid_tol);
    if (st == DK_OK && c->label) st = dk_volume_read(&lab, c->label);
    if (st == DK_OK && c->mask) st = dk_volume_read(&msk, c->mask);
    if (st != DK_OK) goto out;
    dk_case_spacing_apply(&img, c->spacing); /* the list's voxel size, before anything uses it */
    dk_case_spacing_apply(&lab, c->spacing);
    dk_case_spacing_apply(&msk, c->spacing);
    const char *names[3] = {c->image, c->label, c->mask};
    st = prepare(out, &img, c->label ? &lab : NULL, c->mask ? &msk : NULL, o, names);
    if (st == DK_OK) snprintf(out->id, sizeof out->id, "%s", c->id);
out:
    dk_volume_free(&img);
    dk_volume_free(&lab);
    dk_volume_free(&msk);
    return st;
}
