/*
 * Reading a study file (dakd/study.h): dk_ini_parse over the file (inih, lines counted), each
 * key checked through the typed tables of dakd/core.h so messages name file and line, then
 * the cross-stage checks (names, dependencies, cycles, order).
 */
#include "study_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- typed tables */

/* The stage kinds a study file names, in the order of the enum (study_internal.h); the
 * phantoms stage is implied by [phantoms], never named in a file. */
static const char *const kind_names[] = {"train", "eval", "report", "adapt", NULL};

const char *dk__study_kind_name(int kind) {
    return kind == STAGE_PHANTOMS ? "phantoms" : kind_names[kind];
}
static const char *const mode_names[] = {"teacher", "student", "oracle", "distill", NULL};
static const char *const file_names[] = {"best", "final", NULL};

#define SF(k, ty, m, lo, hi, d, h) \
    {"study", k, ty, offsetof(study_settings, m), 0, lo, hi, d, NULL, h}
#define SS(sec, k, m, d, h) \
    {sec, k, DK_CFG_STRING, offsetof(study_settings, m), sizeof(((study_settings *)0)->m), 0, \
     0, d, NULL, h}
#define SL(k, m, d, h) \
    {"study", k, DK_CFG_LIST, offsetof(study_settings, m), sizeof(((study_settings *)0)->m), 0, \
     0, d, NULL, h}
#define PI(k, m, d, h) {"phantoms", k, DK_CFG_INT, offsetof(study_settings, m), 0, 0, 10000, d, \
                        NULL, h}

static const dk_cfg_field settings_table[] = {
    SS("study", "name", name, "study", "the study's name (report title)"),
    SS("study", "run_dir", run_dir, "runs/study", "folder of every stage's outputs"),
    SF("seed", DK_CFG_INT64, seed, 0, 9007199254740991.0, "42", "train.seed of every stage"),
    SF("threads", DK_CFG_INT, threads, 0, 1024, "0", "threads (0 = all cores)"),
    SF("jobs", DK_CFG_INT, jobs, 1, 64, "1",
       "stages run side by side, each in a child process (results do not depend on it)"),
    SL("stages", stages, "",
       "stage names in run order, comma-separated; empty = phantoms, then every [stage.NAME] "
       "in file order"),
    SL("seeds", seeds, "", "e.g. 42, 7, 3: every train and adapt stage once per seed"),
    SS("study", "baseline", baseline, "", "the stage every row is compared with (paired)"),
    SL("compare", compare, "",
       "more paired comparisons for the report: \"a - b, c - d\" (train or adapt stages)"),
    {"phantoms", "dims", DK_CFG_INT, offsetof(study_settings, dims), 0, 2, 3, "2", NULL,
     "2 or 3"},
    SS("phantoms", "size", size, "64,64", "X,Y[,Z] voxels"),
    SS("phantoms", "spacing", spacing, "1,1,1", "X,Y,Z mm"),
    {"phantoms", "seed", DK_CFG_INT64, offsetof(study_settings, ph_seed), 0, 0,
     9007199254740991.0, "7", NULL, "seed of the generated cases"},
    PI("source_train", n_split[0], "8", "labelled source training cases"),
    PI("source_val", n_split[1], "2", "source validation cases (model selection)"),
    PI("source_test", n_split[2], "4", "source test cases"),
    PI("target_train", n_split[3], "8", "target training cases (labels unused but oracle)"),
    PI("target_val", n_split[4], "0", "target validation cases"),
    PI("target_test", n_split[5], "6", "target test cases"),
};

#define TF(k, ty, m, lo, hi, d, en, h) \
    {"stage", k, ty, offsetof(stage_fields, m), 0, lo, hi, d, en, h}
#define TS(k, m, d, h) \
    {"stage", k, DK_CFG_STRING, offsetof(stage_fields, m), sizeof(((stage_fields *)0)->m), 0, \
     0, d, NULL, h}
#define TL(k, m, d, h) \
    {"stage", k, DK_CFG_LIST, offsetof(stage_fields, m), sizeof(((stage_fields *)0)->m), 0, \
     0, d, NULL, h}

