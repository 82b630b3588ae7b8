/*
 * The bodies of the phantoms, train and eval stages (dakd/study.h): each builds its inputs
 * from the study, calls the library (phantom generator, trainer, prediction, evaluation)
 * and fills its result object, which the runner stores in stage.json.
 */
/* realpath() and symlink() are X/Open functions */
#define _XOPEN_SOURCE 700

#include "study_internal.h"

#include "dakd/data.h"
#include "dakd/eval.h"
#include "dakd/nn.h"
#include "dakd/volume.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void dk__study_path(char *buf, size_t n, const dk_study *s, const char *stage,
                    const char *name) {
    if (name && name[0]) snprintf(buf, n, "%s/%s/%s", s->set.run_dir, stage, name);
    else snprintf(buf, n, "%s/%s", s->set.run_dir, stage);
}

void dk__study_model_file(char *buf, size_t n, const dk_study *s, const study_stage *st) {
    dk__study_path(buf, n, s, st->dir, "best.safetensors");
    if (st->f.kind == STAGE_TRAIN && st->f.model_file == FILE_BEST && access(buf, R_OK) == 0)
        return;
    dk__study_path(buf, n, s, st->dir, "model.safetensors");
}

/* ---------------------------------------------------------------- effective config */

static dk_status set1(dk_train_config *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static dk_status set1(dk_train_config *c, const char *fmt, ...) {
    char buf[STUDY_PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return dk_train_config_set(c, buf);
}

/* The [data]/[model] defaults that generated phantoms imply (dakd/study.h). */
static dk_status phantom_defaults(dk_train_config *c, const dk_study *s) {
    char csv[STUDY_PATH_MAX];
    dk__study_path(csv, sizeof csv, s, "phantoms", "cases.csv");
    static const char *const fixed[] = {
        "data.domain_column=domain", "data.source=source", "data.target=target",
        "data.split_column=split", "data.train_split=train", "data.val_split=val",
        "data.target_split=train", "data.classes=4", NULL};
    dk_status st = set1(c, "data.cases=%s", csv);
    for (int i = 0; fixed[i] && st == DK_OK; i++) st = dk_train_config_set(c, fixed[i]);
    if (st == DK_OK) st = set1(c, "model.dims=%d", s->set.dims);
    if (st == DK_OK) st = set1(c, "data.patch_d=%lld", (long long)s->ph_size[2]);
    if (st == DK_OK) st = set1(c, "data.patch_h=%lld", (long long)s->ph_size[1]);
    if (st == DK_OK) st = set1(c, "data.patch_w=%lld", (long long)s->ph_size[0]);
    return st;
}

static dk_status apply_sets(dk_train_config *c, const dk_study *s, const study_set *v, int n) {
    for (int i = 0; i < n; i++) {
        dk_status st = dk_train_config_set(c, v[i].text);
        if (st == DK_OK) continue;
        return v[i].line ? dk_error_context(st, "%s:%d", s->path, v[i].line)
                         : dk_error_context(st, "%s", s->path);
    }
    return DK_OK;
}

/* teacher = a, b, ...: a's model file is the teacher_checkpoint, the others' the
 * extra_teachers (the parser checked that each is a train stage). */
static dk_status set_teachers(dk_train_config *c, const dk_study *s, const study_stage *st) {
    char buf[STUDY_PATH_MAX];
    dk_sbuf extra = {0};
    dk_sb_puts(&extra, "distill.extra_teachers=");
    dk_status rc = DK_OK;
    char names[STUDY_MAX_STAGES][STUDY_NAME_MAX];
    int n = dk__study_split_list(names, STUDY_MAX_STAGES, st->f.teacher);
    for (int i = 0; rc == DK_OK && i < n; i++) {
        int k = dk__study_dep(s, st, names[i]); /* the teacher's run at this seed */
        DK_ASSERT(k >= 0);
        dk__study_model_file(buf, sizeof buf, s, &s->stages[k]);
        if (i == 0) rc = set1(c, "model.teacher_checkpoint=%s", buf);
        else dk_sb_printf(&extra, "%s%s", i > 1 ? "," : "", buf);
    }
    if (rc == DK_OK && n > 1)
        rc = extra.oom ? dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path)
                       : dk_train_config_set(c, extra.s);
    dk_sb_free(&extra);
    return rc;
}

dk_status dk__study_train_config(dk_train_config *c, const dk_study *s, const study_stage *st) {
    dk_train_config_defaults(c);
    dk_status rc = s->has_phantoms ? phantom_defaults(c, s) : DK_OK;
    if (rc == DK_OK) rc = set1(c, "train.seed=%lld", (long long)(st ? st->seed : s->set.seed));
    if (rc == DK_OK) rc = set1(c, "train.threads=%d", s->set.threads);
    if (rc == DK_OK) rc = apply_sets(c, s, s->shared, s->nshared);
    if (rc == DK_OK && st) rc = apply_sets(c, s, st->sets, st->nsets);
    char buf[STUDY_PATH_MAX];
    dk__study_path(buf, sizeof buf, s, st ? st->dir : "", NULL);
    if (rc == DK_OK) rc = set1(c, "output.run_dir=%s", buf);
    if (rc == DK_OK && st && st->f.mode == DK_TRAINER_DISTILL) rc = set_teachers(c, s, st);
    if (rc != DK_OK) return rc;
    rc = dk_train_config_validate(c);
    return rc == DK_OK ? DK_OK
                       : dk_error_context(rc, "%s: [stage.%s]", s->path, st ? st->name : "shared");
}

/* ---------------------------------------------------------------- phantoms */

static dk_status write_phantom(const dk_study *s, const char *dir, const char *id, int domain,
                               dk_rng *rng) {
    dk_phantom_opts o = {s->ph_size[0], s->ph_size[1], s->ph_size[2],
                         {s->ph_spacing[0], s->ph_spacing[1], s->ph_spacing[2]}, domain};
    dk_volume img = {0}, lab = {0};
    dk_status st = dk_phantom_generate(&img, &lab, &o, rng);
    char p[STUDY_PATH_MAX + 160];
    if (st == DK_OK) {
        snprintf(p, sizeof p, "%s/%s_image.nii.gz", dir, id);
        st = dk_volume_write(&img, p, NULL);
    }
    if (st == DK_OK) {
        snprintf(p, sizeof p, "%s/%s_label.nii.gz", dir, id);
        st = dk_volume_write(&lab, p, NULL);
    }
    dk_volume_free(&img);
    dk_volume_free(&lab);
    return st;
}

dk_status dk__study_run_phantoms(dk_study *s, study_stage *stg, cJSON *result) {
    static const char *const splits[3] = {"train", "val", "test"};
    static const char *const domains[2] = {"source", "target"};
    char dir[STUDY_PATH_MAX], csv[STUDY_PATH_MAX], tmp[STUDY_PATH_MAX + 64];
    dk__study_path(dir, sizeof dir, s, stg->dir, NULL);
    dk__study_path(csv, sizeof csv, s, stg->dir, "cases.csv");
    dk_status st = dk_tmp_path_for(tmp, sizeof tmp, csv);
    FILE *f = st == DK_OK ? fopen(tmp, "w") : NULL;
    if (st == DK_OK && !f) st = dk_fail(DK_ERR_IO, "%s: cannot write: %s", csv, strerror(errno));
    if (f) fprintf(f, "case,image,label,domain,split\n");
    dk_rng root;
    dk_rng_seed(&root, (uint64_t)s->set.ph_seed);
    int total = 0;
    for (int d = 0; d < 2 && st == DK_OK; d++)
        for (int k = 0; k < 3 && st == DK_OK; k++)
            for (int i = 0; i < s->set.n_split[3 * d + k] && st == DK_OK; i++) {
                char id[64];
                snprintf(id, sizeof id, "%s_%s_%03d", domains[d], splits[k], i);
                /* one stream per (domain, split, case): adding cases never changes others */
                dk_rng r = dk_rng_split(&root, (uint64_t)(d * 1000003 + k * 10007 + i));
                st = write_phantom(s, dir, id, d, &r);
                fprintf(f, "%s,%s_image.nii.gz,%s_label.nii.gz,%s,%s\n", id, id, id, domains[d],
                        splits[k]);
                total++;
            }
    int bad = f && ferror(f), e = errno; /* a full disk fails a buffered write or the close */
    if (f && (fclose(f) != 0 || bad) && st == DK_OK)
        st = dk_fail(DK_ERR_IO, "%s: write failed: %s", csv, strerror(bad ? e : errno));
    if (st == DK_OK) st = dk_commit_file(tmp, csv);
    else if (f) remove(tmp);
    cJSON_AddNumberToObject(result, "cases", total);
    cJSON_AddStringToObject(result, "cases_csv", csv);
    return st;
}

/* ---------------------------------------------------------------- train */

dk_status dk__study_run_train(dk_study *s, study_stage *stg, cJSON *result, int resume,
                              int64_t stop_after, int *stopped) {
    dk_train_config c;
    *stopped = 0;
    dk_status st = dk__study_train_config(&c, s, stg);
    if (st != DK_OK) return st;
    dk_trainer_opts o = {(dk_trainer_mode)stg->f.mode, resume, stop_after};
    dk_trainer *t = NULL;
    st = dk_trainer_create(&t, &c, &o);
    if (st == DK_OK) st = dk_trainer_run(t);
    /* stopped early (a simulated kill): the trainer ran exactly stop_after steps */
    if (st == DK_OK && stop_after > 0 && dk_trainer_get_stats(t)->steps >= stop_after &&
        dk_trainer_get_stats(t)->epochs_done < c.epochs)
        *stopped = 1;
    if (st == DK_OK && dk_trainer_get_stats(t)->interrupted) *stopped = 1; /* checkpointed */
    if (st == DK_OK && !*stopped) {
        const dk_trainer_stats *ts = dk_trainer_get_stats(t);
        char model[STUDY_PATH_MAX];
        dk__study_model_file(model, sizeof model, s, stg);
        cJSON_AddStringToObject(result, "model", model);
        cJSON_AddNumberToObject(result, "params",
                                (double)dk_unet_params(dk_trainer_model(t))->total);
        cJSON_AddNumberToObject(result, "epochs", ts->epochs_done);
        cJSON_AddNumberToObject(result, "best_val_dice", ts->best_val_dice);
        cJSON_AddNumberToObject(result, "best_epoch", ts->best_epoch + 1);
        cJSON_AddBoolToObject(result, "resumed", resume);
    }
    dk_trainer_free(t);
    return st;
}

/* ---------------------------------------------------------------- eval */

static const char *image_ext(const char *path) {
    static const char *const exts[] = {".nii.gz", ".nii", ".png", ".mha", ".nrrd", NULL};
    size_t n = strlen(path);
    for (int i = 0; exts[i]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcmp(path + n - e, exts[i]) == 0) return exts[i];
    }
    return NULL;
}

