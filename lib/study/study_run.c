/*
 * Running a study (dakd/study.h): per stage, the key over its config, dependencies and
 * input files; skip when stage.json holds that key; otherwise run the body and write
 * stage.json last; rewrite manifest.json after every stage. One stage at a time here; with
 * [study] jobs > 1 study_jobs.c takes the same steps with the bodies in child processes.
 */
#include "study_internal.h"

#include "dakd/data.h"
#include "dakd/dist.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const mode_name[] = {"teacher", "student", "oracle", "distill"};

/* ---------------------------------------------------------------- the keyed text */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} text_buf;

static void tb_add(text_buf *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void tb_add(text_buf *t, const char *fmt, ...) {
    va_list ap;
    for (int tries = 0; tries < 2 && !t->oom; tries++) {
        va_start(ap, fmt);
        int k = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt,
                          ap);
        va_end(ap);
        if (k < 0) return;
        if (t->buf && t->len + (size_t)k < t->cap) {
            t->len += (size_t)k;
            return;
        }
        size_t cap = 2 * (t->cap + (size_t)k + 256);
        char *nb = realloc(t->buf, cap);
        if (!nb) t->oom = 1;
        else t->buf = nb, t->cap = cap;
    }
}

/* Every key of the effective training config but the paths the runner sets. */
static void config_text(text_buf *t, const dk_train_config *c) {
    size_t n;
    const dk_cfg_field *tab = dk_train_config_table(&n);
    for (size_t i = 0; i < n; i++) {
        const char *sk = tab[i].key;
        if (!strcmp(sk, "cases") || !strcmp(sk, "teacher_checkpoint") ||
            !strcmp(sk, "extra_teachers") || !strcmp(sk, "run_dir"))
            continue;
        char v[4096];
        dk_cfg_format(v, sizeof v, c, &tab[i]);
        tb_add(t, "%s.%s=%s\n", tab[i].section, sk, v);
    }
}

/* The domain whose rows' label files stage st never reads (NULL: it may read every one):
 * a train stage but the oracle, or an adapt stage, uses the target rows unlabelled
 * (dakd/train.h), so those files stay out of its key and a corrected target label reruns
 * only the oracle and the evaluations. */
static const char *unlabelled_domain(const study_stage *st, const dk_train_config *c) {
    int blind = st->f.kind == STAGE_ADAPT ||
                (st->f.kind == STAGE_TRAIN && st->f.mode != DK_TRAINER_ORACLE);
    return blind && c->domain_column[0] && strcmp(c->target, c->source) ? c->target : NULL;
}

/* Hashes of the cases CSV and every file it names that the stage may read, in CSV order
 * (paths left out, so the key does not depend on where the run directory is). */
static dk_status input_hashes(text_buf *t, dk_study *s, study_stage *st,
                              const dk_train_config *c) {
    const char *csv = c->cases, *skip = unlabelled_domain(st, c);
    dk_case_list cl = {0};
    dk_status rc = dk_cases_read(&cl, csv);
    cJSON_Delete(st->inputs);
    st->inputs = cJSON_CreateObject();
    char hex[65];
    if (rc == DK_OK) rc = dk__study_hash_cached(hex, s, csv);
    if (rc == DK_OK) tb_add(t, "input cases=%s\n", hex), cJSON_AddStringToObject(st->inputs, csv, hex);
    for (int i = 0; i < cl.n && rc == DK_OK; i++) {
        const char *files[3] = {cl.cases[i].image, cl.cases[i].label, cl.cases[i].mask};
        const char *dom = skip ? dk_cases_get(&cl, i, c->domain_column) : NULL;
        if (dom && !strcmp(dom, skip)) files[1] = NULL;
        for (int k = 0; k < 3 && rc == DK_OK; k++) {
            if (!files[k]) continue;
            rc = dk__study_hash_cached(hex, s, files[k]);
            if (rc != DK_OK) break;
            tb_add(t, "input %s.%d=%s\n", cl.cases[i].id, k, hex);
            if (!cJSON_GetObjectItemCaseSensitive(st->inputs, files[k]))
                cJSON_AddStringToObject(st->inputs, files[k], hex);
        }
    }
    dk_cases_free(&cl);
    return rc;
}

