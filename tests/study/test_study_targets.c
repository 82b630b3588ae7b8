/*
 * CUnit suite for the target domain in a study (lib/study, lib/train) on the tiny study
 * tests/study/targets.ini: generated 2-D 32x32 phantoms with labelled target cases (train,
 * val and test); a teacher, a source-only student (no validation), its AdaBN adapt stage,
 * a distilled student with the whole method (alignment, attention transfer, entropy, EMA
 * and layer self-distillation, dynamic weights, target batch-norm statistics,
 * pseudo-labels, Fourier domain adaptation), an oracle, the evaluation on the target test
 * cases and the report.
 *  - target labels are read only by the oracle and by evaluation: with every target label
 *    file replaced by a directory (present for the case list, unreadable as a file, even
 *    for root, who ignores chmod 000) every other train stage and the adapt stage rerun
 *    from scratch without a failure and write byte-identical model files and step logs
 *    under the same keys; with the target labels exchanged between cases they still do,
 *    while the oracle's model and the evaluation's Dice change;
 *  - steps.jsonl carries val_dice on the last step of each validated epoch only, in
 *    [0, 1], its best the stage's best_val_dice; a run without validation has none;
 *  - the report's learning curves have a panel for every term the stage logged (self, pl,
 *    pl_share, fda_beta, ema_weight, the weights' bands, val_dice) and none for a term it
 *    did not log.
 */
#include "dakd/data.h"
#include "dakd/study.h"
#include "test_util.h"

#include <cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[1024], study[1200];

/* The stages that must not read a target label, and what each writes. */
static const char *const blind[] = {"teacher", "student", "student_adabn", "distill"};
static const char *const outputs[] = {"model.safetensors", "best.safetensors", "steps.jsonl"};
enum { NBLIND = 4, NOUT = 3, MAX_TARGETS = 16 };

static const char *const only_blind[] = {
    "study.stages=phantoms, teacher, student, student_adabn, distill", NULL};

static char target_labels[MAX_TARGETS][1400];
static int ntargets;

/* The whole file (NUL-terminated, malloc'd) or NULL; *n its length. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *b = malloc(cap + 1);
    while (b && (got = fread(b + len, 1, cap - len, f)) > 0)
        if ((len += got) == cap) {
            char *nb = realloc(b, 2 * cap + 1);
            if (!nb) free(b);
            b = nb, cap *= 2;
        }
    fclose(f);
    if (b) b[len] = '\0';
    if (n) *n = len;
    return b;
}

/* A step log without its wall times (",\"sec\":...": the one field that differs between
 * two runs of the same steps), in place. */
