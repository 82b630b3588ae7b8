/*
 * dk_eval_run: pair the files of the prediction and reference folders by case id, evaluate
 * every case, and write the report folder whole or not at all.
 *
 * Cases. Predictions are paired with references (a folder, or a case list's label column)
 * by pairing.c; references without a prediction may be passed over (subset_pred, named in
 * a note). While the cases are scored, the label values of both sides are gathered: a
 * reference value no prediction holds, or a prediction value no reference holds, is named
 * in a note (a 0/255 reference against predictions 1..3 is scored as it is, but not
 * silently).
 *
 * The output folder. Files go to a temporary sibling folder ("<parent>/.<name>.<pid>.<n>.tmp")
 * which is renamed to out_dir at the end; on any failure it is removed and out_dir is as it
 * was. A folder written by dakd eval carries the marker file ".dakd-eval"; an existing
 * out_dir is replaced only when it has that marker (moved aside, the new one renamed in, the
 * old one removed) or is empty; any other existing path is refused before work starts.
 */
#include "report_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER ".dakd-eval"

/* ---------------------------------------------------------------- labels */

/* Add the non-zero values of a reference to the set (bitmap of 0..65535). */
static dk_status scan_labels(uint8_t *seen, const dk_volume *v, const char *id,
                             const char *path) {
    int64_t n = v->nx * v->ny * v->nz;
    if (v->nc != 1 || v->nt != 1)
        return dk_fail(DK_ERR_FORMAT, "case %s: %s: a label map has one channel and one time "
                       "point (nc=%lld nt=%lld)", id, path, (long long)v->nc, (long long)v->nt);
    for (int64_t i = 0; i < n; i++) {
        double x = dk_volume_get(v, i);
        if (x == 0) continue;
        if (!(x == floor(x)) || x < 0)
            return dk_fail(DK_ERR_FORMAT, "case %s: %s: voxel %lld holds %g, not a label (a "
                           "non-negative integer)", id, path, (long long)i, x);
        if (x > 65535)
            return dk_fail(DK_ERR_UNSUPPORTED, "case %s: %s: label %g above 65535", id, path, x);
        seen[(int)x] = 1;
    }
    return DK_OK;
}

static dk_status read_case_file(dk_volume *v, const char *id, const char *path) {
    dk_status st = dk_volume_read(v, path);
    return st == DK_OK ? DK_OK : dk_error_context(st, "case %s", id);
}

/* Every non-zero label present in any reference, ascending. */
static dk_status find_labels(int **labels, int *n, const dk_rep_run *r) {
    uint8_t *seen = calloc(65536, 1);
    if (!seen) return dk_fail(DK_ERR_NOMEM, "label set");
    dk_status st = DK_OK;
    for (int i = 0; i < r->n_cases && st == DK_OK; i++) {
        dk_volume v;
        st = read_case_file(&v, r->cases[i].id, r->cases[i].ref);
        if (st == DK_OK) st = scan_labels(seen, &v, r->cases[i].id, r->cases[i].ref);
        dk_volume_free(&v);
    }
    *n = 0;
    for (int l = 1; l < 65536; l++) *n += seen[l];
    char src[4200];
    if (st == DK_OK && *n == 0)
        st = dk_fail(DK_ERR_FORMAT, "%s: no reference holds a non-zero label; name the labels "
                     "to score", dk_rep_ref_source(src, sizeof src, r->opts));
    if (st == DK_OK && !(*labels = malloc((size_t)*n * sizeof **labels)))
        st = dk_fail(DK_ERR_NOMEM, "label list");
    if (st == DK_OK)
        for (int l = 1, k = 0; l < 65536; l++)
            if (seen[l]) (*labels)[k++] = l;
    free(seen);
    return st;
}

/* ---------------------------------------------------------------- cases */

static void cases_free(dk_rep_case *c, int n) {
    for (int i = 0; c && i < n; i++) {
        free(c[i].id), free(c[i].pred), free(c[i].ref), free(c[i].mask), free(c[i].image);
        free(c[i].m), free(c[i].overlay_b64);
    }
    free(c);
}