static const dk_cfg_field stage_table[] = {
    TF("kind", DK_CFG_ENUM, kind, 0, 0, "train", kind_names, "train | eval | report | adapt"),
    TF("mode", DK_CFG_ENUM, mode, 0, 0, "teacher", mode_names, "train: what to train"),
    TL("teacher", teacher, "",
       "distill: the teacher's train stage, then any extra teachers' (a, b, ...)"),
    TS("model", model, "", "adapt: the train stage whose model to adapt"),
    TS("label", label, "", "the row's name in the study table"),
    TF("model_file", DK_CFG_ENUM, model_file, 0, 0, "best", file_names,
       "best (source validation) or final"),
    TL("models", models, "", "eval: train and adapt stages to evaluate"),
    TS("domain", domain, "", "eval, adapt: value of [data] domain_column"),
    TS("split", split, "", "eval, adapt: value of [data] split_column (empty = any)"),
    TF("use_mask", DK_CFG_BOOL, use_mask, 0, 0, "true", NULL, "eval: score inside the mask"),
    TF("overlap", DK_CFG_DOUBLE, overlap, 0, 0.95, "0.5", NULL, "eval: window overlap"),
    TF("gaussian", DK_CFG_BOOL, gaussian, 0, 0, "true", NULL, "eval: Gaussian blending"),
    TF("tta_flips", DK_CFG_BOOL, tta_flips, 0, 0, "false", NULL, "eval: flip averaging"),
    TF("largest_cc", DK_CFG_BOOL, largest_cc, 0, 0, "false", NULL, "eval: largest component"),
    TF("batch", DK_CFG_INT, batch, 1, 256, "4", NULL, "eval: windows per forward pass"),
    TF("distance_unit", DK_CFG_ENUM, distance_unit, 0, 0, "mm", dk_distance_unit_names,
       "eval: mm | voxels (every spacing taken as 1, for data of unknown voxel size)"),
    TL("evals", evals, "", "report: eval stages (default: all before it)"),
    TS("title", title, "", "report: title (default: the study name)"),
    TL("seeds", seeds, "", "train, adapt: this stage's seeds (default: [study] seeds)"),
    TF("ranks", DK_CFG_INT, ranks, 1, 4096, "1", NULL,
       "train, under mpirun: one data-parallel training over this many ranks (not rank 0)"),
};

#define NTAB(t) (sizeof(t) / sizeof((t)[0]))

static int is_shared_section(const char *sec) {
    static const char *const names[] = {"data", "model", "train", "distill", "augment", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(sec, names[i]) == 0) return 1;
    return 0;
}

/* ---------------------------------------------------------------- checking one key */

/* A "section.key=value" assignment of a --set (line 0) or of the file (messages "<file>:<line>:
 * ..." as dk_cfg's own). */
static dk_status apply(void *obj, const dk_cfg_field *t, size_t n, const char *file, int line,
                       const char *section, const char *key, const char *value) {
    if (line > 0) {
        char where[STUDY_PATH_MAX + 16];
        snprintf(where, sizeof where, "%s:%d", file, line);
        return dk_cfg_assign(obj, t, n, section, key, value, where);
    }
    char buf[4096];
    snprintf(buf, sizeof buf, "%s.%s=%s", section, key, value);
    return dk_cfg_set(obj, t, n, buf);
}

static dk_status add_set(study_set **v, int *n, const char *section, const char *key,
                         const char *value, int line) {
    study_set *nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
    if (!nv) return dk_fail(DK_ERR_NOMEM, "study: out of memory");
    *v = nv;
    size_t len = strlen(section) + strlen(key) + strlen(value) + 3;
    char *text = malloc(len);
    if (!text) return dk_fail(DK_ERR_NOMEM, "study: out of memory");
    snprintf(text, len, "%s.%s=%s", section, key, value);
    nv[*n].text = text;
    nv[*n].line = line;
    (*n)++;
    return DK_OK;
}

static int valid_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n >= STUDY_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) ||
              name[i] == '_'))
            return 0;
    return 1;
}

