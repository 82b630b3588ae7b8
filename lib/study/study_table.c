/*
 * The study table with intervals (dakd/study.h, "the study table"; numbers from
 * study_stats.c), written when the study has a seeds list or a baseline: per model and
 * eval set the Dice over seeds with its interval, HD95, and the paired difference to the
 * baseline with its interval, the Wilcoxon p and "not resolved" in words when the interval
 * holds 0. Markdown (printed at the end of dakd run), HTML and JSON.
 */
#include "study_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *label_of(const study_stage *t) {
    return t->f.label[0] ? t->f.label : t->name;
}

static void seeds_text(dk_sbuf *b, const study_cell *c) {
    for (int k = 0; k < c->n_seeds; k++)
        dk_sb_printf(b, "%s%lld", k ? ", " : "", (long long)c->seeds[k]);
}

/* "+0.0410 [+0.0240, +0.0590]" (", not resolved" when the interval holds 0), or what
 * stands in its place. */
static void diff_text(char *buf, size_t n, const dk_study *s, const study_cell *c,
                      const char *name) {
    if (!strcmp(name, s->set.baseline)) snprintf(buf, n, "baseline");
    else if (!c->has_diff) snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%+.4f [%+.4f, %+.4f]%s", c->diff, c->diff_lo, c->diff_hi,
                 c->resolved ? "" : ", not resolved");
}

static void dice_text(char *buf, size_t n, const study_cell *c) {
    if (!c->ok) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.4f [%.4f, %.4f]", c->dice, c->lo, c->hi);
}

static void hd_text(char *buf, size_t n, const study_cell *c) {
    if (!c->ok || !isfinite(c->hd95)) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.2f", c->hd95);
}

static void p_text(char *buf, size_t n, const study_cell *c) {
    if (!c->has_diff || !isfinite(c->p)) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.3g", c->p);
}

const char *dk__study_hd_unit(const study_stage *e) {
    return e->f.distance_unit == DK_UNIT_VOXELS ? " (voxels)" : "";
}

const char *dk__study_hd_units(const dk_study *s, const study_stage *r) {
    int vox = 0;
    for (int j = 0; j < r->ndeps; j++)
        vox += s->stages[r->deps[j]].f.distance_unit == DK_UNIT_VOXELS;
    return !vox ? "mm" : vox == r->ndeps ? "voxels" : "mm; voxels where its column says so";
}

static void method_text(dk_sbuf *b, const dk_study *s, const study_stage *r) {
    dk_sb_printf(b, "Dice: mean over seeds of the case-mean foreground Dice [95 %% percentile "
                 "bootstrap interval over cases and seeds, 10 000 resamples, fixed seed]; HD95 "
                 "(%s): mean over seeds of the case mean (pooled 95th percentile, MedPy).",
                 dk__study_hd_units(s, r));
    if (s->set.baseline[0])
        dk_sb_printf(b, " Δ: paired difference to %s over cases (each case's Dice averaged "
                     "over seeds first) [95 %% percentile bootstrap interval over cases]; p: "
                     "two-sided Wilcoxon signed-rank over cases, scipy.stats.wilcoxon's "
                     "defaults (exact for <= 50 cases without zero differences, else the "
                     "normal approximation with the tie correction, zeros dropped). \"not "
                     "resolved\": the interval contains 0.", s->set.baseline);
}