void dk_eval_results_free(dk_eval_results *r) {
    if (!r) return;
    for (int i = 0; r->ids && i < r->n_cases; i++) free(r->ids[i]);
    free(r->ids), free(r->labels), free(r->m);
    memset(r, 0, sizeof *r);
}

/* A copy of the evaluated cases' ids and metrics into out (zeroed). */
static dk_status keep_results(dk_eval_results *out, const dk_rep_run *r) {
    int nc = r->n_cases, nl = r->n_labels;
    out->ids = calloc((size_t)nc, sizeof *out->ids);
    out->labels = malloc((size_t)nl * sizeof *out->labels);
    out->m = malloc((size_t)nc * (size_t)nl * sizeof *out->m);
    if (!out->ids || !out->labels || !out->m)
        return dk_fail(DK_ERR_NOMEM, "results of %d cases", nc);
    out->n_cases = nc, out->n_labels = nl;
    memcpy(out->labels, r->labels, (size_t)nl * sizeof *out->labels);
    for (int i = 0; i < nc; i++) {
        if (!(out->ids[i] = strdup(r->cases[i].id)))
            return dk_fail(DK_ERR_NOMEM, "results of %d cases", nc);
        memcpy(out->m + (size_t)i * nl, r->cases[i].m, (size_t)nl * sizeof *out->m);
    }
    return DK_OK;
}

/* Mark each value of v that can be a label (an integer in 0..65535; dk_eval_case refuses
 * the others) in seen with `bit`. */
static void mark_values(uint8_t *seen, const dk_volume *v, uint8_t bit) {
    int64_t n = v->nx * v->ny * v->nz;
    if (v->dtype == DK_U8) {
        const uint8_t *x = v->data;
        for (int64_t i = 0; i < n; i++) seen[x[i]] |= bit;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double x = dk_volume_get(v, i);
        if (x >= 0 && x <= 65535 && x == floor(x)) seen[(int)x] |= bit;
    }
}

/* Up to 16 of the non-zero values whose bits in seen are exactly `bits`, "a, b, c"; their
 * count. */
static int list_values(dk_sbuf *b, const uint8_t *seen, uint8_t bits) {
    int n = 0;
    for (int v = 1; v < 65536; v++)
        if (seen[v] == bits && n++ < 16) dk_sb_printf(b, "%s%d", n > 1 ? ", " : "", v);
    if (n > 16) dk_sb_printf(b, ", ... (%d values)", n);
    return n;
}

/* A note when one side holds non-zero label values the other never does (1 = references
 * only, 2 = predictions only). */
static dk_status note_label_values(dk_rep_run *r, const uint8_t *seen) {
    dk_sbuf a = {0}, b = {0};
    int na = list_values(&a, seen, 1), nb = list_values(&b, seen, 2);
    dk_status st = DK_OK;
    if (na && nb)
        st = dk_rep_note(r, "the references hold label values no prediction holds (%s) and the "
                         "predictions hold values no reference holds (%s): the two code labels "
                         "differently? (a 0/255 mask against classes 1..K: map the reference "
                         "values to the model's classes before scoring)", a.s, b.s);
    else if (na)
        st = dk_rep_note(r, "the references hold label values no prediction holds (%s): never "
                         "predicted in any case", a.s);
    else if (nb)
        st = dk_rep_note(r, "the predictions hold label values no reference holds (%s): scored "
                         "only when named in the labels to score", b.s);
    dk_sb_free(&a), dk_sb_free(&b);
    return st;
}

dk_status dk_rep_note(dk_rep_run *r, const char *fmt, ...) {
    if (r->n_notes == DK_REP_NOTES_MAX) return DK_OK; /* a programmer's limit: kept short */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return dk_fail(DK_ERR_NOMEM, "eval: a note of %d bytes", n);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r->notes[r->n_notes++] = s;
    dk_log(DK_LOG_WARN, "eval: %s", s);
    return DK_OK;
}