int dk__study_find(const dk_study *s, const char *name) {
    for (int i = 0; i < s->nstages; i++)
        if (strcmp(s->stages[i].name, name) == 0) return i;
    return -1;
}

/* The stage of section "stage.NAME", made (undefined, defaults) on first sight. */
static dk_status stage_for(study_stage **out, dk_study *s, const char *name, const char *where,
                           int line) {
    if (!valid_name(name) || strcmp(name, "phantoms") == 0)
        return dk_fail(DK_ERR_ARG, "%s: [stage.%s]: bad stage name (a-z, 0-9, _, at most "
                       "%d characters; 'phantoms' is the built-in data stage)", where, name,
                       STUDY_NAME_MAX - 1);
    int i = dk__study_find(s, name);
    if (i < 0) {
        if (s->nstages == STUDY_MAX_STAGES)
            return dk_fail(DK_ERR_ARG, "%s: more than %d stages", where, STUDY_MAX_STAGES);
        study_stage *nv = realloc(s->stages, (size_t)(s->nstages + 1) * sizeof *nv);
        if (!nv) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path);
        s->stages = nv;
        i = s->nstages++;
        memset(&nv[i], 0, sizeof nv[i]);
        snprintf(nv[i].name, sizeof nv[i].name, "%s", name);
        dk_cfg_defaults(&nv[i].f, stage_table, NTAB(stage_table));
        nv[i].line = line;
        nv[i].defined = 1;
    }
    *out = &s->stages[i];
    return DK_OK;
}

/* The teachers' model files come from the stages named by teacher = a, b, ...: the keys
 * that name them are the runner's (section.key, or key in [section]). */
static dk_status check_teacher_keys(const char *where, const char *section, const char *key) {
    const char *dot = strchr(key, '.');
    char sk[96];
    snprintf(sk, sizeof sk, "%s.%s", dot ? "" : section, key);
    const char *k = dot ? key : sk;
    if (strcmp(k, "distill.extra_teachers") && strcmp(k, "model.teacher_checkpoint")) return DK_OK;
    return dk_fail(DK_ERR_ARG, "%s: %s: the study runner sets the teachers' model files from "
                   "a stage's teacher = <train stage>[, <more train stages>]; remove the line",
                   where, k);
}

/* One key of the file (line > 0) or one override given with the file (line 0). Messages
 * start with "<file>:<line>" or "override". */
static dk_status on_entry(dk_study *s, int line, const char *section, const char *key,
                          const char *value) {
    const char *file = line ? s->path : "override";
    char where[STUDY_PATH_MAX + 16] = "override";
    if (line) snprintf(where, sizeof where, "%s:%d", file, line);
    if (!section[0]) return dk_fail(DK_ERR_ARG, "%s: %s outside a [section]", where, key);
    if (strcmp(section, "study") == 0 || strcmp(section, "phantoms") == 0) {
        if (strcmp(section, "phantoms") == 0) s->has_phantoms = 1;
        if (strcmp(key, "stages") == 0) s->stages_line = line;
        if (strcmp(key, "seeds") == 0) s->seeds_line = line;
        if (strcmp(key, "baseline") == 0) s->baseline_line = line;
        if (strcmp(key, "compare") == 0) s->compare_line = line;
        return apply(&s->set, settings_table, NTAB(settings_table), file, line, section, key,
                     value);
    }
    dk_status kc = check_teacher_keys(where, section, key);
    if (kc != DK_OK) return kc;
    if (is_shared_section(section)) {
        dk_train_config scratch;
        size_t n;
        const dk_cfg_field *t = dk_train_config_table(&n);
        dk_train_config_defaults(&scratch);
        dk_status st = apply(&scratch, t, n, file, line, section, key, value);
        return st != DK_OK ? st : add_set(&s->shared, &s->nshared, section, key, value, line);
    }
    if (strcmp(section, "output") == 0)
        return dk_fail(DK_ERR_ARG, "%s: [output] %s: the study runner sets the output "
                       "folder (<run_dir>/<stage>); remove the line", where, key);

    if (strncmp(section, "stage.", 6) != 0)
        return dk_fail(DK_ERR_ARG, "%s: unknown section [%s] (study, phantoms, data, model, "
                       "train, distill, augment, stage.NAME)", where, section);
    study_stage *st = NULL;
    dk_status rc = stage_for(&st, s, section + 6, where, line);
    if (rc != DK_OK) return rc;
    const char *dot = strchr(key, '.');
    if (!dot) {
        if (strcmp(key, "teacher") == 0) st->teacher_line = line;
        if (strcmp(key, "models") == 0) st->models_line = line;
        if (strcmp(key, "model") == 0) st->model_line = line;
        if (strcmp(key, "evals") == 0) st->evals_line = line;
        if (strcmp(key, "seeds") == 0) st->seeds_line = line;
        return apply(&st->f, stage_table, NTAB(stage_table), file, line, "stage", key, value);
    }
    char sec[32];
    size_t sl = (size_t)(dot - key);
    if (sl >= sizeof sec || !is_shared_section((snprintf(sec, sizeof sec, "%.*s", (int)sl, key),
                                                sec)))
        return dk_fail(DK_ERR_ARG, "%s: [%s] %s: an override names a section of the "
                       "training config (data, model, train, distill, augment)", where, section,
                       key);
    dk_train_config scratch;
    size_t n;
    const dk_cfg_field *t = dk_train_config_table(&n);
    dk_train_config_defaults(&scratch);
    rc = apply(&scratch, t, n, file, line, sec, dot + 1, value);
    return rc != DK_OK ? rc : add_set(&st->sets, &st->nsets, sec, dot + 1, value, line);
}

