/*
 * Report text: the writers of cases.csv, summary.json and summary.md (report.html is in
 * report_html.c). Every file is written atomically.
 *
 * cases.csv: one row per case and label; columns case, label, the voxel counts (tp, fp,
 * fn, tn, n_pred, n_ref, n_bpred, n_bref), every metric column of dk_metric_columns() in
 * its order, flagged (0/1). Numbers print with %.17g (they read back to the same double),
 * NaN as "nan". A case id holding a comma, quote or line break is quoted (RFC 4180).
 */
#include "report_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The convention in four parts around its three units (mm3 / mm and the spacing / mm). */
static const char *const convention[4] = {
    "Voxel sets per label l: P = {pred == l}, R = {ref == l}, inside the mask when one is "
    "given (voxels outside it do not exist for any metric, TN included). "
    "Dice = 2TP/(2TP+FP+FN); IoU = TP/(TP+FP+FN); precision = TP/(TP+FP); recall = "
    "TP/(TP+FN); specificity = TN/(TN+FP); volume similarity = 1 - ||P|-|R||/(|P|+|R|); "
    "volumes in ",
    ". Boundary = voxels of a set with a face neighbour (6-connectivity in "
    "3-D, 4 in 2-D; outside the image or mask counts as outside the set) not in the set. "
    "Distances are Euclidean in ",
    ". D = the pooled distances of both boundaries to each other. HD = max D; "
    "HD95 = 95th percentile of D (numpy linear); ASSD = mean of D; NSD(tau) = fraction of "
    "both boundaries within tau ",
    " of the other. "
    "Empty masks: P and R both empty: Dice = IoU = precision = recall = volume similarity "
    "= NSD = 1, HD = HD95 = ASSD = 0, not flagged. Exactly one empty: Dice = IoU = 0, the "
    "ratio with a zero denominator NaN (P empty: precision NaN, recall 0; R empty: "
    "precision 0, recall NaN), volume similarity 0, HD = HD95 = ASSD = NSD = NaN, and the "
    "case is FLAGGED for that label. Summaries: statistics over the n finite values (NaN "
    "counted apart); std with ddof = 1 (0 when n = 1); median and quartiles numpy linear; "
    "a flagged case's Dice (0) is in the Dice mean."};

void dk_rep_convention(dk_sbuf *b, dk_distance_unit u) {
    int vox = u == DK_UNIT_VOXELS;
    dk_sb_printf(b, "%s%s%s%s%s%s%s", convention[0], vox ? "voxels (counts)" : "mm3",
                 convention[1],
                 vox ? "voxels between voxel centres (exact distance transform with every "
                       "spacing taken as 1: the voxel size is not used)"
                     : "mm between voxel centres (exact distance transform with the spacing)",
                 convention[2], vox ? "voxels" : "mm", convention[3]);
}

const char *dk_rep_unit(const dk_rep_run *r) {
    return dk_distance_unit_names[r->opts->metric.unit == DK_UNIT_VOXELS];
}

const char *dk_rep_col_name(const dk_rep_run *r, const dk_metric_column *c) {
    return dk_metric_column_name(c, r->opts->metric.unit);
}

/* ---------------------------------------------------------------- helpers */

int dk_rep_values(const dk_rep_run *r, int k, const dk_metric_column *col, double *out) {
    int flagged = 0;
    for (int i = 0; i < r->n_cases; i++) {
        const dk_label_metrics *m = &r->cases[i].m[k];
        out[i] = *(const double *)((const char *)m + col->offset);
        flagged += m->flagged != 0;
    }
    return flagged;
}

const char *dk_rep_label_name(const dk_rep_run *r, int k) {
    for (int i = 0; r->names && i < r->names->n; i++)
        if (r->names->items[i].value == r->labels[k]) return r->names->items[i].name;
    return NULL;
}

const char *dk_rep_label_text(char *buf, size_t n, const dk_rep_run *r, int k) {
    const char *name = dk_rep_label_name(r, k);
    snprintf(buf, n, "%d%s%s", r->labels[k], name ? " " : "", name ? name : "");
    return buf;
}

