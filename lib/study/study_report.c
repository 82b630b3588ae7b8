/*
 * The report stage (dakd/study.h): one table over the study — per train stage the Dice
 * (mean ± sample std over cases of the mean foreground Dice) and mean HD95 on every eval
 * set, parameters, inference ms per image, wall time — and the wall time of every stage,
 * as report.md, report.json and report.html (links to the per-eval reports).
 */
#include "study_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *get(const cJSON *j, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(j, k);
}

static double num(const cJSON *j, const char *k, double def) {
    const cJSON *v = get(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* The eval result of model `m` in eval stage `e` (NULL when not evaluated there). */
static const cJSON *model_result(const study_stage *e, const char *m) {
    return get(get(get(e->record, "result"), "models"), m);
}

/* Train and adapt stages evaluated by any of the report's eval stages, in study order: the
 * first run of each (a stage with seeds is consecutive runs of one name). */
static int collect_rows(const dk_study *s, const study_stage *r, int *rows) {
    int n = 0;
    for (int i = 0; i < s->nstages; i++) {
        if (s->stages[i].f.kind != STAGE_TRAIN && s->stages[i].f.kind != STAGE_ADAPT) continue;
        if (i > 0 && strcmp(s->stages[i - 1].name, s->stages[i].name) == 0) continue;
        int used = 0;
        for (int k = i; k < s->nstages && !strcmp(s->stages[k].name, s->stages[i].name); k++)
            for (int j = 0; j < r->ndeps && !used; j++)
                used = model_result(&s->stages[r->deps[j]], s->stages[k].dir) != NULL;
        if (used) rows[n++] = i;
    }
    return n;
}

/* Wall time of every run of stage t (t is its first run). */
static double seconds_of(const dk_study *s, const study_stage *t) {
    double sec = 0;
    for (const study_stage *x = t; x < s->stages + s->nstages && !strcmp(x->name, t->name); x++)
        sec += x->seconds;
    return sec;
}

static const char *label_of(const study_stage *t) {
    return t->f.label[0] ? t->f.label : t->name;
}

static void fmt_dice(char *buf, size_t n, const cJSON *m) {
    if (!m) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.4f ± %.4f", num(m, "dice_mean", NAN), num(m, "dice_std", NAN));
}

static void fmt_hd(char *buf, size_t n, const cJSON *m) {
    double h = m ? num(m, "hd95_mean", -1) : -1;
    if (h < 0) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.2f", h);
}

/* Inference ms per image: the first eval set's median for that model. */
static double ms_of(const dk_study *s, const study_stage *r, const char *m) {
    for (int j = 0; j < r->ndeps; j++) {
        const cJSON *x = model_result(&s->stages[r->deps[j]], m);
        if (x) return num(x, "ms_per_image", -1);
    }
    return -1;
}

double dk__study_params(const study_stage *t) { return num(get(t->record, "result"), "params", 0); }
double dk__study_ms(const dk_study *s, const study_stage *r, const study_stage *t) {
    return ms_of(s, r, t->dir);
}
double dk__study_seconds(const dk_study *s, const study_stage *t) { return seconds_of(s, t); }

void dk__study_eval_sets_md(dk_sbuf *b, const dk_study *s, const study_stage *r) {
    for (int j = 0; j < r->ndeps; j++) {
        const study_stage *e = &s->stages[r->deps[j]];
        dk_sb_printf(b, "- **%s**: domain %s, split %s, %d cases, %s%s\n", e->name, e->f.domain,
                     e->f.split[0] ? e->f.split : "any",
                     (int)num(get(e->record, "result"), "cases", 0),
                     e->f.use_mask ? "inside the mask" : "whole image",
                     e->f.distance_unit == DK_UNIT_VOXELS ? ", distances in voxels" : "");
    }
}

static void stage_times_md(dk_sbuf *b, const dk_study *s, const study_stage *r) {
    dk_sb_puts(b, "\n| stage | kind | wall s |\n|---|---|---:|\n");
    for (int i = 0; i < s->nstages; i++) {
        const study_stage *x = &s->stages[i];
        if (x == r) continue;
        dk_sb_printf(b, "| %s | %s | %.1f |\n", x->dir, dk__study_kind_name(x->f.kind),
                     x->seconds);
    }
}

static void write_md(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows, int n) {
    dk_sb_printf(b, "# %s\n\n", r->f.title[0] ? r->f.title : s->set.name);
    if (dk__study_has_stats(s)) {
        dk__study_table_md(b, s, r, rows, n);
        dk__study_compare_md(b, s, r);
        stage_times_md(b, s, r);
        return;
    }
    dk_sb_printf(b, "Dice: mean ± sample std over cases of the mean foreground Dice; HD95 (%s): "
                 "mean over cases (pooled 95th percentile, MedPy).\n\n", dk__study_hd_units(s, r));
    dk__study_eval_sets_md(b, s, r);
    dk_sb_puts(b, "\n| model | stage | params |");
    for (int j = 0; j < r->ndeps; j++)
        dk_sb_printf(b, " Dice %s | HD95 %s%s |", s->stages[r->deps[j]].name,
                     s->stages[r->deps[j]].name, dk__study_hd_unit(&s->stages[r->deps[j]]));
    dk_sb_puts(b, " ms/image | train s |\n|---|---|---:|");
    for (int j = 0; j < r->ndeps; j++)
        dk_sb_puts(b, "---:|---:|");
    dk_sb_puts(b, "---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const study_stage *t = &s->stages[rows[i]];
        dk_sb_printf(b, "| %s | %s | %.0f |", label_of(t), t->name,
                     num(get(t->record, "result"), "params", 0));
        for (int j = 0; j < r->ndeps; j++) {
            char d[64], h[32];
            const cJSON *m = model_result(&s->stages[r->deps[j]], t->dir);
            fmt_dice(d, sizeof d, m);
            fmt_hd(h, sizeof h, m);
            dk_sb_printf(b, " %s | %s |", d, h);
        }
        dk_sb_printf(b, " %.1f | %.1f |\n", ms_of(s, r, t->dir), seconds_of(s, t));
    }
    stage_times_md(b, s, r);
}

/* The single-seed table, each Dice cell linking to that evaluation's report. */
static void table_html(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows,
                       int n) {
    dk_sb_printf(b, "<p>Dice: mean &plusmn; sample std over cases of the mean foreground "
                 "Dice; HD95 in %s (pooled 95th percentile, MedPy), mean over cases. Each Dice "
                 "links to its evaluation report.</p>\n<table><tr><th>model</th><th>stage</th>"
                 "<th>params</th>", dk__study_hd_units(s, r));
    for (int j = 0; j < r->ndeps; j++) {
        const study_stage *e = &s->stages[r->deps[j]];
        dk_sb_printf(b, "<th>Dice %s<br>(%s/%s)</th><th>HD95 %s%s</th>", e->name, e->f.domain,
                     e->f.split[0] ? e->f.split : "any", e->name, dk__study_hd_unit(e));
    }
    dk_sb_puts(b, "<th>ms/image</th><th>train s</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const study_stage *t = &s->stages[rows[i]];
        dk_sb_puts(b, "<tr><td>");
        dk_sb_html(b, label_of(t));
        dk_sb_printf(b, "</td><td>%s</td><td>%.0f</td>", t->name,
                     num(get(t->record, "result"), "params", 0));
        for (int j = 0; j < r->ndeps; j++) {
            const study_stage *e = &s->stages[r->deps[j]];
            const cJSON *m = model_result(e, t->dir);
            char d[64], h[32];
            fmt_dice(d, sizeof d, m);
            fmt_hd(h, sizeof h, m);
            if (m)
                dk_sb_printf(b, "<td><a href=\"../%s/%s/report/report.html\">%s</a></td>", e->name,
                             t->dir, d);
            else
                dk_sb_puts(b, "<td>-</td>");
            dk_sb_printf(b, "<td>%s</td>", h);
        }
        dk_sb_printf(b, "<td>%.1f</td><td>%.1f</td></tr>\n", ms_of(s, r, t->dir), seconds_of(s, t));
    }
    dk_sb_puts(b, "</table>\n");
}

/* The HTML page: what a reader looks at first (the forest plot of the paired differences),
 * the table (each Dice linking to its evaluation's per-case report), the learning curves,
 * the stages' wall times. */
static void write_html(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows,
                       int n) {
    const char *title = r->f.title[0] ? r->f.title : s->set.name;
    dk_sb_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    dk_sb_html(b, title);
    dk_sb_puts(b, "</title><style>body{font-family:sans-serif}table{border-collapse:collapse}"
                  "td,th{border:1px solid #999;padding:3px 8px;text-align:right}"
                  "td:first-child,th:first-child{text-align:left}"
                  ".curves svg{margin:2px}</style></head><body>\n<h1>");
    dk_sb_html(b, title);
    dk_sb_puts(b, "</h1>\n");
    if (s->set.baseline[0]) {
        dk_sb_puts(b, "<h2 id=\"forest\">Paired differences to the baseline</h2>\n");
        dk__study_forest_svg(b, s, r, rows, n);
    }
    dk_sb_puts(b, "<h2 id=\"table\">Table</h2>\n");
    if (dk__study_has_stats(s)) dk__study_table_html(b, s, r, rows, n);
    else table_html(b, s, r, rows, n);
    dk__study_compare_html(b, s, r);
    dk_sb_puts(b, "<h2 id=\"curves\">Learning curves</h2>\n<p>Per training stage, from its "
                  "steps.jsonl: each panel one logged quantity over the steps (means of "
                  "consecutive steps, at most 100 points), one line per seed; dashed: a "
                  "mean's min and max; dots: values logged at epoch ends (val_dice).</p>\n");
    dk__study_curves_html(b, s, rows, n);
    dk_sb_puts(b, "<h2>Stages</h2>\n<table><tr><th>stage</th><th>wall s</th></tr>\n");
    for (int i = 0; i < s->nstages; i++)
        if (&s->stages[i] != r)
            dk_sb_printf(b, "<tr><td>%s</td><td>%.1f</td></tr>\n", s->stages[i].dir,
                         s->stages[i].seconds);
    dk_sb_puts(b, "</table>\n<p>Machine, versions, configs and input hashes: "
                  "<code>manifest.json</code> in the run folder.</p>\n</body></html>\n");
}

static cJSON *table_json(const dk_study *s, const study_stage *r, const int *rows, int n) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "title", r->f.title[0] ? r->f.title : s->set.name);
    cJSON *arr = cJSON_AddArrayToObject(j, "rows");
    for (int i = 0; i < n; i++) {
        const study_stage *t = &s->stages[rows[i]];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "stage", t->name);
        cJSON_AddStringToObject(row, "label", label_of(t));
        cJSON_AddNumberToObject(row, "params", num(get(t->record, "result"), "params", 0));
        cJSON_AddNumberToObject(row, "ms_per_image", ms_of(s, r, t->dir));
        cJSON_AddNumberToObject(row, "train_seconds", seconds_of(s, t));
        cJSON *ev = cJSON_AddObjectToObject(row, "evals");
        for (int k = 0; k < r->ndeps; k++) {
            const cJSON *m = model_result(&s->stages[r->deps[k]], t->dir);
            if (!m) continue;
            cJSON *x = cJSON_Duplicate(m, 1);
            if (dk__study_has_stats(s)) dk__study_cell_json(x, s, &s->stages[r->deps[k]], t->name);
            cJSON_AddItemToObject(ev, s->stages[r->deps[k]].name, x);
        }
        cJSON_AddItemToArray(arr, row);
    }
    dk__study_compare_json(j, s, r);
    cJSON *times = cJSON_AddObjectToObject(j, "stage_seconds");
    for (int i = 0; i < s->nstages; i++)
        if (&s->stages[i] != r) cJSON_AddNumberToObject(times, s->stages[i].dir, s->stages[i].seconds);
    return j;
}