/* ---------------------------------------------------------------- inih glue */

typedef struct {
    dk_study *s;
    dk_ini_source src;  /* the lines; src.st also holds on_key's first failure */
    char seen[256][96]; /* "section\nkey" of every key so far (duplicates are errors) */
    int seen_line[256];
    int nseen;
} parse_ctx;

/* An indented line: more entries of the list key above it ([study] stages, seeds; a
 * stage's teacher, models, evals, seeds), joined to its value; other keys refuse it. */
static dk_status on_continued(dk_study *s, int line, const char *section, const char *key,
                              const char *value) {
    char where[STUDY_PATH_MAX + 16], joined[4096];
    snprintf(where, sizeof where, "%s:%d", s->path, line);
    const dk_cfg_field *f = NULL;
    const void *obj = NULL;
    if (strcmp(section, "study") == 0 || strcmp(section, "phantoms") == 0) {
        f = dk_cfg_find(settings_table, NTAB(settings_table), section, key), obj = &s->set;
    } else if (strncmp(section, "stage.", 6) == 0 && !strchr(key, '.')) {
        int i = dk__study_find(s, section + 6);
        if (i >= 0) f = dk_cfg_find(stage_table, NTAB(stage_table), "stage", key);
        if (i >= 0) obj = &s->stages[i].f;
    }
    dk_status st = dk_cfg_continue(joined, sizeof joined, obj, f, section, key, value, where);
    return st != DK_OK ? st : on_entry(s, line, section, key, joined);
}

static int on_key(void *user, const char *section, const char *key, const char *value) {
    parse_ctx *c = user;
    if (c->src.st != DK_OK) return 1;
    if (c->src.continued) {
        c->src.st = on_continued(c->s, c->src.line, section, key, value);
        return c->src.st == DK_OK;
    }
    char id[96];
    snprintf(id, sizeof id, "%s\n%s", section, key);
    for (int i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i], id) == 0) {
            c->src.st = dk_fail(DK_ERR_ARG, "%s:%d: duplicate key [%s] %s (first set on line %d)",
                                c->s->path, c->src.line, section, key, c->seen_line[i]);
            return 0;
        }
    if (c->nseen < 256) {
        snprintf(c->seen[c->nseen], sizeof c->seen[0], "%s", id);
        c->seen_line[c->nseen++] = c->src.line;
    }
    c->src.st = on_entry(c->s, c->src.line, section, key, value);
    return c->src.st == DK_OK;
}