static void drop_seconds(char *s) {
    char *w = s;
    for (const char *r = s; *r;) {
        if (!strncmp(r, ",\"sec\":", 7)) {
            r += 7;
            while (*r && *r != ',' && *r != '}') r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
}

/* Run the study into <dir>/<run> with extra --set overrides, from stage `from` (or NULL);
 * ran[i] = dk_study_stage_ran of stage i. */
static dk_status run_study(const char *run, const char *const *extra, const char *from,
                           int ran[8], int quiet) {
    const char *sets[8];
    char rd[1300];
    snprintf(rd, sizeof rd, "study.run_dir=%s/%s", dir, run);
    int n = 0;
    sets[n++] = rd;
    for (int i = 0; extra && extra[i] && n < 7; i++) sets[n++] = extra[i];
    sets[n] = NULL;
    dk_study *s = NULL;
    dk_status st = dk_study_load(&s, study, sets);
    memset(ran, 0, 8 * sizeof *ran);
    if (st == DK_OK) {
        dk_study_opts o = {from, NULL, 0};
        st = dk_study_run(s, &o);
        for (int i = 0; i < dk_study_stage_count(s) && i < 8; i++)
            ran[i] = dk_study_stage_ran(s, i);
    }
    if (st != DK_OK && !quiet) printf("\n  study: %s\n", dk_last_error());
    dk_study_free(s);
    return st;
}

static const char *run_path(const char *stage, const char *file) {
    static char p[4][1400];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/a/%s/%s", dir, stage, file);
    return p[k];
}

static cJSON *read_json(const char *path) {
    char *t = slurp(path, NULL);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    return j;
}

static const char *stage_key(char *buf, size_t n, const char *stage) {
    cJSON *j = read_json(run_path(stage, "stage.json"));
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key");
    snprintf(buf, n, "%s", cJSON_IsString(k) ? k->valuestring : "");
    cJSON_Delete(j);
    return buf;
}

/* The label files of the target rows of the study's case list. */
static int find_target_labels(void) {
    dk_case_list l;
    ntargets = 0;
    if (dk_cases_read(&l, run_path("phantoms", "cases.csv")) != DK_OK) return -1;
    for (int i = 0; i < l.n && ntargets < MAX_TARGETS; i++) {
        const char *d = dk_cases_get(&l, i, "domain");
        if (d && !strcmp(d, "target") && l.cases[i].label)
            snprintf(target_labels[ntargets++], sizeof target_labels[0], "%s", l.cases[i].label);
    }
    dk_cases_free(&l);
    return ntargets;
}

static int suite_init(void) {
    snprintf(dir, sizeof dir, "%s/targets", dk_test_tmpdir());
    mkdir(dir, 0777);
    snprintf(study, sizeof study, "%s/tests/study/targets.ini", dk_test_source_dir());
    int ran[8];
    return run_study("a", NULL, NULL, ran, 0) != DK_OK || find_target_labels() != 8;
}

/* ---------------------------------------------------------------- steps.jsonl: val_dice */

/* The val_dice values of a step log into v (at most 8), their count; *lines the lines, and
 * *last_ok whether the values sit on the last step of an epoch ("step" = steps - 1). */
static int val_dice_of(double *v, int *lines, int *last_ok, const char *path, int steps) {
    char *t = slurp(path, NULL), *save = NULL;
    int n = 0;
    *lines = 0, *last_ok = 1;
    for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(l);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "val_dice");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step");
        (*lines)++;
        if (x) {
            *last_ok &= cJSON_IsNumber(x) && cJSON_IsNumber(s) && s->valueint == steps - 1;
            if (n < 8) v[n++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        }
        cJSON_Delete(j);
    }
    free(t);
    return n;
}

static void test_val_dice_logged(void) {
    double v[8];
    int lines, last_ok;
    const char *train[] = {"teacher", "distill", "oracle"};
    for (int k = 0; k < 3; k++) {
        int n = val_dice_of(v, &lines, &last_ok, run_path(train[k], "steps.jsonl"), 2);
        CU_ASSERT_EQUAL(lines, 4);
        CU_ASSERT_EQUAL(n, 2); /* epochs 1 and 2 validated, on their last steps */
        CU_ASSERT(last_ok);
        double best = -1;
        for (int i = 0; i < n; i++) {
            CU_ASSERT(isfinite(v[i]) && v[i] >= 0 && v[i] <= 1);
            best = fmax(best, v[i]);
        }
        cJSON *j = read_json(run_path(train[k], "stage.json"));
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "result"), "best_val_dice");
        CU_ASSERT(cJSON_IsNumber(b) && b->valuedouble == best);
        cJSON_Delete(j);
    }
    /* validate_every = 0: no key at all */
    CU_ASSERT_EQUAL(val_dice_of(v, &lines, &last_ok, run_path("student", "steps.jsonl"), 2), 0);
    CU_ASSERT_EQUAL(lines, 4);
}

/* ---------------------------------------------------------------- the learning curves */

/* The curves block of stage `name` in report.html (a copy; "" when there is none). */
static char *curves_of(const char *html, const char *name) {
    char head[256];
    snprintf(head, sizeof head, "<div class=\"curves\"><h3>%s <small>(%s", name, name);
    const char *a = strstr(html, head), *b = a ? strstr(a, "</div>") : NULL;
    size_t n = b ? (size_t)(b - a) : 0;
    char *out = malloc(n + 1);
    if (out) memcpy(out, a ? a : "", n), out[n] = '\0';
    return out;
}

/* 1 when the block has a panel titled `key` (its title may go on: "w_src_mean (min, ..."). */
static int has_panel(const char *block, const char *key) {
    char t[128];
    snprintf(t, sizeof t, "font-weight=\"bold\">%s<", key);
    if (strstr(block, t)) return 1;
    snprintf(t, sizeof t, "font-weight=\"bold\">%s (", key);
    return strstr(block, t) != NULL;
}

