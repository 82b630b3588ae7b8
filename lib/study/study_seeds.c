/*
 * Seeds (dakd/study.h): [study] seeds = 42, 7, 3 makes every train and adapt stage one run
 * per seed, in <run_dir>/<stage>/seed<N>/, with its own key, stage.json, checkpoint and
 * resume. After the parser has ordered the stages and checked their dependencies on stage
 * names, each such stage becomes consecutive runs in s->stages (so the runner's loop, its
 * keys, skipping, resuming and --from work per seed unchanged), and each dependency is
 * pointed at a run: a train or adapt run at seed s uses the dependency's run at seed s, or
 * the dependency's only run when it has one seed (a teacher pinned to seeds = 42); eval,
 * report and phantoms stages depend on every run of what they name.
 * Without any seeds key every stage is one run in <run_dir>/<stage>/ as before.
 */
#include "study_internal.h"

#include <stdlib.h>
#include <string.h>

/* "42, 7, 3" into v: 1 to STUDY_MAX_SEEDS distinct integers in [0, 2^53). */
static dk_status parse_seeds(int64_t *v, int *n, const char *text, const char *where,
                             const char *what) {
    double d[STUDY_MAX_SEEDS + 1];
    int k = dk_parse_numbers(d, STUDY_MAX_SEEDS + 1, text);
    dk_status bad = DK_OK;
    if (k <= 0 || k > STUDY_MAX_SEEDS) bad = DK_ERR_ARG;
    for (int i = 0; i < k && !bad; i++) {
        if (!(d[i] >= 0 && d[i] <= 9007199254740991.0) || d[i] != (double)(int64_t)d[i])
            bad = DK_ERR_ARG;
        for (int j = 0; j < i && !bad; j++)
            if (d[j] == d[i]) bad = DK_ERR_ARG;
        v[i] = (int64_t)d[i];
    }
    if (bad)
        return dk_fail(DK_ERR_ARG, "%s: %s seeds = %s: 1 to %d distinct non-negative integers, "
                       "comma-separated", where, what, text, STUDY_MAX_SEEDS);
    *n = k;
    return DK_OK;
}

static void where_of(char *buf, size_t n, const dk_study *s, int line) {
    if (line > 0) snprintf(buf, n, "%s:%d", s->path, line);
    else snprintf(buf, n, "%s: override", s->path);
}

static int per_seed_kind(int kind) { return kind == STAGE_TRAIN || kind == STAGE_ADAPT; }

/* The seeds of stage st into v (n of them); *seeded when a seeds list applies to it. */
static dk_status seeds_of(int64_t *v, int *n, int *seeded, const dk_study *s,
                          const study_stage *st, const int64_t *study, int nstudy) {
    char where[STUDY_PATH_MAX + 32], what[STUDY_NAME_MAX + 16];
    *n = 1, v[0] = s->set.seed, *seeded = 0;
    if (st->f.seeds[0]) {
        where_of(where, sizeof where, s, st->seeds_line);
        if (!per_seed_kind(st->f.kind))
            return dk_fail(DK_ERR_ARG, "%s: [stage.%s] seeds: only train and adapt stages run "
                           "per seed (an eval stage scores every run of its models)", where,
                           st->name);
        snprintf(what, sizeof what, "[stage.%s]", st->name);
        *seeded = 1;
        return parse_seeds(v, n, st->f.seeds, where, what);
    }
    if (nstudy && per_seed_kind(st->f.kind)) {
        memcpy(v, study, (size_t)nstudy * sizeof *v);
        *n = nstudy, *seeded = 1;
    }
    return DK_OK;
}

/* A copy of run `src` at one seed; its own copy of the override lines. */
static dk_status make_run(study_stage *dst, const study_stage *src, int64_t seed, int seeded,
                          int copy_sets) {
    *dst = *src;
    dst->seed = seed, dst->seeded = seeded;
    if (seeded) snprintf(dst->dir, sizeof dst->dir, "%s/seed%lld", src->name, (long long)seed);
    else snprintf(dst->dir, sizeof dst->dir, "%s", src->name);
    if (!copy_sets || !src->nsets) return DK_OK;
    dst->sets = calloc((size_t)src->nsets, sizeof *dst->sets);
    if (!dst->sets) return dst->nsets = 0, dk_fail(DK_ERR_NOMEM, "study: out of memory");
    for (int j = 0; j < src->nsets; j++) {
        dst->sets[j].line = src->sets[j].line;
        dst->sets[j].text = strdup(src->sets[j].text);
        if (!dst->sets[j].text) return dst->nsets = j, dk_fail(DK_ERR_NOMEM, "study: out of memory");
    }
    return DK_OK;
}