dk_status dk_rep_join(char *buf, size_t n, const char *dir, const char *name) {
    int k = snprintf(buf, n, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= n) return dk_fail(DK_ERR_ARG, "%s: path too long", dir);
    return DK_OK;
}

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_field(dk_sbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        dk_sb_puts(b, s);
        return;
    }
    dk_sb_puts(b, "\"");
    for (; *s; s++) dk_sb_putn(b, s, 1 + (*s == '"')); /* "" for " */
    dk_sb_puts(b, "\"");
}

/* ---------------------------------------------------------------- cases.csv */

dk_status dk_rep_write_csv(const dk_rep_run *r, const char *dir) {
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    dk_sbuf b = {0};
    dk_sb_puts(&b, "case,label,tp,fp,fn,tn,n_pred,n_ref,n_bpred,n_bref");
    for (int j = 0; j < nc; j++) dk_sb_printf(&b, ",%s", dk_rep_col_name(r, &cols[j]));
    dk_sb_puts(&b, ",flagged\n");
    for (int i = 0; i < r->n_cases; i++)
        for (int k = 0; k < r->n_labels; k++) {
            const dk_label_metrics *m = &r->cases[i].m[k];
            csv_field(&b, r->cases[i].id);
            dk_sb_printf(&b, ",%d,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld", r->labels[k],
                         (long long)m->tp, (long long)m->fp, (long long)m->fn,
                         (long long)m->tn, (long long)m->n_pred, (long long)m->n_ref,
                         (long long)m->n_bpred, (long long)m->n_bref);
            for (int j = 0; j < nc; j++) {
                dk_sb_puts(&b, ",");
                dk_sb_num(&b, *(const double *)((const char *)m + cols[j].offset));
            }
            dk_sb_printf(&b, ",%d\n", m->flagged ? 1 : 0);
        }
    char path[4096];
    dk_status st = dk_rep_join(path, sizeof path, dir, "cases.csv");
    if (st == DK_OK) st = dk_sb_write_file(&b, path);
    dk_sb_free(&b);
    return st;
}

/* ---------------------------------------------------------------- summary.json */

static cJSON *summary_object(const dk_metric_summary *s) {
    cJSON *o = cJSON_CreateObject();
    dk_json_add_number(o, "mean", s->mean);
    dk_json_add_number(o, "std", s->std);
    dk_json_add_number(o, "median", s->median);
    dk_json_add_number(o, "q1", s->q1);
    dk_json_add_number(o, "q3", s->q3);
    dk_json_add_number(o, "iqr", s->q3 - s->q1);
    dk_json_add_number(o, "min", s->min);
    dk_json_add_number(o, "max", s->max);
    cJSON_AddNumberToObject(o, "n", s->n);
    cJSON_AddNumberToObject(o, "nan", s->nan);
    cJSON_AddNumberToObject(o, "flagged", s->flagged);
    return o;
}

static cJSON *per_label_summary(const dk_rep_run *r, double *vals) {
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    cJSON *all = cJSON_CreateObject();
    for (int k = 0; k < r->n_labels; k++) {
        char key[32];
        snprintf(key, sizeof key, "%d", r->labels[k]);
        cJSON *lab = cJSON_AddObjectToObject(all, key);
        for (int j = 0; j < nc; j++) {
            dk_metric_summary s;
            int flagged = dk_rep_values(r, k, &cols[j], vals);
            dk_metric_summarize(&s, vals, r->n_cases, flagged);
            cJSON_AddItemToObject(lab, dk_rep_col_name(r, &cols[j]), summary_object(&s));
        }
    }
    return all;
}

static cJSON *flagged_list(const dk_rep_run *r) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < r->n_cases; i++)
        for (int k = 0; k < r->n_labels; k++) {
            const dk_label_metrics *m = &r->cases[i].m[k];
            if (!m->flagged) continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "case", r->cases[i].id);
            cJSON_AddNumberToObject(o, "label", r->labels[k]);
            cJSON_AddStringToObject(o, "reason", m->n_pred == 0 ? "empty prediction"
                                                                : "empty reference");
            cJSON_AddItemToArray(a, o);
        }
    return a;
}

