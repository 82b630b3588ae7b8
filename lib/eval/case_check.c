/*
 * dk_cases_import (dakd/eval.h): the gathered rows (case_import.c) get their domain and split,
 * every file of every row is read and checked, and the case list is written only when no
 * row had a problem.
 */
/* realpath() is an X/Open function */
#define _XOPEN_SOURCE 700
#include "eval_internal.h"

#include <limits.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/data.h"

static const char *const layout_names[] = {"auto", "nnunet", "msd", "folders", "dicom"};

const char *dk_layout_name(dk_layout l) {
    return (unsigned)l < sizeof layout_names / sizeof *layout_names ? layout_names[l] : "?";
}

int dk_layout_parse(const char *name) {
    for (int i = 0; i < (int)(sizeof layout_names / sizeof *layout_names); i++)
        if (strcmp(name, layout_names[i]) == 0) return i;
    return -1;
}

void dk_import_result_free(dk_import_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n_problems; i++) free(r->problems[i]);
    free(r->problems);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- checks */

/* A volume read for the check, or a problem naming the file (the reader's message). */
static int read_ok(dk_import_set *s, dk_volume *v, const char *path) {
    dk_status st = dk_volume_read(v, path);
    if (st != DK_OK) dk_import_problem(s, st, "%s", dk_last_error());
    return st == DK_OK;
}

/* The label of row r against its image `img`: grid, integer values within the classes (or,
 * with none known, no 255). Returns the largest value found, or -1. */
static int check_label(dk_import_set *s, const dk_import_row *r, const dk_volume *img,
                       int classes) {
    dk_volume lab = {0}, u8 = {0};
    int top = -1;
    if (!read_ok(s, &lab, r->label)) return -1;
    if (!dk_grid_match(img, r->images[0], &lab, r->label, 1e-3))
        dk_import_problem(s, DK_ERR_FORMAT, "%s", dk_last_error());
    else if (dk_label_check(&u8, &lab, classes > 0 ? classes : 255, -1, r->label) != DK_OK)
        dk_import_problem(s, DK_ERR_FORMAT, "%s", dk_last_error());
    else
        for (int64_t i = 0; i < dk_volume_numel(&u8); i++)
            if (((uint8_t *)u8.data)[i] > top) top = ((uint8_t *)u8.data)[i];
    dk_volume_free(&lab);
    dk_volume_free(&u8);
    return top;
}

/* Every file of row r read and checked; the largest label value into *top. first[0..2) =
 * the stacked channel count and the file count of the first row read, which every other
 * row must have too (and dataset.json's count of channels or modalities when it gives one). */
static void check_row(dk_import_set *s, const dk_import_row *r, int classes, int *top,
                      int first[2]) {
    dk_volume img = {0};
    for (int k = 0; k < r->n_images; k++)
        if (!r->images[k]) return; /* named as missing already */
    dk_status st = dk_case_image_read(&img, (const char *const *)r->images, r->n_images, 1e-3);
    if (st != DK_OK) {
        dk_import_problem(s, st, "%s", dk_last_error());
        return;
    }
    int want = s->channels > 0 ? s->channels : first[0];
    if (want > 0 && img.nc != want)
        dk_import_problem(s, DK_ERR_FORMAT, "%s: case '%s' has %lld channel%s, %s %d",
                          r->images[0], r->id, (long long)img.nc, img.nc == 1 ? "" : "s",
                          s->channels > 0 ? "dataset.json names" : "the first case has", want);
    else if (first[1] && r->n_images != first[1])
        dk_import_problem(s, DK_ERR_FORMAT, "%s: case '%s' has its channels in %d file%s, the "
                          "first case in %d", r->images[0], r->id, r->n_images,
                          r->n_images == 1 ? "" : "s", first[1]);
    if (!first[0]) first[0] = (int)img.nc, first[1] = r->n_images;
    if (r->label) {
        int t = check_label(s, r, &img, classes);
        if (t > *top) *top = t;
    }
    dk_volume_free(&img);
}

/* ---------------------------------------------------------------- domain and split */

/* values[i] = the row's value of one column: `fixed`, the pattern's match over the origin,
 * the row's layout split (`use_split`), or NULL. Problems for rows the pattern misses. */
