/*
 * The option schema (dakd/data.h): one table of every preprocessing, patch and augmentation
 * option, the defaults read from it, and the model metadata ("dakd.data.*") written and
 * read through it.
 */
#include "dakd/data.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Enum members are read and written through int lvalues. */
_Static_assert(sizeof(dk_channel_mode) == sizeof(int), "enum members must be int-sized");
_Static_assert(sizeof(dk_intensity_kind) == sizeof(int), "enum members must be int-sized");
_Static_assert(sizeof(dk_in_plane_mode) == sizeof(int), "enum members must be int-sized");

/* The names of dk_channel_mode and dk_intensity_kind, in enum order: the only spelling. */
static const char *const channel_modes[] = {"all", "one", "luminance", NULL};
static const char *const intensities[] = {"none", "zscore", "percentile_zscore", "ct_window", NULL};
static const char *const in_plane_modes[] = {"auto", "true", "false", NULL};

#define OFF(m) offsetof(dk_data_opts, m)
#define INF    HUGE_VAL
#define ROW(s, g, t, k, m, lo, hi, d, names, h, meta, fl)                                          \
    { {s, k, t, OFF(m), 0, lo, hi, d, names, h}, g, meta, fl }
/* [data] rows of group g with their metadata key (NULL: not recorded) */
#define D_INT(g, k, m, lo, hi, d, h, meta)                                                         \
    ROW("data", g, DK_CFG_INT, k, m, lo, hi, d, NULL, h, meta, 0)
#define D_I64(g, k, m, lo, hi, d, h, meta)                                                         \
    ROW("data", g, DK_CFG_INT64, k, m, lo, hi, d, NULL, h, meta, 0)
#define D_DBL(g, k, m, lo, hi, d, h, meta)                                                         \
    ROW("data", g, DK_CFG_DOUBLE, k, m, lo, hi, d, NULL, h, meta, 0)
#define D_BOOL(g, k, m, d, h, meta) ROW("data", g, DK_CFG_BOOL, k, m, 0, 1, d, NULL, h, meta, 0)
#define D_ENUM(g, k, m, names, d, h, meta)                                                         \
    ROW("data", g, DK_CFG_ENUM, k, m, 0, 0, d, names, h, meta, 0)
/* metadata only: no config key */
#define META_ONLY(t, m, lo, hi, d, meta)                                                           \
    ROW(NULL, DK_PREP_META_ONLY, t, NULL, m, lo, hi, d, NULL, NULL, meta, 0)
/* [augment] rows: not recorded in models */
#define AUG(k, m, lo, hi, d, h)                                                                    \
    ROW("augment", DK_PREP_AUGMENT, DK_CFG_DOUBLE, k, m, lo, hi, d, NULL, h, NULL, 0)

/* the groups, short */
#define INTEN DK_PREP_INTENSITY
#define GRID  DK_PREP_GRID
#define PATCH DK_PREP_PATCH

/* Adding an option: its member in dk_prep_opts or dk_augment_opts and one row here (see
 * dakd/data.h, "the option schema"). Config order within each group is table order;
 * metadata order is table order, required keys first. */
