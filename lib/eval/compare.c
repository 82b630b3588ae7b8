/*
 * dakd eval --compare RUN_A RUN_B: the paired comparison of two earlier evaluations.
 *
 * Each run's cases.csv is read back (its numbers were printed to round-trip, so the values
 * are the run's doubles). A side may also be a study eval stage's model folder
 * (RUN_DIR/EVAL_STAGE/MODEL), whose seed<N>/report/cases.csv are the model's runs at its
 * seeds: each row's values are averaged over them (seed folders in name order; NaN when a
 * seed's value is), the study table's convention of averaging a case over the seeds before
 * pairing; every seed must hold the same rows. Rows are paired by (case, label); a row
 * present in one run only, or twice in one run, is refused with the rows named. For every
 * label and metric column: d_i = B_i − A_i over the pairs (NaN when either value is NaN);
 * n = finite differences; mean_a, mean_b, mean and median of d over those n pairs; the 95 %
 * percentile bootstrap interval of the mean difference over the pairs (dk_bootstrap_mean_ci,
 * DK_BOOT_RESAMPLES from DK_BOOT_SEED, as the study table); Wilcoxon signed-rank test of d
 * (dk_wilcoxon, as scipy.stats.wilcoxon 1.10 with its defaults) giving W, the pairs used
 * and p; "favours" names the better run when p < 0.05. Written as compare.csv,
 * compare.json, compare.md and compare.html (the latter with box plots of d per label).
 * Both runs must share a distance unit (their volume columns say which: vol_*_mm3 or
 * vol_*_voxels); a run in mm against one in voxels is refused.
 */
#include "report_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *case_id;
    int label;
    double *v; /* (n metric columns) */
} row;

typedef struct {
    const char *run, *path;
    row *rows;
    int n, cap;
    dk_distance_unit unit; /* from the volume columns' names */
    int n_runs;            /* the runs averaged: 1, or the seeds of a study model folder */
} table;

typedef struct {
    int label;
    const dk_metric_column *col;
    dk_distance_unit unit; /* of both runs: the column's name in the outputs */
    int n_pairs, n, n_nan, n_used; /* pairs; finite differences; NaN; Wilcoxon's */
    double mean_a, mean_b, mean_d, median_d, ci_lo, ci_hi, w, p;
    double *d; /* (pairs) differences, owned */
} result;

static void table_free(table *t) {
    for (int i = 0; i < t->n; i++) free(t->rows[i].case_id), free(t->rows[i].v);
    free(t->rows);
    t->rows = NULL, t->n = t->cap = 0;
}

static char *slurp(const char *path, dk_status *st) {
    char *text = NULL;
    size_t len = 0;
    *st = dk_read_file(&text, &len, path);
    if (*st == DK_OK && len == 0) {
        free(text);
        text = NULL;
        *st = dk_fail(DK_ERR_FORMAT, "%s: empty file", path);
    }
    return text;
}

/* Split the CSV record starting at *p into fields (RFC 4180 quotes), advancing *p past its
 * line break. Fields are written NUL-terminated into the text itself (unquoting shrinks). */
static int csv_record(char **p, char **fields, int max) {
    int n = 0;
    char *s = *p;
    for (;;) {
        char *out = s, *start = s;
        if (*s == '"') {
            s++;
            while (*s && !(*s == '"' && s[1] != '"')) {
                if (*s == '"') s++;
                *out++ = *s++;
            }
            if (*s == '"') s++;
        } else {
            while (*s && *s != ',' && *s != '\n' && *s != '\r') *out++ = *s++;
        }
        char sep = *s;
        *out = '\0';
        if (n < max) fields[n] = start;
        n++;
        if (sep == ',') {
            s++;
            continue;
        }
        if (sep == '\r' && s[1] == '\n') s += 2; /* *s itself now holds the NUL */
        else if (sep) s++;
        *p = s;
        return n;
    }
}

static dk_status parse_number(double *x, const char *s, const char *path, int line,
                              const char *col) {
    char *end;
    *x = strtod(s, &end);
    if (end == s || *end)
        return dk_fail(DK_ERR_FORMAT, "%s:%d: %s: '%s' is not a number", path, line, col, s);
    return DK_OK;
}