static void stage_options(text_buf *t, const dk_study *s, const study_stage *st) {
    const stage_fields *f = &st->f;
    if (f->kind == STAGE_PHANTOMS) {
        tb_add(t, "dims=%d\nsize=%s\nspacing=%s\nseed=%lld\n", s->set.dims, s->set.size,
               s->set.spacing, (long long)s->set.ph_seed);
        for (int k = 0; k < 6; k++) tb_add(t, "n%d=%d\n", k, s->set.n_split[k]);
    } else if (f->kind == STAGE_TRAIN) {
        tb_add(t, "mode=%s\nmodel_file=%d\n", mode_name[f->mode], f->model_file);
        int ranks = dk__study_ranks_of(st); /* data-parallel: equal within rounding only */
        if (ranks > 1) tb_add(t, "ranks=%d\n", ranks);
    } else if (f->kind == STAGE_ADAPT) {
        tb_add(t, "model=%s\ndomain=%s\nsplit=%s\n", f->model, f->domain, f->split);
    } else if (f->kind == STAGE_EVAL) {
        tb_add(t, "domain=%s\nsplit=%s\nuse_mask=%d\noverlap=%.17g\ngaussian=%d\ntta=%d\n"
               "lcc=%d\nbatch=%d\n", f->domain, f->split, f->use_mask, f->overlap, f->gaussian,
               f->tta_flips, f->largest_cc, f->batch);
        if (f->distance_unit) /* only then: the keys of mm stages stay as they were */
            tb_add(t, "distance_unit=%s\n", dk_distance_unit_names[f->distance_unit]);
    } else {
        tb_add(t, "title=%s\nname=%s\n", f->title, s->set.name);
        if (s->set.baseline[0]) tb_add(t, "baseline=%s\n", s->set.baseline); /* keys as before */
        if (s->set.compare[0]) tb_add(t, "compare=%s\n", s->set.compare);
    }
    for (int j = 0; j < st->ndeps; j++) {
        const study_stage *d = &s->stages[st->deps[j]];
        tb_add(t, "dep %s=%s\n", d->dir, d->key);
    }
}

static dk_status compute_key(dk_study *s, study_stage *st) {
    text_buf t = {0};
    dk_status rc = DK_OK;
    tb_add(&t, "%s\nkind=%s\n", dk_version_string(), dk__study_kind_name(st->f.kind));
    stage_options(&t, s, st);
    if (st->f.kind == STAGE_TRAIN || st->f.kind == STAGE_EVAL || st->f.kind == STAGE_ADAPT) {
        /* an adapt stage samples as its model's training did: that stage's config */
        int m = st->f.kind == STAGE_ADAPT ? dk__study_dep(s, st, st->f.model) : -1;
        const study_stage *cs = st->f.kind == STAGE_TRAIN ? st : m >= 0 ? &s->stages[m] : NULL;
        dk_train_config c;
        rc = dk__study_train_config(&c, s, cs);
        if (rc == DK_OK) config_text(&t, &c);
        free(st->config_text);
        st->config_text = t.buf ? strdup(t.buf) : NULL;
        if (rc == DK_OK) rc = input_hashes(&t, s, st, &c);
    }
    if (rc == DK_OK && (t.oom || !t.buf)) rc = dk_fail(DK_ERR_NOMEM, "study: out of memory");
    if (rc == DK_OK) rc = dk__study_sha256_text(st->key, t.buf, t.len);
    free(t.buf);
    return rc;
}

/* ---------------------------------------------------------------- one stage */

static int same_key_file(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    char buf[80] = "";
    if (!f) return 0;
    int ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return ok && strcmp(buf, key) == 0;
}

static dk_status write_key_file(const char *path, const char *key) {
    char tmp[STUDY_PATH_MAX + 64];
    dk_status st = dk_tmp_path_for(tmp, sizeof tmp, path);
    FILE *f = st == DK_OK ? fopen(tmp, "w") : NULL;
    if (st == DK_OK && !f) return dk_fail(DK_ERR_IO, "%s: cannot write", path);
    if (st != DK_OK) return st;
    int bad = fprintf(f, "%s\n", key) < 0;
    bad |= fclose(f) != 0;
    if (bad) return remove(tmp), dk_fail(DK_ERR_IO, "%s: write failed", path);
    return dk_commit_file(tmp, path);
}