static dk_status column_values(char **values, dk_import_set *s, const char *fixed,
                               const char *pattern, const char *key, int use_split) {
    regex_t re;
    int rc = pattern ? regcomp(&re, pattern, REG_EXTENDED) : 0;
    if (rc) {
        char why[256];
        regerror(rc, &re, why, sizeof why);
        return dk_fail(DK_ERR_ARG, "%s '%s': %s", key, pattern, why);
    }
    dk_status st = DK_OK;
    for (int i = 0; st == DK_OK && i < s->n; i++) {
        const dk_import_row *r = &s->rows[i];
        regmatch_t m[2];
        if (fixed || (!pattern && use_split && r->split)) {
            values[i] = strdup(fixed ? fixed : r->split);
        } else if (pattern && r->origin && regexec(&re, r->origin, 2, m, 0) == 0) {
            int g = m[1].rm_so >= 0 ? 1 : 0;
            values[i] = strndup(r->origin + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
            if (values[i] && !values[i][0])
                dk_import_problem(s, DK_ERR_ARG, "%s: %s '%s' matches an empty value",
                                  r->images[0] ? r->images[0] : r->id, key, pattern);
            continue;
        } else {
            if (pattern)
                dk_import_problem(s, DK_ERR_ARG, "%s: %s '%s' does not match '%s'",
                                  r->images[0] ? r->images[0] : r->id, key, pattern,
                                  r->origin ? r->origin : "");
            continue;
        }
        if (!values[i]) st = dk_fail(DK_ERR_NOMEM, "%s", key);
    }
    if (pattern) regfree(&re);
    return st;
}

/* ---------------------------------------------------------------- the CSV */

static void put_field(dk_sbuf *b, const char *f) {
    if (!f) f = "";
    if (!strpbrk(f, ",\"\r\n")) {
        dk_sb_puts(b, f);
        return;
    }
    dk_sb_puts(b, "\"");
    for (; *f; f++) {
        dk_sb_putn(b, f, 1);
        if (*f == '"') dk_sb_puts(b, "\""); /* a quote doubled */
    }
    dk_sb_puts(b, "\"");
}

/* `path` relative to `dir` (a resolved folder) when it lies below it, else absolute. */
static void put_path(dk_sbuf *b, const char *path, const char *dir) {
    char full[PATH_MAX];
    if (!path || !realpath(path, full)) {
        put_field(b, path);
        return;
    }
    size_t n = strlen(dir);
    int below = dir[0] && strncmp(full, dir, n) == 0 && full[n] == '/';
    put_field(b, below ? full + n + 1 : full);
}

static dk_status write_csv(const dk_import_set *s, char *const *dom, char *const *spl,
                           const char *out) {
    char dir[PATH_MAX] = "", tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", out);
    char *slash = strrchr(tmp, '/');
    if (slash) *slash = '\0';
    if (!realpath(slash ? (tmp[0] ? tmp : "/") : ".", dir)) dir[0] = '\0';
    int lab = 0, files = 1;
    for (int i = 0; i < s->n; i++) {
        lab |= s->rows[i].label != NULL;
        if (s->rows[i].n_images > files) files = s->rows[i].n_images;
    }
    dk_sbuf b = {0};
    dk_sb_puts(&b, "case,image");
    for (int k = 1; k < files; k++) dk_sb_printf(&b, ",image_%d", k);
    dk_sb_printf(&b, "%s%s%s\n", lab ? ",label" : "", dom ? ",domain" : "", spl ? ",split" : "");
    for (int i = 0; i < s->n; i++) {
        put_field(&b, s->rows[i].id);
        for (int k = 0; k < files; k++)
            dk_sb_puts(&b, ","), put_path(&b, k < s->rows[i].n_images ? s->rows[i].images[k]
                                                                       : NULL, dir);
        if (lab) dk_sb_puts(&b, ","), put_path(&b, s->rows[i].label, dir);
        if (dom) dk_sb_puts(&b, ","), put_field(&b, dom[i]);
        if (spl) dk_sb_puts(&b, ","), put_field(&b, spl[i]);
        dk_sb_puts(&b, "\n");
    }
    dk_status st = dk_sb_write_file(&b, out);
    dk_sb_free(&b);
    return st;
}

/* ---------------------------------------------------------------- the whole import */

/* The output must not be any file the import reads. */
static dk_status check_out(const dk_import_set *s, const dk_import_opts *o) {
    const char *extra[] = {s->json, o->root, o->images, o->labels};
    int k = dk_same_file_any(o->out, extra, 4);
    if (k >= 0) return dk_fail(DK_ERR_ARG, "%s: the case list would replace its input %s", o->out, extra[k]);
    for (int i = 0; i < s->n; i++) {
        const dk_import_row *r = &s->rows[i];
        if (dk_same_file(o->out, r->label ? r->label : "") ||
            dk_same_file_any(o->out, (const char *const *)r->images, r->n_images) >= 0)
            return dk_fail(DK_ERR_ARG, "%s: the case list would replace an input of case '%s'",
                           o->out, r->id);
    }
    return DK_OK;
}

dk_status dk_cases_import(dk_import_result *r, const dk_import_opts *o) {
    memset(r, 0, sizeof *r);
    dk_import_set s = {0};
    s.res = r;
    char **dom = NULL, **spl = NULL;
    dk_status st = dk_import_gather(&s, o);
    if (st == DK_OK) st = check_out(&s, o);
    int layout_split = r->layout == DK_LAYOUT_NNUNET || r->layout == DK_LAYOUT_MSD;
    if (st == DK_OK && (o->domain || o->domain_pattern) &&
        !(dom = calloc((size_t)s.n + 1, sizeof *dom)))
        st = dk_fail(DK_ERR_NOMEM, "domain column");
    if (st == DK_OK && (o->split || o->split_pattern || layout_split) &&
        !(spl = calloc((size_t)s.n + 1, sizeof *spl)))
        st = dk_fail(DK_ERR_NOMEM, "split column");
    if (st == DK_OK && dom)
        st = column_values(dom, &s, o->domain, o->domain_pattern, "domain pattern", 0);
    if (st == DK_OK && spl)
        st = column_values(spl, &s, o->split, o->split_pattern, "split pattern", 1);
    int classes = o->classes > 0 ? o->classes : s.classes, top = -1, first[2] = {0, 0};
    for (int i = 0; st == DK_OK && i < s.n; i++) {
        check_row(&s, &s.rows[i], classes, &top, first);
        r->n_labelled += s.rows[i].label != NULL;
    }
    r->n_cases = s.n;
    r->channels = first[0];
    r->classes = classes > 0 ? classes : top + 1 > 1 ? top + 1 : 2;
    r->classes_found = classes <= 0;
    if (st == DK_OK && r->n_problems)
        st = dk_fail(s.first, "%d problem%s in %s; nothing written", r->n_problems,
                     r->n_problems == 1 ? "" : "s", o->root ? o->root : o->images);
    if (st == DK_OK) st = write_csv(&s, dom, spl, o->out);
    for (int i = 0; i < s.n; i++) {
        if (dom) free(dom[i]);
        if (spl) free(spl[i]);
    }
    free(dom), free(spl);
    dk_import_set_free(&s);
    return st;
}