const char *dk_rep_ref_source(char *buf, size_t n, const dk_eval_opts *o) {
    if (!o->cases_csv) snprintf(buf, n, "%s", o->ref_dir ? o->ref_dir : "");
    else if (o->where && o->where[0]) {
        int k = snprintf(buf, n, "%s where ", o->cases_csv);
        if (k >= 0 && (size_t)k < n) dk_cases_where_text(buf + k, n - (size_t)k, o->where);
    } else
        snprintf(buf, n, "%s", o->cases_csv);
    return buf;
}

/* Each case's voxel size from the `spacing` column of the case list (spacing_csv, else
 * cases_csv) when it has one, named in a note: the distances and volumes are then in the
 * list's millimetres, not the files'. */
static dk_status case_spacings(dk_rep_run *r) {
    const char *csv = r->opts->spacing_csv ? r->opts->spacing_csv : r->opts->cases_csv;
    dk_case_list l = {0};
    dk_status st = csv ? dk_cases_read(&l, csv) : DK_OK;
    int given = 0;
    for (int i = 0; st == DK_OK && dk_cases_column(&l, "spacing") >= 0 && i < r->n_cases; i++)
        for (int j = 0; j < l.n; j++)
            if (strcmp(l.cases[j].id, r->cases[i].id) == 0) {
                memcpy(r->cases[i].spacing, l.cases[j].spacing, sizeof l.cases[j].spacing);
                given += l.cases[j].spacing[0] > 0;
            }
    if (st == DK_OK && given)
        st = dk_rep_note(r, "voxel sizes of %d of the %d cases from the spacing column of %s, "
                         "not from their files", given, r->n_cases, csv);
    dk_cases_free(&l);
    return st;
}

/* Read the case's files, evaluate it and draw its overlay; mark its label values in seen
 * (bit 1 reference, 2 prediction). */
static dk_status eval_one(dk_rep_case *c, const dk_rep_run *r, uint8_t *seen) {
    dk_volume pred = {0}, ref = {0}, mask = {0}, image = {0};
    dk_status st = read_case_file(&ref, c->id, c->ref);
    if (st == DK_OK) st = read_case_file(&pred, c->id, c->pred);
    if (st == DK_OK && c->mask) st = read_case_file(&mask, c->id, c->mask);
    if (st == DK_OK && c->image) st = read_case_file(&image, c->id, c->image);
    dk_case_spacing_apply(&pred, c->spacing), dk_case_spacing_apply(&ref, c->spacing);
    dk_case_spacing_apply(&mask, c->spacing), dk_case_spacing_apply(&image, c->spacing);
    if (st == DK_OK && !(c->m = calloc((size_t)r->n_labels, sizeof *c->m)))
        st = dk_fail(DK_ERR_NOMEM, "case %s: metrics", c->id);
    if (st == DK_OK) {
        st = dk_eval_case(c->m, &pred, c->pred, &ref, c->ref, c->mask ? &mask : NULL,
                          r->labels, r->n_labels, &r->opts->metric);
        if (st != DK_OK) st = dk_error_context(st, "case %s", c->id);
    }
    if (st == DK_OK) mark_values(seen, &ref, 1), mark_values(seen, &pred, 2);
    if (st == DK_OK)
        st = dk_rep_overlay(c, &pred, &ref, c->image ? &image : NULL, r->labels, r->n_labels);
    dk_volume_free(&pred), dk_volume_free(&ref), dk_volume_free(&mask), dk_volume_free(&image);
    return st;
}

/* ---------------------------------------------------------------- the output folder */

/* 0 = absent, 1 = empty folder, 2 = dakd eval output, -1 = anything else. */
static int out_state(const char *out) {
    struct stat sb;
    if (stat(out, &sb) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode)) return -1;
    char p[4096];
    snprintf(p, sizeof p, "%s/" MARKER, out);
    if (access(p, F_OK) == 0) return 2;
    DIR *d = opendir(out);
    int empty = d != NULL;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) empty = 0;
    if (d) closedir(d);
    return empty ? 1 : -1;
}

static dk_status check_out(const char *out) {
    if (!out || !*out) return dk_fail(DK_ERR_ARG, "an output folder (out_dir) is required");
    if (out_state(out) < 0)
        return dk_fail(DK_ERR_ARG, "%s: exists and is not a dakd eval output folder (no %s "
                       "marker); refusing to replace it", out, MARKER);
    return DK_OK;
}