void dk__study_table_md(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows,
                        int n) {
    method_text(b, s, r);
    dk_sb_puts(b, "\n\n");
    dk__study_eval_sets_md(b, s, r);
    int base = s->set.baseline[0] != 0;
    dk_sb_puts(b, "\n| model | stage | params | seeds |");
    for (int j = 0; j < r->ndeps; j++) {
        const char *e = s->stages[r->deps[j]].name;
        dk_sb_printf(b, " Dice %s [95 %% CI] | HD95 %s%s |", e, e,
                     dk__study_hd_unit(&s->stages[r->deps[j]]));
        if (base) dk_sb_printf(b, " Δ %s [95 %% CI] | p %s |", e, e);
    }
    dk_sb_puts(b, " ms/image | train s |\n|---|---|---:|---|");
    for (int j = 0; j < r->ndeps; j++) dk_sb_puts(b, base ? "---:|---:|---:|---:|" : "---:|---:|");
    dk_sb_puts(b, "---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const study_stage *t = &s->stages[rows[i]];
        study_cell c;
        dk_sb_printf(b, "| %s | %s | %.0f | ", label_of(t), t->name, dk__study_params(t));
        dk__study_cell(&c, s, &s->stages[r->deps[0]], t->name);
        seeds_text(b, &c);
        dk_sb_puts(b, " |");
        for (int j = 0; j < r->ndeps; j++) {
            char d[96], h[32], x[128], p[32];
            dk__study_cell(&c, s, &s->stages[r->deps[j]], t->name);
            dice_text(d, sizeof d, &c), hd_text(h, sizeof h, &c);
            diff_text(x, sizeof x, s, &c, t->name), p_text(p, sizeof p, &c);
            dk_sb_printf(b, " %s | %s |", d, h);
            if (base) dk_sb_printf(b, " %s | %s |", x, p);
        }
        dk_sb_printf(b, " %.1f | %.1f |\n", dk__study_ms(s, r, t), dk__study_seconds(s, t));
    }
}

void dk__study_table_html(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows,
                          int n) {
    int base = s->set.baseline[0] != 0;
    dk_sb_puts(b, "<p>");
    method_text(b, s, r);
    dk_sb_puts(b, " Under each Dice, one link per seed to that run's per-case report.</p>\n"
                  "<table><tr><th>model</th><th>stage</th><th>params</th><th>seeds</th>");
    for (int j = 0; j < r->ndeps; j++) {
        const study_stage *e = &s->stages[r->deps[j]];
        dk_sb_printf(b, "<th>Dice %s<br>(%s/%s)</th><th>HD95 %s%s</th>", e->name, e->f.domain,
                     e->f.split[0] ? e->f.split : "any", e->name, dk__study_hd_unit(e));
        if (base) dk_sb_printf(b, "<th>&Delta; %s</th><th>p %s</th>", e->name, e->name);
    }
    dk_sb_puts(b, "<th>ms/image</th><th>train s</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const study_stage *t = &s->stages[rows[i]];
        study_cell c;
        dk__study_cell(&c, s, &s->stages[r->deps[0]], t->name);
        dk_sb_puts(b, "<tr><td>");
        dk_sb_html(b, label_of(t));
        dk_sb_printf(b, "</td><td>%s</td><td>%.0f</td><td>", t->name, dk__study_params(t));
        seeds_text(b, &c);
        dk_sb_puts(b, "</td>");
        for (int j = 0; j < r->ndeps; j++) {
            const study_stage *e = &s->stages[r->deps[j]];
            char d[96], h[32], x[128], p[32];
            dk__study_cell(&c, s, e, t->name);
            dice_text(d, sizeof d, &c), hd_text(h, sizeof h, &c);
            diff_text(x, sizeof x, s, &c, t->name), p_text(p, sizeof p, &c);
            dk_sb_printf(b, "<td>%s<br>", d);
            for (int k = 0; k < c.n_seeds; k++) {
                const study_stage *run = t + k; /* the runs of t are consecutive */
                dk_sb_printf(b, " <a href=\"../%s/%s/report/report.html\" title=\"Dice %.4f\">"
                             "%s%lld</a>", e->name, run->dir, c.seed_dice[k],
                             run->seeded ? "s" : "run ", (long long)run->seed);
            }
            dk_sb_printf(b, "</td><td>%s</td>", h);
            if (base) dk_sb_printf(b, "<td>%s</td><td>%s</td>", x, p);
        }
        dk_sb_printf(b, "<td>%.1f</td><td>%.1f</td></tr>\n", dk__study_ms(s, r, t),
                     dk__study_seconds(s, t));
    }
    dk_sb_puts(b, "</table>\n");
}