/* <dir>/.dakd-stage marks a folder the runner made, the only kind it ever deletes. */
static const char *marker_path(char *buf, size_t n, const char *dir) {
    int k = snprintf(buf, n, "%s/.dakd-stage", dir);
    DK_ASSERT(k > 0 && (size_t)k < n); /* dir is <run_dir>/<stage>: 512 + 32 characters */
    return buf;
}

/* The temporary file the marker is written through (dk_tmp_path_for: ".<name>.<pid>.<n>.tmp"),
 * left behind when the runner is killed between creating the folder and renaming it. */
static int marker_tmp(const char *name) {
    size_t n = strlen(name);
    return strncmp(name, "..dakd-stage.", 13) == 0 && n > 17 && strcmp(name + n - 4, ".tmp") == 0;
}

/* Remove a stage folder made by the runner; refuse a non-empty folder without the marker
 * (run_dir = . and a stage named like a folder of the user's must not delete it). A folder
 * holding nothing but the marker's temporary file is the runner's too. */
static dk_status clear_stage_dir(const char *dir) {
    char p[STUDY_PATH_MAX + 16];
    DIR *d = opendir(dir);
    if (!d) return DK_OK;
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                   !marker_tmp(e->d_name);
    closedir(d);
    if (entries && access(marker_path(p, sizeof p, dir), F_OK) != 0)
        return dk_fail(DK_ERR_IO, "%s: not a stage folder made by dakd run (no .dakd-stage); "
                       "refusing to clear it: choose another run_dir or stage name", dir);
    return dk_remove_tree(dir);
}

/* Clear the stage's folder, or keep it for a resumable training run. *resume is set when
 * a killed training run of the same key left a checkpoint. */
dk_status dk__study_prepare(dk_study *s, study_stage *st, int forced, int *resume) {
    char dir[STUDY_PATH_MAX], p[STUDY_PATH_MAX];
    dk__study_path(dir, sizeof dir, s, st->dir, NULL);
    dk__study_path(p, sizeof p, s, st->dir, "stage.json");
    remove(p);
    *resume = 0;
    if (st->f.kind == STAGE_TRAIN && !forced) {
        char ck[STUDY_PATH_MAX];
        dk__study_path(p, sizeof p, s, st->dir, "stage.key");
        dk__study_path(ck, sizeof ck, s, st->dir, "checkpoint.safetensors");
        *resume = same_key_file(p, st->key) && access(ck, R_OK) == 0;
    }
    dk_status rc = *resume ? DK_OK : clear_stage_dir(dir);
    if (rc == DK_OK) rc = dk_mkdirs(dir);
    if (rc == DK_OK) rc = write_key_file(marker_path(p, sizeof p, dir), st->name);
    if (rc == DK_OK && st->f.kind == STAGE_TRAIN) {
        dk__study_path(p, sizeof p, s, st->dir, "stage.key");
        rc = write_key_file(p, st->key);
    }
    return rc;
}

static dk_status run_body(dk_study *s, study_stage *st, cJSON *result, int resume,
                          const dk_study_opts *o, int *stopped) {
    *stopped = 0;
    switch ((stage_kind)st->f.kind) {
    case STAGE_PHANTOMS: return dk__study_run_phantoms(s, st, result);
    case STAGE_TRAIN:
        return dk__study_run_train(s, st, result, resume, o->stop_after_steps, stopped);
    case STAGE_EVAL: return dk__study_run_eval(s, st, result);
    case STAGE_ADAPT: return dk__study_run_adapt(s, st, result);
    case STAGE_REPORT: return dk__study_run_report(s, st, result, o->out);
    }
    return dk_fail(DK_ERR_INTERNAL, "stage %s: unknown kind", st->name);
}