static dk_status make_tmp_dir(char *tmp, size_t n, const char *out) {
    char base[4096];
    snprintf(base, sizeof base, "%s", out);
    for (size_t k = strlen(base); k > 1 && base[k - 1] == '/'; k--) base[k - 1] = '\0';
    dk_status st = dk_tmp_path_for(tmp, n, base);
    if (st != DK_OK) return st;
    if (mkdir(tmp, 0755) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot create the temporary folder %s: %s", out, tmp,
                       strerror(errno));
    char p[4200];
    snprintf(p, sizeof p, "%s/" MARKER, tmp);
    dk_sbuf b = {0};
    dk_sb_puts(&b, "A dakd eval output folder: the next dakd eval writing here replaces it "
                   "whole.\n");
    st = dk_sb_write_file(&b, p);
    dk_sb_free(&b);
    if (st != DK_OK) dk_discard_tree(tmp);
    return st;
}

/* Move the finished temporary folder to `out` (see the banner). */
static dk_status commit_dir(const char *tmp, const char *out) {
    int state = out_state(out);
    if (state < 0) return check_out(out);
    char old[4096] = "";
    if (state == 1 && rmdir(out) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot replace the empty folder: %s", out,
                       strerror(errno));
    if (state == 2) {
        dk_status st = dk_tmp_path_for(old, sizeof old, tmp);
        if (st != DK_OK) return st;
        if (rename(out, old) != 0)
            return dk_fail(DK_ERR_IO, "%s: cannot move the previous report aside: %s", out,
                           strerror(errno));
    }
    if (rename(tmp, out) != 0) {
        int e = errno;
        if (old[0] && rename(old, out) != 0) dk_log(DK_LOG_ERROR, "%s: left at %s", out, old);
        return dk_fail(DK_ERR_IO, "%s: cannot rename from %s: %s", out, tmp, strerror(e));
    }
    if (old[0]) dk_discard_tree(old);
    return DK_OK;
}

/* ---------------------------------------------------------------- the run */

static dk_status evaluate(const dk_eval_opts *o, const char *dir) {
    dk_label_table names = {0};
    dk_rep_run r = {o, o->title ? o->title : "dakd evaluation", NULL, 0, o->labels,
                    o->n_labels, o->labels != NULL, {NULL}, 0, o->label_names ? &names : NULL};
    int *found = NULL;
    uint8_t *seen = calloc(65536, 1);
    dk_status st = seen ? DK_OK : dk_fail(DK_ERR_NOMEM, "eval: label set");
    if (st == DK_OK && o->label_names) st = dk_labels_read(&names, o->label_names, 65535);
    if (st == DK_OK) st = dk_rep_make_cases(&r);
    if (st == DK_OK) st = case_spacings(&r);
    for (int i = 0; st == DK_OK && o->cases_csv && i < r.n_cases; i++)
        if (dk_path_within(r.cases[i].ref, o->out_dir))
            st = dk_fail(DK_ERR_ARG, "the output folder %s, replaced whole, holds the reference "
                         "%s of case %s; choose another folder", o->out_dir, r.cases[i].ref,
                         r.cases[i].id);
    if (st == DK_OK && !o->labels) {
        st = find_labels(&found, &r.n_labels, &r);
        r.labels = found;
    }
    dk_progress pg;
    dk_progress_begin(&pg, "eval", r.n_cases);
    for (int i = 0; st == DK_OK && i < r.n_cases; i++) {
        dk_log(DK_LOG_INFO, "eval: %d/%d %s", i + 1, r.n_cases, r.cases[i].id);
        dk_progress_item(&pg, "%s", r.cases[i].id);
        st = eval_one(&r.cases[i], &r, seen);
        dk_progress_step(&pg, 1);
    }
    dk_progress_end(&pg);
    if (st == DK_OK) st = note_label_values(&r, seen);
    if (st == DK_OK) st = dk_rep_write_csv(&r, dir);
    if (st == DK_OK) st = dk_rep_write_json(&r, dir);
    if (st == DK_OK) st = dk_rep_write_md(&r, dir);
    if (st == DK_OK) st = dk_rep_write_html(&r, dir);
    if (st == DK_OK && o->results) st = keep_results(o->results, &r);
    cases_free(r.cases, r.n_cases);
    for (int k = 0; k < r.n_notes; k++) free(r.notes[k]);
    dk_labels_free(&names);
    free(found);
    free(seen);
    return st;
}