static void test_curves_of_logged_terms(void) {
    char *html = slurp(run_path("report", "report.html"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    char *d = curves_of(html, "distill"), *s = curves_of(html, "student");
    char *t = curves_of(html, "teacher");
    CU_ASSERT_FATAL(d && s && t && *d && *s && *t);
    /* the distilled student logged every adaptation term */
    const char *logged[] = {"loss", "sup", "ce", "dice", "kd", "at", "align", "ent", "self",
                            "pl", "pl_share", "T", "mix", "alpha", "lr", "grad_norm",
                            "ema_weight", "fda_beta", "fda_rows", "w_src_mean", "w_tgt_mean",
                            "val_dice"};
    for (size_t i = 0; i < sizeof logged / sizeof logged[0]; i++) {
        if (!has_panel(d, logged[i])) printf("\n  distill: no panel %s\n", logged[i]);
        CU_ASSERT(has_panel(d, logged[i]));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "stroke-dasharray")); /* the weights' min and max */
    /* the source-only student none of them, and no validation */
    const char *absent[] = {"kd", "at", "align", "ent", "self", "pl", "pl_share", "ema_weight",
                            "fda_beta", "fda_rows", "w_src_mean", "w_tgt_mean", "val_dice",
                            "hint"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        if (has_panel(s, absent[i])) printf("\n  student: a panel %s\n", absent[i]);
        CU_ASSERT(!has_panel(s, absent[i]));
    }
    CU_ASSERT(has_panel(s, "loss") && has_panel(s, "lr") && !has_panel(d, "hint"));
    /* the teacher validated: its val_dice curve marks its two points */
    CU_ASSERT(has_panel(t, "val_dice") && !has_panel(t, "pl"));
    const char *vp = strstr(t, ">val_dice<");
    CU_ASSERT(vp && strstr(vp, "<circle") && (!strstr(vp, "</svg>") ||
                                              strstr(vp, "<circle") < strstr(vp, "</svg>")));
    free(d), free(s), free(t), free(html);
}

/* ---------------------------------------------------------------- target labels */

/* Every output of the blind stages, without wall times, and their keys. */
typedef struct {
    char *file[NBLIND][NOUT];
    size_t len[NBLIND][NOUT];
    char key[NBLIND][80];
} snapshot;

static void take(snapshot *s) {
    for (int i = 0; i < NBLIND; i++) {
        for (int j = 0; j < NOUT; j++) {
            s->file[i][j] = slurp(run_path(blind[i], outputs[j]), &s->len[i][j]);
            if (s->file[i][j] && j == 2) /* the step log */
                drop_seconds(s->file[i][j]), s->len[i][j] = strlen(s->file[i][j]);
        }
        stage_key(s->key[i], sizeof s->key[i], blind[i]);
    }
}

static void release(snapshot *s) {
    for (int i = 0; i < NBLIND; i++)
        for (int j = 0; j < NOUT; j++) free(s->file[i][j]);
}

/* Every file of b as in a (a file missing in both is fine: no best.safetensors without
 * validation, no steps.jsonl for an adapt stage); the count that differ. */
static int differences(const snapshot *a, const snapshot *b, const char *when) {
    int bad = 0;
    for (int i = 0; i < NBLIND; i++) {
        for (int j = 0; j < NOUT; j++) {
            const char *x = a->file[i][j], *y = b->file[i][j];
            int same = (!x && !y) || (x && y && a->len[i][j] == b->len[i][j] &&
                                      !memcmp(x, y, a->len[i][j]));
            if (!same) printf("\n  %s: %s/%s differs\n", when, blind[i], outputs[j]), bad++;
        }
        if (strcmp(a->key[i], b->key[i]) || !a->key[i][0])
            printf("\n  %s: the key of %s changed\n", when, blind[i]), bad++;
    }
    return bad;
}

static int copy_file(const char *from, const char *to) {
    size_t n;
    char *b = slurp(from, &n);
    FILE *f = b ? fopen(to, "wb") : NULL;
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f) ok &= fclose(f) == 0;
    free(b);
    return ok ? 0 : -1;
}

static double model_dice(const char *model) {
    cJSON *j = read_json(run_path("eval_target", "stage.json"));
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "result"),
                                         "models"), model);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "dice_mean");
    double v = cJSON_IsNumber(d) ? d->valuedouble : NAN;
    cJSON_Delete(j);
    return v;
}

/* Phase 1: every target label file a directory. Every blind stage reruns from scratch and
 * must neither fail nor change a byte; the oracle and the evaluation cannot run. */