dk_status dk_rep_write_json(const dk_rep_run *r, const char *dir) {
    double *vals = malloc((size_t)(r->n_cases ? r->n_cases : 1) * sizeof *vals);
    if (!vals) return dk_fail(DK_ERR_NOMEM, "summary.json: %d cases", r->n_cases);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tool", "dakd eval");
    cJSON_AddStringToObject(o, "version", dk_version_string());
    cJSON_AddStringToObject(o, "title", r->title);
    dk_sbuf conv = {0};
    dk_rep_convention(&conv, r->opts->metric.unit);
    cJSON_AddStringToObject(o, "convention", conv.s ? conv.s : "");
    dk_sb_free(&conv);
    cJSON_AddStringToObject(o, "hd95_definition", DK_EVAL_HD95_NAME);
    if (r->opts->metric.unit == DK_UNIT_VOXELS) { /* only then: mm runs' files stay as they were */
        cJSON_AddStringToObject(o, "distance_unit", dk_rep_unit(r));
        cJSON_AddNumberToObject(o, "nsd_tolerance_voxels", r->opts->metric.nsd_tol_mm);
    } else {
        cJSON_AddNumberToObject(o, "nsd_tolerance_mm", r->opts->metric.nsd_tol_mm);
    }
    cJSON_AddStringToObject(o, "pred_dir", r->opts->pred_dir);
    if (r->opts->ref_dir) cJSON_AddStringToObject(o, "ref_dir", r->opts->ref_dir);
    else cJSON_AddNullToObject(o, "ref_dir");
    if (r->opts->cases_csv) {
        char src[4200];
        cJSON_AddStringToObject(o, "cases_csv", dk_rep_ref_source(src, sizeof src, r->opts));
    }
    if (r->opts->mask_dir) cJSON_AddStringToObject(o, "mask_dir", r->opts->mask_dir);
    else cJSON_AddNullToObject(o, "mask_dir");
    cJSON *labels = cJSON_AddArrayToObject(o, "labels");
    for (int k = 0; k < r->n_labels; k++)
        cJSON_AddItemToArray(labels, cJSON_CreateNumber(r->labels[k]));
    if (r->names) {
        cJSON *nm = cJSON_AddObjectToObject(o, "label_names");
        for (int k = 0; k < r->n_labels; k++) {
            char key[16];
            snprintf(key, sizeof key, "%d", r->labels[k]);
            const char *name = dk_rep_label_name(r, k);
            if (name) cJSON_AddStringToObject(nm, key, name);
        }
    }
    cJSON_AddStringToObject(o, "labels_source",
                            r->labels_given ? "given (the labels option)"
                                            : "every non-zero label present in any reference");
    cJSON_AddNumberToObject(o, "n_cases", r->n_cases);
    cJSON_AddItemToObject(o, "summary", per_label_summary(r, vals));
    cJSON_AddItemToObject(o, "flagged", flagged_list(r));
    cJSON *notes = cJSON_AddArrayToObject(o, "notes");
    for (int k = 0; k < r->n_notes; k++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(r->notes[k]));
    free(vals);
    char path[4096];
    dk_status st = dk_rep_join(path, sizeof path, dir, "summary.json");
    if (st == DK_OK) st = dk_json_write_file(o, path);
    cJSON_Delete(o);
    return st;
}

/* ---------------------------------------------------------------- summary.md */

/* The metrics of the Markdown and HTML summary tables. */
static const char *const main_metrics[] = {"dice", "iou", "hd95", "assd", "nsd"};

const dk_metric_column *dk_rep_find_column(const char *name) {
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    for (int j = 0; j < nc; j++)
        if (strcmp(cols[j].name, name) == 0) return &cols[j];
    return NULL;
}

