/*
 * The report's figures as inline SVG (dakd/study.h, "the report"): a forest plot per eval
 * set of every row's paired difference to the baseline with its 95 % interval, and per
 * training stage small multiples of its steps.jsonl (every loss term, T, mixing ratio,
 * alpha, learning rate, gradient norm, EMA weight, pseudo-label share, FDA band, per-domain
 * sample weights, validation Dice: whatever the stage logged), one line per seed. Plain
 * SVG elements only (no script), so the page renders offline.
 */
#include "study_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#8c564b", "#e377c2", "#17becf"};

/* ---------------------------------------------------------------- forest plot */

enum { F_LABEL = 290, F_PLOT = 300, F_TEXT = 250, F_ROW = 22, F_TOP = 30, F_BOTTOM = 34 };

static double fx(double v, double lo, double hi) {
    return F_LABEL + (v - lo) / (hi - lo) * F_PLOT;
}

static void forest_one(dk_sbuf *b, const dk_study *s, const study_stage *e, const int *rows,
                       int n) {
    study_cell *c = calloc((size_t)n, sizeof *c);
    DK_ASSERT(c != NULL);
    double lo = 0, hi = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        dk__study_cell(&c[i], s, e, s->stages[rows[i]].name);
        if (!c[i].has_diff) continue;
        lo = fmin(lo, c[i].diff_lo), hi = fmax(hi, c[i].diff_hi), k++;
    }
    if (k == 0) {
        free(c);
        return;
    }
    double pad = 0.08 * (hi - lo > 0 ? hi - lo : 0.01);
    lo -= pad, hi += pad;
    int h = F_TOP + k * F_ROW + F_BOTTOM, w = F_LABEL + F_PLOT + F_TEXT;
    dk_sb_printf(b, "<h3>%s (%s/%s)</h3>\n<svg class=\"forest\" xmlns=\"http://www.w3.org/2000/"
                 "svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif"
                 "\" font-size=\"12\">\n", e->name, e->f.domain, e->f.split[0] ? e->f.split : "any",
                 w, h, w, h);
    double z = fx(0, lo, hi);
    dk_sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#555\" "
                 "stroke-dasharray=\"4 3\"/>\n", z, F_TOP - 8, z, h - F_BOTTOM + 4);
    dk_sb_printf(b, "<text x=\"%d\" y=\"16\" font-weight=\"bold\">difference in Dice to %s "
                 "(95 %% interval; filled: resolved)</text>\n", F_LABEL, s->set.baseline);
    for (int i = 0, row = 0; i < n; i++) {
        if (!c[i].has_diff) continue;
        const study_stage *t = &s->stages[rows[i]];
        double y = F_TOP + row++ * F_ROW + F_ROW / 2.0;
        dk_sb_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", F_LABEL - 8, y + 4);
        dk_sb_html(b, t->f.label[0] ? t->f.label : t->name);
        dk_sb_printf(b, "</text><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"#222\" stroke-width=\"1.5\"/>", fx(c[i].diff_lo, lo, hi), y,
                     fx(c[i].diff_hi, lo, hi), y);
        dk_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" stroke=\"#222\" fill=\"%s\"/>",
                     fx(c[i].diff, lo, hi), y, c[i].resolved ? "#222" : "#fff");
        dk_sb_printf(b, "<text x=\"%d\" y=\"%.1f\">%+.4f [%+.4f, %+.4f] p = %.3g%s</text>\n",
                     F_LABEL + F_PLOT + 10, y + 4, c[i].diff, c[i].diff_lo, c[i].diff_hi, c[i].p,
                     c[i].resolved ? "" : ", not resolved");
    }
    /* the axis: its ends and zero */
    int ya = h - F_BOTTOM + 18;
    dk_sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#555\"/>\n",
                 F_LABEL, ya - 12, F_LABEL + F_PLOT, ya - 12);
    dk_sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"start\">%+.3f</text><text x=\"%d\" "
                 "y=\"%d\" text-anchor=\"end\">%+.3f</text>\n", F_LABEL, ya + 4, lo,
                 F_LABEL + F_PLOT, ya + 4, hi);
    if (z > F_LABEL + 50 && z < F_LABEL + F_PLOT - 50) /* zero, unless an end's label is there */
        dk_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">0</text>\n", z, ya + 4);
    dk_sb_puts(b, "</svg>\n");
    free(c);
}