/* Column index of each metric (and case, label) from the header, which names the metrics
 * in the run's unit (dk_metric_column_name): t->unit is the one its volumes are in. */
static dk_status header_map(int *map, table *t, char **f, int nf, const dk_metric_column *cols,
                            int nc, const char *path) {
    t->unit = DK_UNIT_MM;
    for (int j = 0; j < nc; j++) {
        const char *vox = dk_metric_column_name(&cols[j], DK_UNIT_VOXELS);
        for (int i = 0; vox != cols[j].name && i < nf; i++)
            if (strcmp(f[i], vox) == 0) t->unit = DK_UNIT_VOXELS;
    }
    for (int j = -2; j < nc; j++) {
        const char *want = j == -2   ? "case"
                           : j == -1 ? "label"
                                     : dk_metric_column_name(&cols[j], t->unit);
        map[j + 2] = -1;
        for (int i = 0; i < nf; i++)
            if (strcmp(f[i], want) == 0) map[j + 2] = i;
        if (map[j + 2] < 0)
            return dk_fail(DK_ERR_FORMAT, "%s: header: no column '%s' (not a dakd eval "
                           "cases.csv?)", path, want);
    }
    return DK_OK;
}

static dk_status add_row(table *t, char **f, const int *map, int nc, int line) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        row *r = realloc(t->rows, (size_t)cap * sizeof *r);
        if (!r) return dk_fail(DK_ERR_NOMEM, "%s: rows", t->path);
        t->rows = r, t->cap = cap;
    }
    row *r = &t->rows[t->n];
    r->case_id = strdup(f[map[0]]);
    r->v = malloc((size_t)nc * sizeof *r->v);
    t->n++;
    if (!r->case_id || !r->v) return dk_fail(DK_ERR_NOMEM, "%s: rows", t->path);
    double lab;
    dk_status st = parse_number(&lab, f[map[1]], t->path, line, "label");
    if (st == DK_OK && (lab != floor(lab) || lab < 0 || lab > 1e9))
        st = dk_fail(DK_ERR_FORMAT, "%s:%d: label %s", t->path, line, f[map[1]]);
    r->label = st == DK_OK ? (int)lab : 0;
    int nc_all;
    const dk_metric_column *cols = dk_metric_columns(&nc_all);
    for (int j = 0; st == DK_OK && j < nc; j++)
        st = parse_number(&r->v[j], f[map[j + 2]], t->path, line, cols[j].name);
    return st;
}

static dk_status read_table(table *t, const char *run, char *path, size_t pn) {
    memset(t, 0, sizeof *t);
    t->run = run;
    dk_status st = dk_rep_join(path, pn, run, "cases.csv");
    if (st != DK_OK) return st;
    t->path = path;
    char *text = slurp(path, &st), *p = text;
    if (!text) return st;
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    enum { MAXF = 64 };
    char *f[MAXF];
    int map[MAXF + 2];
    int nf = csv_record(&p, f, MAXF);
    st = nf > MAXF ? dk_fail(DK_ERR_FORMAT, "%s: %d columns", path, nf)
                   : header_map(map, t, f, nf, cols, nc, path);
    for (int line = 2; st == DK_OK && *p; line++) {
        int k = csv_record(&p, f, MAXF);
        if (k == 1 && !f[0][0]) continue; /* blank line */
        if (k != nf) st = dk_fail(DK_ERR_FORMAT, "%s:%d: %d fields, the header has %d", path,
                                  line, k, nf);
        else st = add_row(t, f, map, nc, line);
    }
    if (st == DK_OK && t->n == 0) st = dk_fail(DK_ERR_FORMAT, "%s: no rows", path);
    free(text);
    return st;
}

static int find_row(const table *t, const row *r) {
    for (int i = 0; i < t->n; i++)
        if (t->rows[i].label == r->label && strcmp(t->rows[i].case_id, r->case_id) == 0)
            return i;
    return -1;
}