static void md_cell(dk_sbuf *b, const dk_metric_summary *s) {
    if (s->n == 0) dk_sb_printf(b, " – n=0, flagged=%d |", s->flagged);
    else dk_sb_printf(b, " %.4g ± %.4g (%.4g) n=%d, flagged=%d |", s->mean, s->std, s->median,
                      s->n, s->flagged);
}

static void md_table(dk_sbuf *b, const dk_rep_run *r, double *vals) {
    size_t nm = sizeof main_metrics / sizeof main_metrics[0];
    dk_sb_puts(b, "| label |");
    for (size_t j = 0; j < nm; j++) {
        int dist = strcmp(main_metrics[j], "hd95") == 0 || strcmp(main_metrics[j], "assd") == 0;
        dk_sb_printf(b, " %s%s%s%s |", main_metrics[j], dist ? " (" : "",
                     dist ? dk_rep_unit(r) : "", dist ? ")" : "");
    }
    dk_sb_puts(b, "\n|---|");
    for (size_t j = 0; j < nm; j++) dk_sb_puts(b, "---|");
    dk_sb_puts(b, "\n");
    for (int k = 0; k < r->n_labels; k++) {
        char lt[96];
        dk_sb_puts(b, "| ");
        dk_sb_puts(b, dk_rep_label_text(lt, sizeof lt, r, k));
        dk_sb_puts(b, " |");
        for (size_t j = 0; j < nm; j++) {
            const dk_metric_column *col = dk_rep_find_column(main_metrics[j]);
            dk_metric_summary s;
            dk_metric_summarize(&s, vals, r->n_cases, dk_rep_values(r, k, col, vals));
            md_cell(b, &s);
        }
        dk_sb_puts(b, "\n");
    }
}

dk_status dk_rep_write_md(const dk_rep_run *r, const char *dir) {
    double *vals = malloc((size_t)(r->n_cases ? r->n_cases : 1) * sizeof *vals);
    if (!vals) return dk_fail(DK_ERR_NOMEM, "summary.md: %d cases", r->n_cases);
    dk_sbuf b = {0};
    dk_sb_printf(&b, "# %s\n\n%d cases; labels", r->title, r->n_cases);
    for (int k = 0; k < r->n_labels; k++) dk_sb_printf(&b, " %d", r->labels[k]);
    dk_sb_printf(&b, " (%s); NSD tolerance %g %s; %s.\n\n",
                 r->labels_given ? "given by the labels option"
                                 : "every non-zero label present in any reference",
                 r->opts->metric.nsd_tol_mm, dk_rep_unit(r), dk_version_string());
    for (int k = 0; k < r->n_notes; k++)
        dk_sb_printf(&b, "%s- %s\n%s", k ? "" : "**Notes**:\n\n", r->notes[k],
                     k + 1 == r->n_notes ? "\n" : "");
    dk_sb_puts(&b, "Cells: mean ± std (median) over the n finite values; flagged = cases "
                   "where exactly one of prediction and reference is empty.\n\n");
    md_table(&b, r, vals);
    free(vals);
    dk_sb_printf(&b, "\n**HD95**: %s.\n\n**Convention**: ", DK_EVAL_HD95_NAME);
    dk_rep_convention(&b, r->opts->metric.unit);
    dk_sb_puts(&b, "\n");
    int any = 0;
    char lt[96];
    for (int i = 0; i < r->n_cases; i++)
        for (int k = 0; k < r->n_labels; k++)
            if (r->cases[i].m[k].flagged)
                dk_sb_printf(&b, "%s- %s, label %s: empty %s\n", any++ ? "" : "\n**Flagged**:\n\n",
                             r->cases[i].id, dk_rep_label_text(lt, sizeof lt, r, k),
                             r->cases[i].m[k].n_pred == 0 ? "prediction" : "reference");
    char path[4096];
    dk_status st = dk_rep_join(path, sizeof path, dir, "summary.md");
    if (st == DK_OK) st = dk_sb_write_file(&b, path);
    dk_sb_free(&b);
    return st;
}