/* Point run r (of stage st, whose dependencies are stage indices) at the runs it uses. */
static dk_status pair_deps(study_stage *r, const study_stage *st, const study_stage *runs,
                           const int *first, const int *count, const dk_study *s) {
    r->ndeps = 0;
    for (int j = 0; j < st->ndeps; j++) {
        int g = st->deps[j];
        if (!per_seed_kind(st->f.kind) || !per_seed_kind(s->stages[g].f.kind)) {
            for (int k = 0; k < count[g]; k++) r->deps[r->ndeps++] = first[g] + k;
            continue;
        }
        int pick = count[g] == 1 ? first[g] : -1;
        for (int k = 0; k < count[g]; k++)
            if (runs[first[g] + k].seed == r->seed) pick = first[g] + k;
        if (pick >= 0) {
            r->deps[r->ndeps++] = pick;
            continue;
        }
        char where[STUDY_PATH_MAX + 32];
        int line = st->f.kind == STAGE_ADAPT ? st->model_line : st->teacher_line;
        where_of(where, sizeof where, s, line ? line : st->line);
        return dk_fail(DK_ERR_ARG, "%s: [stage.%s] at seed %lld: %s has no run at that seed "
                       "and more than one seed (give it one seed, or the same seeds)", where,
                       st->name, (long long)r->seed, s->stages[g].name);
    }
    return DK_OK;
}

/* Whether `name` is a train or adapt stage of [study] stages (a model per seed). */
static int model_stage(const dk_study *s, const char *name) {
    int x = dk__study_find(s, name);
    return x >= 0 && per_seed_kind(s->stages[x].f.kind);
}

static dk_status check_baseline(const dk_study *s) {
    if (!s->set.baseline[0] || model_stage(s, s->set.baseline)) return DK_OK;
    char where[STUDY_PATH_MAX + 32];
    where_of(where, sizeof where, s, s->baseline_line);
    return dk_fail(DK_ERR_ARG, "%s: [study] baseline = %s: not a train or adapt stage in "
                   "[study] stages", where, s->set.baseline);
}

/* [study] compare: pairs of two different train or adapt stages of [study] stages. */
static dk_status check_compare(const dk_study *s) {
    char a[STUDY_MAX_COMPARE][STUDY_NAME_MAX], b[STUDY_MAX_COMPARE][STUDY_NAME_MAX], bad[1024];
    char where[STUDY_PATH_MAX + 32];
    where_of(where, sizeof where, s, s->compare_line);
    int n = dk__study_compare_list(a, b, STUDY_MAX_COMPARE, s->set.compare, bad, sizeof bad);
    if (n < 0)
        return dk_fail(DK_ERR_ARG, "%s: [study] compare: \"%s\" is not \"<stage> - <stage>\" "
                       "(at most %d pairs, comma-separated)", where, bad, STUDY_MAX_COMPARE);
    for (int i = 0; i < n; i++) {
        const char *nm[2] = {a[i], b[i]};
        for (int k = 0; k < 2; k++)
            if (!model_stage(s, nm[k]))
                return dk_fail(DK_ERR_ARG, "%s: [study] compare: %s - %s: %s is not a train or "
                               "adapt stage in [study] stages", where, a[i], b[i], nm[k]);
        if (!strcmp(a[i], b[i]))
            return dk_fail(DK_ERR_ARG, "%s: [study] compare: %s - %s compares a stage with "
                           "itself", where, a[i], b[i]);
    }
    return DK_OK;
}

dk_status dk__study_expand_seeds(dk_study *s) {
    int64_t study[STUDY_MAX_SEEDS], v[STUDY_MAX_SEEDS];
    int nstudy = 0, first[STUDY_MAX_STAGES], count[STUDY_MAX_STAGES], nr = 0;
    char where[STUDY_PATH_MAX + 32];
    where_of(where, sizeof where, s, s->seeds_line);
    dk_status rc = s->set.seeds[0] ? parse_seeds(study, &nstudy, s->set.seeds, where, "[study]")
                                   : DK_OK;
    study_stage *runs = rc == DK_OK ? calloc(STUDY_MAX_RUNS, sizeof *runs) : NULL;
    if (rc == DK_OK && !runs) rc = dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path);
    for (int i = 0; i < s->nstages && rc == DK_OK; i++) {
        int n, seeded;
        rc = seeds_of(v, &n, &seeded, s, &s->stages[i], study, nstudy);
        if (rc == DK_OK && nr + n > STUDY_MAX_RUNS)
            rc = dk_fail(DK_ERR_ARG, "%s: more than %d stage runs (stages x seeds)", s->path,
                         STUDY_MAX_RUNS);
        first[i] = nr, count[i] = n;
        for (int k = 0; k < n && rc == DK_OK; k++) rc = make_run(&runs[nr++], &s->stages[i],
                                                                  v[k], seeded, k > 0);
    }
    for (int i = 0; i < s->nstages && rc == DK_OK; i++)
        for (int k = 0; k < count[i] && rc == DK_OK; k++)
            rc = pair_deps(&runs[first[i] + k], &s->stages[i], runs, first, count, s);
    if (rc != DK_OK) { /* the stage keeps its sets (first run); free the later runs' copies */
        for (int r = 1; r < nr; r++)
            if (strcmp(runs[r].name, runs[r - 1].name) == 0) {
                for (int j = 0; j < runs[r].nsets; j++) free(runs[r].sets[j].text);
                free(runs[r].sets);
            }
        free(runs);
        return rc;
    }
    free(s->stages);
    s->stages = runs;
    s->nstages = nr;
    rc = check_baseline(s);
    return rc == DK_OK ? check_compare(s) : rc;
}

int dk__study_dep(const dk_study *s, const study_stage *st, const char *name) {
    for (int j = 0; j < st->ndeps; j++)
        if (strcmp(s->stages[st->deps[j]].name, name) == 0) return st->deps[j];
    return -1;
}