/* dir/<id><ext of target> → absolute target. */
static dk_status link_case(const char *dir, const char *id, const char *target) {
    const char *ext = image_ext(target);
    if (!ext) return dk_fail(DK_ERR_UNSUPPORTED, "%s: evaluation reads .nii.gz, .nii, .png, "
                             ".mha or .nrrd files", target);
    char abs[PATH_MAX], link[STUDY_PATH_MAX + 128];
    if (!realpath(target, abs)) return dk_fail(DK_ERR_IO, "%s: %s", target, strerror(errno));
    snprintf(link, sizeof link, "%s/%s%s", dir, id, ext);
    if (symlink(abs, link) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot link: %s", link, strerror(errno));
    return DK_OK;
}

/* The eval set: [data] cases filtered by domain (and split), every case labelled. */
static dk_status eval_cases(dk_case_list *out, const dk_train_config *c, const study_stage *g) {
    dk_case_list all = {0}, dom = {0};
    dk_status st = dk_cases_read(&all, c->cases);
    if (st == DK_OK) st = dk_cases_filter(&dom, &all, c->domain_column, g->f.domain);
    if (st == DK_OK && g->f.split[0] && c->split_column[0])
        st = dk_cases_filter(out, &dom, c->split_column, g->f.split);
    else if (st == DK_OK) *out = dom, dom = (dk_case_list){0};
    dk_cases_free(&all);
    dk_cases_free(&dom);
    if (st == DK_OK && out->n == 0)
        st = dk_fail(DK_ERR_ARG, "%s: [stage.%s]: no case with %s = %s%s%s", c->cases, g->name,
                     c->domain_column, g->f.domain, g->f.split[0] ? " and split = " : "",
                     g->f.split);
    for (int i = 0; st == DK_OK && i < out->n; i++) {
        if (!out->cases[i].label)
            st = dk_fail(DK_ERR_FORMAT, "%s:%d: case %s has no label to score against",
                         c->cases, out->cases[i].line, out->cases[i].id);
        else if (g->f.use_mask && !out->cases[i].mask)
            st = dk_fail(DK_ERR_FORMAT, "%s:%d: case %s has no mask (use_mask = false scores "
                         "the whole image)", c->cases, out->cases[i].line, out->cases[i].id);
    }
    if (st != DK_OK) dk_cases_free(out);
    return st;
}

/* refs/, masks/, images/ of symbolic links named by case id, and cases.csv of the set (with
 * the list's spacing column when it has one: prediction and scoring then use those voxel
 * sizes, as training did). */
static dk_status lay_out(const char *dir, const dk_case_list *cs, int use_mask) {
    static const char *const sub[3] = {"refs", "masks", "images"};
    char p[3][STUDY_PATH_MAX + 16], csv[STUDY_PATH_MAX + 16];
    dk_status st = DK_OK;
    for (int k = 0; k < 3 && st == DK_OK; k++) {
        snprintf(p[k], sizeof p[k], "%s/%s", dir, sub[k]);
        st = dk_mkdirs(p[k]);
    }
    snprintf(csv, sizeof csv, "%s/cases.csv", dir);
    dk_sbuf f = {0};
    /* the mask goes to prediction whether or not scoring uses it: the model may need it
     * (normalisation statistics inside the mask, mask_extent), exactly as in training */
    int files = cs->n ? cs->cases[0].n_images : 1; /* every row has the list's columns */
    dk_sb_puts(&f, "case,image");
    for (int k = 1; k < files; k++) dk_sb_printf(&f, ",image_%d", k);
    int spacing = dk_cases_column(cs, "spacing");
    dk_sb_puts(&f, spacing >= 0 ? ",mask,spacing\n" : ",mask\n");
    for (int i = 0; i < cs->n && st == DK_OK; i++) {
        const dk_case *c = &cs->cases[i];
        char abs[PATH_MAX], mabs[PATH_MAX] = "";
        st = link_case(p[0], c->id, c->label);
        if (st == DK_OK && use_mask) st = link_case(p[1], c->id, c->mask);
        if (st == DK_OK) st = link_case(p[2], c->id, c->image);
        if (st == DK_OK && c->mask && !realpath(c->mask, mabs))
            st = dk_fail(DK_ERR_IO, "%s: %s", c->mask, strerror(errno));
        if (st == DK_OK) dk_sb_printf(&f, "\"%s\"", c->id);
        for (int k = 0; k < c->n_images && st == DK_OK; k++) {
            if (!realpath(c->images[k], abs))
                st = dk_fail(DK_ERR_IO, "%s: %s", c->images[k], strerror(errno));
            else
                dk_sb_printf(&f, ",\"%s\"", abs);
        }
        if (st == DK_OK) dk_sb_printf(&f, ",\"%s\"", mabs);
        if (st == DK_OK && spacing >= 0) dk_sb_printf(&f, ",%s", c->fields[spacing]);
        if (st == DK_OK) dk_sb_puts(&f, "\n");
    }
    if (st == DK_OK) st = dk_sb_write_file(&f, csv);
    dk_sb_free(&f);
    return st;
}

/* Mean over labels of one case's Dice and of its finite HD95s (NaN when none is). */
static void case_means(double *dice, double *hd95, const dk_label_metrics *m, int nl) {
    double sd = 0, sh = 0;
    int nh = 0;
    for (int k = 0; k < nl; k++) {
        sd += m[k].dice;
        if (isfinite(m[k].hd95)) sh += m[k].hd95, nh++;
    }
    *dice = nl > 0 ? sd / nl : NAN;
    *hd95 = nh ? sh / nh : NAN;
}

/* Per-case Dice and HD95 means of the evaluation, in the order of the case list. */
static dk_status table_values(double *dice, double *hd, const dk_eval_results *r,
                              const dk_case_list *cs, const char *rep) {
    for (int i = 0; i < cs->n; i++) {
        int j = 0;
        while (j < r->n_cases && strcmp(r->ids[j], cs->cases[i].id) != 0) j++;
        if (j == r->n_cases)
            return dk_fail(DK_ERR_IO, "%s: case %s was not evaluated", rep, cs->cases[i].id);
        case_means(&dice[i], &hd[i], r->m + (size_t)j * r->n_labels, r->n_labels);
    }
    return DK_OK;
}

static void mean_std(const double *v, int n, double *mean, double *sd, int *used) {
    double s = 0, q = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) s += v[i], k++;
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = k > 1 ? sqrt(q / (k - 1)) : 0;
    *used = k;
}