void dk__study_forest_svg(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows,
                          int n) {
    for (int j = 0; j < r->ndeps; j++) forest_one(b, s, &s->stages[r->deps[j]], rows, n);
}

/* ---------------------------------------------------------------- learning curves */

/* A panel of the learning curves: a key of steps.jsonl (dakd/train.h) and, beside a mean,
 * the keys of its minimum and maximum, drawn dashed in the same colour. Every numeric key
 * the trainer logs has a panel but the step counters (the x axis), ns / nt (the batch's
 * rows, which mix sets) and sec (wall time). */
typedef struct {
    const char *key, *min, *max;
} curve;

static const curve curves[] = {
    {"loss", NULL, NULL}, {"sup", NULL, NULL}, {"ce", NULL, NULL}, {"dice", NULL, NULL},
    {"kd", NULL, NULL}, {"at", NULL, NULL}, {"hint", NULL, NULL}, {"align", NULL, NULL},
    {"ent", NULL, NULL}, {"self", NULL, NULL}, {"pl", NULL, NULL}, {"pl_share", NULL, NULL},
    {"T", NULL, NULL}, {"mix", NULL, NULL}, {"alpha", NULL, NULL}, {"lr", NULL, NULL},
    {"grad_norm", NULL, NULL}, {"ema_weight", NULL, NULL}, {"fda_beta", NULL, NULL},
    {"fda_rows", NULL, NULL}, {"w_src_mean", "w_src_min", "w_src_max"},
    {"w_tgt_mean", "w_tgt_min", "w_tgt_max"}, {"val_dice", NULL, NULL}};
enum {
    NCURVES = sizeof curves / sizeof curves[0],
    NKEYS = 3 * NCURVES, /* series 3p, 3p + 1, 3p + 2: panel p's key, min and max */
    BINS = 100,
    C_W = 190,
    C_H = 120
};

/* Series k's key in steps.jsonl (NULL: none). */
static const char *series_key(int k) {
    const curve *c = &curves[k / 3];
    return k % 3 == 0 ? c->key : k % 3 == 1 ? c->min : c->max;
}

/* One run's steps.jsonl as per-key series binned into at most BINS means (NaN: key absent).
 * v: (NKEYS, BINS); returns the bin count (0: no log). */
static int read_curves(double *v, const char *path) {
    char *text = NULL;
    size_t len = 0;
    if (dk_read_file(&text, &len, path) != DK_OK) return 0;
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    lines += len > 0 && text[len - 1] != '\n'; /* a last line cut short still counts */
    int nb = lines < BINS ? lines : BINS;
    double *sum = calloc((size_t)NKEYS * BINS * 2, sizeof *sum), *cnt = sum + NKEYS * BINS;
    DK_ASSERT(sum != NULL);
    char *line = text;
    for (int i = 0; nb > 0 && i < lines; i++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        int bin = (int)((int64_t)i * nb / lines);
        for (int k = 0; k < NKEYS && j; k++) {
            if (!series_key(k)) continue;
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, series_key(k));
            if (cJSON_IsNumber(x) && isfinite(x->valuedouble))
                sum[k * BINS + bin] += x->valuedouble, cnt[k * BINS + bin] += 1;
        }
        cJSON_Delete(j);
        line = nl ? nl + 1 : line + strlen(line);
    }
    for (int k = 0; k < NKEYS * BINS; k++) v[k] = cnt[k] > 0 ? sum[k] / cnt[k] : NAN;
    free(sum);
    free(text);
    return nb;
}

/* Series k of run r: its bins in v. */
static const double *series(const double *v, int r, int k) {
    return v + ((size_t)r * NKEYS + (size_t)k) * BINS;
}

static double px_of(int i, int nb) {
    return 30 + (C_W - 36) * (nb > 1 ? (double)i / (nb - 1) : 0.5);
}

static double py_of(double x, double lo, double hi) {
    return 14 + (C_H - 30) * (hi - x) / (hi - lo);
}

/* One run's series k (x: nb bins) as a polyline, dashed for a min or max; a series logged on
 * some steps only (val_dice, at the end of an epoch) also marks its points, so that a
 * single point shows. */
