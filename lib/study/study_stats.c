/*
 * The study table's statistics (dakd/study.h, "the study table"): per model and eval set,
 * from the per-case Dice every eval stage records for each run (seed) of the model:
 *   - Dice: the mean over seeds of the case-mean Dice, with a 95 % percentile bootstrap
 *     interval over cases and seeds (dk_bootstrap_mean_ci, 10 000 resamples, fixed seed);
 *   - HD95: the mean over seeds of the case-mean HD95;
 *   - against the baseline stage: each case's Dice averaged over the model's seeds, minus
 *     the same for the baseline, gives one paired difference per case; its mean, its 95 %
 *     percentile bootstrap interval over cases (10 000 resamples) and the two-sided
 *     Wilcoxon signed-rank p over cases (dk_wilcoxon: scipy.stats.wilcoxon's defaults —
 *     exact for <= 50 cases without zeros, else the normal approximation with the tie
 *     correction, zeros dropped). The difference is resolved when its interval excludes 0.
 * The numbers are computed in study order from recorded results, so the table repeats bit
 * for bit.
 */
#include "study_internal.h"

#include "dakd/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *get(const cJSON *j, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(j, k);
}

/* Rows of x (n_seeds, n_cases) from the runs of stage `name` in eval stage e; 0 when a run
 * was not evaluated there or its record has no per-case Dice (an older stage.json). */
static int gather(double *x, double *hd, int *n_seeds, int64_t *seeds, const dk_study *s,
                  const study_stage *e, const char *name, int n_cases) {
    int first = dk__study_find(s, name), ns = 0;
    for (int i = first; i >= 0 && i < s->nstages && !strcmp(s->stages[i].name, name); i++) {
        const cJSON *m = get(get(get(e->record, "result"), "models"), s->stages[i].dir);
        const cJSON *cd = get(m, "case_dice"), *h = get(m, "hd95_mean");
        if (!m || cJSON_GetArraySize(cd) != n_cases || ns == STUDY_MAX_SEEDS) return 0;
        int c = 0;
        for (const cJSON *v = cd ? cd->child : NULL; v; v = v->next, c++) {
            if (!cJSON_IsNumber(v)) return 0;
            x[(size_t)ns * (size_t)n_cases + (size_t)c] = v->valuedouble;
        }
        hd[ns] = cJSON_IsNumber(h) && h->valuedouble >= 0 ? h->valuedouble : NAN;
        seeds[ns++] = s->stages[i].seed;
    }
    *n_seeds = ns;
    return ns > 0;
}

/* Mean over seeds of each case: avg[c]. */
static void seed_average(double *avg, const double *x, int ns, int nc) {
    for (int c = 0; c < nc; c++) {
        double t = 0;
        for (int k = 0; k < ns; k++) t += x[(size_t)k * (size_t)nc + (size_t)c];
        avg[c] = t / ns;
    }
}

static void paired(study_cell *out, const double *x, int ns, const double *b, int nb, int nc) {
    double *d = malloc((size_t)nc * 2 * sizeof *d);
    DK_ASSERT(d != NULL);
    double *bb = d + nc, sum = 0, w;
    seed_average(d, x, ns, nc);
    seed_average(bb, b, nb, nc);
    for (int c = 0; c < nc; c++) d[c] -= bb[c], sum += d[c];
    out->diff = sum / nc;
    dk_bootstrap_mean_ci(&out->diff_lo, &out->diff_hi, d, 1, nc, DK_BOOT_RESAMPLES, 0.95,
                         DK_BOOT_SEED);
    int used;
    dk_wilcoxon(d, nc, &w, &out->p, &used);
    out->has_diff = 1;
    out->resolved = out->diff_lo > 0 || out->diff_hi < 0;
    free(d);
}

/* out's per-seed differences to the nb runs b (seeds bseeds), nc cases each. */
static void per_seed(study_cell *out, const double *b, const int64_t *bseeds, int nb, int nc) {
    double bm[STUDY_MAX_SEEDS];
    for (int k = 0; k < nb; k++) {
        double t = 0;
        for (int c = 0; c < nc; c++) t += b[(size_t)k * (size_t)nc + (size_t)c];
        bm[k] = t / nc;
    }
    int n = 0;
    if (out->n_seeds == 1 && nb > 1) {
        for (int k = 0; k < nb; k++)
            out->diff_seed[n] = bseeds[k], out->seed_diff[n++] = out->seed_dice[0] - bm[k];
    } else {
        for (int k = 0; k < out->n_seeds; k++) {
            int j = nb == 1 ? 0 : -1;
            for (int i = 0; i < nb && j < 0; i++)
                if (bseeds[i] == out->seeds[k]) j = i;
            if (j >= 0)
                out->diff_seed[n] = out->seeds[k], out->seed_diff[n++] = out->seed_dice[k] - bm[j];
        }
    }
    out->n_seed_diff = n;
    out->seeds_agree = n > 0;
    for (int k = 0; k < n; k++) out->seeds_agree &= out->seed_diff[k] * out->diff > 0;
}

void dk__study_cell_vs(study_cell *out, const dk_study *s, const study_stage *e, const char *name,
                       const char *base) {
    memset(out, 0, sizeof *out);
    out->dice = out->lo = out->hi = out->hd95 = out->diff = out->p = NAN;
    int nc = cJSON_GetArraySize(get(get(e->record, "result"), "case_ids"));
    if (nc <= 0) return;
    size_t sz = (size_t)STUDY_MAX_SEEDS * (size_t)nc;
    double *x = malloc(2 * sz * sizeof *x), hd[STUDY_MAX_SEEDS], bhd[STUDY_MAX_SEEDS];
    DK_ASSERT(x != NULL);
    int64_t bseeds[STUDY_MAX_SEEDS];
    int nb = 0;
    if (gather(x, hd, &out->n_seeds, out->seeds, s, e, name, nc)) {
        out->ok = 1, out->n_cases = nc;
        double t = 0, th = 0;
        int nh = 0;
        for (int k = 0; k < out->n_seeds; k++) {
            double m = 0;
            for (int c = 0; c < nc; c++) m += x[(size_t)k * (size_t)nc + (size_t)c];
            out->seed_dice[k] = m / nc, t += m / nc;
            if (isfinite(hd[k])) th += hd[k], nh++;
        }
        out->dice = t / out->n_seeds;
        out->hd95 = nh ? th / nh : NAN;
        dk_bootstrap_mean_ci(&out->lo, &out->hi, x, out->n_seeds, nc, DK_BOOT_RESAMPLES, 0.95,
                             DK_BOOT_SEED);
        if (base[0] && strcmp(base, name) != 0 &&
            gather(x + sz, bhd, &nb, bseeds, s, e, base, nc)) {
            paired(out, x, out->n_seeds, x + sz, nb, nc);
            per_seed(out, x + sz, bseeds, nb, nc);
        }
    }
    free(x);
}

void dk__study_cell(study_cell *out, const dk_study *s, const study_stage *e, const char *name) {
    dk__study_cell_vs(out, s, e, name, s->set.baseline);
}

int dk__study_has_stats(const dk_study *s) {
    if (s->set.baseline[0] || s->set.compare[0]) return 1;
    for (int i = 0; i < s->nstages; i++)
        if (s->stages[i].seeded) return 1;
    return 0;
}