static dk_status parse_file(dk_study *s) {
    parse_ctx *c = calloc(1, sizeof *c);
    if (!c) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path);
    c->s = s;
    c->src.name = s->path;
    c->src.file = fopen(s->path, "r");
    if (!c->src.file) {
        free(c);
        return dk_fail(DK_ERR_IO, "%s: cannot open study file: %s", s->path, strerror(errno));
    }
    dk_status st = dk_ini_parse(&c->src, on_key, c);
    fclose(c->src.file);
    free(c);
    return st;
}

/* One override "section.key=value"; stage sections are "stage.NAME.key=value". */
static dk_status apply_cli_set(dk_study *s, const char *arg) {
    char sec[128], key[128];
    const char *eq = strchr(arg, '=');
    const char *d1 = eq ? memchr(arg, '.', (size_t)(eq - arg)) : NULL;
    if (!eq || !d1) return dk_fail(DK_ERR_ARG, "override '%s': expected section.key=value", arg);
    if (strncmp(arg, "stage.", 6) == 0) {
        d1 = memchr(arg + 6, '.', (size_t)(eq - arg - 6));
        if (!d1) return dk_fail(DK_ERR_ARG, "override '%s': expected stage.NAME.key=value", arg);
    }
    snprintf(sec, sizeof sec, "%.*s", (int)(d1 - arg), arg);
    snprintf(key, sizeof key, "%.*s", (int)(eq - d1 - 1), d1 + 1);
    return on_entry(s, 0, sec, key, eq + 1);
}

/* ---------------------------------------------------------------- cross-stage checks */

int dk__study_split_list(char names[][STUDY_NAME_MAX], int max, const char *list) {
    int n = 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t')) t--;
        if (n == max) return -1;
        snprintf(names[n++], STUDY_NAME_MAX, "%.*s", (int)(t - p), p);
        p = e;
    }
    return n;
}

/* One name of a compare item: [a-z0-9_], 1 to STUDY_NAME_MAX - 1 characters. */
static int compare_name(char *out, const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (e == p || e - p >= STUDY_NAME_MAX) return 0;
    for (const char *q = p; q < e; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_')) return 0;
    snprintf(out, STUDY_NAME_MAX, "%.*s", (int)(e - p), p);
    return 1;
}

int dk__study_compare_list(char a[][STUDY_NAME_MAX], char b[][STUDY_NAME_MAX], int max,
                           const char *list, char *bad, size_t nbad) {
    int n = 0;
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) break;
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        const char *m = memchr(p, '-', (size_t)(e - p));
        snprintf(bad, nbad, "%.*s", (int)(e - p), p);
        if (n == max || !m || !compare_name(a[n], p, m) || !compare_name(b[n], m + 1, e))
            return -1;
        n++;
        p = e;
    }
    return n;
}

/* No [study] stages: phantoms (with a [phantoms] section), then every stage in the order
 * its section first appears (sections of the file, then those only overrides define). */
static int every_stage(char names[][STUDY_NAME_MAX], const dk_study *s) {
    int n = 0;
    if (s->has_phantoms) snprintf(names[n++], STUDY_NAME_MAX, "phantoms");
    for (int k = 0; k < s->nstages; k++)
        if (strcmp(s->stages[k].name, "phantoms") != 0) {
            if (n == STUDY_MAX_STAGES) return -1;
            snprintf(names[n++], STUDY_NAME_MAX, "%s", s->stages[k].name);
        }
    return n;
}