/* The output folder is replaced whole: it may neither be nor hold an input folder. */
static dk_status check_inputs_kept(const dk_eval_opts *o) {
    const char *in[7] = {o->pred_dir, o->ref_dir, o->mask_dir, o->image_dir, o->compare_a,
                         o->compare_b, o->cases_csv};
    static const char *const what[7] = {"the prediction folder", "the reference folder",
                                        "the mask folder", "the image folder",
                                        "one of the runs compared",
                                        "one of the runs compared", "the case list"};
    for (int k = 0; k < 7; k++)
        if (in[k] && (dk_same_file(o->out_dir, in[k]) || dk_path_within(in[k], o->out_dir)))
            return dk_fail(DK_ERR_ARG, "the output folder %s, replaced whole, %s %s %s; choose "
                           "another folder", o->out_dir,
                           dk_same_file(o->out_dir, in[k]) ? "is" : "holds", what[k], in[k]);
    return DK_OK;
}

static dk_status check_opts(const dk_eval_opts *o) {
    int cmp = o->compare_a || o->compare_b;
    if (cmp && !(o->compare_a && o->compare_b))
        return dk_fail(DK_ERR_ARG, "a comparison needs two earlier eval output folders "
                       "(compare_a, compare_b)");
    if (!cmp && (!o->pred_dir || !o->ref_dir == !o->cases_csv))
        return dk_fail(DK_ERR_ARG, "the prediction folder (pred_dir) and either a reference "
                       "folder (ref_dir) or a case list (cases_csv) are required");
    if (!cmp && o->where && o->where[0] && !o->cases_csv)
        return dk_fail(DK_ERR_ARG, "a filter (where) needs a case list (cases_csv)");
    if (!cmp && !(isfinite(o->metric.nsd_tol_mm) && o->metric.nsd_tol_mm >= 0))
        return dk_fail(DK_ERR_ARG, "NSD tolerance (nsd_tol_mm) %g is not a distance >= 0 mm",
                       o->metric.nsd_tol_mm);
    if (o->labels && o->n_labels < 1)
        return dk_fail(DK_ERR_ARG, "the list of labels to score is empty");
    for (int k = 0; o->labels && k < o->n_labels; k++) {
        if (o->labels[k] < 1)
            return dk_fail(DK_ERR_ARG, "labels to score: %d is not a label (1 or more)",
                           o->labels[k]);
        for (int j = 0; j < k; j++)
            if (o->labels[j] == o->labels[k])
                return dk_fail(DK_ERR_ARG, "labels to score: %d given twice", o->labels[k]);
    }
    if (!o->out_dir || !*o->out_dir) return check_out(o->out_dir);
    dk_status st = check_inputs_kept(o);
    return st != DK_OK ? st : check_out(o->out_dir);
}

dk_status dk_eval_run(const dk_eval_opts *o) {
    if (o->results) memset(o->results, 0, sizeof *o->results);
    dk_status st = check_opts(o);
    if (st != DK_OK) return st;
    char tmp[4096];
    st = make_tmp_dir(tmp, sizeof tmp, o->out_dir);
    if (st != DK_OK) return st;
    if (o->compare_a)
        st = dk_rep_compare(o->compare_a, o->compare_b, tmp,
                            o->title ? o->title : "dakd comparison");
    else
        st = evaluate(o, tmp);
    if (st == DK_OK) st = commit_dir(tmp, o->out_dir);
    if (st != DK_OK) dk_discard_tree(tmp);
    if (st != DK_OK) dk_eval_results_free(o->results);
    return st;
}