static void unreadable_labels(const snapshot *before) {
    char orig[1500];
    for (int i = 0; i < ntargets; i++) {
        snprintf(orig, sizeof orig, "%.1400s.orig", target_labels[i]);
        CU_ASSERT_EQUAL_FATAL(rename(target_labels[i], orig), 0);
        CU_ASSERT_EQUAL_FATAL(mkdir(target_labels[i], 0755), 0);
    }
    /* the detector works for this user: reading such a file fails */
    dk_volume v = {0};
    CU_ASSERT_NOT_EQUAL(dk_volume_read(&v, target_labels[0]), DK_OK);
    dk_volume_free(&v);
    int ran[8];
    CU_ASSERT_EQUAL_FATAL(run_study("a", only_blind, "teacher", ran, 0), DK_OK);
    CU_ASSERT(ran[1] && ran[2] && ran[3] && ran[4]);
    snapshot after;
    take(&after);
    CU_ASSERT_EQUAL(differences(before, &after, "target labels unreadable"), 0);
    release(&after);
    const char *oracle[] = {"study.stages=phantoms, oracle", NULL};
    CU_ASSERT_NOT_EQUAL(run_study("a", oracle, "oracle", ran, 1), DK_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "target_train_000_label.nii.gz"));
    const char *eval[] = {"study.stages=phantoms, teacher, eval_target",
                          "stage.eval_target.models=teacher", NULL};
    CU_ASSERT_NOT_EQUAL(run_study("a", eval, "eval_target", ran, 1), DK_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "_label.nii.gz"));
}

/* Phase 2: the target labels exchanged between cases (each case gets the next one's). The
 * blind stages stay up to date and, rerun from scratch, write the same bytes; the oracle
 * and the evaluation rerun and their numbers change. */
static void exchanged_labels(const snapshot *before, const char *oracle_before,
                             size_t oracle_len, double teacher_dice) {
    char orig[1500];
    for (int i = 0; i < ntargets; i++) {
        snprintf(orig, sizeof orig, "%.1400s.orig", target_labels[(i + 1) % ntargets]);
        CU_ASSERT_EQUAL_FATAL(rmdir(target_labels[i]), 0);
        CU_ASSERT_EQUAL_FATAL(copy_file(orig, target_labels[i]), 0);
    }
    int ran[8];
    CU_ASSERT_EQUAL_FATAL(run_study("a", only_blind, "teacher", ran, 0), DK_OK);
    snapshot after;
    take(&after);
    CU_ASSERT_EQUAL(differences(before, &after, "target labels exchanged"), 0);
    release(&after);
    CU_ASSERT_EQUAL_FATAL(run_study("a", NULL, NULL, ran, 0), DK_OK);
    CU_ASSERT(!ran[1] && !ran[2] && !ran[3] && !ran[4]); /* same keys: up to date */
    CU_ASSERT(ran[5] && ran[6] && ran[7]);              /* oracle, eval_target, report */
    size_t n;
    char *o = slurp(run_path("oracle", "model.safetensors"), &n);
    CU_ASSERT(o && oracle_before && (n != oracle_len || memcmp(o, oracle_before, n)));
    free(o);
    double d = model_dice("teacher"); /* the same teacher scored against other labels */
    printf("\n  teacher on the target test cases: Dice %.4f, %.4f with exchanged labels\n",
           teacher_dice, d);
    CU_ASSERT(isfinite(d) && isfinite(teacher_dice) && d != teacher_dice);
}

static void test_target_labels_read_by_oracle_and_eval_only(void) {
    CU_ASSERT_EQUAL_FATAL(ntargets, 8); /* target train, val and test */
    snapshot before;
    take(&before);
    for (int i = 0; i < NBLIND; i++) /* each stage wrote its outputs */
        CU_ASSERT_PTR_NOT_NULL(before.file[i][0]);
    size_t oracle_len;
    char *oracle = slurp(run_path("oracle", "model.safetensors"), &oracle_len);
    double teacher_dice = model_dice("teacher");
    unreadable_labels(&before);
    exchanged_labels(&before, oracle, oracle_len, teacher_dice);
    free(oracle);
    release(&before);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("study.targets", suite_init, NULL);
    CU_add_test(s, "steps.jsonl: val_dice on validated epochs only", test_val_dice_logged);
    CU_add_test(s, "learning curves: a panel per logged term, none for the others",
                test_curves_of_logged_terms);
    CU_add_test(s, "target labels are read by the oracle and evaluation only",
                test_target_labels_read_by_oracle_and_eval_only);
    return dk_test_run();
}