/* pair[i] = row of b matching row i of a; refuses duplicates and unmatched rows. */
static dk_status pair_rows(int *pair, const table *a, const table *b) {
    for (int s = 0; s < 2; s++) {
        const table *t = s ? b : a;
        for (int i = 0; i < t->n; i++)
            if (find_row(t, &t->rows[i]) != i)
                return dk_fail(DK_ERR_FORMAT, "%s: case %s label %d appears twice", t->path,
                               t->rows[i].case_id, t->rows[i].label);
    }
    dk_sbuf m = {0};
    int missing = 0;
    for (int s = 0; s < 2; s++) {
        const table *t = s ? b : a, *u = s ? a : b;
        for (int i = 0; i < t->n; i++) {
            int j = find_row(u, &t->rows[i]);
            if (s == 0) pair[i] = j;
            if (j >= 0) continue;
            if (missing < 20)
                dk_sb_printf(&m, "%s%s label %d only in %s", missing ? "; " : "",
                             t->rows[i].case_id, t->rows[i].label, t->run);
            missing++;
        }
    }
    dk_status st = DK_OK;
    if (missing)
        st = dk_fail(DK_ERR_ARG, "compare: the runs evaluated different cases or labels (%d "
                     "unpaired rows): %s%s", missing, m.s ? m.s : "", missing > 20 ? "; ..." : "");
    dk_sb_free(&m);
    return st;
}