static const dk_prep_field table[] = {
    D_ENUM(INTEN, "channels", prep.channels, channel_modes, "all", "channel choice", "channels"),
    D_INT(INTEN, "channel_index", prep.channel_index, 0, 255, "0", "channel for channels = one",
          "channel_index"),
    D_ENUM(INTEN, "norm", prep.norm.kind, intensities, "zscore", "intensity normalisation", "norm"),
    D_DBL(INTEN, "norm_lo_pct", prep.norm.lo_pct, 0, 100, "0.5", "percentile_zscore lower clip",
          "norm_lo_pct"),
    D_DBL(INTEN, "norm_hi_pct", prep.norm.hi_pct, 0, 100, "99.5", "percentile_zscore upper clip",
          "norm_hi_pct"),
    D_DBL(INTEN, "ct_level", prep.norm.level, -INF, INF, "40", "ct_window level (image units)",
          "ct_level"),
    D_DBL(INTEN, "ct_width", prep.norm.width, 1e-6, INF, "400", "ct_window width (image units)",
          "ct_width"),
    D_BOOL(INTEN, "zero_outside_mask", prep.norm.zero_outside_mask, "true", "0 outside the mask",
           "zero_outside_mask"),
    D_BOOL(INTEN, "norm_in_mask", prep.norm_in_mask, "true", "statistics inside the mask",
           "norm_in_mask"),
    D_DBL(GRID, "spacing_x", prep.target.spacing[0], 0, 1e3, "0",
          "resample to this spacing, mm; 0 = keep", "spacing"),
    D_DBL(GRID, "spacing_y", prep.target.spacing[1], 0, 1e3, "0",
          "resample to this spacing, mm; 0 = keep", "spacing"),
    D_DBL(GRID, "spacing_z", prep.target.spacing[2], 0, 1e3, "0",
          "resample to this spacing, mm; 0 = keep", "spacing"),
    META_ONLY(DK_CFG_INT64, prep.target.size[0], 0, INT32_MAX, "0", "size"),
    META_ONLY(DK_CFG_INT64, prep.target.size[1], 0, INT32_MAX, "0", "size"),
    META_ONLY(DK_CFG_INT64, prep.target.size[2], 0, INT32_MAX, "0", "size"),
    ROW("data", GRID, DK_CFG_DOUBLE, "mask_extent", prep.mask_extent, 0, 1e5, "0", NULL,
        "resample so the mask's bounding box spans N voxels; 0 = off", "mask_extent",
        DK_PREP_META_OPTIONAL),
    D_I64(PATCH, "patch_d", patch[0], 1, 4096, "1", "patch depth (1 for 2-D)", "patch"),
    D_I64(PATCH, "patch_h", patch[1], 1, 4096, "256", "patch height", "patch"),
    D_I64(PATCH, "patch_w", patch[2], 1, 4096, "256", "patch width", "patch"),
    /* 32 = DK_LOSS_MAX_CLASSES of dakd/train.h (tests/train/test_train_config.c checks) */
    D_INT(DK_PREP_CLASSES, "classes", prep.classes, 2, 32, "2", "classes incl. background",
          "classes"),
    /* not recorded in models: prediction reads no labels */
    {{"data", "label_map", DK_CFG_STRING, OFF(prep.label_map), DK_LABEL_MAP_TEXT, 0, 0, "", NULL,
      "label values mapped before the check, FROM:TO,... (255:1 for 0/255 masks); empty = none"},
     DK_PREP_LABELS, NULL, 0},
    AUG("p_flip_d", aug.p_flip[0], 0, 1, "0.5", "flip along d (3-D only)"),
    AUG("p_flip_h", aug.p_flip[1], 0, 1, "0.5", "flip along h"),
    AUG("p_flip_w", aug.p_flip[2], 0, 1, "0.5", "flip along w"),
    AUG("p_rot90", aug.p_rot90, 0, 1, "0.5", "quarter turns in (h, w)"),
    AUG("p_scale", aug.p_scale, 0, 1, "0.15", "intensity scale"),
    AUG("scale_lo", aug.scale_lo, 0, 10, "0.75", "intensity scale range"),
    AUG("scale_hi", aug.scale_hi, 0, 10, "1.25", "intensity scale range"),
    AUG("p_shift", aug.p_shift, 0, 1, "0.15", "intensity shift"),
    AUG("shift_lo", aug.shift_lo, -10, 10, "-0.1", "intensity shift range"),
    AUG("shift_hi", aug.shift_hi, -10, 10, "0.1", "intensity shift range"),
    AUG("p_gamma", aug.p_gamma, 0, 1, "0.3", "gamma"),
    AUG("gamma_lo", aug.gamma_lo, 0.01, 10, "0.7", "gamma range"),
    AUG("gamma_hi", aug.gamma_hi, 0.01, 10, "1.5", "gamma range"),
    ROW("augment", DK_PREP_AUGMENT, DK_CFG_BOOL, "gamma_retain_stats", aug.gamma_retain_stats, 0, 1,
        "true", NULL, "restore mean and std after gamma", NULL, 0),
    AUG("p_noise", aug.p_noise, 0, 1, "0.1", "Gaussian noise"),
    AUG("noise_var_hi", aug.noise_var_hi, 0, 10, "0.1", "noise variance ~ U(0, hi)"),
    /* the spatial map and blur (dakd/data.h): off by default, drawing nothing then */
    AUG("p_rot", aug.p_rot, 0, 1, "0", "rotation (one map with zoom and deformation)"),
    AUG("rot_deg", aug.rot_deg, 0, 180, "30", "3-D map: angle ~ U(-a, a) about each axis"),
    AUG("rot_deg_2d", aug.rot_deg_2d, 0, 180, "180", "2-D / in-plane map: angle ~ U(-a, a)"),
    AUG("p_zoom", aug.p_zoom, 0, 1, "0", "spatial scaling (s > 1 zooms out)"),
    AUG("zoom_lo", aug.zoom_lo, 0.05, 20, "0.7", "spatial scaling range"),
    AUG("zoom_hi", aug.zoom_hi, 0.05, 20, "1.4", "spatial scaling range"),
    AUG("p_elastic", aug.p_elastic, 0, 1, "0", "smooth deformation alpha * G_sigma * U(-1, 1)"),
    AUG("elastic_alpha_lo", aug.elastic_alpha_lo, 0, 1e5, "0", "deformation alpha range"),
    AUG("elastic_alpha_hi", aug.elastic_alpha_hi, 0, 1e5, "200", "deformation alpha range"),
    AUG("elastic_sigma_lo", aug.elastic_sigma_lo, 0, DK_BLUR_SIGMA_MAX, "9",
        "deformation smoothness, voxels"),
    AUG("elastic_sigma_hi", aug.elastic_sigma_hi, 0, DK_BLUR_SIGMA_MAX, "13",
        "deformation smoothness, voxels"),
    ROW("augment", DK_PREP_AUGMENT, DK_CFG_ENUM, "in_plane_only", aug.in_plane_only, 0, 0, "auto",
        in_plane_modes, "3-D patches: map and blur in (h, w) only; auto: max(h, w) > 3 d", NULL,
        0),
    AUG("p_blur", aug.p_blur, 0, 1, "0", "Gaussian blur, a sigma per channel"),
    AUG("blur_sigma_lo", aug.blur_sigma_lo, 0, DK_BLUR_SIGMA_MAX, "0.5", "blur sigma, voxels"),
    AUG("blur_sigma_hi", aug.blur_sigma_hi, 0, DK_BLUR_SIGMA_MAX, "1", "blur sigma, voxels"),
};