/* Put the stages in [study] stages order; the built-in phantoms stage is made here. */
static dk_status order_stages(dk_study *s) {
    char names[STUDY_MAX_STAGES][STUDY_NAME_MAX], where[STUDY_PATH_MAX + 16] = "override";
    if (s->stages_line) snprintf(where, sizeof where, "%s:%d", s->path, s->stages_line);
    int n = s->set.stages[0] ? dk__study_split_list(names, STUDY_MAX_STAGES, s->set.stages)
                             : every_stage(names, s);
    if (n <= 0)
        return dk_fail(DK_ERR_ARG, "%s: [study] stages: %s", where,
                       n < 0 ? "too many stages" : "no stage to run (stages = a, b, ...)");
    study_stage *ordered = calloc((size_t)n, sizeof *ordered);
    if (!ordered) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path);
    dk_status st = DK_OK;
    for (int i = 0; i < n && st == DK_OK; i++) {
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                st = dk_fail(DK_ERR_ARG, "%s: [study] stages: '%s' is listed twice", where,
                             names[i]);
        int k = dk__study_find(s, names[i]);
        if (st != DK_OK) break;
        if (strcmp(names[i], "phantoms") == 0) {
            if (!s->has_phantoms)
                st = dk_fail(DK_ERR_ARG, "%s: [study] stages: 'phantoms' needs a [phantoms] "
                             "section", where);
            snprintf(ordered[i].name, sizeof ordered[i].name, "phantoms");
            ordered[i].f.kind = STAGE_PHANTOMS;
            ordered[i].defined = 1;
        } else if (k < 0) {
            st = dk_fail(DK_ERR_ARG, "%s: [study] stages: unknown stage '%s' (no "
                         "[stage.%s] section)", where, names[i], names[i]);
        } else {
            ordered[i] = s->stages[k];
            s->stages[k].defined = 0; /* moved */
        }
    }
    /* a section not listed is unused (so --set study.stages=... can run a subset) */
    for (int k = 0; k < s->nstages && st == DK_OK; k++)
        if (s->stages[k].defined) {
            if (s->stages[k].line > 0) /* line 0: a stage that only an override defines */
                dk_log(DK_LOG_WARN, "%s:%d: [stage.%s] is not in [study] stages: not run",
                       s->path, s->stages[k].line, s->stages[k].name);
            else
                dk_log(DK_LOG_WARN, "override: [stage.%s] is not in [study] stages: not run",
                       s->stages[k].name);
        }
    if (st == DK_OK && s->has_phantoms) {
        int found = 0;
        for (int i = 0; i < n; i++) found |= strcmp(names[i], "phantoms") == 0;
        if (!found)
            st = dk_fail(DK_ERR_ARG, "%s: [study] stages: a [phantoms] section needs the "
                         "'phantoms' stage first", where);
    }
    /* free what was not moved (on failure) and swap in the ordered list */
    for (int k = 0; k < s->nstages; k++) {
        if (!s->stages[k].defined) continue;
        for (int j = 0; j < s->stages[k].nsets; j++) free(s->stages[k].sets[j].text);
        free(s->stages[k].sets);
    }
    free(s->stages);
    s->stages = ordered; /* on failure too: dk_study_free frees what was moved */
    s->nstages = n;
    return st;
}

/* kinds: a bit (1 << stage_kind) per kind the dependency may have. */
static dk_status add_dep(dk_study *s, study_stage *st, const char *name, int line,
                         const char *key, unsigned kinds) {
    int k = dk__study_find(s, name);
    if (k < 0 || !(kinds >> s->stages[k].f.kind & 1u)) {
        char want[64] = "";
        for (int i = 0; kind_names[i]; i++)
            if (kinds >> i & 1u)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s",
                         want[0] ? " or " : "", kind_names[i]);
        return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s] %s = %s: not a stage of kind %s in "
                       "[study] stages", s->path, line, st->name, key, name, want);
    }
    for (int i = 0; i < st->ndeps; i++)
        if (st->deps[i] == k) return DK_OK;
    st->deps[st->ndeps++] = k;
    return DK_OK;
}

static dk_status list_deps(dk_study *s, study_stage *st, const char *list, int line,
                           const char *key, unsigned kinds) {
    char names[STUDY_MAX_STAGES][STUDY_NAME_MAX];
    int n = dk__study_split_list(names, STUDY_MAX_STAGES, list);
    if (n <= 0)
        return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s] %s: needs at least one stage", s->path,
                       line ? line : st->line, st->name, key);
    for (int i = 0; i < n; i++) {
        dk_status rc = add_dep(s, st, names[i], line, key, kinds);
        if (rc != DK_OK) return rc;
    }
    return DK_OK;
}