/* "seed" and digits: a study stage's folder of one seed. */
static int seed_entry(const struct dirent *e) {
    const char *s = e->d_name;
    if (strncmp(s, "seed", 4) != 0 || !s[4]) return 0;
    for (s += 4; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Row values summed into t from u, paired by (case, label); u's rows must be t's. */
static dk_status add_seed(table *t, const table *u) {
    if (u->unit != t->unit)
        return dk_fail(DK_ERR_FORMAT, "%s is in %s and %s in %s (distance_unit): one model's "
                       "seeds must share a unit", t->path, dk_distance_unit_names[t->unit],
                       u->path, dk_distance_unit_names[u->unit]);
    int *pair = malloc((size_t)t->n * sizeof *pair), nc;
    if (!pair) return dk_fail(DK_ERR_NOMEM, "compare: %d rows", t->n);
    dk_metric_columns(&nc);
    dk_status st = pair_rows(pair, t, u);
    if (st != DK_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", dk_last_error());
        st = dk_fail(st, "%s: not the rows of %s (one model's seeds must score the same "
                     "cases): %s", u->path, t->path, why);
    }
    for (int i = 0; st == DK_OK && i < t->n; i++)
        for (int j = 0; j < nc; j++) t->rows[i].v[j] += u->rows[pair[i]].v[j];
    free(pair);
    return st;
}

/* One side: an eval folder (RUN/cases.csv), else a study eval stage's model folder, its
 * seed<N>/report/cases.csv averaged row by row. path gets the (first) cases.csv read. On
 * failure t holds nothing. */
static dk_status read_side(table *t, const char *run, char *path, size_t pn) {
    dk_status st = dk_rep_join(path, pn, run, "cases.csv");
    if (st != DK_OK) return st;
    if (access(path, F_OK) == 0 || errno != ENOENT) {
        st = read_table(t, run, path, pn);
        t->n_runs = 1;
        if (st != DK_OK) table_free(t);
        return st;
    }
    struct dirent **ent = NULL;
    int ne = scandir(run, &ent, seed_entry, by_name);
    if (ne < 0) return dk_fail(DK_ERR_IO, "%s: cannot list: %s", run, strerror(errno));
    if (ne == 0) {
        free(ent);
        return dk_fail(DK_ERR_ARG, "%s: no cases.csv and no seed*/report/cases.csv (neither "
                       "an eval output folder nor a study eval stage's model folder)", run);
    }
    memset(t, 0, sizeof *t);
    char sub[4096], spath[4096];
    for (int k = 0; k < ne; k++) {
        int len = snprintf(sub, sizeof sub, "%s/%s/report", run, ent[k]->d_name);
        if (st == DK_OK && (len < 0 || (size_t)len >= sizeof sub))
            st = dk_fail(DK_ERR_ARG, "%s/%s: path too long", run, ent[k]->d_name);
        if (st == DK_OK && k == 0) {
            st = read_table(t, sub, path, pn);
            t->run = run, t->n_runs = 1; /* sub is rewritten for the next seed */
        } else if (st == DK_OK) {
            table u;
            st = read_table(&u, sub, spath, sizeof spath);
            if (st == DK_OK) st = add_seed(t, &u), t->n_runs++;
            table_free(&u);
        }
        free(ent[k]);
    }
    free(ent);
    if (st != DK_OK) return table_free(t), st;
    int nc;
    dk_metric_columns(&nc);
    for (int i = 0; i < t->n; i++)
        for (int j = 0; j < nc; j++) t->rows[i].v[j] /= t->n_runs;
    return DK_OK;
}

/* Fill one result over the rows of a with label `label`. */
static dk_status compute(result *res, const table *a, const table *b, const int *pair, int j) {
    double sa = 0, sb = 0, sd = 0;
    int n = 0, count = 0;
    res->d = malloc((size_t)a->n * sizeof *res->d);
    double *fin = malloc((size_t)a->n * sizeof *fin);
    if (!res->d || !fin) return free(fin), dk_fail(DK_ERR_NOMEM, "compare: differences");
    for (int i = 0; i < a->n; i++) {
        if (a->rows[i].label != res->label) continue;
        double x = a->rows[i].v[j], y = b->rows[pair[i]].v[j], d = y - x;
        res->d[count++] = isfinite(x) && isfinite(y) ? d : NAN;
        if (!(isfinite(x) && isfinite(y))) continue;
        sa += x, sb += y, sd += d;
        fin[n++] = d;
    }
    res->n_pairs = count;
    res->n = n;
    res->n_nan = count - n;
    res->mean_a = n ? sa / n : NAN;
    res->mean_b = n ? sb / n : NAN;
    res->mean_d = n ? sd / n : NAN;
    dk_bootstrap_mean_ci(&res->ci_lo, &res->ci_hi, fin, 1, n, DK_BOOT_RESAMPLES, 0.95,
                         DK_BOOT_SEED);
    dk_sort_doubles(fin, n);
    res->median_d = n ? dk_percentile_sorted(fin, n, 50) : NAN;
    free(fin);
    dk_wilcoxon(res->d, count, &res->w, &res->p, &res->n_used);
    return DK_OK;
}

/* ---------------------------------------------------------------- writers */

/* The run the metric favours when the test rejects equality at 5 % (by the sign of the
 * median difference and the metric's direction); "" otherwise. */
static const char *favours(const result *r) {
    if (!(r->p < 0.05) || r->median_d == 0 || isnan(r->median_d)) return "";
    return (r->median_d > 0) == (r->col->higher_better != 0) ? "B" : "A";
}

static dk_status write_csv(const result *res, int nres, const char *dir) {
    dk_sbuf b = {0};
    dk_sb_puts(&b, "label,metric,n_pairs,n,n_nan,mean_a,mean_b,mean_diff,mean_diff_ci_lo,"
                   "mean_diff_ci_hi,median_diff,wilcoxon_w,wilcoxon_n,p_value,higher_better,"
                   "favours\n");
    for (int i = 0; i < nres; i++) {
        const result *r = &res[i];
        dk_sb_printf(&b, "%d,%s,%d,%d,%d,", r->label, dk_metric_column_name(r->col, r->unit),
                     r->n_pairs, r->n, r->n_nan);
        const double v[7] = {r->mean_a, r->mean_b, r->mean_d, r->ci_lo, r->ci_hi, r->median_d,
                             r->w};
        for (int k = 0; k < 7; k++) dk_sb_num(&b, v[k]), dk_sb_puts(&b, ",");
        dk_sb_printf(&b, "%d,", r->n_used);
        dk_sb_num(&b, r->p);
        dk_sb_printf(&b, ",%d,%s\n", r->col->higher_better ? 1 : 0, favours(r));
    }
    char path[4096];
    dk_status st = dk_rep_join(path, sizeof path, dir, "compare.csv");
    if (st == DK_OK) st = dk_sb_write_file(&b, path);
    dk_sb_free(&b);
    return st;
}

static const char test_text[] =
    "differences d = B - A per (case, label) pair; Wilcoxon signed-rank test, two-sided, "
    "zero differences dropped (scipy zero_method='wilcox'); exact p when there are at most "
    "50 pairs and no zero difference, else the normal approximation with tie correction and "
    "no continuity correction (scipy.stats.wilcoxon 1.10 defaults); W = min(W+, W-); NaN "
    "pairs left out; 95 % interval of the mean difference: percentile bootstrap over the "
    "pairs, 10000 resamples";

static dk_status write_json(const result *res, int nres, const table *a, const table *b,
                            const char *dir) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tool", "dakd eval --compare");
    cJSON_AddStringToObject(o, "version", dk_version_string());
    cJSON_AddStringToObject(o, "run_a", a->run);
    cJSON_AddStringToObject(o, "run_b", b->run);
    cJSON_AddNumberToObject(o, "runs_averaged_a", a->n_runs);
    cJSON_AddNumberToObject(o, "runs_averaged_b", b->n_runs);
    cJSON_AddStringToObject(o, "test", test_text);
    cJSON_AddStringToObject(o, "hd95_definition", DK_EVAL_HD95_NAME);
    cJSON *arr = cJSON_AddArrayToObject(o, "results");
    for (int i = 0; i < nres; i++) {
        const result *r = &res[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "label", r->label);
        cJSON_AddStringToObject(e, "metric", dk_metric_column_name(r->col, r->unit));
        cJSON_AddNumberToObject(e, "n_pairs", r->n_pairs);
        cJSON_AddNumberToObject(e, "n", r->n);
        cJSON_AddNumberToObject(e, "n_nan", r->n_nan);
        dk_json_add_number(e, "mean_a", r->mean_a);
        dk_json_add_number(e, "mean_b", r->mean_b);
        dk_json_add_number(e, "mean_diff", r->mean_d);
        dk_json_add_number(e, "mean_diff_ci_lo", r->ci_lo);
        dk_json_add_number(e, "mean_diff_ci_hi", r->ci_hi);
        dk_json_add_number(e, "median_diff", r->median_d);
        dk_json_add_number(e, "wilcoxon_w", r->w);
        cJSON_AddNumberToObject(e, "wilcoxon_n", r->n_used);
        dk_json_add_number(e, "p_value", r->p);
        cJSON_AddBoolToObject(e, "higher_better", r->col->higher_better != 0);
        cJSON_AddStringToObject(e, "favours", favours(r));
        cJSON_AddItemToArray(arr, e);
    }
    char path[4096];
    dk_status st = dk_rep_join(path, sizeof path, dir, "compare.json");
    if (st == DK_OK) st = dk_json_write_file(o, path);
    cJSON_Delete(o);
    return st;
}

/* The rows of the Markdown and HTML tables: "%.4g" cells, "–" for NaN. */
static void cell(dk_sbuf *b, double x, const char *pre, const char *post) {
    dk_sb_puts(b, pre);
    if (isfinite(x)) dk_sb_printf(b, "%.4g", x);
    else dk_sb_puts(b, "–");
    dk_sb_puts(b, post);
}

static void pval(dk_sbuf *b, double p, const char *pre, const char *post) {
    dk_sb_puts(b, pre);
    if (isnan(p)) dk_sb_puts(b, "–");
    else if (p < 1e-4) dk_sb_printf(b, "%.2e", p);
    else dk_sb_printf(b, "%.4f", p);
    dk_sb_puts(b, post);
}

/* The numbers of one result row, each cell between `open` and `close`: means, the interval,
 * the median, W (with_w) and p. */
static void row_cells(dk_sbuf *b, const result *r, const char *open, const char *close,
                      int with_w) {
    cell(b, r->mean_a, open, close);
    cell(b, r->mean_b, open, close);
    cell(b, r->mean_d, open, close);
    dk_sb_puts(b, open);
    cell(b, r->ci_lo, "[", ", ");
    cell(b, r->ci_hi, "", "]");
    dk_sb_puts(b, close);
    cell(b, r->median_d, open, close);
    if (with_w) cell(b, r->w, open, close);
    pval(b, r->p, open, close);
}

/* " (mean of N seed runs)" for a side averaged over seeds, else "". */
static const char *runs_note(char *buf, size_t n, const table *t) {
    if (t->n_runs == 1) return "";
    snprintf(buf, n, " (mean of %d seed runs)", t->n_runs);
    return buf;
}

static dk_status write_md(const result *res, int nres, const table *a, const table *b,
                          const char *title, const char *dir) {
    dk_sbuf s = {0};
    char na[48], nb[48];
    dk_sb_printf(&s, "# %s\n\nA = `%s`%s, B = `%s`%s; %s.\n\n", title, a->run,
                 runs_note(na, sizeof na, a), b->run, runs_note(nb, sizeof nb, b), test_text);
    dk_sb_puts(&s, "| label | metric | n | mean A | mean B | mean B−A | 95 % CI | median B−A | "
                   "p | favours (p < 0.05) |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nres; i++) {
        const result *r = &res[i];
        dk_sb_printf(&s, "| %d | %s | %d |", r->label, dk_metric_column_name(r->col, r->unit),
                     r->n);
        row_cells(&s, r, " ", " |", 0);
        dk_sb_printf(&s, " %s |\n", favours(r));
    }
    char path[4096];
    dk_status st = dk_rep_join(path, sizeof path, dir, "compare.md");
    if (st == DK_OK) st = dk_sb_write_file(&s, path);
    dk_sb_free(&s);
    return st;
}

static void html_plots(dk_sbuf *s, const result *res, int nres, int n_labels) {
    dk_sb_puts(s, "<h2>Differences B − A</h2><div class='plots'>\n");
    for (int i = 0; i + n_labels <= nres; i += n_labels) {
        if (!strncmp(res[i].col->name, "vol_", 4) && strcmp(res[i].col->name, "vol_sim"))
            continue;
        const double *vals[64];
        const char *names[64];
        char nbuf[64][24];
        int counts[64], ng = n_labels < 64 ? n_labels : 64;
        for (int k = 0; k < ng; k++) {
            snprintf(nbuf[k], sizeof nbuf[k], "label %d", res[i + k].label);
            names[k] = nbuf[k], vals[k] = res[i + k].d, counts[k] = res[i + k].n_pairs;
        }
        char t[64];
        snprintf(t, sizeof t, "%s: B − A", dk_metric_column_name(res[i].col, res[i].unit));
        dk_svg_boxplot(s, t, names, vals, counts, ng);
    }
    dk_sb_puts(s, "</div>\n");
}

static dk_status write_html(const result *res, int nres, int n_labels, const table *a,
                            const table *b, const char *title, const char *dir) {
    dk_sbuf s = {0};
    char na[48], nb[48];
    dk_sb_puts(&s, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>");
    dk_sb_html(&s, title);
    dk_sb_puts(&s, "</title><style>body{font:14px/1.4 system-ui,sans-serif;margin:24px}"
                   "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;"
                   "padding:2px 6px;text-align:right}th{background:#f0f0f0}.s{text-align:left}"
                   ".plots{display:flex;flex-wrap:wrap;gap:8px}.box text{font:11px sans-serif}"
                   ".box text.t{font-weight:bold}tr.sig td{background:#eef7ee}</style></head>\n"
                   "<body>\n<h1>");
    dk_sb_html(&s, title);
    dk_sb_puts(&s, "</h1>\n<p>A = <code>");
    dk_sb_html(&s, a->run);
    dk_sb_puts(&s, "</code>");
    dk_sb_html(&s, runs_note(na, sizeof na, a));
    dk_sb_puts(&s, ", B = <code>");
    dk_sb_html(&s, b->run);
    dk_sb_puts(&s, "</code>");
    dk_sb_html(&s, runs_note(nb, sizeof nb, b));
    dk_sb_puts(&s, ".<br>");
    dk_sb_html(&s, test_text);
    dk_sb_puts(&s, ". Rows with p &lt; 0.05 are shaded.</p>\n<table><thead><tr><th class='s'>"
                   "label</th><th class='s'>metric</th><th>n</th><th>mean A</th><th>mean B</th>"
                   "<th>mean B−A</th><th>95 % CI</th><th>median B−A</th><th>W</th><th>p</th>"
                   "<th>favours</th>"
                   "</tr></thead><tbody>\n");
    for (int i = 0; i < nres; i++) {
        const result *r = &res[i];
        dk_sb_printf(&s, "<tr%s><td class='s'>%d</td><td class='s'>%s</td><td>%d</td>",
                     r->p < 0.05 ? " class='sig'" : "", r->label,
                     dk_metric_column_name(r->col, r->unit), r->n);
        row_cells(&s, r, "<td>", "</td>", 1);
        dk_sb_printf(&s, "<td>%s</td></tr>\n", favours(r));
    }
    dk_sb_puts(&s, "</tbody></table>\n");
    html_plots(&s, res, nres, n_labels);
    dk_sb_puts(&s, "<script>document.body.setAttribute('data-report-ready','1');</script>\n"
                   "</body></html>\n");
    char path[4096];
    dk_status st = dk_rep_join(path, sizeof path, dir, "compare.html");
    if (st == DK_OK) st = dk_sb_write_file(&s, path);
    dk_sb_free(&s);
    return st;
}

/* ---------------------------------------------------------------- the comparison */

/* Distinct labels of the table, ascending, into labels (t->n capacity). */
static int table_labels(const table *t, int *labels) {
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        int k = 0;
        while (k < n && labels[k] < t->rows[i].label) k++;
        if (k < n && labels[k] == t->rows[i].label) continue;
        memmove(labels + k + 1, labels + k, (size_t)(n - k) * sizeof *labels);
        labels[k] = t->rows[i].label;
        n++;
    }
    return n;
}

dk_status dk_rep_compare(const char *run_a, const char *run_b, const char *dir,
                         const char *title) {
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    table a, b;
    char pa[4096], pb[4096];
    int *pair = NULL, *labels = NULL, nl = 0, nres = 0;
    result *res = NULL;
    dk_status st = read_side(&a, run_a, pa, sizeof pa);
    if (st != DK_OK) return st;
    st = read_side(&b, run_b, pb, sizeof pb);
    if (st != DK_OK) goto out_a;
    pair = malloc((size_t)a.n * sizeof *pair);
    labels = malloc((size_t)a.n * sizeof *labels);
    if (!pair || !labels) st = dk_fail(DK_ERR_NOMEM, "compare: %d rows", a.n);
    if (st == DK_OK && a.unit != b.unit)
        st = dk_fail(DK_ERR_FORMAT, "%s is in %s and %s in %s (distance_unit): their distances "
                     "and volumes do not compare", pa, dk_distance_unit_names[a.unit], pb,
                     dk_distance_unit_names[b.unit]);
    if (st == DK_OK) st = pair_rows(pair, &a, &b);
    if (st == DK_OK) {
        nl = table_labels(&a, labels);
        res = calloc((size_t)nl * (size_t)nc, sizeof *res);
        if (!res) st = dk_fail(DK_ERR_NOMEM, "compare: results");
    }
    /* results ordered metric-major, label-minor (the HTML plots take one metric's labels) */
    for (int j = 0; st == DK_OK && j < nc; j++)
        for (int k = 0; st == DK_OK && k < nl; k++) {
            result *r = &res[nres++];
            r->label = labels[k];
            r->col = &cols[j];
            r->unit = a.unit;
            st = compute(r, &a, &b, pair, j);
        }
    if (st == DK_OK) st = write_csv(res, nres, dir);
    if (st == DK_OK) st = write_json(res, nres, &a, &b, dir);
    if (st == DK_OK) st = write_md(res, nres, &a, &b, title, dir);
    if (st == DK_OK) st = write_html(res, nres, nl, &a, &b, title, dir);
    for (int i = 0; i < nres; i++) free(res[i].d);
    free(res), free(pair), free(labels);
    table_free(&b);
out_a:
    table_free(&a);
    return st;
}