enum { NROWS = sizeof table / sizeof table[0] };

const dk_prep_field *dk_prep_schema(size_t *n) {
    if (n) *n = NROWS;
    return table;
}

static const char *enum_name(const char *const *names, int v) {
    for (int k = 0; names[k]; k++)
        if (k == v) return names[k];
    return "?";
}

const char *dk_channel_mode_name(dk_channel_mode m) { return enum_name(channel_modes, (int)m); }

const char *dk_intensity_name(dk_intensity_kind k) { return enum_name(intensities, (int)k); }

void dk_data_defaults(dk_data_opts *o) {
    memset(o, 0, sizeof *o);
    o->prep.grid_tol = 1e-3; /* not an option: the grid tolerance of dk_grid_match */
    for (size_t i = 0; i < NROWS; i++)
        dk_cfg_defaults(o, &table[i].cfg, 1);
}

/* ================================================================ model metadata */

/* Rows [i, end) share one metadata key (a triple is three rows). */
static size_t run_end(size_t i) {
    size_t j = i + 1;
    while (j < NROWS && table[j].meta && strcmp(table[j].meta, table[i].meta) == 0)
        j++;
    return j;
}

static void *member(dk_data_opts *o, const dk_cfg_field *f) { return (char *)o + f->offset; }

/* One value as the metadata holds it: %.17g doubles, %d ints and booleans, enum names. */
static void format_one(char *buf, size_t n, const dk_data_opts *o, const dk_cfg_field *f) {
    const void *p = (const char *)o + f->offset;
    switch (f->type) {
    case DK_CFG_INT:
    case DK_CFG_BOOL: snprintf(buf, n, "%d", *(const int *)p); break;
    case DK_CFG_INT64: snprintf(buf, n, "%" PRId64, *(const int64_t *)p); break;
    case DK_CFG_DOUBLE: snprintf(buf, n, "%.17g", *(const double *)p); break;
    case DK_CFG_ENUM: snprintf(buf, n, "%s", enum_name(f->enum_names, *(const int *)p)); break;
    default: DK_ASSERT(!"schema rows with metadata are numbers, booleans or enums");
    }
}

static void write_run(dk_prep_meta *m, const dk_data_opts *o, size_t i, size_t end) {
    DK_ASSERT(m->n < DK_PREP_META_MAX);
    char *key = m->key[m->n], *val = m->value[m->n];
    snprintf(key, sizeof m->key[0], "dakd.data.%s", table[i].meta);
    size_t used = 0;
    for (size_t k = i; k < end; k++) {
        if (k > i) val[used++] = ',';
        format_one(val + used, sizeof m->value[0] - used, o, &table[k].cfg);
        used += strlen(val + used);
        DK_ASSERT(used + 1 < sizeof m->value[0]);
    }
    m->kv[2 * m->n] = key;
    m->kv[2 * m->n + 1] = val;
    m->n++;
}