typedef void (*writer_fn)(dk_sbuf *, const dk_study *, const study_stage *, const int *, int);

static dk_status write_text(const char *path, writer_fn fn, const dk_study *s,
                            const study_stage *r, const int *rows, int n) {
    dk_sbuf b = {0};
    fn(&b, s, r, rows, n);
    dk_status st = dk_sb_write_file(&b, path);
    dk_sb_free(&b);
    return st;
}

dk_status dk__study_run_report(dk_study *s, study_stage *r, cJSON *result, FILE *out) {
    (void)out; /* the runner prints report.md once every stage is done */
    int rows[STUDY_MAX_STAGES];
    int n = collect_rows(s, r, rows);
    char md[STUDY_PATH_MAX], html[STUDY_PATH_MAX], js[STUDY_PATH_MAX];
    dk__study_path(md, sizeof md, s, r->name, "report.md");
    dk__study_path(html, sizeof html, s, r->name, "report.html");
    dk__study_path(js, sizeof js, s, r->name, "report.json");
    dk_status st = write_text(md, write_md, s, r, rows, n);
    if (st == DK_OK) st = write_text(html, write_html, s, r, rows, n);
    cJSON *j = st == DK_OK ? table_json(s, r, rows, n) : NULL;
    if (j) st = dk_json_write_file(j, js);
    cJSON_Delete(j);
    cJSON_AddStringToObject(result, "report", html);
    cJSON_AddNumberToObject(result, "rows", n);
    return st;
}