/* One stage line on `out` (NULL: none), with the progress bar off the terminal meanwhile. */
static void say(FILE *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void say(FILE *out, const char *fmt, ...) {
    if (!out) return;
    va_list ap;
    va_start(ap, fmt);
    dk_progress_hide();
    vfprintf(out, fmt, ap);
    fflush(out);
    dk_progress_show();
    va_end(ap);
}

void dk__study_tag(char tag[32], const dk_study *s, const study_stage *st) {
    snprintf(tag, 32, "[%d/%d]", (int)(st - s->stages) + 1, s->nstages);
}

void dk__study_print_running(FILE *out, const dk_study *s, const study_stage *st, int resume,
                             const char *log) {
    if (s->progress)
        dk_progress_item(s->progress, "stage %d/%d %s", (int)(st - s->stages) + 1, s->nstages,
                         st->dir);
    char tag[32];
    dk__study_tag(tag, s, st);
    say(out, "%s %s: running (%s%s%s)%s%s%s\n", tag, st->dir, dk__study_kind_name(st->f.kind),
        st->f.kind == STAGE_TRAIN ? ", " : "", st->f.kind == STAGE_TRAIN ? mode_name[st->f.mode]
                                                                         : "",
        resume ? ", resuming from its checkpoint" : "", log ? " — log: " : "", log ? log : "");
}

void dk__study_print_done(FILE *out, const dk_study *s, const study_stage *st) {
    char tag[32];
    dk__study_tag(tag, s, st);
    if (st->record) say(out, "%s %s: done in %.1f s\n", tag, st->dir, st->seconds);
    else say(out, "%s %s: interrupted (its checkpoint remains)\n", tag, st->dir);
}

dk_status dk__study_execute(dk_study *s, study_stage *st, int resume, const dk_study_opts *o,
                            int *stopped) {
    cJSON *rec = cJSON_CreateObject();
    if (!rec) return dk_fail(DK_ERR_NOMEM, "study: out of memory");
    cJSON_AddStringToObject(rec, "stage", st->name);
    cJSON_AddStringToObject(rec, "kind", dk__study_kind_name(st->f.kind));
    cJSON_AddStringToObject(rec, "key", st->key);
    cJSON_AddStringToObject(rec, "dakd", dk_version_string());
    if (st->f.kind == STAGE_TRAIN) cJSON_AddStringToObject(rec, "mode", mode_name[st->f.mode]);
    cJSON_AddStringToObject(rec, "label", st->f.label[0] ? st->f.label : st->name);
    cJSON_AddNumberToObject(rec, "seed", (double)st->seed);
    cJSON *result = cJSON_AddObjectToObject(rec, "result");
    double t0 = dk_time_now();
    dk_status rc = run_body(s, st, result, resume, o, stopped);
    st->seconds = dk_time_now() - t0;
    if (rc == DK_OK && *stopped) { /* no stage.json: the stage has no current outputs */
        cJSON_Delete(rec);
        cJSON_Delete(st->record);
        st->record = NULL;
        return DK_OK;
    }
    cJSON_AddNumberToObject(rec, "seconds", st->seconds);
    char p[STUDY_PATH_MAX];
    dk__study_path(p, sizeof p, s, st->dir, "stage.json");
    /* last: the stage is finished; a data-parallel stage's first rank writes it */
    if (rc == DK_OK && dk_dist_rank() == 0) rc = dk_json_write_file(rec, p);
    cJSON_Delete(st->record);
    st->record = rc == DK_OK ? rec : NULL;
    if (rc != DK_OK) cJSON_Delete(rec);
    else st->ran = 1;
    return rc;
}

/* One stage, in this process: prepare, run, say so. */
static dk_status run_stage(dk_study *s, study_stage *st, int forced, const dk_study_opts *o,
                           int *stopped) {
    int resume = 0;
    dk_status rc = dk__study_prepare(s, st, forced, &resume);
    if (rc != DK_OK) return rc;
    dk__study_print_running(o->out, s, st, resume, NULL);
    rc = dk__study_execute(s, st, resume, o, stopped);
    if (rc == DK_OK && *stopped && dk_interrupt_pending()) {
        dk__study_print_done(o->out, s, st); /* no record: "interrupted" */
    } else if (rc == DK_OK && *stopped) {
        char tag[32];
        dk__study_tag(tag, s, st);
        say(o->out, "%s %s: stopped after %lld steps (its checkpoint remains)\n", tag, st->dir,
            (long long)o->stop_after_steps);
    }
    if (rc == DK_OK && !*stopped) dk__study_print_done(o->out, s, st);
    return rc;
}

cJSON *dk__study_recorded(const dk_study *s, const study_stage *st) {
    char p[STUDY_PATH_MAX];
    dk__study_path(p, sizeof p, s, st->dir, "stage.json");
    cJSON *rec = dk__study_read_json(p);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(rec, "key");
    if (cJSON_IsString(k) && strcmp(k->valuestring, st->key) == 0) return rec;
    cJSON_Delete(rec);
    return NULL;
}

void dk__study_adopt(study_stage *st, cJSON *rec) {
    cJSON_Delete(st->record);
    st->record = rec;
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(rec, "seconds");
    st->seconds = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
}

dk_status dk__study_check(dk_study *s, study_stage *st, int forced, const dk_study_opts *o,
                          int *must_run) {
    int dirty = 0;
    for (int j = 0; j < st->ndeps; j++) dirty |= s->stages[st->deps[j]].ran;
    st->ran = 0;
    *must_run = 1;
    dk_status rc = compute_key(s, st);
    cJSON *rec = rc != DK_OK || forced || dirty ? NULL : dk__study_recorded(s, st);
    if (!rec) return rc;
    *must_run = 0;
    dk__study_adopt(st, rec);
    char tag[32];
    dk__study_tag(tag, s, st);
    say(o->out, "%s %s: up to date (key %.12s)\n", tag, st->dir, st->key);
    return DK_OK;
}

dk_status dk__study_finish(dk_study *s, const study_stage *st, dk_status rc) {
    if (st->f.kind == STAGE_REPORT && rc == DK_OK)
        dk__study_path(s->report_path, sizeof s->report_path, s, st->dir, "report.html");
    if (s->progress && rc == DK_OK) dk_progress_step(s->progress, 1);
    dk_status mr = dk__study_write_manifest(s);
    return rc == DK_OK ? mr : rc;
}

static void print_report(const dk_study *s, FILE *out) {
    if (!out || !s->report_path[0]) return;
    char md[STUDY_PATH_MAX];
    snprintf(md, sizeof md, "%s", s->report_path);
    char *dot = strrchr(md, '.');
    if (dot) snprintf(dot, sizeof md - (size_t)(dot - md), ".md");
    FILE *f = fopen(md, "r");
    char line[4096];
    fputc('\n', out);
    while (f && fgets(line, sizeof line, f)) fputs(line, out);
    if (f) fclose(f);
    fprintf(out, "\nreport: %s\n", s->report_path);
}

dk_status dk_study_run(dk_study *s, const dk_study_opts *opts) {
    /* under mpirun every rank has loaded the same file: rank 0 runs the study, the others
     * serve it stages (study_ranks.c) until it says stop, which it does however it ends */
    int ranks = dk_dist_world_size();
    if (ranks > 1 && dk_dist_world_rank() > 0) return dk__study_serve(s);
    dk_study_opts o = opts ? *opts : (dk_study_opts){NULL, NULL, 0};
    int from = -1;
    dk_status rc = DK_OK;
    if (o.from && (from = dk__study_find(s, o.from)) < 0)
        rc = dk_fail(DK_ERR_ARG, "%s: no stage '%s' to start from", s->path, o.from);
    if (rc == DK_OK && ranks > 1) rc = dk__study_ranks_check(s);
    dk_set_threads(s->set.threads);
    if (rc == DK_OK) rc = dk__study_check_outputs(s);
    if (rc == DK_OK) rc = dk_mkdirs(s->set.run_dir);
    if (rc == DK_OK && s->lock.fd < 0) rc = dk_dir_lock_take(&s->lock, s->set.run_dir);
    /* stop_after_steps stops the study in the first training stage that runs, as a kill
     * would: one stage at a time keeps "the first" what it says (not under mpirun) */
    int parallel = ranks > 1 || (s->set.jobs > 1 && o.stop_after_steps <= 0);
    dk_progress pg; /* the stages; a stage's own reporters nest inside */
    dk_progress_begin(&pg, "run", s->nstages);
    s->progress = &pg;
    int stopped_early = 0;
    if (rc == DK_OK && parallel) rc = dk__study_run_jobs(s, &o, from);
    for (int i = 0; i < s->nstages && rc == DK_OK && !parallel && !dk_interrupt_pending(); i++) {
        study_stage *st = &s->stages[i];
        int forced = from >= 0 && i >= from, run = 0, stopped = 0;
        rc = dk__study_check(s, st, forced, &o, &run);
        if (rc != DK_OK) break;
        if (run) rc = run_stage(s, st, forced, &o, &stopped);
        rc = dk__study_finish(s, st, rc);
        if (stopped) {
            stopped_early = 1;
            break;
        }
    }
    dk_progress_end(&pg);
    s->progress = NULL;
    if (ranks > 1) dk__study_ranks_stop(); /* every worker waits for a stage or the end */
    if (stopped_early) return rc;
    if (rc == DK_OK && !dk_interrupt_pending()) print_report(s, o.out);
    return rc;
}