/* Predict the set with one model and evaluate it; the table's numbers are the evaluation's. */
static dk_status eval_model(cJSON *out, const char *dir, const dk_case_list *cs,
                            const study_stage *g, const dk_study *s, const study_stage *model,
                            int classes) {
    enum { P = STUDY_PATH_MAX + 64, Q = STUDY_PATH_MAX + 96 };
    char mdir[P], pred[Q], rep[Q], csv[Q], file[Q + 16], sub[3][Q];
    snprintf(mdir, sizeof mdir, "%s/%s", dir, model->dir);
    snprintf(pred, sizeof pred, "%s/pred", mdir);
    snprintf(rep, sizeof rep, "%s/report", mdir);
    snprintf(csv, sizeof csv, "%s/cases.csv", dir);
    snprintf(sub[0], sizeof sub[0], "%s/refs", dir);
    snprintf(sub[1], sizeof sub[1], "%s/masks", dir);
    snprintf(sub[2], sizeof sub[2], "%s/images", dir);
    dk__study_model_file(file, sizeof file, s, model);
    double ms = NAN;
    dk_predict_opts po = {file, NULL, csv, NULL, pred, {{0, 0, 0}, 0, 0, 0, 0, 0}, 0, &ms, 0, NULL};
    dk_infer_defaults(&po.infer);
    po.infer.overlap = g->f.overlap;
    po.infer.gaussian = g->f.gaussian;
    po.infer.tta_flips = g->f.tta_flips;
    po.infer.largest_cc = g->f.largest_cc;
    po.infer.batch = g->f.batch;
    dk_status st = dk_mkdirs(mdir);
    if (st == DK_OK) st = dk_predict_run(&po);
    int labels[DK_LOSS_MAX_CLASSES];
    for (int k = 0; k + 1 < classes; k++) labels[k] = k + 1;
    char title[512];
    snprintf(title, sizeof title, "%s: %s on %s%s%s", s->set.name, model->dir, g->f.domain,
             g->f.split[0] ? "/" : "", g->f.split);
    dk_eval_results res = {0};
    dk_eval_opts eo = {pred, sub[0], g->f.use_mask ? sub[1] : NULL, sub[2], labels,
                       classes - 1, {1.0, 1, DK_UNIT_MM}, rep, NULL, NULL, title, &res, NULL,
                       NULL, 0, NULL, NULL};
    dk_metric_defaults(&eo.metric);
    eo.metric.unit = (dk_distance_unit)g->f.distance_unit;
    if (dk_cases_column(cs, "spacing") >= 0) eo.spacing_csv = csv; /* lay_out wrote it there */
    if (st == DK_OK) st = dk_eval_run(&eo);
    double *dice = calloc((size_t)cs->n, sizeof *dice), *hd = calloc((size_t)cs->n, sizeof *hd);
    if (st == DK_OK && (!dice || !hd)) st = dk_fail(DK_ERR_NOMEM, "%s: out of memory", dir);
    if (st == DK_OK) st = table_values(dice, hd, &res, cs, rep);
    dk_eval_results_free(&res);
    if (st == DK_OK) {
        double m, sd, hm, hsd;
        int n, nh;
        mean_std(dice, cs->n, &m, &sd, &n);
        mean_std(hd, cs->n, &hm, &hsd, &nh);
        cJSON *j = cJSON_AddObjectToObject(out, model->dir);
        cJSON_AddNumberToObject(j, "dice_mean", m);
        cJSON_AddNumberToObject(j, "dice_std", sd);
        cJSON_AddNumberToObject(j, "hd95_mean", isfinite(hm) ? hm : -1);
        if (eo.metric.unit == DK_UNIT_VOXELS) cJSON_AddStringToObject(j, "distance_unit", "voxels");
        cJSON_AddNumberToObject(j, "cases", cs->n);
        cJSON_AddNumberToObject(j, "ms_per_image", isfinite(ms) ? ms : -1);
        /* per case, in the order of the eval's case_ids: the report's paired statistics */
        cJSON *cd = cJSON_AddArrayToObject(j, "case_dice"), *ch = cJSON_AddArrayToObject(j, "case_hd95");
        for (int i = 0; i < cs->n; i++) {
            cJSON_AddItemToArray(cd, cJSON_CreateNumber(dice[i]));
            cJSON_AddItemToArray(ch, isfinite(hd[i]) ? cJSON_CreateNumber(hd[i]) : cJSON_CreateNull());
        }
        snprintf(file, sizeof file, "%s/report.html", rep);
        cJSON_AddStringToObject(j, "report", file);
    }
    free(dice);
    free(hd);
    return st;
}