/* The cell's numbers under a row's eval entry of report.json. */
void dk__study_cell_json(cJSON *o, const dk_study *s, const study_stage *e, const char *name) {
    study_cell c;
    dk__study_cell(&c, s, e, name);
    if (!c.ok) return;
    cJSON *j = cJSON_AddObjectToObject(o, "over_seeds");
    cJSON *seeds = cJSON_AddArrayToObject(j, "seeds"), *sd = cJSON_AddArrayToObject(j, "seed_dice");
    for (int k = 0; k < c.n_seeds; k++) {
        cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)c.seeds[k]));
        cJSON_AddItemToArray(sd, cJSON_CreateNumber(c.seed_dice[k]));
    }
    dk_json_add_number(j, "dice", c.dice);
    dk_json_add_number(j, "dice_ci_lo", c.lo);
    dk_json_add_number(j, "dice_ci_hi", c.hi);
    dk_json_add_number(j, "hd95", c.hd95);
    if (!c.has_diff) return;
    cJSON_AddStringToObject(j, "baseline", s->set.baseline);
    dk_json_add_number(j, "diff", c.diff);
    dk_json_add_number(j, "diff_ci_lo", c.diff_lo);
    dk_json_add_number(j, "diff_ci_hi", c.diff_hi);
    dk_json_add_number(j, "wilcoxon_p", c.p);
    cJSON_AddBoolToObject(j, "resolved", c.resolved);
}

/* ------------------------------------------------------- [study] compare */

/* The cell of pair i on eval stage e; 0 when the pair has no difference there. */
static int pair_cell(study_cell *c, const dk_study *s, const study_stage *e, const char *a,
                     const char *b) {
    dk__study_cell_vs(c, s, e, a, b);
    return c->has_diff;
}

static int compare_pairs(char a[][STUDY_NAME_MAX], char b[][STUDY_NAME_MAX], const dk_study *s) {
    char bad[1024];
    int n = dk__study_compare_list(a, b, STUDY_MAX_COMPARE, s->set.compare, bad, sizeof bad);
    return n > 0 ? n : 0; /* checked when the study was read */
}

static const char compare_method[] =
    "Paired comparisons (`[study] compare`): Δ = first − second over cases (each case's Dice "
    "averaged over the model's seeds first) [95 % percentile bootstrap interval over cases]; "
    "p: two-sided Wilcoxon signed-rank over cases, as in the table; \"not resolved\": the "
    "interval contains 0. Per seed: the difference of the case-mean Dice at each seed on its "
    "own (a model with one seed against each seed of the other), which the interval over cases "
    "does not show; \"signs differ\": not every seed's difference has the sign of Δ.";

/* "42: +0.0281, 7: +0.0304" (", signs differ" when they do), "-" for fewer than two seeds */
static void seed_diffs_text(char *buf, size_t n, const study_cell *c) {
    if (c->n_seed_diff < 2) {
        snprintf(buf, n, "-");
        return;
    }
    size_t at = 0;
    for (int k = 0; k < c->n_seed_diff && at < n; k++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld: %+.4f", k ? ", " : "",
                               (long long)c->diff_seed[k], c->seed_diff[k]);
    if (!c->seeds_agree && at < n) snprintf(buf + at, n - at, ", signs differ");
}

/* The rows of the pairs' table: per pair row0 (the two names), per eval set cell (Δ, p, per
 * seed), then row1; Markdown and HTML differ only in these formats. */
typedef struct {
    const char *row0, *cell, *row1;
} row_fmt;

static void compare_rows(dk_sbuf *b, const dk_study *s, const study_stage *r, const row_fmt *f,
                         char a[][STUDY_NAME_MAX], char z[][STUDY_NAME_MAX], int n) {
    for (int i = 0; i < n; i++) {
        dk_sb_printf(b, f->row0, a[i], z[i]);
        for (int j = 0; j < r->ndeps; j++) {
            study_cell c;
            char x[128] = "-", p[32] = "-", ps[STUDY_MAX_SEEDS * 32 + 32] = "-";
            if (pair_cell(&c, s, &s->stages[r->deps[j]], a[i], z[i])) {
                snprintf(x, sizeof x, "%+.4f [%+.4f, %+.4f]%s", c.diff, c.diff_lo, c.diff_hi,
                         c.resolved ? "" : ", not resolved");
                p_text(p, sizeof p, &c);
                seed_diffs_text(ps, sizeof ps, &c);
            }
            dk_sb_printf(b, f->cell, x, p, ps);
        }
        dk_sb_puts(b, f->row1);
    }
}