void dk_prep_meta_write(dk_prep_meta *m, const dk_data_opts *o) {
    memset(m, 0, sizeof *m);
    for (int optional = 0; optional < 2; optional++)
        for (size_t i = 0; i < NROWS; i = table[i].meta ? run_end(i) : i + 1)
            if (table[i].meta && !(table[i].flags & DK_PREP_META_OPTIONAL) == !optional)
                write_run(m, o, i, run_end(i));
    m->kv[2 * m->n] = NULL;
}

/* Parse one element `s` of a metadata value into row f's member; 0 if it is not a value of
 * the row's type within its bounds. */
static int parse_one(dk_data_opts *o, const dk_cfg_field *f, const char *s) {
    char *end = NULL;
    errno = 0;
    if (f->type == DK_CFG_ENUM) {
        for (int k = 0; f->enum_names[k]; k++)
            if (strcmp(s, f->enum_names[k]) == 0) return *(int *)member(o, f) = k, 1;
        return 0;
    }
    if (f->type == DK_CFG_DOUBLE) {
        double x = strtod(s, &end);
        if (end == s || *end || !isfinite(x) || x < f->min || x > f->max) return 0;
        return *(double *)member(o, f) = x, 1;
    }
    long long x = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE || (double)x < f->min || (double)x > f->max) return 0;
    if (f->type == DK_CFG_INT64)
        *(int64_t *)member(o, f) = (int64_t)x;
    else
        *(int *)member(o, f) = (int)x; /* INT or BOOL (bounds 0, 1) */
    return 1;
}

/* What the value of rows [i, end) must look like, for the message. */
static void describe(char *buf, size_t n, size_t i, size_t end) {
    const dk_cfg_field *f = &table[i].cfg;
    const char *what = f->type == DK_CFG_DOUBLE ? "a number"
                       : f->type == DK_CFG_BOOL ? "0 or 1"
                                                : "an integer";
    if (f->type == DK_CFG_ENUM) {
        size_t used = (size_t)snprintf(buf, n, "one of ");
        for (int k = 0; f->enum_names[k] && used < n; k++)
            used += (size_t)snprintf(buf + used, n - used, "%s%s", k ? "|" : "", f->enum_names[k]);
        return;
    }
    if (f->type == DK_CFG_BOOL)
        snprintf(buf, n, "%s", what);
    else if (end - i > 1)
        snprintf(buf, n, "%zu numbers in [%g, %g] separated by commas", end - i, f->min, f->max);
    else
        snprintf(buf, n, "%s in [%g, %g]", what, f->min, f->max);
}

static dk_status read_run(dk_data_opts *o, const cJSON *meta, const char *path, size_t i,
                          size_t end) {
    char key[64];
    snprintf(key, sizeof key, "dakd.data.%s", table[i].meta);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(meta, key);
    if (!it && (table[i].flags & DK_PREP_META_OPTIONAL)) return DK_OK; /* stays the default */
    if (!cJSON_IsString(it))
        return dk_fail(DK_ERR_FORMAT,
                       "%s: __metadata__ lacks %s: the model carries no "
                       "preprocessing (export it with dakd train / distill, which write "
                       "dakd.data.*)",
                       path, key);
    const char *v = it->valuestring, *p = v;
    int ok = 1;
    for (size_t k = i; k < end && ok; k++) {
        const char *stop = k + 1 < end ? strchr(p, ',') : p + strlen(p);
        char one[64];
        ok = stop && (size_t)(stop - p) < sizeof one;
        if (!ok) break;
        memcpy(one, p, (size_t)(stop - p));
        one[stop - p] = '\0';
        ok = parse_one(o, &table[k].cfg, one);
        p = stop + 1;
    }
    if (ok) return DK_OK;
    char want[160];
    describe(want, sizeof want, i, end);
    return dk_fail(DK_ERR_FORMAT, "%s: %s = '%s' is not %s", path, key, v, want);
}

dk_status dk_prep_meta_read(dk_data_opts *o, const struct cJSON *meta, const char *path) {
    dk_data_defaults(o);
    for (size_t i = 0; i < NROWS; i++) {
        if (!table[i].meta) continue;
        size_t end = run_end(i);
        dk_status st = read_run(o, meta, path, i, end);
        if (st != DK_OK) {
            memset(o, 0, sizeof *o);
            return st;
        }
        i = end - 1;
    }
    return DK_OK;
}