dk_status dk__study_run_eval(dk_study *s, study_stage *g, cJSON *result) {
    dk_train_config c;
    dk_case_list cs = {0};
    char dir[STUDY_PATH_MAX];
    dk__study_path(dir, sizeof dir, s, g->dir, NULL);
    dk_status st = dk__study_train_config(&c, s, NULL);
    if (st == DK_OK) st = eval_cases(&cs, &c, g);
    if (st == DK_OK) st = lay_out(dir, &cs, g->f.use_mask);
    cJSON_AddStringToObject(result, "domain", g->f.domain);
    cJSON_AddStringToObject(result, "split", g->f.split);
    cJSON_AddBoolToObject(result, "use_mask", g->f.use_mask);
    cJSON_AddNumberToObject(result, "cases", cs.n);
    cJSON *ids = cJSON_AddArrayToObject(result, "case_ids");
    for (int i = 0; i < cs.n; i++) cJSON_AddItemToArray(ids, cJSON_CreateString(cs.cases[i].id));
    cJSON *models = cJSON_AddObjectToObject(result, "models");
    for (int i = 0; i < g->ndeps && st == DK_OK; i++) {
        const study_stage *m = &s->stages[g->deps[i]];
        if (m->f.kind == STAGE_TRAIN || m->f.kind == STAGE_ADAPT)
            st = eval_model(models, dir, &cs, g, s, m, c.classes);
    }
    dk_cases_free(&cs);
    return st;
}