void dk__study_compare_md(dk_sbuf *b, const dk_study *s, const study_stage *r) {
    static const row_fmt md = {"| %s − %s |", " %s | %s | %s |", "\n"};
    char a[STUDY_MAX_COMPARE][STUDY_NAME_MAX], z[STUDY_MAX_COMPARE][STUDY_NAME_MAX];
    int n = compare_pairs(a, z, s);
    if (!n) return;
    dk_sb_puts(b, "\n");
    dk_sb_puts(b, compare_method);
    dk_sb_puts(b, "\n\n| comparison |");
    for (int j = 0; j < r->ndeps; j++) {
        const char *e = s->stages[r->deps[j]].name;
        dk_sb_printf(b, " Δ %s [95 %% CI] | p %s | per seed %s |", e, e, e);
    }
    dk_sb_puts(b, "\n|---|");
    for (int j = 0; j < r->ndeps; j++) dk_sb_puts(b, "---:|---:|---|");
    dk_sb_puts(b, "\n");
    compare_rows(b, s, r, &md, a, z, n);
}

void dk__study_compare_html(dk_sbuf *b, const dk_study *s, const study_stage *r) {
    static const row_fmt html = {"<tr><td>%s &minus; %s</td>",
                                 "<td>%s</td><td>%s</td><td>%s</td>", "</tr>\n"};
    char a[STUDY_MAX_COMPARE][STUDY_NAME_MAX], z[STUDY_MAX_COMPARE][STUDY_NAME_MAX];
    int n = compare_pairs(a, z, s);
    if (!n) return;
    dk_sb_puts(b, "<h2 id=\"compare\">Paired comparisons</h2>\n<p>");
    dk_sb_puts(b, compare_method);
    dk_sb_puts(b, "</p>\n<table><tr><th>comparison</th>");
    for (int j = 0; j < r->ndeps; j++) {
        const char *e = s->stages[r->deps[j]].name;
        dk_sb_printf(b, "<th>&Delta; %s</th><th>p %s</th><th>per seed %s</th>", e, e, e);
    }
    dk_sb_puts(b, "</tr>\n");
    compare_rows(b, s, r, &html, a, z, n);
    dk_sb_puts(b, "</table>\n");
}

void dk__study_compare_json(cJSON *j, const dk_study *s, const study_stage *r) {
    char a[STUDY_MAX_COMPARE][STUDY_NAME_MAX], z[STUDY_MAX_COMPARE][STUDY_NAME_MAX];
    int n = compare_pairs(a, z, s);
    if (!n) return;
    cJSON *arr = cJSON_AddArrayToObject(j, "comparisons");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "a", a[i]);
        cJSON_AddStringToObject(o, "b", z[i]);
        cJSON *ev = cJSON_AddObjectToObject(o, "evals");
        for (int k = 0; k < r->ndeps; k++) {
            study_cell c;
            const study_stage *e = &s->stages[r->deps[k]];
            if (!pair_cell(&c, s, e, a[i], z[i])) continue;
            cJSON *x = cJSON_AddObjectToObject(ev, e->name);
            dk_json_add_number(x, "diff", c.diff);
            dk_json_add_number(x, "diff_ci_lo", c.diff_lo);
            dk_json_add_number(x, "diff_ci_hi", c.diff_hi);
            dk_json_add_number(x, "wilcoxon_p", c.p);
            cJSON_AddBoolToObject(x, "resolved", c.resolved);
            cJSON *ps = cJSON_AddArrayToObject(x, "per_seed");
            for (int q = 0; q < c.n_seed_diff; q++) {
                cJSON *o1 = cJSON_CreateObject();
                dk_json_add_number(o1, "seed", (double)c.diff_seed[q]);
                dk_json_add_number(o1, "diff", c.seed_diff[q]);
                cJSON_AddItemToArray(ps, o1);
            }
            cJSON_AddBoolToObject(x, "seeds_agree", c.seeds_agree);
        }
        cJSON_AddItemToArray(arr, o);
    }
}