static dk_status stage_deps(dk_study *s, int i) {
    study_stage *st = &s->stages[i];
    int ph = dk__study_find(s, "phantoms");
    if (ph >= 0 && ph != i && st->f.kind != STAGE_REPORT) st->deps[st->ndeps++] = ph;
    if (st->f.kind != STAGE_TRAIN && st->f.ranks > 1)
        return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s] ranks is for kind = train", s->path,
                       st->line, st->name);
    if (st->f.kind == STAGE_TRAIN) {
        int distill = st->f.mode == DK_TRAINER_DISTILL;
        if (distill && !st->f.teacher[0])
            return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s] mode = distill needs teacher = <train "
                           "stage>", s->path, st->line, st->name);
        if (!distill && st->f.teacher[0])
            return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s] teacher is for mode = distill",
                           s->path, st->teacher_line, st->name);
        if (distill)
            return list_deps(s, st, st->f.teacher, st->teacher_line, "teacher",
                             1u << STAGE_TRAIN);
    } else if (st->f.kind == STAGE_EVAL || st->f.kind == STAGE_ADAPT) {
        int eval = st->f.kind == STAGE_EVAL;
        if (!st->f.domain[0])
            return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s] kind = %s needs domain = <value of "
                           "[data] domain_column>", s->path, st->line, st->name,
                           kind_names[st->f.kind]);
        if (eval)
            return list_deps(s, st, st->f.models, st->models_line, "models",
                             1u << STAGE_TRAIN | 1u << STAGE_ADAPT);
        if (!st->f.model[0])
            return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s] kind = adapt needs model = <train "
                           "stage>", s->path, st->line, st->name);
        return add_dep(s, st, st->f.model, st->model_line, "model", 1u << STAGE_TRAIN);
    } else if (st->f.kind == STAGE_REPORT) {
        if (st->f.evals[0])
            return list_deps(s, st, st->f.evals, st->evals_line, "evals", 1u << STAGE_EVAL);
        for (int k = 0; k < i; k++)
            if (s->stages[k].f.kind == STAGE_EVAL) st->deps[st->ndeps++] = k;
    }
    return DK_OK;
}

/* Depth-first search for a cycle through stage v; path holds the stages on the way. */
static int find_cycle(const dk_study *s, int v, int *state, int *path, int depth) {
    state[v] = 1;
    path[depth] = v;
    for (int j = 0; j < s->stages[v].ndeps; j++) {
        int d = s->stages[v].deps[j];
        if (state[d] == 1) return path[depth + 1] = d, depth + 2;
        if (state[d] == 0) {
            int len = find_cycle(s, d, state, path, depth + 1);
            if (len) return len;
        }
    }
    state[v] = 2;
    return 0;
}

static dk_status check_graph(dk_study *s) {
    int state[STUDY_MAX_STAGES] = {0}, path[STUDY_MAX_STAGES + 1];
    for (int i = 0; i < s->nstages; i++) {
        int len = state[i] ? 0 : find_cycle(s, i, state, path, 0);
        if (!len) continue;
        char msg[1024] = "";
        size_t u = 0;
        int first = 0;
        while (path[first] != path[len - 1]) first++;
        for (int k = first; k < len && u + 40 < sizeof msg; k++)
            u += (size_t)snprintf(msg + u, sizeof msg - u, "%s%s", k > first ? " -> " : "",
                                  s->stages[path[k]].name);
        const study_stage *a = &s->stages[path[first]];
        int line = a->teacher_line ? a->teacher_line : a->models_line ? a->models_line
                                                                        : a->line;
        return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s]: dependency cycle %s", s->path, line,
                       a->name, msg);
    }
    for (int i = 0; i < s->nstages; i++)
        for (int j = 0; j < s->stages[i].ndeps; j++)
            if (s->stages[i].deps[j] > i)
                return dk_fail(DK_ERR_ARG, "%s:%d: [study] stages: '%s' needs '%s', which "
                               "comes after it", s->path, s->stages_line, s->stages[i].name,
                               s->stages[s->stages[i].deps[j]].name);
    return DK_OK;
}