static void polyline(dk_sbuf *b, const double *x, int nb, int k, const char *colour, double lo,
                     double hi) {
    int n = 0;
    for (int i = 0; i < nb; i++) n += isfinite(x[i]);
    if (n == 0) return;
    dk_sb_printf(b, "<polyline fill=\"none\" stroke-width=\"%s\" stroke=\"%s\"%s points=\"",
                 k % 3 ? "0.8" : "1.2", colour, k % 3 ? " stroke-dasharray=\"3 2\"" : "");
    for (int i = 0; i < nb; i++)
        if (isfinite(x[i])) dk_sb_printf(b, "%.1f,%.1f ", px_of(i, nb), py_of(x[i], lo, hi));
    dk_sb_puts(b, "\"/>");
    for (int i = 0; i < nb && n < nb; i++)
        if (isfinite(x[i]))
            dk_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\"/>",
                         px_of(i, nb), py_of(x[i], lo, hi), colour);
}

/* One small panel: curve p (its key, and its min and max when it has them) over the runs'
 * bins; nothing when no run logged it or it stayed 0. */
static void panel(dk_sbuf *b, const double *v, const int *nb, int nruns, int p) {
    double lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < nruns; r++)
        for (int k = 3 * p; k < 3 * p + 3; k++)
            for (int i = 0; i < nb[r]; i++) {
                double x = series(v, r, k)[i];
                if (isfinite(x)) lo = fmin(lo, x), hi = fmax(hi, x);
            }
    if (!(lo <= hi) || (lo == 0 && hi == 0)) return; /* absent, or a term this stage lacks */
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
    dk_sb_printf(b, "<svg class=\"curve\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                 "height=\"%d\" font-family=\"sans-serif\" font-size=\"10\"><rect x=\"30\" "
                 "y=\"14\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#bbb\"/><text x=\"32\" "
                 "y=\"11\" font-weight=\"bold\">%s%s</text><text x=\"28\" y=\"20\" "
                 "text-anchor=\"end\">%.3g</text><text x=\"28\" y=\"%d\" text-anchor=\"end\">"
                 "%.3g</text>", C_W, C_H, C_W - 36, C_H - 30, curves[p].key,
                 curves[p].min ? " (- - min, max)" : "", hi, C_H - 16, lo);
    for (int r = 0; r < nruns; r++)
        for (int k = 3 * p; k < 3 * p + 3; k++)
            polyline(b, series(v, r, k), nb[r], k, palette[r % 8], lo, hi);
    dk_sb_puts(b, "</svg>\n");
}

/* The curves of train stage t (its first run) and its other seeds. */
static void stage_curves(dk_sbuf *b, const dk_study *s, const study_stage *t) {
    int nruns = 0, nb[STUDY_MAX_SEEDS];
    double *v = malloc((size_t)STUDY_MAX_SEEDS * NKEYS * BINS * sizeof *v);
    DK_ASSERT(v != NULL);
    dk_sb_puts(b, "<div class=\"curves\"><h3>");
    dk_sb_html(b, t->f.label[0] ? t->f.label : t->name);
    dk_sb_printf(b, " <small>(%s", t->name);
    for (const study_stage *x = t; x < s->stages + s->nstages && !strcmp(x->name, t->name) &&
                                   nruns < STUDY_MAX_SEEDS; x++) {
        char p[STUDY_PATH_MAX];
        dk__study_path(p, sizeof p, s, x->dir, "steps.jsonl");
        nb[nruns] = read_curves(v + (size_t)nruns * NKEYS * BINS, p);
        if (x->seeded)
            dk_sb_printf(b, "; <span style=\"color:%s\">seed %lld</span>", palette[nruns % 8],
                         (long long)x->seed);
        nruns++;
    }
    dk_sb_puts(b, ")</small></h3>\n");
    for (int p = 0; p < NCURVES; p++) panel(b, v, nb, nruns, p);
    dk_sb_puts(b, "</div>\n");
    free(v);
}

void dk__study_curves_html(dk_sbuf *b, const dk_study *s, const int *rows, int n) {
    for (int i = 0; i < n; i++)
        if (s->stages[rows[i]].f.kind == STAGE_TRAIN) stage_curves(b, s, &s->stages[rows[i]]);
}