/* "a,b[,c]" into n numbers (> 0); the third defaults to `def3`. */
static int parse_triple(double v[3], const char *text, double def3) {
    v[2] = def3;
    int n = dk_parse_numbers(v, 3, text);
    for (int i = 0; i < n; i++)
        if (!(v[i] > 0)) return -1;
    return n >= 2 ? n : -1;
}

static dk_status check_phantoms(dk_study *s) {
    if (!s->has_phantoms) return DK_OK;
    double v[3];
    int n = parse_triple(v, s->set.size, 1);
    if (n < 0 || (s->set.dims == 2 && n == 3 && v[2] != 1) || (s->set.dims == 3 && n != 3))
        return dk_fail(DK_ERR_ARG, "%s: [phantoms] size = %s: X,Y for dims = 2, X,Y,Z for dims "
                       "= 3 (positive integers)", s->path, s->set.size);
    for (int a = 0; a < 3; a++) s->ph_size[a] = (int64_t)v[a];
    if (parse_triple(s->ph_spacing, s->set.spacing, 1) < 0)
        return dk_fail(DK_ERR_ARG, "%s: [phantoms] spacing = %s: X,Y[,Z] positive mm", s->path,
                       s->set.spacing);
    return DK_OK;
}

/* ---------------------------------------------------------------- public */

dk_status dk_study_load(dk_study **out, const char *path, const char *const *sets) {
    *out = NULL;
    dk_study *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory", path);
    }
    dk_cfg_defaults(&s->set, settings_table, NTAB(settings_table));
    s->lock.fd = -1;
    dk_status st = parse_file(s);
    for (int i = 0; sets && sets[i] && st == DK_OK; i++) st = apply_cli_set(s, sets[i]);
    if (st == DK_OK) st = dk_sha256_file(s->file_sha, path);
    if (st == DK_OK) st = check_phantoms(s);
    if (st == DK_OK) st = order_stages(s);
    for (int i = 0; i < s->nstages && st == DK_OK; i++) st = stage_deps(s, i);
    if (st == DK_OK) st = check_graph(s);
    if (st == DK_OK) st = dk__study_expand_seeds(s);
    if (st == DK_OK && !s->set.run_dir[0])
        st = dk_fail(DK_ERR_ARG, "%s: [study] run_dir is empty", path);
    if (st == DK_OK) {
        /* every training stage's effective config must validate now, not mid-study */
        dk_train_config c;
        for (int i = 0; i < s->nstages && st == DK_OK; i++)
            if (s->stages[i].f.kind == STAGE_TRAIN)
                st = dk__study_train_config(&c, s, &s->stages[i]);
        if (st == DK_OK) st = dk__study_train_config(&c, s, NULL);
    }
    if (st == DK_OK) s->hash_cache = cJSON_CreateObject();
    if (st == DK_OK && !s->hash_cache) st = dk_fail(DK_ERR_NOMEM, "%s: out of memory", path);
    if (st != DK_OK) {
        dk_study_free(s);
        return st;
    }
    *out = s;
    return DK_OK;
}

void dk_study_free(dk_study *s) {
    if (!s) return;
    dk_dir_lock_release(&s->lock);
    for (int i = 0; i < s->nstages; i++) {
        study_stage *st = &s->stages[i];
        for (int j = 0; j < st->nsets; j++) free(st->sets[j].text);
        free(st->sets);
        cJSON_Delete(st->record);
        cJSON_Delete(st->inputs);
        free(st->config_text);
    }
    for (int j = 0; j < s->nshared; j++) free(s->shared[j].text);
    free(s->shared);
    free(s->stages);
    cJSON_Delete(s->hash_cache);
    free(s->path);
    free(s);
}

int dk_study_stage_count(const dk_study *s) { return s->nstages; }
const char *dk_study_stage_name(const dk_study *s, int i) { return s->stages[i].name; }
const char *dk_study_run_dir(const dk_study *s) { return s->set.run_dir; }
int dk_study_stage_ran(const dk_study *s, int i) { return s->stages[i].ran; }
const char *dk_study_report_path(const dk_study *s) { return s->report_path; }
